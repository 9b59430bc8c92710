"""BiaMAT Table 2 (sweeps/biamat_main_results.py and its baselines), appendix Table 9 (sweeps/biamat_oat.py) and
appendix Tables 5 and 10 (sweeps/biamat_data_density.py, sweeps/biamat_generated_data.py): the
tables from frames shaped like MLflow's, each primary set's paper grid planned on small files in the published formats,
and (slow) both smoke sweeps end to end with the analysis commands a user types."""

from __future__ import annotations

import csv
import io
import pickle
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import ray
from test_biamat_robust_dataset import check_table6_from
from test_datasets import cifar_rows, write_cifar10, write_pickle
from test_dry_run import empty_cwd  # noqa: F401 - the fixture: an empty working directory, no run-setting variables
from test_imagenet64 import write_imagenet64

from analysis import biamat_tables
from analysis.biamat.comparisons import pseudo_labelled_row
from analysis.biamat.tables import table2, table9
from analysis.render import to_csv
from launch.checks import trial_configs
from runstore.reader import SweepRuns, load_sweep
from sweeps import (
    baselines,
    biamat_aux_sets,
    biamat_data_density,
    biamat_generated_data,
    biamat_main_results,
    biamat_oat,
    biamat_pretraining,
    biamat_semi_supervised,
)
from sweeps.biamat_presets import TABLE2_AUX, TABLE2_UNLISTED, TABLE12, baseline_recipe, paper_recipe
from trainables.datasets import imgnet100_classes
from trainables.methods.configs import BaselineConfig

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {"at": {"params.model": "wrn-28-10", "params.epochs": 100, "params.weight_decay": 2e-4},
           "trades": {"params.model": "wrn-34-10", "params.epochs": 110, "params.weight_decay": 5e-4}}


def frame(rows: list[dict], name: str = "s") -> SweepRuns:
    return SweepRuns(name, "parent", "exp", pd.DataFrame(rows), {}, client=None)


PAPER_ATTACKS = ("clean", "pgd20", "pgd100", "cw100", "autoattack")


def scores(aa: float, clean: float, attacks: tuple[str, ...] = PAPER_ATTACKS) -> dict[str, float]:
    """Final-protocol metrics; weaker attacks leave more accuracy, so a wrong column shows in the numbers."""
    values = {"clean": clean, "pgd20": aa + 0.07, "pgd100": aa + 0.06, "cw100": aa + 0.02, "autoattack": aa}
    return {f"metrics.best/{a}": values[a] for a in attacks}


def biamat(variant: str, aux: str, aa: float, clean: float, dataset: str = "cifar10",
           attacks: tuple[str, ...] = PAPER_ATTACKS, **extra) -> dict:
    alpha, pi = {("cifar10", "at"): (1.0, 0.55), ("cifar10", "trades"): (0.5, 0.5)}.get((dataset, variant), (1.0, 0.5))
    return {"tags.method": "biamat", "params.labels": "gated", "params.variant": variant, "params.dataset": dataset,
            "params.aux_datasets": aux, "params.alpha": alpha, "params.pi": pi, **RECIPES[variant],
            **scores(aa, clean, attacks), **extra}


def baseline(training: str, aa: float, clean: float, **recipe) -> dict:
    variant = {"pgd_at": "at", "trades": "trades"}[training]
    return {"tags.method": "baseline", "params.training": training, "params.dataset": "cifar10",
            **RECIPES[variant], **recipe, **scores(aa, clean)}


def texts(table) -> list[list[str]]:
    return list(csv.reader(io.StringIO(to_csv(table))))[1:]


# --- Table 2 -------------------------------------------------------------------------------------------------------

MAIN_ROWS = [  # out of the paper's order on purpose; the SVHN AT row has two seeds
    biamat("at", "imagenet32", 0.5078, 0.8875), biamat("at", "svhn", 0.4861, 0.8734), biamat("at", "svhn", 0.4863, 0.8734),
    biamat("trades", "cifar100", 0.5548, 0.8702), biamat("trades", "svhn", 0.5394, 0.8549),
    biamat("at", "places365_32", 0.2649, 0.6344, dataset="cifar100"),
]
# The AT baseline has the best clean accuracy of its block: bold, as the paper bolds within each method's rows.
BASELINES = [baseline("pgd_at", 0.4853, 0.9000), baseline("trades", 0.5393, 0.8585)]


