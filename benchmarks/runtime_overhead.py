"""What the trial runtime costs: one PGD-10 AT epoch through ``Trial.train_epoch`` against a hand-written loop.

Commands (GPU defaults: ResNet-18, the 10,000-image synthetic train set, batch 128, fp32; CPU defaults: tiny-cnn,
512 images)::

    python benchmarks/runtime_overhead.py --repeats 5
    python benchmarks/runtime_overhead.py --device cpu --threads 1 --repeats 21

Both sides do the same work per batch on the same model (a fresh copy with the same initial weights) and the same
uint8 data already on the device: an index gather, the loader's crop-and-flip (``trainables.loader.augment_batch``,
called, not rewritten), PGD-10 (eps 8/255, step 2/255, uniform start) with the model in eval mode (the baseline's
``attack_bn="eval"``), one training forward in train mode, backward, SGD step, LR-schedule step: 11 forward and 11
backward passes per batch. The runtime side is exactly what ``run_trial`` calls per epoch; it also sums its
diagnostics (loss, adversarial accuracy) on the device. The hand-written side keeps a device-side loss sum, so the
warm-up epoch, run by both from the same weights and RNG state, shows that they compute the same losses.

Not in the ratio: what ``run_trial`` does once per epoch after ``train_epoch`` (evaluation on the selection subset,
the checkpoint, one MLflow batch and ``tune.report``). ``Trial.end_epoch`` and the checkpoint save are timed
separately and printed as per-epoch bookkeeping; MLflow logging and the Tune report need a Ray session and are left
out. Timings: warm-up epochs excluded, ``torch.cuda.synchronize()`` around every timed epoch on a GPU, repetitions
alternate runtime and hand-written epochs (A B A B ...), medians reported, as wall time and as this process's CPU
time (on a shared CPU the latter ignores time spent waiting for a core).

Measured (ratio = runtime / hand-written, of the medians; fp32, batch 128 unless stated):

==================================  ============  ==============================  =======  ======  ======  ==========
device                              torch         setup                           repeats  wall    CPU     runtime
                                                                                           ratio   ratio   images/s
==================================  ============  ==============================  =======  ======  ======  ==========
AMD EPYC, 2 shared cores, 1 thread  2.15.0+cu132  tiny-cnn, 512 images            21       1.012   0.993   63.8
AMD EPYC, 2 shared cores, 1 thread  2.15.0+cu132  tiny-cnn, 256 images, batch 4   15       0.992   0.991   78.4
==================================  ============  ==============================  =======  ======  ======  ==========

The CPU was shared with other jobs (load average 2 to 9 on 2 cores): single epochs ranged from 4.9 s to 11.7 s in
the first row, and a repeat of the batch-4 row under heavier load gave 1.076 / 1.069, so differences of a few per cent
are noise there. With 2 threads on the busy machine the spread was worse (29 s to 97 s per epoch), hence
``--threads 1``. No GPU figure yet: run the first command on one and add its row.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from trainables.checkpoints import STATE_FILE
from trainables.config import RunSettings
from trainables.loader import augment_batch
from trainables.methods.baseline import Baseline
from trainables.methods.configs import BaselineConfig
from trainables.models import Classifier, create_model
from trainables.runtime import Trial, TrialData
from trainables.seeds import derive_seed
from trainables.training import decay_steps, seed_everything

EPS = 8 / 255
STEP = 2 / 255
PGD_STEPS = 10


class HandLoop:
    """The same epoch as a plain PyTorch loop: no Trial, Method, DeviceLoader, bn_mode or ``attacks.pgd``."""

    def __init__(self, model: Classifier, images: Tensor, labels: Tensor, cfg: BaselineConfig) -> None:
        self.model, self.images, self.labels, self.cfg = model, images, labels, cfg
        self.steps_per_epoch = len(labels) // cfg.batch_size  # drop_last, as the runtime's loader
        self.optimizer = torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
        )
        # The runtime's piecewise schedule in optimiser steps (MultiStepLR is the plain-PyTorch twin of lr_factor).
        milestones = decay_steps(cfg.lr_milestones, cfg.epochs, self.steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, milestones, gamma=cfg.lr_gamma)

    def epoch(self, epoch: int) -> float:
        """Train one epoch; returns the mean training loss (one host sync, at the end, as the runtime)."""
        model, bs, device = self.model, self.cfg.batch_size, self.images.device
        # Seeded like the runtime's loader, so both sides see the same batch order and crops.
        g = torch.Generator(device=device).manual_seed(derive_seed(self.cfg.seed, "epoch", epoch))
        order = torch.randperm(len(self.labels), generator=g, device=device)
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.cfg.precision == "bf16")
        loss_sum = torch.zeros((), device=device)
        model.train()
        for i in range(self.steps_per_epoch):
            idx = order[i * bs:(i + 1) * bs]
            x = augment_batch(self.images[idx], g).float().div_(255)
            y = self.labels[idx]
            with autocast:
                model.eval()  # attack_bn="eval": running BN statistics while crafting
                lower, upper = (x - EPS).clamp(min=0), (x + EPS).clamp(max=1)
                x_adv = torch.minimum(torch.maximum(x + (2 * torch.rand_like(x) - 1) * EPS, lower), upper)
                for _ in range(PGD_STEPS):
                    x_adv.requires_grad_(True)
                    (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y, reduction="sum"), x_adv)
                    x_adv = torch.minimum(torch.maximum(x_adv.detach() + STEP * grad.sign(), lower), upper)
                model.train()
                loss = F.cross_entropy(model(x_adv.detach()), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            loss_sum += loss.detach()
        return loss_sum.item() / self.steps_per_epoch


@dataclass(frozen=True)
class Result:
    device_name: str
    torch_version: str
    images: int
    repeats: int
    runtime_s: list[float]  # wall time per timed epoch
    hand_s: list[float]
    runtime_cpu_s: list[float]  # this process's CPU time per timed epoch
    hand_cpu_s: list[float]
    warmup_loss_runtime: float
    warmup_loss_hand: float
    end_epoch_s: float
    checkpoint_s: float

    @property
    def runtime_median(self) -> float:
        return statistics.median(self.runtime_s)

    @property
    def hand_median(self) -> float:
        return statistics.median(self.hand_s)

    @property
    def ratio(self) -> float:
        return self.runtime_median / self.hand_median

    @property
    def paired_ratio(self) -> float:
        # Each runtime epoch against the hand-written epoch right after it: less sensitive to slow drifts in load.
        return statistics.median(r / h for r, h in zip(self.runtime_s, self.hand_s, strict=True))

    @property
    def cpu_ratio(self) -> float:
        # CPU time does not count the time the process waits for a core, so on a shared CPU it varies far less than
        # wall time; on a GPU it is host time and mostly the wait in synchronize().
        return statistics.median(self.runtime_cpu_s) / statistics.median(self.hand_cpu_s)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    threads = torch.get_num_threads()
    threads_text = f"{threads} thread{'s' if threads != 1 else ''}"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({threads_text})"
    except OSError:
        pass
    return f"{platform.processor() or 'CPU'} ({threads_text})"


def timed(fn: Callable[[], object], device: torch.device) -> tuple[float, float]:
    """Wall and process CPU seconds of ``fn()``, the device drained before and after (GPU kernels are asynchronous)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - wall, time.process_time() - cpu


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--model", default=None, help="default: resnet18 on a GPU, tiny-cnn on the CPU")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--images", type=int, default=None,
                   help="training images per timed epoch (default: all 10,000 on a GPU, 512 on the CPU)")
    p.add_argument("--eval-n", type=int, default=None,
                   help="selection images for the bookkeeping timing (default: 1,000 on a GPU, 256 on the CPU)")
    p.add_argument("--repeats", type=int, default=5, help="timed epochs per side")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs per side first")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: torch's choice); 1 keeps a shared CPU from oversubscribing")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--csv", type=Path, default=None, help="write the summary rows to this CSV file")
    p.add_argument("--markdown", type=Path, default=None, help="write the summary as a Markdown table")
    args = p.parse_args(argv)
    args.device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    on_gpu = args.device.type == "cuda"
    args.model = args.model or ("resnet18" if on_gpu else "tiny-cnn")
    args.images = args.images or (10_000 if on_gpu else 512)
    args.eval_n = args.eval_n or (1_000 if on_gpu else 256)
    if args.images < args.batch_size:
        p.error(f"--images {args.images} is less than one batch of {args.batch_size}")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be at least 1")
    if args.repeats < 1 or args.warmup < 0:
        p.error("--repeats must be at least 1 and --warmup non-negative")
    return args


