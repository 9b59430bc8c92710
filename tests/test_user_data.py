"""The user's own data, ``npz:PATH`` and ``folder:PATH``, read through load_dataset and check_dataset on tiny files;
every bad file refused with a message naming the file, what is wrong and the fix, before a sweep starts too."""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from launch.checks import validate
from trainables import user_data
from trainables.config import ConfigError, TrainConfig
from trainables.dataset_names import absolute_dataset_name, is_builtin, validate_dataset_name
from trainables.datasets import DatasetInvalidError, DatasetNotFoundError, check_dataset, load_dataset
from trainables.image_set import ImageSet, seeded_subset


def nhwc(n: int, size: int = 8, seed: int = 0) -> np.ndarray:
    """(n, size, size, 3) uint8 noise with a known pixel: image i has R=10+i, G=20+i, B=30+i at row 1, column 2."""
    x = np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    x[:, 1, 2] = [[10 + i, 20 + i, 30 + i] for i in range(n)]
    return x


def write_npz(path: Path, compressed: bool = False, **arrays: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


def test_an_npz_file_is_the_train_split(tmp_path: Path) -> None:
    """The published DDPM-generated CIFAR-10 layout: one file, ``image`` (N, 32, 32, 3) uint8 and ``label``."""
    path = write_npz(tmp_path / "1m.npz", image=nhwc(5, 32), label=np.array([0, 3, 1, 3, 2]))
    name = f"npz:{path}"
    check_dataset(name)
    train = load_dataset(name, "train")
    assert train.images.shape == (5, 3, 32, 32) and train.images.is_contiguous() and train.name == name
    assert train.num_classes == 4 and train.labels.tolist() == [0, 3, 1, 3, 2]
    assert [train.images[i, :, 1, 2].tolist() for i in range(5)] == [[10 + i, 20 + i, 30 + i] for i in range(5)]
    with pytest.raises(ValueError, match="train split only.*npz:FOLDER of train.npz and test.npz"):
        load_dataset(name, "test")
    assert not is_builtin(name)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_an_npz_folder_holds_train_and_test(tmp_path: Path, layout: str) -> None:
    def stored(x: np.ndarray) -> np.ndarray:
        return x if layout == "NHWC" else x.transpose(0, 3, 1, 2).copy()

    write_npz(tmp_path / "gen" / "train.npz", images=stored(nhwc(4, 6)), labels=np.array([0, 1, 2, 1], np.uint8))
    write_npz(tmp_path / "gen" / "test.npz", image=stored(nhwc(3, 6, seed=1)), label=np.array([2, 2, 0]))
    name = f"npz:{tmp_path / 'gen'}"
    check_dataset(name)
    train, test = load_dataset(name, "train"), load_dataset(name, "test")
    assert train.images.shape == (4, 3, 6, 6) and train.labels.dtype == torch.int64
    assert torch.equal(train.images, torch.from_numpy(nhwc(4, 6)).permute(0, 3, 1, 2))
    assert test.num_classes == 3 and test.labels.tolist() == [2, 2, 0]  # the classes are train's


def test_compressed_npz_and_relative_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """np.savez_compressed cannot be memory-mapped and is read whole; a relative PATH resolves against the current
    directory, and absolute_dataset_name pins it for trials that run elsewhere."""
    write_npz(tmp_path / "gen" / "train.npz", compressed=True, image=nhwc(3), label=np.array([1, 0, 1]))
    monkeypatch.chdir(tmp_path)
    assert load_dataset("npz:gen/train.npz", "train").labels.tolist() == [1, 0, 1]
    assert absolute_dataset_name("npz:gen/train.npz") == f"npz:{tmp_path / 'gen' / 'train.npz'}"
    assert absolute_dataset_name("folder:imgs") == f"folder:{tmp_path / 'imgs'}"
    assert absolute_dataset_name("cifar10") == "cifar10" and absolute_dataset_name("npz:/a.npz") == "npz:/a.npz"
    with pytest.raises(DatasetNotFoundError, match="relative PATH resolves against the current directory"):
        load_dataset("npz:gen/missing.npz", "train")


def test_the_check_reads_no_pixels_and_the_load_maps_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_npz(tmp_path / "x.npz", image=nhwc(4), label=np.array([0, 1, 0, 1]))
    mapped = []
    original = user_data._load_member

    def spy(*args: object) -> np.ndarray:
        mapped.append(array := original(*args))
        return array

    monkeypatch.setattr(user_data, "_load_member", spy)
    check_dataset(f"npz:{path}")
    assert mapped == []
    load_dataset(f"npz:{path}", "train")
    assert len(mapped) == 1 and isinstance(mapped[0], np.memmap)


def test_test_labels_must_be_train_classes(tmp_path: Path) -> None:
    write_npz(tmp_path / "train.npz", image=nhwc(2), label=np.array([0, 1]))
    test = write_npz(tmp_path / "test.npz", image=nhwc(2), label=np.array([1, 2]))
    assert_refused(f"npz:{tmp_path}", "test", test, "labels from 1 to 2, expected 0 to 1")


def test_missing_npz_files_say_where(tmp_path: Path) -> None:
    write_npz(tmp_path / "train.npz", image=nhwc(2), label=np.array([0, 1]))
    with pytest.raises(DatasetNotFoundError) as info:
        check_dataset(f"npz:{tmp_path}")
    message = str(info.value)
    assert f"missing {tmp_path / 'test.npz'}" in message and "np.savez" in message
    assert "ADVSWEEP_DATA" not in message  # the path is the whole address; no data root applies
    with pytest.raises(DatasetNotFoundError, match="nowhere.npz"):
        load_dataset(f"npz:{tmp_path / 'nowhere.npz'}", "train")


def test_names_of_user_data_are_valid_names() -> None:
    validate_dataset_name("npz:/anywhere/x.npz")
    validate_dataset_name("folder:relative/path")
    for bad in ("npz:", "npy:/x.npy", "cifar-10"):
        with pytest.raises(ValueError, match="npz:PATH or folder:PATH"):
            validate_dataset_name(bad)


def assert_refused(name: str, split: str, file: Path, *fragments: str) -> str:
    """check_dataset (before a sweep) and load_dataset (in a trial) give the same one-line message, naming the file,
    what is wrong and the fix."""
    with pytest.raises(DatasetInvalidError) as checked:
        check_dataset(name, splits=[split])
    with pytest.raises(DatasetInvalidError) as loaded:
        load_dataset(name, split)
    message = str(checked.value)
    assert message == str(loaded.value) and "\n" not in message
    assert message.startswith(f"{name} ({split}): {file}") and "To fix it, " in message, message
    assert all(fragment in message for fragment in fragments), message
    return message


GOOD = {"image": nhwc(3), "label": np.array([0, 1, 2])}


@pytest.mark.parametrize(
    ("arrays", "fragments"),
    [
        ({"image": GOOD["image"]}, ["neither of the arrays 'label' and 'labels'", "(it has ['image'])"]),
        ({"labels": GOOD["label"]}, ["neither of the arrays 'image' and 'images'"]),
        ({**GOOD, "images": GOOD["image"]}, ["both of the arrays 'image' and 'images'"]),
        ({**GOOD, "image": nhwc(3)[..., 0]}, ["'image' is uint8 of shape (3, 8, 8), expected uint8 images"]),
        ({**GOOD, "image": np.zeros((3, 8, 8, 4), np.uint8)}, ["shape (3, 8, 8, 4), expected", "(N, 3, H, W)"]),
        ({**GOOD, "image": GOOD["image"].astype(np.uint16)}, ["'image' is uint16 of shape (3, 8, 8, 3)"]),
        ({**GOOD, "image": GOOD["image"] / 255.0}, ["'image' is float64 of shape (3, 8, 8, 3), expected uint8"]),
        ({**GOOD, "image": np.zeros((3, 3, 5, 3), np.uint8)}, ["(3, 3, 5, 3): 3 in both places", "ambiguous"]),
        ({**GOOD, "image": np.zeros((0, 8, 8, 3), np.uint8), "label": np.zeros(0, int)}, ["holds no images"]),
        ({**GOOD, "label": np.array([0, -1, 2])}, ["labels from -1 to 2, expected 0 to 2"]),
        ({**GOOD, "label": np.array([0.0, 1.0, 2.0])}, ["'label' holds float64 values, expected integer"]),
        ({**GOOD, "label": np.array([0, 1])}, ["'label' is int64 of shape (2,) of length 2, expected 3 labels"]),
        ({**GOOD, "label": np.zeros((3, 1), int)}, ["'label' is int64 of shape (3, 1), expected one label per image"]),
    ],
    ids=["no-labels", "no-images", "two-image-keys", "3-d", "4-channels", "uint16", "float", "ambiguous", "empty",
         "negative-label", "float-labels", "mismatched-n", "2-d-labels"],
)
def test_wrong_npz_content_is_refused(tmp_path: Path, arrays: dict, fragments: list) -> None:
    path = write_npz(tmp_path / "bad.npz", **arrays)
    message = assert_refused(f"npz:{path}", "train", path, *fragments)
    assert "np.savez(FILE, image=uint8 array (N, H, W, 3)" in message


def half_an_npz(tmp_path: Path) -> bytes:
    whole = write_npz(tmp_path / "w.npz", image=np.zeros((2000, 8, 8, 3), np.uint8), label=np.zeros(2000, int))
    return whole.read_bytes()[: whole.stat().st_size // 2]  # the zip's directory, at its end, is gone


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(lambda tmp: b"", "BadZipFile"), (half_an_npz, "BadZipFile"),
     (lambda tmp: np.random.default_rng(0).bytes(4096), "BadZipFile"), (lambda tmp: b"PK\x03\x04 torn", "")],
    ids=["empty", "truncated", "random-bytes", "torn-header"],
)
def test_files_that_are_no_npz_are_refused(tmp_path: Path, content: Callable[[Path], bytes], fragment: str) -> None:
    path = tmp_path / "x.npz"
    path.write_bytes(content(tmp_path))
    assert_refused(f"npz:{path}", "train", path, "is not a readable .npz file", fragment)


