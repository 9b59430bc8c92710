"""End to end (slow): the BiaMAT Table 1 / Fig. 3 sweep on the smoke preset, its same-recipe baseline, and the
documented analysis commands on them: Table 1 with the baseline column, and Fig. 3 with one line per auxiliary set."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from analysis.biamat_tables import main as biamat_tables
from analysis.runs import load_sweep
from sweeps import baselines, biamat_labels

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_labels_sweep_gives_table1_with_its_baseline_and_fig3_per_auxiliary_set(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = ["--storage-path", str(tmp_path / "ray"), "--tracking-uri", uri, "--concurrency", "2"]
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
    assert "checkpoint selection: PGD-3 on the first 64 test points, every 1 epoch(s) from epoch 1" in table.stdout
    rows = [line for line in table.stdout.splitlines() if line.startswith("| ỹ |")]
    assert rows and rows[0].rstrip(" |").split("|")[-1].strip()  # the baseline cell is filled

    out = tmp_path / "fig3.png"
    biamat_tables(["fig3", "--sweep", "biamat-labels-smoke", "--tracking-uri", uri, "--out", str(out)])
    printed = capsys.readouterr().out
    assert "(2 lines;" in printed and out.stat().st_size > 10_000
