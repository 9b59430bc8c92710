"""``--dry-run``: what a sweep would run, printed from its search space alone.

A grid sweep lists one row per trial (only the values that differ between trials), then the values every trial
shares, the number of trials, the GPU-hours estimate (``launch/cost.py``) and the smallest difference between two
rows of its table that the planned seeds and final points can resolve (:func:`resolution_line`). A search cannot list its trials in
advance: it prints the searched domains instead, with ``num_samples`` as the number of trials. Nothing is started or
written: no Ray, no MLflow run, no Optuna study.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from ray.tune.search.sample import Categorical, Domain, Function, Integer

from launch.cost import cost_lines
from launch.space import grid_points
from launch.sweep import Sweep
from trainables.config import TrainConfig


def value_text(value: Any) -> str:
    if isinstance(value, float):
        decimal, steps = f"{value:.4g}", value * 255
        if steps and abs(2 * steps - round(2 * steps)) < 1e-6:  # eps and steps read better as 8/255 than 0.03137
            return min(decimal, f"{steps:g}/255", key=len)
        return decimal
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(map(value_text, value)) + "]"  # no spaces: pairs are space-separated
    return str(value)


def domain_text(domain: Domain) -> str:
    """``uniform(0, 1)``, ``loguniform(0.00098, 0.0078)``, ``randint(1, 5)``, ``choice([a, b])``."""
    if isinstance(domain, Categorical):
        return f"choice({value_text(domain.categories)})"
    kind = "randint" if isinstance(domain, Integer) else type(domain.get_sampler()).__name__.strip("_").lower()
    return f"{kind}({value_text(domain.lower)}, {value_text(domain.upper)})"


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def plan(name: str, sweep: Sweep, configs: Sequence[TrainConfig]) -> list[str]:
    """The dry run of one sweep; ``configs`` are its validated trial configs, in :func:`grid_points` order."""
    searched = {key: value for key, value in sweep.param_space.items()
                if isinstance(value, Domain) and not isinstance(value, Function)}
    lines = [f"sweep {name!r} (MLflow experiment {sweep.family!r}), dry run: nothing started"]
    if searched:
        # One method, model and schedule per search: every trial costs what its first validation point costs.
        trials = [configs[0]] * sweep.num_samples if configs else []
        fixed = {key: value for key, value in next(grid_points(sweep.param_space)).items() if key not in searched}
        lines.append("searched (each trial's values are chosen as the search goes):")
        lines += [f"  {key} ~ {domain_text(domain)}" for key, domain in searched.items()]
    else:
        points = list(grid_points(sweep.param_space)) * sweep.num_samples
        trials = list(configs) * sweep.num_samples
        varying = [key for key in points[0] if any(point[key] != points[0][key] for point in points)]
        fixed = {key: value for key, value in points[0].items() if key not in varying}
        if varying:
            rows = [[str(i), *(value_text(point[key]) for key in varying)] for i, point in enumerate(points, 1)]
            lines += table([["#", *varying], *rows])
    shared = "  ".join(f"{key}={value_text(value)}" for key, value in fixed.items())
    lines.append(textwrap.fill(f"shared by every trial: {shared}", width=118, subsequent_indent="  ",
                                break_long_words=False, break_on_hyphens=False))
    lines.append(f"trials: {sweep.num_samples if searched else len(points)}")
    if trials:
        lines += cost_lines(trials)
        lines.append(resolution_line(trials))
    if sweep.scheduler is not None:
        lines.append("the scheduler stops poor trials early, so the estimate is an upper bound")
    return lines


def resolution_line(trials: Sequence[TrainConfig]) -> str:
    """How far apart two rows' accuracies must be to differ at 95% with the planned final points and seeds: twice
    the binomial variance at 50% accuracy (the worst case) over points x seeds, two-sided. Seed-to-seed spread adds to
    it; a paired test on the same points (the analysis' ``--stats``) resolves less where two rows agree on most."""
    points = min(cfg.final_n for cfg in trials)
    seeds = len({cfg.seed for cfg in trials})
    half_width = 1.96 * math.sqrt(2 * 0.25 / (points * seeds))
    return (f"resolution: two rows of its table differ at 95% from about {100 * half_width:.1f} percentage points "
            f"of accuracy apart ({points} final points x {seeds} seed(s) per row; binomial variance at 50%, the worst case; "
            "fewer where the analysis' --stats pairs them point by point)")


def print_plans(sweeps: Mapping[str, Sweep], configs: Mapping[str, Sequence[TrainConfig]],
                notes: Sequence[str]) -> None:
    for note in notes:
        print(f"note: {note}")
    for name, sweep in sweeps.items():
        print("\n".join(plan(name, sweep, configs[name])))
