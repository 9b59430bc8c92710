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
    # sys.modules first lets dataclasses resolve the module's postponed annotations; the folder goes on sys.path, as
    # it is for `python benchmarks/NAME.py`, for the scripts that import a sibling.
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
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


def test_throughput_table_on_cpu_shapes(tmp_path, capsys):
    script = load_script("throughput")
    csv_path, md_path = tmp_path / "out.csv", tmp_path / "out.md"
    rows = script.main(["--device", "cpu", "--small", "--methods", "pgd_at,at_biamat", "--paths", "fp32,bf16",
                        "--repeats", "1", "--csv", str(csv_path), "--markdown", str(md_path)])
    out = capsys.readouterr().out

    assert [(r.method, r.path) for r in rows] == [
        ("pgd_at", "fp32"), ("pgd_at", "bf16"), ("at_biamat", "fp32"), ("at_biamat", "bf16")]
    assert all(r.images_per_s > 0 and r.tflops > 0 and r.min_per_epoch > 0 for r in rows)
    assert [r.speedup for r in rows if r.path == "fp32"] == [1.0, 1.0]
    assert "paper min/epoch" in out and md_path.read_text().count("\n") == 6
    assert len(list(csv.DictReader(csv_path.open()))) == 4


def test_throughput_counts_pgd10_at_as_23_forward_passes():
    """PGD-10 AT per image: 10 attack steps of forward + input gradient (2 forward costs each, no weight gradients)
    and one update of forward + full backward (3 forward costs): 23 forward passes' FLOPs."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    script = load_script("throughput")
    args = script.parse_args(["--device", "cpu", "--small"])
    trial = script.build_trial("pgd_at", "tiny-cnn", "fp32", args)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        trial.method.model(torch.rand(args.batch_size, 3, 32, 32))
    assert script.step_flops(trial) == pytest.approx(23 * counter.get_total_flops(), rel=0.02)


def test_each_throughput_benchmark_is_timed_under_its_methods_speed_name():
    """launch/cost.py reads a measurement by benchmark name: each must be the name its config's registered method
    gives such trials, or a dry run would never use the measurement."""
    from trainables.methods.registry import method_of_config

    script = load_script("throughput")
    args = script.parse_args(["--device", "cpu", "--small"])
    for name in script.METHODS:
        cfg = script.trial_config(name, "tiny-cnn", "fp32", args)
        assert method_of_config(cfg).speed_name(cfg) == name


@pytest.mark.slow
@pytest.mark.serial
def test_throughput_packing_sums_concurrent_processes(capsys):
    script = load_script("throughput")
    rows = script.main(["--device", "cpu", "--small", "--methods", "pgd_at", "--paths", "fp32", "--repeats", "1",
                        "--packing", "1,2", "--threads", "1"])
    assert [r.processes for r in rows[-2:]] == [1, 2]
    assert all(r.images_per_s > 0 for r in rows[-2:])


def test_trial_gap_pairs_each_start_with_the_end_that_freed_its_worker():
    script = load_script("trial_gap")
    # Two at a time: trials 0 and 1 start at once; 2 starts 0.5 s after 0 ends, 3 0.25 s after 1 ends.
    starts, ends = [0.0, 0.0, 10.5, 12.25], [10.0, 12.0, 20.0, 21.0]
    assert script.paired_gaps(starts, ends, concurrent=2) == [0.5, 0.25]
    assert script.paired_gaps(starts[::-1], ends[::-1], concurrent=2) == [0.5, 0.25]  # order-free
