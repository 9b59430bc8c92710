"""Adversarial-training throughput per method and model: fp32 eager against the fast paths, next to the papers.

Commands::

    python benchmarks/throughput.py                                   # GPU: every method on the three paper models
    python benchmarks/throughput.py --methods pgd_at --models wrn-28-10 --profile    # where the time goes
    python benchmarks/throughput.py --methods pgd_at --models resnet18 --packing 1,2,4   # trials sharing one GPU
    python benchmarks/throughput.py --device cpu --small               # the same code on tiny shapes (the tests)

For each method x model x path it builds the trial exactly as ``run_trial`` does (the method's config, the synthetic
data in CIFAR-10 shapes, ``Trial``) and times whole epochs of ``Trial.train_epoch``: PGD-10 (eps 8/255, step 2/255)
training, batch 128, everything on the device. One untimed epoch first (it also absorbs torch.compile's compilation),
then ``--repeats`` timed epochs, ``torch.cuda.synchronize()`` around each; the median is reported. Columns:

- images/s, and minutes per CIFAR-10 epoch (50,000 images) at that rate;
- TFLOP/s achieved: the FLOPs of one training step (attack, forward, backward, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` on the eager model) times steps per second, and its share of the
  device's dense bf16 peak (a fixed table below; blank where the device is not in it);
- the speed-up of each path over fp32 eager measured in the same run;
- the papers' minutes per epoch for the same method and model (UIAT Table 2: one A100, batch 128; BiaMAT appendix
  Table 11: hours per 100/110-epoch run on one V100, divided out).

``--packing 1,2,4`` starts that many copies of one measurement in separate processes on the same device, starting
together, and reports their summed images/s: whether small models fill a GPU with one trial, or need several
(``--gpus-per-trial 0.5`` in the sweeps).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

import torch
from runtime_overhead import device_name, timed  # the sibling script (benchmarks/ is on sys.path when run)
from torch.utils.flop_counter import FlopCounterMode

from launch.cost import PAPER_SPEEDS
from trainables.config import RunSettings, TrainConfig
from trainables.methods.afs import Merger
from trainables.methods.afs_masks import DEFAULT_MASK, mask_indices
from trainables.methods.registry import method as registered
from trainables.models import Classifier, create_model
from trainables.runtime import Method, Trial, TrialData
from trainables.training import seed_everything

CIFAR10_TRAIN = 50_000

class RandomExtractorMerger(Merger):
    """The AFS merger over freshly initialised extractors: the same passes as over trained ones, without MLflow."""

    def load_extractors(self) -> dict[int, Classifier]:
        classes = self.data.train.num_classes
        return {i: create_model(self.cfg.model, classes).to(self.device) for i in mask_indices(self.cfg.mask)}


# Benchmark name (the method's speed name, under which launch/cost.py reads a measurement) -> (the registered method,
# config values beyond the shared PGD-10 set-up).
METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "pgd_at": ("baseline", {"training": "pgd_at"}),
    "trades": ("baseline", {"training": "trades", "attack_start": "normal", "attack_step": 0.007, "eps": 0.031}),
    # No warm-up: the gate and both heads are active from the first step, as in most of a BiaMAT run.
    "at_biamat": ("biamat", {"variant": "at", "aux_datasets": ["synthetic_aux"], "warmup_epochs": 0,
                             "attack_bn": "batch"}),
    # Momentum from the first timed epoch: every step does the attack, the z_c update and the target update.
    "uiat": ("uiat", {"momentum_start": 1}),
    # The paper's default stack of six extractors (eps 3..8 /255), half of each batch attacked (alpha 0.5).
    "afs_merger": ("afs", {"extractor_sweep": "benchmark", "mask": DEFAULT_MASK}),
}
# Methods that load trained models from MLflow run here on freshly initialised ones: the same passes, no store.
STAND_INS: dict[str, type[Method]] = {"afs_merger": RandomExtractorMerger}

# Paths: names joined by "+"; "fp32" alone is the reference every speed-up is relative to.
PATH_SWITCHES = {"bf16": {"precision": "bf16"}, "channels_last": {"channels_last": True}, "compile": {"compile": True}}

# Dense bf16 tensor-core peaks in TFLOP/s (vendor data sheets; SXM parts where there are two).
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 70.0, "L4": 121.0}


@dataclass
class Measurement:
    method: str
    model: str
    path: str
    device: str
    batch_size: int
    images_per_s: float
    min_per_epoch: float
    tflops: float
    peak_share: float | None
    speedup: float | None = None
    processes: int = 1
    paper_minutes: float | None = None
    paper_source: str = ""


def peak_tflops(name: str) -> float | None:
    return next((peak for key, peak in PEAK_BF16_TFLOPS.items() if key in name), None)


def path_switches(path: str) -> dict[str, Any]:
    if path == "fp32":
        return {}
    switches: dict[str, Any] = {}
    for part in path.split("+"):
        if part not in PATH_SWITCHES:
            raise SystemExit(f"error: unknown path part {part!r}; known: fp32, {', '.join(PATH_SWITCHES)}")
        switches.update(PATH_SWITCHES[part])
    return switches


def trial_config(method: str, model: str, path: str, args: argparse.Namespace) -> TrainConfig:
    """The config of benchmark ``method``: ``steps`` batches of synthetic CIFAR-shaped images per epoch, PGD-10."""
    name, extra = METHODS[method]
    config = {
        "dataset": "synthetic", "train_n": args.steps * args.batch_size, "model": model, "batch_size": args.batch_size,
        "epochs": 1 + args.repeats, "eps": 8 / 255, "attack_step": 2 / 255, "attack_steps": 10, "eval_n": 1,
        "final_n": 1, **extra, **path_switches(path),
    }
    if "aux_datasets" in extra:
        config["aux_batch_size"] = args.batch_size
    return registered(name).config.from_dict(config)


def build_trial(method: str, model: str, path: str, args: argparse.Namespace) -> Trial:
    """A trial as run_trial builds it, on :func:`trial_config`."""
    name = METHODS[method][0]
    method_cls = STAND_INS.get(name) or registered(name).method
    cfg = trial_config(method, model, path, args)
    seed_everything(cfg.seed)
    device = torch.device(args.device)
    settings = RunSettings(tracking_uri="", experiment="benchmark", device=str(device))
    return Trial(method_cls(cfg, TrialData.load(cfg, None), device, settings))


class _TotalsOnly:
    """Stands in for FlopCounterMode's module tracker: its backward hooks break ``autograd.grad`` with respect to the
    input (every PGD step), and a total needs no per-module attribution."""

    parents = ("Global",)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def step_flops(trial: Trial) -> int:
    """FLOPs of one training step (attack + update passes, backward included), counted on the eager model."""
    method = trial.method
    batch = next(iter(trial.loader.epoch(0)))
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _TotalsOnly()
    with counter:
        loss, _ = method.loss(batch, 0)
        loss.backward()
    method.model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def time_epochs(trial: Trial, repeats: int) -> float:
    """Median seconds of ``repeats`` epochs after one untimed epoch."""
    device = trial.method.device
    trial.train_epoch(0)
    return statistics.median(timed(lambda e=epoch: trial.train_epoch(e), device)[0] for epoch in range(1, 1 + repeats))


def measure(method: str, model: str, path: str, args: argparse.Namespace, flops: int | None = None,
            start_together: Any = None) -> Measurement:
    trial = build_trial(method, model, path, args)
    if flops is None:
        flops = step_flops(build_trial(method, model, "fp32", args))
    if start_together is not None:
        start_together.wait()
    seconds = time_epochs(trial, args.repeats)
    images = args.steps * args.batch_size
    name = device_name(trial.method.device)
    tflops = flops * args.steps / seconds / 1e12
    peak = peak_tflops(name)
    paper = PAPER_SPEEDS.get((method, model))
    return Measurement(
        method=method, model=model, path=path, device=name, batch_size=args.batch_size, images_per_s=images / seconds,
        min_per_epoch=CIFAR10_TRAIN / (images / seconds) / 60, tflops=tflops,
        peak_share=tflops / peak if peak else None, paper_minutes=paper.minutes_per_epoch if paper else None,
        paper_source=paper.source if paper else "",
    )


class FileBarrier:
    """Packed workers are separate processes (``--rendezvous``): each marks itself ready once its trial is built,
    then waits for the others, so the timed epochs overlap."""

    def __init__(self, folder: str, parties: int) -> None:
        self.folder, self.parties = Path(folder), parties

    def wait(self, timeout_s: float = 1800) -> None:
        (self.folder / f"ready-{os.getpid()}").touch()
        deadline = time.time() + timeout_s
        while len(list(self.folder.glob("ready-*"))) < self.parties:
            if time.time() > deadline:
                raise TimeoutError(f"only {len(list(self.folder.glob('ready-*')))} of {self.parties} workers started")
            time.sleep(0.05)


def measure_packed(method: str, model: str, path: str, args: argparse.Namespace, processes: int) -> Measurement:
    """``processes`` copies of one measurement on the same device at once (this script in worker mode, one process
    each, as concurrent trials would be); their images/s and TFLOP/s summed."""
    with tempfile.TemporaryDirectory() as rendezvous:
        command = [sys.executable, str(Path(__file__).resolve()), "--device", args.device, "--methods", method,
                   "--models", model, "--paths", path, "--batch-size", str(args.batch_size), "--steps",
                   str(args.steps), "--repeats", str(args.repeats), "--rendezvous", rendezvous, "--parties",
                   str(processes), *(["--threads", str(args.threads)] if args.threads else [])]
        workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                   for _ in range(processes)]
        outputs = [worker.communicate()[0] for worker in workers]
    failed = [out for worker, out in zip(workers, outputs) if worker.returncode != 0]
    if failed:
        raise RuntimeError(f"a packed worker failed:\n{failed[0][-3000:]}")
    results = [Measurement(**json.loads(out.strip().splitlines()[-1])) for out in outputs]
    total = sum(r.images_per_s for r in results)
    tflops = sum(r.tflops for r in results)
    peak = peak_tflops(results[0].device)
    return Measurement(
        method=method, model=model, path=path, device=results[0].device, batch_size=args.batch_size,
        images_per_s=total, min_per_epoch=CIFAR10_TRAIN / total / 60, tflops=tflops,
        peak_share=tflops / peak if peak else None, processes=processes,
    )


def profile(method: str, model: str, path: str, args: argparse.Namespace) -> str:
    """The operators that take the time in a few training steps (torch.profiler, sorted by device time)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    trial = build_trial(method, model, path, args)
    trial.train_epoch(0)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if trial.method.device.type == "cuda" else [])
    with torch_profile(activities=activities) as prof:
        timed(lambda: trial.train_epoch(1), trial.method.device)  # drains the device before the profile ends
    key = "cuda_time_total" if trial.method.device.type == "cuda" else "cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=args.profile_rows)