def test_table2_rows_per_primary_and_method_with_the_baseline_first_and_the_best_in_bold():
    table = table2(frame(MAIN_ROWS), frame(BASELINES, "baselines-biamat-main-cifar10-paper"))
    assert table.header == ["Primary dataset", "Method", "Auxiliary dataset", "Clean", "PGD-100", "CW-100",
                            "AutoAttack"]  # the paper's columns (the runs' PGD-20 is not one)
    rows = texts(table)
    assert [row[:3] for row in rows] == [
        ["CIFAR-10", "AT", "-"], ["", "AT+BiaMAT", "SVHN"], ["", "", "ImageNet"],
        ["", "TRADES", "-"], ["", "TRADES+BiaMAT", "SVHN"], ["", "", "CIFAR-100"],
        ["CIFAR-100", "AT", "-"], ["", "AT+BiaMAT", "Places365"]]
    assert [row[-1] for row in rows] == ["48.53", "48.62 ± 0.01 (n=2)", "50.78", "53.93", "53.94", "55.48", "-",
                                         "26.49"]
    assert [row[3] for row in rows][:3] == ["90.00", "87.34 ± 0.00 (n=2)", "88.75"]
    bold = [[cell.bold if hasattr(cell, "bold") else None for cell in row[3:]] for row in table.rows]
    assert [b[0] for b in bold] == [True, False, False, False, False, True, None, True]  # clean, per block
    assert [b[-1] for b in bold] == [False, False, True, False, False, True, None, True]  # AutoAttack
    notes = "\n".join(table.notes)
    assert "α, π: CIFAR-10 AT+BiaMAT 1.00, 0.55; CIFAR-10 TRADES+BiaMAT 0.50, 0.50; CIFAR-100 AT+BiaMAT 1.00, 0.50" \
        in notes
    assert "no finished pgd_at baseline on cifar100 in sweep 'baselines-biamat-main-cifar10-paper'" in notes
    assert "baseline from sweep 'baselines-biamat-main-cifar10-paper'" in notes
    assert table.title.startswith("Table 2. Accuracy (%) on CIFAR-10, CIFAR-100 without and with BiaMAT")


def test_table2_shows_the_columns_a_smoke_run_measured_and_refuses_a_baseline_trained_another_way():
    smoke = [biamat("at", aux, 0.4, 0.6, attacks=("clean", "pgd20")) for aux in ("svhn", "imagenet32")]
    table = table2(frame(smoke))  # no baseline anywhere: its row stays, empty
    assert table.header[3:] == ["Clean", "PGD-20"]
    assert texts(table)[0] == ["CIFAR-10", "AT", "-", "-", "-"]
    assert "no finished pgd_at baseline on cifar10 in sweep 's'" in table.notes[-1]
    other = [baseline("trades", 0.5, 0.8, **{"params.weight_decay": 2e-4})]
    with pytest.raises(ValueError, match=r"not trained with the recipe .*weight_decay: 0.0005 vs baseline 0.0002"):
        table2(frame(MAIN_ROWS), frame(other))


def test_table2_and_table9_commands_parse():
    parser = biamat_tables.build_parser()
    args = parser.parse_args(["table2", "--sweep", "a", "--baseline-sweep", "b", "--checkpoint", "last"])
    assert (args.command, args.baseline_sweep, args.checkpoint) == ("table2", "b", "last")
    assert parser.parse_args(["table9", "--sweep", "a", "--metric", "best/pgd100"]).metric == "best/pgd100"


# --- Table 9 -------------------------------------------------------------------------------------------------------

def oat_rows(attacks: tuple[str, ...] = PAPER_ATTACKS, aux: str = "imagenet32", aux_n: int = 100_000) -> list[dict]:
    values = {"uniform": [(0.5154, 0.8628), (0.5160, 0.8630)], "gated": [(0.5701, 0.8823), (0.5699, 0.8821)]}
    return [biamat("at", aux, aa, clean, attacks=attacks, **{"params.labels": labels, "params.aux_n": aux_n})
            for labels, seeds in values.items() for aa, clean in seeds]