def run(args: argparse.Namespace) -> Result:
    device = args.device
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = BaselineConfig(
        training="pgd_at", dataset="synthetic", train_n=args.images, model=args.model, batch_size=args.batch_size,
        seed=args.seed, eps=EPS, attack_step=STEP, attack_steps=PGD_STEPS, attack_start="uniform", attack_bn="eval",
        schedule="piecewise", epochs=args.warmup + args.repeats, eval_n=args.eval_n, final_n=1,
        precision=args.precision, channels_last=args.channels_last,
    )
    settings = RunSettings(tracking_uri="", experiment="benchmark", device=str(device))
    # As run_trial: seed, then the data and the method (which builds the model from the seeded RNG).
    seed_everything(cfg.seed)
    data = TrialData.load(cfg, None)
    method = Baseline(cfg, data, device, settings)
    trial = Trial(method)

    hand_model = create_model(cfg.model, data.train.num_classes).to(device)
    if cfg.channels_last:
        hand_model = hand_model.to(memory_format=torch.channels_last)
    hand_model.load_state_dict(method.model.state_dict())  # same initial weights, before either side trains
    hand = HandLoop(hand_model, data.train.images.to(device), data.train.labels.to(device), cfg)
    if hand.steps_per_epoch != len(trial.loader):
        raise AssertionError(f"batches per epoch differ: {hand.steps_per_epoch} vs {len(trial.loader)}")

    # Warm-up epochs (untimed) from the same weights and global RNG state: PGD's random start draws from it.
    warm = [0.0, 0.0]
    for epoch in range(args.warmup):
        torch.manual_seed(cfg.seed + epoch)
        warm[0] = trial.train_epoch(epoch)["train/loss"]
        torch.manual_seed(cfg.seed + epoch)
        warm[1] = hand.epoch(epoch)

    runtime: list[tuple[float, float]] = []
    handwritten: list[tuple[float, float]] = []
    for r in range(args.repeats):
        epoch = args.warmup + r
        runtime.append(timed(lambda e=epoch: trial.train_epoch(e), device))
        handwritten.append(timed(lambda e=epoch: hand.epoch(e), device))
        print(f"repeat {r + 1}/{args.repeats}: runtime {runtime[-1][0]:.3f} s, hand-written {handwritten[-1][0]:.3f} s",
              flush=True)

    # What run_trial adds once per epoch: selection evaluation (clean + PGD-10) and the checkpoint write.
    last = args.warmup + args.repeats - 1
    end_epoch_s, _ = timed(lambda: trial.end_epoch(last), device)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / STATE_FILE
        checkpoint_s, _ = timed(lambda: torch.save(trial.state_dict() | {"mlflow_run_id": ""}, path), device)
    return Result(
        device_name=device_name(device), torch_version=torch.__version__, images=len(trial.loader) * cfg.batch_size,
        repeats=args.repeats, runtime_s=[w for w, _ in runtime], hand_s=[w for w, _ in handwritten],
        runtime_cpu_s=[c for _, c in runtime], hand_cpu_s=[c for _, c in handwritten], warmup_loss_runtime=warm[0],
        warmup_loss_hand=warm[1], end_epoch_s=end_epoch_s, checkpoint_s=checkpoint_s,
    )