def with_speedups(rows: list[Measurement]) -> list[Measurement]:
    reference = {(r.method, r.model, r.processes): r.images_per_s for r in rows if r.path == "fp32"}
    for row in rows:
        base = reference.get((row.method, row.model, 1))
        row.speedup = row.images_per_s / base if base else None
    return rows


def fmt(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


COLUMNS = ["method", "model", "path", "processes", "images/s", "min/epoch", "TFLOP/s", "peak share", "speed-up",
           "paper min/epoch", "paper source"]


def table_rows(rows: Sequence[Measurement]) -> list[list[str]]:
    return [[r.method, r.model, r.path, str(r.processes), fmt(r.images_per_s, ".1f"),
             fmt(r.min_per_epoch, ".2f"), fmt(r.tflops, ".2f"),
             fmt(None if r.peak_share is None else 100 * r.peak_share, ".1f") + ("%" if r.peak_share else ""),
             fmt(r.speedup, ".2f"), fmt(r.paper_minutes, ".2f"), r.paper_source] for r in rows]


def to_markdown(rows: Sequence[Measurement]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(rows)]
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[Measurement], path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--small", action="store_true", help="tiny shapes for a CPU: tiny-cnn, batch 16, 2 steps, fp32 and "
                                                        "bf16+channels_last")
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, from {', '.join(METHODS)}")
    p.add_argument("--models", default="resnet18,wrn-28-10,wrn-34-10")
    p.add_argument("--paths", default="fp32,bf16+channels_last,bf16+channels_last+compile",
                   help="comma-separated; each is fp32 or parts of bf16, channels_last, compile joined by '+'")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=20, help="training steps per timed epoch")
    p.add_argument("--repeats", type=int, default=3, help="timed epochs (median reported)")
    p.add_argument("--packing", default="", help="e.g. 1,2,4: concurrent processes per device, for the first path "
                                                 "other than fp32 (or fp32)")
    p.add_argument("--profile", action="store_true", help="print the top operators of the first configuration")
    p.add_argument("--profile-rows", type=int, default=25)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    p.add_argument("--rendezvous", default=None, help=argparse.SUPPRESS)  # worker mode of --packing
    p.add_argument("--parties", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--csv", type=Path, default=None)
    p.add_argument("--markdown", type=Path, default=None)
    args = p.parse_args(argv)
    if args.small:
        args.models, args.batch_size, args.steps = "tiny-cnn", 16, 2
        args.paths = "fp32,bf16+channels_last" if args.paths == p.get_default("paths") else args.paths
        args.repeats = min(args.repeats, 2)
    args.methods = args.methods.split(",")
    args.models = args.models.split(",")
    args.paths = args.paths.split(",")
    args.packing = [int(n) for n in args.packing.split(",") if n]
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        p.error(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    for path in args.paths:
        path_switches(path)
    if args.steps < 1 or args.repeats < 1:
        p.error("--steps and --repeats must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> list[Measurement]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.rendezvous:  # one process of a --packing measurement: one result, as JSON, on the last line
        row = measure(args.methods[0], args.models[0], args.paths[0], args,
                      start_together=FileBarrier(args.rendezvous, args.parties))
        print(json.dumps(asdict(row)))
        return [row]
    rows: list[Measurement] = []
    for method in args.methods:
        for model in args.models:
            flops = step_flops(build_trial(method, model, "fp32", args))
            for path in args.paths:
                rows.append(measure(method, model, path, args, flops))
                print(to_markdown([rows[-1]]).splitlines()[-1], flush=True)
    packed_path = next((p for p in args.paths if p != "fp32"), "fp32")
    for processes in args.packing:
        rows.append(measure_packed(args.methods[0], args.models[0], packed_path, args, processes))
    rows = with_speedups(rows)
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    print(f"\n# {rows[0].device} | torch {torch.__version__} | {date} | batch {args.batch_size}, {args.steps} steps "
          f"x {args.repeats} timed epochs (median), PGD-10 training\n")
    print(to_markdown(rows))
    if args.profile:
        print(profile(args.methods[0], args.models[0], args.paths[-1], args))
    if args.csv:
        write_csv(rows, args.csv)
    if args.markdown:
        args.markdown.write_text(to_markdown(rows))
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
