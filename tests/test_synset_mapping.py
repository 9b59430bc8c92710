"""Table 14's ImageNet-to-CIFAR-10 mapping from CINIC-10's synset file and an ImageNet32 class list
(analysis/biamat/synset_mapping.py), on excerpts in both files' real formats."""

from __future__ import annotations

import pytest

from analysis import biamat_tables
from analysis.biamat.selection import read_mapping
from analysis.biamat.synset_mapping import cinic_classes, class_labels

# Lines as CINIC-10's synsets-to-cifar-10-classes.txt writes them (class name, then its synsets indented by depth);
# n03769967 (minicab) is listed twice under automobile, as in the file; n09999999 is made up, under two classes.
CINIC = """airplane
--------------------------------n02691156: airplane, aeroplane, plane
------------------------------------n02690373: airliner
automobile
--------------------------------n02958343: car, auto, automobile, machine, motorcar
------------------------------------n02701002: ambulance
----------------------------------------n03769967: minicab
------------------------------------n03770085: minicar
----------------------------------------n03769967: minicab
------------------------------------n09999999: made up
dog
--------------------n02084071: dog, domestic dog, Canis familiaris
------------------------n02085620: Chihuahua
------------------------n09999999: made up
"""
# map_clsloc.txt of the downsampled ImageNet: WNID, 1-based label, name.
CLASSES = """n02119789 1 kit_fox
n02690373 2 airliner
n02085620 3 Chihuahua
n02701002 4 ambulance
n09999999 5 made_up
"""


def test_each_synset_takes_its_class_and_one_listed_under_two_takes_none():
    classes, twice = cinic_classes(CINIC)
    assert classes["n02690373"] == "airplane" and classes["n03769967"] == "automobile"
    assert classes["n02085620"] == "dog" and twice == ["n09999999"] and "n09999999" not in classes


def test_the_class_list_gives_the_labels_the_trials_count():
    assert class_labels(CLASSES) == {"n02119789": 0, "n02690373": 1, "n02085620": 2, "n02701002": 3, "n09999999": 4}
    assert class_labels("n02119789\nn02690373\n") == {"n02119789": 0, "n02690373": 1}  # one WNID per line
    with pytest.raises(ValueError, match="does not start with a WNID"):
        class_labels("kit_fox 1\n")


def test_the_command_writes_the_csv_table14_reads(tmp_path, capsys):
    (tmp_path / "cinic.txt").write_text(CINIC)
    (tmp_path / "map_clsloc.txt").write_text(CLASSES)
    out = tmp_path / "mapping.csv"
    biamat_tables.main(["table14-mapping", "--cinic", str(tmp_path / "cinic.txt"), "--classes",
                        str(tmp_path / "map_clsloc.txt"), "--out", str(out)])
    printed = capsys.readouterr().out
    assert "3 of 5 classes matched: airplane 1, automobile 1, dog 1" in printed and "n09999999" in printed
    # Kit fox is no CIFAR-10 class ("Others"); the labels are map_clsloc's minus 1.
    assert read_mapping(out) == {1: "airplane", 2: "dog", 3: "automobile"}


def test_a_file_of_another_format_is_refused_with_what_it_expected(tmp_path):
    (tmp_path / "wrong.txt").write_text("---not a synset\n")
    (tmp_path / "map_clsloc.txt").write_text(CLASSES)
    with pytest.raises(SystemExit, match="neither a class name nor"):
        biamat_tables.main(["table14-mapping", "--cinic", str(tmp_path / "wrong.txt"), "--classes",
                            str(tmp_path / "map_clsloc.txt"), "--out", str(tmp_path / "m.csv")])