def test_table9_oat_then_biamat_with_clean_and_the_strongest_attack():
    table = table9(frame(oat_rows()))
    assert table.title.startswith("Table 9. Results on CIFAR-10 when ImageNet-100k is auxiliary")
    assert table.header == ["Method", "Clean", "AutoAttack"]
    assert texts(table) == [["OAT", "86.29 ± 0.01", "51.57 ± 0.04"], ["BiaMAT", "88.22 ± 0.01", "57.00 ± 0.01"]]
    assert [[c.bold for c in row[1:]] for row in table.rows] == [[False, False], [True, True]]
    notes = "\n".join(table.notes)
    assert "α = 1.00, π = 0.55" in notes and "a fixed random 100,000 images of ImageNet (aux_n)" in notes
    assert table9(frame(oat_rows()), "best/pgd100").header == ["Method", "Clean", "PGD-100"]

    smoke = table9(frame(oat_rows(("clean", "pgd20"), "synthetic_aux", 1000)))
    assert smoke.header == ["Method", "Clean", "PGD-20"] and "when synthetic_aux-1k is auxiliary" in smoke.title
    both = [*oat_rows(), {**oat_rows()[0], "params.variant": "trades"}]
    with pytest.raises(ValueError, match="expected runs with one variant"):
        table9(frame(both))


# --- the presets ----------------------------------------------------------------------------------------------------

def test_every_table2_setting_has_one_alpha_and_pi_from_table12_or_the_unlisted_choice():
    assert not set(TABLE12) & set(TABLE2_UNLISTED)
    for primary, auxes in TABLE2_AUX.items():
        chosen = biamat_main_results.settings("paper", primary)
        assert set(chosen) == {(v, aux) for v in ("at", "trades") for aux in auxes}
    assert set(TABLE2_UNLISTED) == {("cifar10", "trades", "svhn"), ("imgnet100", "trades", "places365_64"),
                                    ("imgnet100", "trades", "imgnet900")}


@pytest.mark.parametrize("primary", list(TABLE2_AUX))
def test_table2_baselines_train_each_variants_recipe(primary):
    configs = {cfg.training: cfg for cfg in
               trial_configs(BaselineConfig, baselines.search_space(f"biamat-main-{primary}-paper", 1))}
    assert sorted(configs) == ["pgd_at", "trades"]
    for variant, training in (("at", "pgd_at"), ("trades", "trades")):
        expected = BaselineConfig.from_dict({**baseline_recipe(paper_recipe(variant, primary), variant), "seed": 0})
        assert configs[training] == expected


def write_table2_data(root: Path) -> None:
    """A few images of every dataset the three primaries' rows read, in the published formats (caches for
    Places365, whose check reads only them)."""
    from scipy.io import savemat

    write_cifar10(root)
    for split in ("train", "test"):
        write_pickle(root / "cifar-100-python" / split, {"data": cifar_rows(2, 1), "fine_labels": [0, 99]})
    (root / "svhn").mkdir()
    for split in ("train", "test"):  # SVHN can be a primary set: its check reads both
        savemat(root / "svhn" / f"{split}_32x32.mat", {"X": np.zeros((32, 32, 3, 2), np.uint8),
                                                        "y": np.array([[1], [10]])})
    for i in range(1, 11):
        write_pickle(root / "imagenet32" / f"train_data_batch_{i}", {"data": cifar_rows(1, i), "labels": [i]})
    (root / "places365").mkdir()
    for size in (32, 64):
        np.savez(root / "places365" / f"places365_{size}_train.npz", images=np.zeros((2, 3, size, size), np.uint8),
                 labels=np.array([0, 364]))
    chosen, other = imgnet100_classes()[0], min(set(range(1000)) - set(imgnet100_classes()))
    write_imagenet64(root, [[chosen, other]] * 10, [chosen])


