"""Reference training speeds behind a dry run's GPU-hours estimate, each with where it comes from.

This code's own speed is preferred once it has been measured: ``benchmarks/results/*.csv`` with the columns device,
method, model, min_per_epoch (minutes per CIFAR-10 epoch on one device). Until then the papers' reported times stand
in, labelled as such: they were measured on other code and other GPUs, so they size a sweep, they do not predict it.
Method names are those of ``benchmarks/throughput.py`` (``pgd_at``, ``trades``, ``at_biamat``, ``uiat``, ...): each
registered method names its trials so (``MethodSpec.speed_name``, trainables/methods/registry.py).
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from trainables.config import TrainConfig
from trainables.dataset_names import is_builtin
from trainables.methods.registry import method_of_config

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"
CIFAR = ("cifar10", "cifar100")  # the papers time CIFAR runs; CIFAR-100 has the same images per epoch


@dataclass(frozen=True)
class Speed:
    minutes_per_epoch: float
    device: str  # the unit of the estimate: "V100" gives V100-hours
    source: str
    datasets: tuple[str, ...] = CIFAR  # the primary datasets whose epochs it times


# UIAT Table 2: minutes per CIFAR-10 epoch on one A100, batch 128 (its HAT row is not transcribed here).
_UIAT_SOURCE = "UIAT Table 2, one A100"
_UIAT_MINUTES = {  # ResNet-18, WRN-28-10, WRN-34-10
    "standard": (0.35, 0.93, 1.22), "trades": (2.57, 14.13, 16.60), "iat": (2.83, 15.37, 17.82),
    "uiat": (2.20, 11.90, 14.77), "uiat_oneoff": (1.96, 10.74, 13.36),
}
# BiaMAT appendix Table 11: hours of a whole CIFAR run on one Tesla V100, divided by its epochs (appendix E: AT on
# WRN-28-10 for 100 epochs, TRADES on WRN-34-10 for 110). For TRADES on WRN-34-10, timed by both papers, BiaMAT's V100
# number is kept, so a BiaMAT sweep and its baseline are counted on the same device.
_BIAMAT_SOURCE = "BiaMAT appendix Table 11, one Tesla V100"
_BIAMAT_HOURS = {("pgd_at", "wrn-28-10", 100): 34, ("at_biamat", "wrn-28-10", 100): 56.5,
                 ("trades", "wrn-34-10", 110): 52, ("trades_biamat", "wrn-34-10", 110): 103}
# Its ImgNet100 rows: AT and AT+BiaMAT on WRN-16-10 for 100 epochs of ImgNet100's 64x64 images (no TRADES row).
_IMGNET100_HOURS = {("pgd_at", "wrn-16-10", 100): 119, ("at_biamat", "wrn-16-10", 100): 196}
PAPER_SPEEDS: dict[tuple[str, str], Speed] = {
    (method, model): Speed(minutes, "A100", _UIAT_SOURCE)
    for method, row in _UIAT_MINUTES.items() for model, minutes in zip(("resnet18", "wrn-28-10", "wrn-34-10"), row)
} | {
    (method, model): Speed(hours * 60 / epochs, "V100", _BIAMAT_SOURCE)
    for (method, model, epochs), hours in _BIAMAT_HOURS.items()
} | {
    (method, model): Speed(hours * 60 / epochs, "V100", _BIAMAT_SOURCE, datasets=("imgnet100",))
    for (method, model, epochs), hours in _IMGNET100_HOURS.items()
}


# Speed names that no transcribed table times, each with why: a dry run lists their trials without an estimate and
# says so. A measurement of this code (benchmarks/throughput.py --csv into benchmarks/results/) fills any of them.
_NOT_TRANSCRIBED = "not in the tables transcribed here (UIAT Table 2's standard/TRADES/IAT/UIAT rows, BiaMAT Table 11)"
NO_PUBLISHED_SPEED: dict[str, str] = {
    "hat": "UIAT Table 2 times HAT, but that row is not transcribed here yet",
    "mart": _NOT_TRANSCRIBED,
    "afs_merger": _NOT_TRANSCRIBED,
    "rs_fgsm": _NOT_TRANSCRIBED,
    "n_fgsm": _NOT_TRANSCRIBED,
    "gradalign": _NOT_TRANSCRIBED,
    "fgsm": _NOT_TRANSCRIBED,
    "fat_at": _NOT_TRANSCRIBED,
    "fat_trades": _NOT_TRANSCRIBED,
    "lbgat": _NOT_TRANSCRIBED,
    "tla": _NOT_TRANSCRIBED,
}


def measured_speeds(results: Path = RESULTS) -> dict[tuple[str, str], Speed]:
    """This code's minutes per CIFAR epoch from ``results/*.csv`` (``benchmarks/throughput.py --csv``); the first
    row of a method and model wins. Only rows of one trial per device on the fp32 path count, the presets' defaults
    (a CSV without ``path`` or ``processes`` columns is taken as that)."""
    speeds: dict[tuple[str, str], Speed] = {}
    for path in sorted(results.glob("*.csv")):
        with path.open(newline="") as f:
            rows = csv.DictReader(f)
            if "min_per_epoch" not in (rows.fieldnames or ()):  # another benchmark's results (budget_fidelity.csv)
                continue
            for row in rows:
                if row.get("path", "fp32") != "fp32" or row.get("processes", "1") != "1":
                    continue
                speeds.setdefault((row["method"], row["model"]), Speed(
                    float(row["min_per_epoch"]), row["device"], f"measured on {row['device']}, {path.name}"))
    return speeds


def reference_speeds(results: Path = RESULTS) -> dict[tuple[str, str], Speed]:
    """The speed of each (method, model): measured where there is a measurement, else the papers'."""
    return PAPER_SPEEDS | measured_speeds(results)


