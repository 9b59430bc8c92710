"""End to end (slow): the BiaMAT Table 1 / Fig. 3 sweep and the Table 4 sweep (two auxiliary sets at once) on the
smoke preset, their same-recipe baseline, and the documented analysis commands on them: Table 1 with the baseline
column, Fig. 3 with one line per auxiliary set, and Table 4 with the baseline row and the pair of sets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from analysis.biamat_tables import main as biamat_tables
from runstore.reader import load_sweep
from sweeps import baselines, biamat_aux_sets, biamat_labels

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_labels_sweep_gives_table1_with_its_baseline_and_fig3_per_auxiliary_set(ray_local, tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # A quarter of the smoke preset's training images and half its final test points in all three sweeps (so the
    # baseline still matches): this test checks the sweeps, their tables and the figure, not the science
    # (tests/test_science.py, tests/test_pi_gate.py do).
    run = ["--storage-path", str(tmp_path / "ray"), "--tracking-uri", uri, "--concurrency", "2", "--set", "train_n=512",
           "--set", "final_n=64"]
    biamat_labels.main(run)
    baselines.main([*run, "--preset", "biamat-smoke"])
    capsys.readouterr()

    labels = load_sweep("biamat-labels-smoke", tracking_uri=uri)
    assert len(labels.runs) == 6  # {aux, uniform, gated} x {synthetic_aux, synthetic_aux_unrelated}
    warmups = dict(zip(labels.runs["params.labels"], labels.runs["params.warmup_epochs"]))
    assert warmups == {"aux": 0, "uniform": 0, "gated": 1}

    # The documented commands, as a user types them (analysis reads MLflow only).
    table = subprocess.run(
        [sys.executable, "analysis/biamat_tables.py", "table1", "--sweep", "biamat-labels-smoke", "--baseline-sweep",
         "baselines-biamat-smoke", "--tracking-uri", uri], cwd=ROOT, capture_output=True, text=True, check=False)
    assert table.returncode == 0, table.stderr
    assert "| ỹ |" in table.stdout and "| y^ER |" in table.stdout and "Baseline (AT)" in table.stdout
    assert "checkpoint selection: PGD-3 on 64 random test points, every 1 epoch(s) from epoch 1" in table.stdout
    rows = [line for line in table.stdout.splitlines() if line.startswith("| ỹ |")]
    assert rows and rows[0].rstrip(" |").split("|")[-1].strip()  # the baseline cell is filled

    out = tmp_path / "fig3.png"
    biamat_tables(["fig3", "--sweep", "biamat-labels-smoke", "--tracking-uri", uri, "--out", str(out)])
    printed = capsys.readouterr().out
    assert "(2 lines in 1 panel(s);" in printed and out.stat().st_size > 10_000

    # Table 4 on the same baseline: each auxiliary set alone, then both at once in one run.
    biamat_aux_sets.main(run)
    printed = capsys.readouterr().out
    assert "Table 4. AT+BiaMAT on synthetic" in printed
    table4 = subprocess.run(
        [sys.executable, "analysis/biamat_tables.py", "table4", "--sweep", "biamat-aux-sets-smoke", "--baseline-sweep",
         "baselines-biamat-smoke", "--tracking-uri", uri], cwd=ROOT, capture_output=True, text=True, check=False)
    assert table4.returncode == 0, table4.stderr
    print(table4.stdout)
    rows = [line for line in table4.stdout.splitlines() if line.startswith("| ")][1:]  # below the header
    assert [row.split("|")[2].strip() for row in rows] == [
        "-", "synthetic_aux", "synthetic_aux_unrelated", "synthetic_aux, synthetic_aux_unrelated"]
    assert all(row.split("|")[3].strip() not in ("", "-") for row in rows)  # every row has its clean accuracy