@pytest.mark.parametrize(("primary", "trials"), [("cifar10", 8), ("cifar100", 4), ("imgnet100", 4)])
def test_each_primarys_paper_grid_plans_on_its_data_and_starts_nothing(primary, trials, empty_cwd, capsys):  # noqa: F811
    write_table2_data(empty_cwd / "data")
    before = sorted(empty_cwd.rglob("*"))
    biamat_main_results.main(["--preset", "paper", "--primary", primary, "--seeds", "2", "--dry-run"])
    out = capsys.readouterr().out
    assert f"sweep 'biamat-main-{primary}-paper'" in out and f"\ntrials: {2 * trials}\n" in out
    assert "note:" not in out  # every dataset of the rows was found (and checked) under ./data
    for aux in TABLE2_AUX[primary]:
        assert f"[{aux}]" in out
    assert not ray.is_initialized() and sorted(empty_cwd.rglob("*")) == before  # nothing started, nothing written

    baselines.main(["--preset", f"biamat-main-{primary}-paper", "--dry-run"])
    out = capsys.readouterr().out
    assert "\ntrials: 2\n" in out and "note:" not in out


def test_table4_paper_grid_plans_on_the_same_files(empty_cwd, capsys):  # noqa: F811
    """Appendix Table 4's sets (SVHN, CIFAR-100, Places365, ImageNet32, and the pairs) in the published formats."""
    write_table2_data(empty_cwd / "data")
    biamat_aux_sets.main(["--preset", "paper", "--dry-run"])
    out = capsys.readouterr().out
    assert "\ntrials: 6\n" in out and "note:" not in out and "[svhn,cifar100]" in out.replace(", ", ",")
    assert not ray.is_initialized()

def test_the_smoke_preset_takes_no_primary(empty_cwd, capsys):  # noqa: F811
    with pytest.raises(SystemExit) as info:
        biamat_main_results.main(["--primary", "cifar100", "--dry-run"])
    assert info.value.code == 2 and "--primary picks the paper preset's primary dataset" in capsys.readouterr().err


def test_table9_takes_a_selection_of_ones_own_as_npz(empty_cwd, capsys):  # noqa: F811
    write_table2_data(empty_cwd / "data")
    biamat_oat.main(["--preset", "paper", "--dry-run"])
    out = capsys.readouterr().out
    assert "\ntrials: 2\n" in out and "aux_n=100000" in out and "note:" not in out

    selection = empty_cwd / "imagenet100k.npz"
    np.savez(selection, image=np.zeros((4, 32, 32, 3), np.uint8), label=np.array([0, 1, 2, 999]))
    biamat_oat.main(["--preset", "paper", "--dry-run", "--set", 'aux_datasets=["npz:imagenet100k.npz"]',
                     "--set", "aux_n=0"])
    out = capsys.readouterr().out
    assert f"aux_datasets=[npz:{selection}]" in out and "aux_n=0" in out and "note:" not in out
    selection.write_bytes(pickle.dumps({"image": "not an array"}))
    with pytest.raises(SystemExit, match="imagenet100k.npz"):
        biamat_oat.main(["--preset", "paper", "--dry-run", "--set", 'aux_datasets=["npz:imagenet100k.npz"]'])


# --- end to end -----------------------------------------------------------------------------------------------------