def test_a_member_cut_short_inside_a_valid_zip_is_refused(tmp_path: Path) -> None:
    """A stored image array whose bytes end early (the archive rewritten with a shortened member) is caught by the
    load's size check; the layout check reads only its header."""
    path = tmp_path / "x.npz"
    full = tmp_path / "full.npz"
    write_npz(full, image=nhwc(50), label=np.zeros(50, int))
    with zipfile.ZipFile(full) as src, zipfile.ZipFile(path, "w") as dst:
        dst.writestr("label.npy", src.read("label.npy"))
        dst.writestr("image.npy", src.read("image.npy")[:-100])
    check_dataset(f"npz:{path}")
    with pytest.raises(DatasetInvalidError, match=r"x.npz is not a readable .npz file \(EOFError: image.npy holds fewer bytes"):
        load_dataset(f"npz:{path}", "train")


# ---------------------------------------------------------------------------------------------------------------------
# ImageFolder
# ---------------------------------------------------------------------------------------------------------------------

COLOURS = {"cat": (200, 30, 30), "dog": (30, 200, 30), "eel": (30, 30, 200)}


def write_png(path: Path, colour: tuple[int, int, int], side: int = 40) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((side, side, 3), colour, dtype=np.uint8)).save(path)


def write_folder(root: Path) -> Path:
    """train: 2 cat, 1 dog, 1 eel; test: 1 eel, 1 cat (no dog folder), all 40x40 PNGs of one colour per class."""
    for split, counts in {"train": {"cat": 2, "dog": 1, "eel": 1}, "test": {"eel": 1, "cat": 1}}.items():
        for cls, count in counts.items():
            for i in range(count):
                write_png(root / split / cls / f"{i}.png", COLOURS[cls])
    return root


