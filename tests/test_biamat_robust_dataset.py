"""BiaMAT appendix Table 6 end to end (sweeps/biamat_robust_dataset.py): robust datasets built in chunks by Ray tasks
from two trained runs, networks trained normally on them, and the table. It runs inside the Table 2 slow test
(tests/test_biamat_main_results.py), on that test's AT and AT+BiaMAT runs; the construction's properties are in
tests/test_robust_dataset.py, the plan of the source sweeps (the command without --sources) in tests/test_dry_run.py."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import numpy as np
import pytest

from analysis import biamat_tables
from runstore.reader import load_sweep
from sweeps import biamat_robust_dataset
from trainables.robust_dataset import Construction


def check_table6_from(sources: dict[str, str], run: list[str], uri: str, data: Path, capsys) -> None:
    """``sources``: role (at, biamat) -> run id of a finished smoke run in the store at ``uri``; ``run``: the flags
    of the test's sweeps."""
    common = [*run, "--data-root", str(data), "--name", "table6", "--set", "epochs=1"]
    # Each source in its place, checked before anything starts.
    with pytest.raises(SystemExit, match="is not a PGD-AT run"):
        biamat_robust_dataset.main([*common, "--sources", sources["biamat"], sources["at"]])
    biamat_robust_dataset.main([*common, "--sources", sources["at"], sources["biamat"]])
    out = capsys.readouterr().out
    assert "building 4 chunks" in out and "Table 6. Accuracy (%) of the models (tiny-cnn)" in out
    # The file names hold the settings (smoke: 20 steps from the first 512 images), so no other preset reuses them.
    settings = Construction(data, "x", **biamat_robust_dataset.CONSTRUCTION["smoke"]).settings
    assert settings == "steps20-size0.1-seed0-512-chunk256"
    files = {role: data / "robust-datasets" / f"{role}-{run_id}-{settings}.npz" for role, run_id in sources.items()}
    runs = load_sweep("table6", tracking_uri=uri).runs
    assert sorted(runs["params.dataset"]) == sorted(f"npz:{f}" for f in files.values())
    assert set(runs["params.test_data"]) == {"synthetic"} and set(runs["params.training"]) == {"standard"}
    biamat_tables.main(["table6", "--sweep", "table6", "--tracking-uri", uri, "--format", "csv"])
    table = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert table[0] == ["Source model", "Clean", "FGSM"] and [row[0] for row in table[1:3]] == ["AT", "AT+BiaMAT"]
    assert all(0 <= float(cell.strip("*")) <= 100 for row in table[1:3] for cell in row[1:])
    with np.load(files["at"]) as at, np.load(files["biamat"]) as biamat:
        # The same start images and labels for both sources; the images differ, since the models do.
        assert np.array_equal(at["start_index"], biamat["start_index"])
        assert np.array_equal(at["label"], biamat["label"]) and not np.array_equal(at["image"], biamat["image"])
        built = at["image"].copy()

    # A construction stopped midway goes on with the chunks it lacks and gives the same dataset.
    chunks = sorted(files["at"].with_name(f"{files['at'].stem}-chunks").glob("chunk-*.npz"))
    assert len(chunks) == 2
    kept = chunks[0].stat().st_mtime_ns
    files["at"].unlink()
    chunks[1].unlink()
    args = argparse.Namespace(tracking_uri=uri, data_root=str(data), address=None, gpus_per_trial=None,
                              cpus_per_trial=1.0)
    biamat_robust_dataset.build_robust_datasets(args, sources, "smoke")
    printed = capsys.readouterr().out
    assert "building 1 chunks" in printed and "[1/1, " in printed and chunks[0].stat().st_mtime_ns == kept
    with np.load(files["at"]) as again:
        assert np.array_equal(again["image"], built)