def hours(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def trial_speed(cfg: TrainConfig, speeds: Mapping[tuple[str, str], Speed]) -> Speed | None:
    """The reference speed of one trial's method and model on its dataset, if there is one."""
    speed = speeds.get((method_of_config(cfg).speed_name(cfg), cfg.model))
    return speed if speed is not None and cfg.dataset in speed.datasets else None


def full_hours(trials: Sequence[TrainConfig], speeds: Mapping[tuple[str, str], Speed] | None = None
               ) -> tuple[float, str] | None:
    """The GPU-hours of ``trials`` trained to their last epoch and the device they are counted on; None when a trial
    has no reference speed or the trials are counted on different devices (no one total)."""
    speeds = reference_speeds() if speeds is None else speeds
    found = [trial_speed(cfg, speeds) for cfg in trials]
    if not trials or any(speed is None for speed in found) or len({speed.device for speed in found}) > 1:
        return None
    return sum(cfg.epochs * speed.minutes_per_epoch / 60 for cfg, speed in zip(trials, found)), found[0].device


def cost_lines(trials: Sequence[TrainConfig], speeds: Mapping[tuple[str, str], Speed] | None = None) -> list[str]:
    """The GPU-hours of ``trials`` (one GPU each) at the reference speeds: a total per device, a line per kind of
    trial, and the kinds that have no reference speed."""
    if all(is_builtin(cfg.dataset) for cfg in trials):
        return ["cost: built-in synthetic data and small models: runs on a CPU in minutes, no GPU estimate"]
    speeds = reference_speeds() if speeds is None else speeds
    kinds = Counter((method_of_config(cfg).speed_name(cfg), cfg.model, cfg.dataset, cfg.epochs) for cfg in trials)
    total: dict[str, float] = defaultdict(float)
    lines, unknown = [], []
    unpublished: dict[str, str] = {}  # speed name -> why no paper times it
    for (method, model, dataset, epochs), count in kinds.items():
        speed = speeds.get((method, model))
        if speed is None or dataset not in speed.datasets:
            unknown.append(f"{count} x {method} {model} on {dataset}")
            if method in NO_PUBLISHED_SPEED:
                unpublished[method] = NO_PUBLISHED_SPEED[method]
            continue
        each = epochs * speed.minutes_per_epoch / 60
        total[speed.device] += count * each
        lines.append(f"  {count} x {method} {model} on {dataset}, {epochs} epochs x {speed.minutes_per_epoch:.3g} "
                     f"min = {hours(each)} h each ({speed.source})")
    summary = " + ".join(f"{hours(h)} {device}-hours" for device, h in total.items())
    lines.insert(0, f"GPU estimate: about {summary}, one GPU per trial" if total else "GPU estimate: none")
    if unknown:
        lines.append(f"no reference speed for: {', '.join(unknown)}")
        lines += [f"  {method}: {why}" for method, why in unpublished.items()]
    return lines