def analysis(*argv: str) -> str:
    done = subprocess.run([sys.executable, "analysis/biamat_tables.py", *argv], cwd=ROOT, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_the_smoke_sweeps_give_tables_2_6_and_9(ray_local, tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # A quarter of the smoke presets' training images and half their final test points (every sweep alike, so the
    # baselines keep the BiaMAT rows' recipe): this test checks the sweeps and their tables, not the science.
    run = ["--storage-path", str(tmp_path / "ray"), "--tracking-uri", uri, "--set", "train_n=512", "--set", "final_n=64"]
    biamat_main_results.main(run)
    printed = capsys.readouterr().out
    assert "Table 2. Accuracy (%) on synthetic" in printed
    assert "sweeps/baselines.py --preset biamat-main-smoke --seeds 1" in printed  # the baseline's command, printed
    baselines.main([*run, "--preset", "biamat-main-smoke"])
    assert "table2 --sweep biamat-main-smoke --baseline-sweep baselines-biamat-main-smoke" in capsys.readouterr().out

    main = load_sweep("biamat-main-smoke", tracking_uri=uri).runs
    assert len(main) == 4 and set(zip(main["params.variant"], main["params.aux_datasets"], main["params.alpha"],
                                      main["params.pi"])) == {
        ("at", "synthetic_aux", 1.0, 0.55), ("at", "synthetic_aux_unrelated", 1.0, 0.55),
        ("trades", "synthetic_aux", 0.5, 0.5), ("trades", "synthetic_aux_unrelated", 0.5, 0.5)}
    table = analysis("table2", "--sweep", "biamat-main-smoke", "--baseline-sweep", "baselines-biamat-main-smoke",
                     "--tracking-uri", uri, "--format", "csv")
    rows = list(csv.reader(io.StringIO(table)))
    assert [row[1:3] for row in rows[1:]] == [
        ["AT", "-"], ["AT+BiaMAT", "synthetic_aux"], ["", "synthetic_aux_unrelated"],
        ["TRADES", "-"], ["TRADES+BiaMAT", "synthetic_aux"], ["", "synthetic_aux_unrelated"]]
    assert rows[0][3:] == ["Clean", "PGD-20"] and all(cell != "-" for row in rows[1:] for cell in row[3:])

    biamat_oat.main(run)
    assert "Table 9. Results on synthetic when synthetic_aux-1k is auxiliary" in capsys.readouterr().out
    oat = load_sweep("biamat-oat-smoke", tracking_uri=uri).runs
    assert dict(zip(oat["params.labels"], oat["params.warmup_epochs"])) == {"uniform": 0, "gated": 1}
    table9 = analysis("table9", "--sweep", "biamat-oat-smoke", "--tracking-uri", uri)
    assert "| OAT |" in table9 and "| BiaMAT |" in table9

    # Table 6's robust datasets from this test's AT and AT+BiaMAT (synthetic_aux) runs.
    at = load_sweep("baselines-biamat-main-smoke", tracking_uri=uri).runs
    biamat = main[(main["params.variant"] == "at") & (main["params.aux_datasets"] == "synthetic_aux")]
    check_table6_from({"at": at.loc[at["params.training"] == "pgd_at", "run_id"].iloc[0],
                       "biamat": biamat["run_id"].iloc[0]}, run, uri, tmp_path / "data", capsys)


def test_the_pseudo_labelled_files_name_the_papers_rows_in_its_order():
    """Tables 3 and 7 name Carmon et al.'s rows from the files the semi-supervised script writes: ImageNet-500k is
    the top 50,000 images of each CIFAR-10 class and the top 5,000 of each CIFAR-100 class."""
    paper = {"cifar10": ["CIFAR-100", "Places365", "ImageNet", "ImageNet-500k", "ImageNet-250k", "ImageNet-100k"],
             "cifar100": ["Places365", "ImageNet", "ImageNet-500k", "ImageNet-250k", "ImageNet-100k"]}
    for primary, classes in (("cifar10", 10), ("cifar100", 100)):
        files = [f"npz:/d/{biamat_semi_supervised.file_name(aux, k, classes)}"
                 for aux, k in biamat_semi_supervised.ROWS[primary]]
        assert [pseudo_labelled_row(f)[0] for f in files] == paper[primary]
        shuffled = random.Random(0).sample(files, len(files))
        assert sorted(shuffled, key=lambda f: pseudo_labelled_row(f)[1]) == files
    assert biamat_semi_supervised.file_name("synthetic_aux", 50, 10) == "synthetic_aux-500.npz"


def test_fine_tuning_runs_the_rest_of_the_pre_trainings_schedule():
    """Appendix E's example: the best pre-training checkpoint at the 65th of AT's 100 epochs (decays at 60% and 90%)
    gives a fine-tuning that starts at 0.01 and decays to 0.001 after 25 epochs; every best epoch gives a schedule
    whose LR at each fine-tuning epoch is the global schedule's at the same global epoch."""
    schedule = biamat_pretraining.fine_tuning_schedule
    recipe = biamat_pretraining.PRESETS["paper"]
    assert schedule(recipe, 64) == {"lr": 0.01, "epochs": 35, "lr_milestones": [26], "eval_from": "first_decay"}

    def global_lr(epoch: int) -> float:  # 0-based epoch of the 100-epoch AT schedule
        return 0.1 * 0.1 ** ((epoch >= 60) + (epoch >= 90))

    for best in range(89):
        tuned = schedule(recipe, best)
        assert tuned["epochs"] == 100 - (best + 1)
        for e in range(tuned["epochs"]):
            lr = tuned["lr"] * 0.1 ** sum(e >= m - 1 for m in tuned["lr_milestones"])
            assert lr == pytest.approx(global_lr(best + 1 + e)), (best, e)
    # A best checkpoint in the last LR phase leaves it whole: 10 epochs at 0.001, selected every epoch.
    assert schedule(recipe, 99) == schedule(recipe, 89) == {"lr": 0.001, "epochs": 10, "lr_milestones": [],
                                                              "eval_from": 1}


@pytest.mark.slow
def test_the_smoke_sweeps_give_table10_with_and_without_generated_data(ray_local, tmp_path, capsys):
    """Both sweeps of the Table 10 script run, the generated images reach the trials that should have them (70% of
    each batch), and the table has its three rows, each with its accuracies."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = ["--storage-path", str(tmp_path / "ray"), "--tracking-uri", uri, "--set", "train_n=512", "--set", "final_n=64",
           "--set", "epochs=2"]  # one warm-up epoch, one gated
    biamat_generated_data.main(run)
    printed = capsys.readouterr().out
    assert "Table 10. Performance improvements on synthetic (tiny-cnn)" in printed
    runs = load_sweep("biamat-generated-data-smoke", tracking_uri=uri).runs
    assert sorted(zip(runs["params.extra_data"].fillna(""), runs["params.original_fraction"])) == [
        ("", 1.0), ("synthetic", 0.3)]
    alone = load_sweep("biamat-generated-data-smoke-generated", tracking_uri=uri).runs
    assert list(zip(alone["tags.method"], alone["params.training"], alone["params.extra_data"])) == [
        ("baseline", "trades", "synthetic")]
    table = analysis("table10", "--sweep", "biamat-generated-data-smoke", "--generated-sweep",
                     "biamat-generated-data-smoke-generated", "--tracking-uri", uri, "--format", "csv")
    rows = list(csv.reader(io.StringIO(table)))
    assert [row[0] for row in rows[1:]] == ["BiaMAT", "[16]", "BiaMAT+[16]"]
    assert rows[0][1:] == ["Clean", "PGD-20"] and all(cell != "-" for row in rows[1:] for cell in row[1:])

    # Tables 3 and 7 on the same store: Carmon et al.'s rows from the semi-supervised script (a labeller, then TRADES
    # on each pseudo-labelled set, one epoch each), Gowal et al.'s and TRADES+BiaMAT's from the Table 10 sweeps.
    biamat_semi_supervised.main([*run[:-2], "--set", "epochs=1", "--data-root", str(tmp_path / "data")])
    assert "Table 7. Comparison (accuracy %) of BiaMAT with the semi-supervised [4]" in capsys.readouterr().out
    rst = load_sweep("biamat-semi-supervised-smoke", tracking_uri=uri).runs
    assert set(rst["params.mixed_epoch"]) == {"original_pass"} and set(rst["params.original_fraction"]) == {0.5}
    assert set(rst["params.train_n"]) == {512}  # --set reaches the sweep built after the labeller has run
    for extra in rst["params.extra_data"]:  # each file pseudo-labelled by the labeller: labels are primary classes
        arrays = np.load(extra.removeprefix("npz:"))
        assert set(arrays) >= {"image", "label", "aux_label", "confidence"} and arrays["label"].max() < 10
    sources = ["--sweep", "biamat-semi-supervised-smoke", "--biamat-sweep", "biamat-generated-data-smoke",
               "--generated-sweep", "biamat-generated-data-smoke-generated", "--tracking-uri", uri, "--format", "csv"]
    rows = list(csv.reader(io.StringIO(analysis("table7", *sources))))
    assert rows[0] == ["Primary dataset", "Method", "Auxiliary dataset", "Clean", "PGD-20"]
    assert [row[1:3] for row in rows[1:]] == [
        ["Carmon et al. [4]", "synthetic_aux"], ["", "synthetic_aux-500"], ["", "synthetic_aux_unrelated"],
        ["Gowal et al. [16]", "Generated data"], ["TRADES+BiaMAT (ours)", "synthetic_aux"]]
    assert all(cell != "-" for row in rows[1:] for cell in row[3:])

    # Hendrycks et al.'s rows (Tables 3, 7) and Table 8: pre-training on each auxiliary set, then fine-tuning.
    biamat_pretraining.main([*run[:-2], "--set", "epochs=2"])
    assert "Table 8. Fine-tuning an adversarially pre-trained network" in capsys.readouterr().out
    pretraining = load_sweep("biamat-pretraining-smoke-pretraining", tracking_uri=uri).runs
    tuned = pd.concat([load_sweep(f"biamat-pretraining-smoke{s}", tracking_uri=uri).runs for s in ("", "-trades")])
    assert sorted(tuned["params.init_from"]) == sorted([*pretraining["run_id"], *pretraining.loc[
        pretraining["params.dataset"] == "synthetic_aux", "run_id"]])  # AT from both, TRADES from synthetic_aux
    assert set(tuned["params.train_n"]) == {512} and set(tuned["params.epochs"]) == {1}  # --set; 2 - best (1)
    assert set(tuned["tags.init_from_left_fresh"]) == {"none"}  # synthetic_aux has the primary set's 10 classes
    rows = list(csv.reader(io.StringIO(analysis(
        "table8", "--sweep", "biamat-pretraining-smoke", "--sweep", "biamat-pretraining-smoke-trades",
        "--pretraining-sweep", "biamat-pretraining-smoke-pretraining", "--tracking-uri", uri, "--format", "csv"))))
    assert [row[1:3] for row in rows[1:]] == [["synthetic_aux", "AT"], ["synthetic_aux", "TRADES"],
                                              ["synthetic_aux_unrelated", "AT"]]
    hendrycks = ["--fine-tuning-sweep", "biamat-pretraining-smoke", "--pretraining-sweep",
                 "biamat-pretraining-smoke-pretraining"]
    rows = list(csv.reader(io.StringIO(analysis("table7", *sources, *hendrycks))))
    assert [row[1:3] for row in rows[1:3]] == [["Hendrycks et al. [17]", "synthetic_aux"],
                                               ["", "synthetic_aux_unrelated"]]
    assert "Table 3." in analysis("table3", *sources[:-2], *hendrycks)


@pytest.mark.slow
def test_the_smoke_sweep_gives_table5_per_batch_size_and_parts(ray_local, tmp_path, capsys):
    """Every part combination trains at every batch size on the parts it names, and the table has the paper's rows:
    per batch size, cifar-A, + B, + C, + both, each with its test error. (256 images of each combination and 64 test
    points: this test checks the sweep and its table; tests/test_datasets.py checks the parts themselves.)"""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    biamat_data_density.main(["--storage-path", str(tmp_path / "ray"), "--tracking-uri", uri, "--set", "train_n=256",
                              "--set", "final_n=64", "--set", "eval_n=32"])
    assert "Table 5. Effectiveness of data augmentation" in capsys.readouterr().out
    runs = load_sweep("biamat-data-density-smoke", tracking_uri=uri).runs
    assert sorted(zip(runs["params.batch_size"].astype(int), runs["params.dataset"])) == sorted(
        (b, f"synthetic:{p}") for b in (64, 128) for p in ("A", "A+B", "A+C", "A+B+C"))
    table = analysis("table5", "--sweep", "biamat-data-density-smoke", "--tracking-uri", uri, "--format", "csv")
    rows = list(csv.reader(io.StringIO(table)))
    assert rows[0] == ["Batch size", "Dataset", "Test error"]
    assert [row[:2] for row in rows[1:5]] == [["64", "cifar-A"], ["", "cifar-A + cifar-B"], ["", "cifar-A + cifar-C"],
                                            ["", "cifar-A + cifar-B + cifar-C"]]
    assert len(rows) == 9 and all(0 <= float(row[2].strip("*")) <= 100 for row in rows[1:])
