"""``--dry-run``: what a sweep would run, printed from its search space alone.

A grid sweep lists one row per trial (only the values that differ between trials), then the values every trial
shares, the number of trials, the GPU-hours estimate (``launch/cost.py``) and the smallest difference between two
rows of its table that the planned seeds and final points can resolve (:func:`resolution_line`). A search cannot list its trials in
advance: it prints the searched domains instead, with ``num_samples`` as the number of trials. Nothing is started or
written: no Ray, no MLflow run, no Optuna study.
"""

from __future__ import annotations

import argparse
import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ray.tune.search.sample import Categorical, Domain, Integer

from launch.cost import cost_lines
from launch.space import grid_points, searched_keys
from launch.sweep import Sweep
from trainables.config import TrainConfig

if TYPE_CHECKING:  # read from the store only when a dry run measures a finished sweep
    from runstore.agreement import Agreement


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


def plan(name: str, sweep: Sweep, configs: Sequence[TrainConfig], measured: Agreement | None = None) -> list[str]:
    """The dry run of one sweep; ``configs`` are its validated trial configs, in :func:`grid_points` order;
    ``measured``: how a finished sweep's rows disagreed point by point (:func:`measured_agreement`)."""
    searched = {key: sweep.param_space[key] for key in searched_keys(sweep.param_space)}
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
        lines.append(resolution_line(trials, measured))
    budget = getattr(sweep.scheduler, "plan", None)  # a budgeted sweep's (launch/budget.py)
    if budget is not None:
        lines += budget.lines()
    elif sweep.scheduler is not None:
        lines.append("the scheduler stops poor trials early, so the estimate is an upper bound")
    return lines


def resolution_line(trials: Sequence[TrainConfig], measured: Agreement | None = None) -> str:
    """How far apart two rows' accuracies must be to differ at 95% with the planned final points and seeds. Without
    a finished sweep to measure: twice the binomial variance at 50% accuracy (the worst case) over points x seeds,
    two-sided. With one (``measured``): the paired test's, from the rate ``d`` at which its rows disagreed point by
    point, ``1.96 sqrt(d / (points x seeds))`` (``runstore/agreement.py``)."""
    points = min(cfg.final_n for cfg in trials)
    seeds = len({cfg.seed for cfg in trials})
    planned = f"{points} final points x {seeds} seed(s) per row"
    if measured is not None:
        half_width = 1.96 * math.sqrt(measured.discordant / (points * seeds))
        return (f"resolution: two rows of its table differ at 95% from about {100 * half_width:.1f} percentage points "
                f"of accuracy apart ({planned}; paired on the same points, as --stats tests them: the rows of sweep "
                f"{measured.sweep!r} disagreed on {100 * measured.discordant:.1f}% of their points under "
                f"{measured.metric}, {measured.pairs} pair(s) of runs)")
    half_width = 1.96 * math.sqrt(2 * 0.25 / (points * seeds))
    return (f"resolution: two rows of its table differ at 95% from about {100 * half_width:.1f} percentage points "
            f"of accuracy apart ({planned}; binomial variance at 50%, the worst case; fewer where the analysis' "
            "--stats pairs them point by point: --agreement-from SWEEP measures that on a finished sweep)")


def measured_agreement(args: argparse.Namespace, name: str, metric: str, row_key: str) -> Agreement | None:
    """How the rows (values of ``row_key``) of a finished sweep disagreed point by point under ``metric`` (this
    sweep's headline): the sweep ``--agreement-from`` names, else an earlier sweep of this name in a local SQLite
    store, if there is one. Reads a store only where it exists (a dry run creates nothing), and a tracking server
    only when ``--agreement-from`` asks (a dry run does not wait on a server it was not told to read)."""
    from runstore.agreement import measure_agreement
    from runstore.reader import StoreNotFoundError, SweepNotFoundError, load_sweep
    from runstore.uri import SQLITE, resolve_tracking_uri

    if not args.agreement_from and not resolve_tracking_uri(args.tracking_uri).startswith(SQLITE):
        return None
    source = args.agreement_from or name
    try:
        found = measure_agreement(load_sweep(source, tracking_uri=args.tracking_uri), metric, row_key)
    except (StoreNotFoundError, SweepNotFoundError) as exc:
        if args.agreement_from:
            raise SystemExit(f"error: --agreement-from: {exc}") from None
        return None
    if found is None and args.agreement_from:
        raise SystemExit(f"error: --agreement-from {source}: the sweep has no two runs that differ in {row_key} "
                         f"alone and logged per-point results of {metric} (runs trained before they were logged "
                         "have none)")
    return found


def print_plans(sweeps: Mapping[str, Sweep], configs: Mapping[str, Sequence[TrainConfig]],
                notes: Sequence[str], measured: Mapping[str, Agreement | None] | None = None) -> None:
    for note in notes:
        print(f"note: {note}")
    for name, sweep in sweeps.items():
        print("\n".join(plan(name, sweep, configs[name], (measured or {}).get(name))))