def summary_rows(result: Result, args: argparse.Namespace) -> list[dict[str, str]]:
    rows = []
    sides = (("runtime", result.runtime_s, result.runtime_cpu_s), ("hand-written", result.hand_s, result.hand_cpu_s))
    for loop, times, cpu_times in sides:
        median = statistics.median(times)
        rows.append({
            "loop": loop, "device": result.device_name, "torch": result.torch_version, "model": args.model,
            "precision": args.precision, "channels_last": str(args.channels_last), "images": str(result.images),
            "batch_size": str(args.batch_size), "repeats": str(result.repeats), "median_s": f"{median:.4f}",
            "min_s": f"{min(times):.4f}", "max_s": f"{max(times):.4f}", "images_per_s": f"{result.images / median:.1f}",
            "cpu_median_s": f"{statistics.median(cpu_times):.4f}", "ratio": f"{result.ratio:.4f}",
            "cpu_ratio": f"{result.cpu_ratio:.4f}",
        })
    return rows


def write_outputs(rows: list[dict[str, str]], csv_path: Path | None, markdown_path: Path | None) -> None:
    if csv_path is not None:
        with csv_path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    if markdown_path is not None:
        keys = list(rows[0])
        lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(row[k] for k in keys) + " |" for row in rows]
        markdown_path.write_text("\n".join(lines) + "\n")


def main(argv: Sequence[str] | None = None) -> Result:
    args = parse_args(argv)
    result = run(args)
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"# {result.device_name} | torch {result.torch_version} | {date} | {result.repeats} repeats per side, "
          f"{args.warmup} warm-up epoch(s) excluded, alternating runtime / hand-written")
    print(f"# PGD-10 AT epoch: {args.model}, {args.precision}, channels_last={args.channels_last}, "
          f"{result.images} images in batches of {args.batch_size}")
    if args.warmup:
        print(f"warm-up epoch loss from the same weights and RNG: runtime {result.warmup_loss_runtime:.6f}, "
              f"hand-written {result.warmup_loss_hand:.6f}")
    print(f"{'loop':<14}{'median s':>10}{'min s':>10}{'max s':>10}{'images/s':>11}{'CPU s':>10}")
    for row in summary_rows(result, args):
        print(f"{row['loop']:<14}{row['median_s']:>10}{row['min_s']:>10}{row['max_s']:>10}{row['images_per_s']:>11}"
              f"{row['cpu_median_s']:>10}")
    print(f"ratio runtime/hand-written: {result.ratio:.4f} (overhead {100 * (result.ratio - 1):+.2f}%); "
          f"median of paired ratios {result.paired_ratio:.4f}; process CPU time ratio {result.cpu_ratio:.4f}")
    print(f"per-epoch bookkeeping, once per epoch, not in the ratio: Trial.end_epoch (clean + PGD-10 on {args.eval_n} "
          f"selection images) {result.end_epoch_s:.3f} s, checkpoint save {result.checkpoint_s:.3f} s "
          "(MLflow logging and tune.report not timed)")
    write_outputs(summary_rows(result, args), args.csv, args.markdown)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