@pytest.mark.parametrize("size", [32, 64])
def test_an_image_folder_is_resized_once_and_cached(tmp_path: Path, size: int, monkeypatch: pytest.MonkeyPatch
                                                    ) -> None:
    root = write_folder(tmp_path / "pets")
    name = f"folder@{size}:{root}"
    check_dataset(name)
    train = load_dataset(name, "train")
    assert train.images.shape == (4, 3, size, size) and train.num_classes == 3
    assert train.labels.tolist() == [0, 0, 1, 2]  # sorted class folders: cat, dog, eel
    assert train.images[2, :, size // 2, size // 2].tolist() == list(COLOURS["dog"])
    test = load_dataset(name, "test")
    assert test.labels.tolist() == [0, 2] and test.num_classes == 3  # eel keeps train's index though dog is absent
    cache = root / ".advsweep-cache" / f"train-{size}.npz"
    assert cache.exists() and sorted(p.name for p in cache.parent.iterdir()) == [f"test-{size}.npz", cache.name]

    def no_decoding(*args: object) -> None:
        raise AssertionError("the images were listed again")

    monkeypatch.setattr(user_data, "_image_folder", no_decoding)
    again = load_dataset(name, "train")
    assert torch.equal(again.images, train.images) and torch.equal(again.labels, train.labels)


def test_a_new_image_makes_the_cache_stale(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "pets")
    assert len(load_dataset(f"folder:{root}", "train")) == 4
    write_png(root / "train" / "dog" / "1.png", COLOURS["dog"])
    cache = user_data.cache_path(root, "train", 32)
    later = cache.stat().st_mtime_ns + 10**9  # a second later whatever the file system's clock resolution
    os.utime(root / "train" / "dog", ns=(later, later))
    assert load_dataset(f"folder:{root}", "train").labels.tolist() == [0, 0, 1, 1, 2]


def test_the_cache_is_written_whole_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", killed)
    with pytest.raises(KeyboardInterrupt):
        user_data.save_npz_atomic(tmp_path / "c" / "x.npz", images=np.zeros(3))
    assert list((tmp_path / "c").iterdir()) == []  # neither the file nor its temporary


def test_wrong_image_folders_are_refused(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "pets")
    write_png(root / "test" / "fox" / "0.png", (1, 2, 3))
    assert_refused(f"folder:{root}", "test", root / "test", "class folders ['fox'] that", "the classes are train's",
                   "ImageFolder")
    (root / "test" / "fox" / "0.png").unlink()
    (root / "test" / "fox").rmdir()
    (root / "train" / "dog" / "0.png").write_bytes(b"not a png")
    with pytest.raises(DatasetInvalidError, match=r"dog/0.png is not a readable image .*delete or replace it"):
        load_dataset(f"folder:{root}", "train")
    (root / "train" / "dog" / "0.png").unlink()
    assert_refused(f"folder:{root}", "train", root / "train", "Found no valid file for the classes dog")
    for cls in ("eel", "cat"):
        (root / "test" / cls / "0.png").unlink()
    assert_refused(f"folder:{root}", "test", root / "test", "holds no images")
    with pytest.raises(ValueError, match=r"'3' is not an image size; write folder@SIZE:PATH .* at least 4"):
        load_dataset(f"folder@3:{root}", "test")
    with pytest.raises(DatasetNotFoundError, match=f"expected train in {tmp_path / 'none'}; missing .*none/train"):
        check_dataset(f"folder:{tmp_path / 'none'}")


def test_a_damaged_image_is_named_before_ray_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """check_dataset opens every image header (PIL verify): a truncated PNG and a file that is no image at all stop
    the sweep's check (launcher.validate, --dry-run included) with the file named; once a fresh cache of that size
    exists, only the cache is checked."""
    root = write_folder(tmp_path / "pets")
    png = root / "train" / "cat" / "1.png"
    whole = png.read_bytes()
    png.write_bytes(whole[: len(whole) // 2])
    name = f"folder@16:{root}"
    for notes in (None, []):
        with pytest.raises(SystemExit) as info:
            validate(TrainConfig, {"dataset": name}, None, notes=notes)
        assert str(info.value).startswith(f"error: {name} (train): {png} is not a readable image (OSError: ")
        assert "delete or replace it" in str(info.value) and "\n" not in str(info.value)
    png.write_bytes(whole)
    garbage = root / "test" / "eel" / "0.png"
    garbage.write_bytes(b"not a png")
    with pytest.raises(DatasetInvalidError, match=f"{garbage} is not a readable image \\(UnidentifiedImageError"):
        check_dataset(name)
    write_png(garbage, COLOURS["eel"])
    check_dataset(name)
    load_dataset(name, "train")  # writes train-16.npz

    def opened(*args: object, **kwargs: object) -> None:
        raise AssertionError("an image was opened although the cache is fresh")

    monkeypatch.setattr("PIL.Image.open", opened)
    check_dataset(name, splits=["train"])
    with pytest.raises(AssertionError, match="an image was opened"):  # test has no cache of its own yet
        check_dataset(name, splits=["test"])


def test_the_size_in_the_name_reaches_a_trial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """folder@64:PATH is 64x64 wherever the name goes (a trial config, its data, the cache), folder:PATH 32x32; an
    @ inside PATH is part of the path."""
    from trainables.trial_data import TrialData

    root = write_folder(tmp_path / "p@ts")
    for name, side in ((f"folder@64:{root}", 64), (f"folder:{root}", 32)):
        cfg = TrainConfig.from_dict({"dataset": name, "eval_n": 2, "final_n": 2})
        data = TrialData.load(cfg, data_root=None)
        assert data.train.images.shape == (4, 3, side, side) and data.test.images.shape == (2, 3, side, side)
        assert data.train.name == name and user_data.cache_path(root, "train", side).exists()
    monkeypatch.chdir(tmp_path)
    assert absolute_dataset_name("folder@64:p@ts") == f"folder@64:{root}"
    assert load_dataset("folder@8:p@ts", "test").images.shape == (2, 3, 8, 8)


@pytest.mark.parametrize("name, message", [
    ("folder@3:x", ("'3' is not an image size; write folder@SIZE:PATH with SIZE a whole number of pixels, at least 4 "
                    "(e.g. folder@64:x)")),
    ("folder@0:x", "'0' is not an image size"),
    ("folder@064:x", "'064' is not an image size"),
    ("folder@64px:x", "'64px' is not an image size"),
    ("folder@:x", "'' is not an image size"),
    ("npz@64:x.npz", "only folder: data takes @SIZE (an npz file's images keep their own size); name it npz:x.npz"),
])
def test_a_bad_size_in_the_name_is_refused_with_the_fix(name: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        validate_dataset_name(name)
    assert str(info.value).startswith(f"dataset {name!r}: ") and message in str(info.value)
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainConfig.from_dict({"dataset": name})
    assert absolute_dataset_name(name) == name  # left for the config's check to refuse


# ---------------------------------------------------------------------------------------------------------------------
# Seeded subsets, and the sweep's data check
# ---------------------------------------------------------------------------------------------------------------------


def indexed(n: int) -> ImageSet:
    """n blank images labelled by their index, so a subset's labels are the indices it drew."""
    return ImageSet(torch.zeros(n, 3, 1, 1, dtype=torch.uint8), torch.arange(n), n, "indexed")


def test_seeded_subsets_are_reproducible_nested_and_in_file_order() -> None:
    data = indexed(1000)
    drawn = seeded_subset(data, 100, seed=3).labels.tolist()
    assert drawn == seeded_subset(data, 100, seed=3).labels.tolist()
    assert len(set(drawn)) == 100 and drawn == sorted(drawn)  # without replacement, kept in file order
    assert drawn != seeded_subset(data, 100, seed=4).labels.tolist()
    assert set(seeded_subset(data, 10, seed=3).labels.tolist()) < set(drawn)  # a smaller n draws a subset
    # Pinned (torch 2.14, CPU generator): a machine or a torch version that draws otherwise shows up here.
    assert seeded_subset(data, 5, seed=0).labels.tolist() == [56, 142, 672, 793, 799]
    assert seeded_subset(data, 1000, seed=0).labels.tolist() == list(range(1000))
    for n in (0, 1001):
        with pytest.raises(ValueError, match=f"n={n} must be from 1 to the 1000 images of indexed"):
            seeded_subset(data, n, 0)


def test_a_sweep_refuses_a_bad_npz_before_ray_starts(tmp_path: Path) -> None:
    """launcher.validate, what every sweep runs before Ray (check_sweeps, --dry-run included): a bad auxiliary npz
    stops it in one line; a missing one stops a run and is a note in a dry run."""
    bad = write_npz(tmp_path / "aux.npz", image=nhwc(3).astype(np.uint16), label=np.array([0, 1, 2]))
    space = {"dataset": "synthetic"}
    for notes in (None, []):
        with pytest.raises(SystemExit) as info:
            validate(TrainConfig, space, None, extra_datasets=lambda cfg: [f"npz:{bad}"], notes=notes)
        assert str(info.value).startswith(f"error: npz:{bad} (train): {bad}: 'image' is uint16")
    missing = f"npz:{tmp_path / 'gone.npz'}"
    with pytest.raises(SystemExit, match="gone.npz"):
        validate(TrainConfig, space, None, extra_datasets=lambda cfg: [missing])
    notes: list[str] = []
    validate(TrainConfig, space, None, extra_datasets=lambda cfg: [missing], notes=notes)
    assert len(notes) == 1 and "gone.npz" in notes[0]
    good = write_npz(tmp_path / "good.npz", image=nhwc(3), label=np.array([0, 1, 2]))
    assert len(validate(TrainConfig, space, None, extra_datasets=lambda cfg: [f"npz:{good}"])) == 1


def test_a_single_npz_as_the_primary_set_is_refused_before_ray_for_its_missing_test_split(tmp_path: Path) -> None:
    train_only = write_npz(tmp_path / "generated.npz", image=nhwc(3), label=np.array([0, 1, 2]))
    with pytest.raises(SystemExit, match="test"):
        validate(TrainConfig, {"dataset": f"npz:{train_only}"}, None)
    # The same file as extra (auxiliary) data is fine: only its train split is read.
    assert len(validate(TrainConfig, {"dataset": "synthetic"}, None,
                        extra_datasets=lambda cfg: [f"npz:{train_only}"])) == 1


def test_a_sweeps_relative_user_data_paths_become_absolute_for_the_trials(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from ray import tune

    from launch.space import with_absolute_datasets

    monkeypatch.chdir(tmp_path)
    space = {"dataset": "npz:data/mine", "aux_datasets": tune.grid_search([["npz:gen.npz", "svhn"], ["folder:imgs"]]),
             "extra_data": "npz:ddpm.npz", "model": "npz:not-a-dataset-key"}
    fixed = with_absolute_datasets(space)
    assert fixed["dataset"] == f"npz:{tmp_path / 'data/mine'}"
    assert fixed["extra_data"] == f"npz:{tmp_path / 'ddpm.npz'}"
    assert fixed["aux_datasets"] == {"grid_search": [[f"npz:{tmp_path / 'gen.npz'}", "svhn"],
                                                     [f"folder:{tmp_path / 'imgs'}"]]}
    assert fixed["model"] == space["model"]  # only the dataset keys are paths
