"""The benchmark scripts run end to end on tiny CPU shapes, so they keep working; no timing is asserted here."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(name: str) -> ModuleType:
    # benchmarks/ is a folder of scripts, not an installed package: import the file itself. Registering it in
    # sys.modules first lets dataclasses resolve the module's postponed annotations.
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_runtime_overhead_runs_and_prints_the_ratio(tmp_path, capsys):
    script = load_script("runtime_overhead")
    csv_path, md_path = tmp_path / "out.csv", tmp_path / "out.md"
    result = script.main([
        "--device", "cpu", "--model", "tiny-cnn", "--images", "64", "--batch-size", "32", "--eval-n", "16",
        "--repeats", "2", "--csv", str(csv_path), "--markdown", str(md_path),
    ])
    out = capsys.readouterr().out

    assert len(result.runtime_s) == len(result.hand_s) == 2
    assert all(t > 0 for t in result.runtime_s + result.hand_s)
    assert result.images == 64 and result.ratio > 0 and result.end_epoch_s > 0 and result.checkpoint_s > 0
    # Same weights, batches and random starts in the warm-up epoch: both loops compute the same training losses,
    # which is what makes the timing comparison fair.
    assert result.warmup_loss_runtime == pytest.approx(result.warmup_loss_hand, rel=1e-4)
    assert "ratio runtime/hand-written" in out and "torch" in out and "per-epoch bookkeeping" in out

    rows = list(csv.DictReader(csv_path.open()))
    assert [row["loop"] for row in rows] == ["runtime", "hand-written"]
    assert all(float(row["median_s"]) > 0 and float(row["images_per_s"]) > 0 for row in rows)
    assert md_path.read_text().count("\n") == 4  # header, rule, two rows


def test_runtime_overhead_rejects_an_epoch_smaller_than_a_batch():
    script = load_script("runtime_overhead")
    with pytest.raises(SystemExit):
        script.parse_args(["--device", "cpu", "--images", "16", "--batch-size", "32"])
