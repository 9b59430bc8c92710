"""AFS Table 5 (Liu & Zhao, Sec. 3.4): the ``paper-cifar100`` presets of both stages, their dry runs on CIFAR-100 files
in the published format, the merger finding the CIFAR-100 extractor sweep (and refusing CIFAR-10 extractors before
Ray starts), and ``tradeoff`` titled Table 5 on CIFAR-100 runs."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import ray
from mlflow.tracking import MlflowClient

from analysis.afs.tables import tradeoff
from launch.space import grid_points
from runstore.reader import SweepRuns
from sweeps import afs_extractors, afs_merger
from trainables.methods.configs import EXTRACTOR_EXPERIMENT
from trainables.tracking import TrialRun

CIFAR100 = "paper-cifar100"


@pytest.fixture
def empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory and no environment pointing the run settings elsewhere (as tests/test_dry_run.py)."""
    for name in ("RAY_ADDRESS", "ADVSWEEP_STORAGE", "MLFLOW_TRACKING_URI", "ADVSWEEP_DATA", "ADVSWEEP_OPTUNA_STORAGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_cifar100(root: Path, test_labels: list[int]) -> None:
    """Tiny ``cifar-100-python/train`` and ``test`` pickles in the published format (``data`` uint8 rows of 3072,
    ``fine_labels`` and ``coarse_labels``)."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for split, labels in (("train", [99, 0, 42]), ("test", test_labels)):
        rows = np.zeros((len(labels), 3072), dtype=np.uint8)
        (folder / split).write_bytes(pickle.dumps({"data": rows, "fine_labels": labels,
                                                   "coarse_labels": [0] * len(labels)}))


def test_the_cifar100_presets_are_the_paper_recipe_on_cifar100() -> None:
    """Sec. 3: "The training setting of CIFAR-10 is the same as CIFAR-100": only the data (and, in stage 2, the
    extractor sweep it stacks) differ."""
    def trials(space: dict) -> list[dict]:
        return list(grid_points(space))

    paper, cifar100 = trials(afs_extractors.search_space("paper", 1)), trials(afs_extractors.search_space(CIFAR100, 1))
    assert len(paper) == 10 and cifar100 == [p | {"dataset": "cifar100"} for p in paper]
    assert {p["dataset"] for p in paper} == {"cifar10"}
    for table in ("table2", "table3", "default", "search"):
        paper = trials(afs_merger.search_space(table, "paper", "afs-extractors-paper", "000111111", 1))
        cifar100 = trials(afs_merger.search_space(table, CIFAR100, "afs-extractors-paper-cifar100", "000111111", 1))
        assert cifar100 == [p | {"dataset": "cifar100", "extractor_sweep": "afs-extractors-paper-cifar100"}
                            for p in paper]


def test_dry_runs_check_the_cifar100_files_and_name_the_cifar100_sweeps(empty_cwd: Path, capsys) -> None:
    write_cifar100(empty_cwd / "data", test_labels=[5, 6])
    afs_extractors.main(["--preset", CIFAR100, "--dry-run"])
    out = capsys.readouterr().out
    assert "sweep 'afs-extractors-paper-cifar100'" in out and "trials: 10" in out and "dataset=cifar100" in out
    assert "a run would stop here" not in out and "GPU estimate: about" in out  # the files were found, and checked
    afs_merger.main(["default", "--preset", CIFAR100, "--dry-run"])
    out = capsys.readouterr().out
    assert "note: no extractor sweep 'afs-extractors-paper-cifar100' yet" in out
    assert "sweep 'afs-default-paper-cifar100'" in out and "trials: 1" in out and "mask=000111111" in out
    assert "extractor_sweep=afs-extractors-paper-cifar100" in out and "a run would stop here" not in out
    assert sorted(p.name for p in empty_cwd.iterdir()) == ["data"] and not ray.is_initialized()

    # The dry run reads the files: a label outside CIFAR-100's 100 classes stops it, naming the file.
    (empty_cwd / "data" / "cifar-100-python" / "test").unlink()
    (empty_cwd / "data" / "cifar-100-python" / "train").unlink()
    write_cifar100(empty_cwd / "data2", test_labels=[5, 100])
    with pytest.raises(SystemExit, match=r"error: cifar100 \(test\): .*data2/cifar-100-python/test"):
        afs_merger.main(["default", "--preset", CIFAR100, "--dry-run", "--data-root", "data2"])


def register_extractors(uri: str, sweep: str, preset: str, dataset: str) -> None:
    """A finished extractor sweep (WRN-28-10, eps 0..9/255) as stage 2 looks it up: params only, no weights."""
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXTRACTOR_EXPERIMENT)
    exp_id = experiment.experiment_id if experiment else client.create_experiment(EXTRACTOR_EXPERIMENT)
    parent = client.create_run(exp_id, tags={"sweep": sweep, "preset": preset}).info.run_id
    for i in range(10):
        run = TrialRun.open(uri, EXTRACTOR_EXPERIMENT, run_name=f"eps={i}", tags={},
                            params={"eps": i / 255, "model": "wrn-28-10", "dataset": dataset},
                            trial_id=f"{sweep}-{i}", parent_run_id=parent)
        run.finish("FINISHED")


def test_a_cifar100_merger_stacks_the_cifar100_extractors_and_refuses_cifar10_ones(empty_cwd: Path, capsys) -> None:
    uri = f"sqlite:///{empty_cwd / 'mlflow.db'}"
    register_extractors(uri, "afs-extractors-paper", "paper", "cifar10")
    register_extractors(uri, "afs-extractors-paper-cifar100", CIFAR100, "cifar100")
    flags = ["--tracking-uri", uri, "--storage-path", str(empty_cwd / "ray")]
    with pytest.raises(SystemExit) as info:
        afs_merger.main(["default", "--preset", CIFAR100, "--extractor-sweep", "afs-extractors-paper", *flags])
    assert str(info.value) == (
        "error: extractor eps 3/255 of sweep 'afs-extractors-paper' is a wrn-28-10 on cifar10, and these mergers "
        "train a wrn-28-10 on cifar100: pass --extractor-sweep NAME of extractors trained so (afs_extractors.py "
        "--preset P names its sweep afs-extractors-P), or the matching --preset")
    with pytest.raises(SystemExit, match="eps 0/255 .* on cifar100, and these mergers train a wrn-28-10 on cifar10"):
        afs_merger.main(["table3", "--preset", "paper", "--extractor-sweep", "afs-extractors-paper-cifar100", *flags])
    assert not (empty_cwd / "ray").exists() and not ray.is_initialized()

    capsys.readouterr()
    afs_merger.main(["default", "--preset", CIFAR100, "--dry-run", *flags])  # the default name: CIFAR-100's sweep
    out = capsys.readouterr().out
    assert "stacking the extractors of sweep 'afs-extractors-paper-cifar100': 000111111" in out
    assert "refuse" not in out and "mixes" not in out  # only the missing CIFAR-100 files are noted
    # --set dataset=... is what the trials would train on, so it is what the extractors are held to.
    afs_merger.main(["default", "--preset", CIFAR100, "--extractor-sweep", "afs-extractors-paper", "--set",
                     "dataset=cifar10", "--dry-run", *flags])
    assert "trials: 1" in capsys.readouterr().out


def sweep_of(rows: list[dict]) -> SweepRuns:
    return SweepRuns("s", "parent", "exp", pd.DataFrame(rows), {}, client=None)


def afs_runs(extractor_data: str, merger_data: str | None = None) -> tuple[SweepRuns, SweepRuns]:
    """Extractors eps 0..9 whose clean accuracy falls and robust accuracy rises with eps, and the default merger."""
    def scores(clean: float, pgd20: float, aa: float) -> dict:
        return {"metrics.best/clean": clean, "metrics.best/pgd20": pgd20, "metrics.best/autoattack": aa}

    extractors = [{"tags.method": "afs_extractor", "params.eps": str(i / 255), "params.dataset": extractor_data,
                   **scores(0.75 - 0.02 * i, 0.03 * i, 0.028 * i)} for i in range(10)]
    merger = {"tags.method": "afs", "params.mask": "000111111", "params.alpha": 0.5,
              "params.dataset": merger_data or extractor_data, **scores(0.7054, 0.2903, 0.2736)}
    return sweep_of([merger]), sweep_of(extractors)


def test_tradeoff_is_table_5_on_cifar100_runs() -> None:
    table = tradeoff(*afs_runs("cifar100"))
    assert table.title == "Table 5. Trade-off on CIFAR-100 (mean of clean and AutoAttack accuracy, %)"
    assert table.header == ["model", "Clean", "PGD-20", "AutoAttack", "Trade-off"]
    afs = next(row for row in table.rows if row[0] == "AFS 000111111 alpha=0.5")
    assert [cell.text() for cell in afs[1:]] == ["70.54", "29.03", "27.36", "48.95"]  # the paper's AFS row
    pgd_at = next(row for row in table.rows if row[0] == "single eps=8/255")
    assert [cell.text() for cell in pgd_at[1:]] == ["59.00", "24.00", "22.40", "40.70"]
    assert any(note.startswith("PGD-AT: single eps=8/255") for note in table.notes)
    assert tradeoff(*afs_runs("cifar10")).title.startswith("Table 4. Trade-off on CIFAR-10 (")
    smoke = tradeoff(*afs_runs("synthetic_absent"))
    assert smoke.title.startswith("Trade-off on synthetic_absent (") and not any("PGD-AT" in n for n in smoke.notes)
    with pytest.raises(ValueError, match=r"different datasets \(cifar10, cifar100\): pass the extractor sweep"):
        tradeoff(*afs_runs("cifar10", merger_data="cifar100"))


def test_tradeoff_without_autoattack_shows_pgd20_once() -> None:
    merger, extractors = (sweep_of(sweep.runs.drop(columns="metrics.best/autoattack").to_dict("records"))
                          for sweep in afs_runs("cifar100"))
    table = tradeoff(merger, extractors)
    assert table.header == ["model", "Clean", "PGD-20", "Trade-off"]
    assert "no AutoAttack in these runs: the trade-off uses PGD-20" in table.notes
