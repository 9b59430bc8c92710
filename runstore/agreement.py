"""How often the rows of a finished sweep's table disagree point by point: what a paired test on the same test points
(the analysis' ``--stats``) can resolve depends on it, and ``--dry-run`` uses it to size a planned sweep.

Two rows that agree on most points differ in accuracy by exactly the difference of their discordant counts, so the
standard error of that difference over ``n`` points is about ``sqrt(d / n)`` for a discordance rate ``d`` (the
McNemar test's large-sample form), not ``sqrt(2 p (1 - p) / n)`` as for two independent samples.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from runstore.points import RunPoints, load_points, paired
from runstore.reader import SweepRuns

SEED_IN_NAME = re.compile(r"\s*\bseed=\S+")


@dataclass(frozen=True)
class Agreement:
    """``discordant``: the mean fraction of shared test points on which a row's run and the reference row's run of
    the same seed disagree under ``metric``, over ``pairs`` such pairs of runs."""

    sweep: str
    metric: str
    discordant: float
    pairs: int


def row_of(run_name: str) -> str:
    """A trial's row in its sweep's table: its run name without the seed (``biamat variant=at pi=0.55``)."""
    return SEED_IN_NAME.sub("", run_name).strip()


def measure_agreement(sweep: SweepRuns, metric: str) -> Agreement | None:
    """The discordance of every row against the first row (in name order, the tables' reference by default),
    seed by seed, under ``metric`` (``best/pgd20``); None where the sweep has fewer than two rows or no per-point
    results for ``metric``."""
    rows: dict[str, dict[str, str]] = {}  # row -> seed -> run id
    for _, run in sweep.runs.sort_values("run_name").iterrows():
        rows.setdefault(row_of(run["run_name"]), {})[str(run.get("params.seed"))] = run["run_id"]
    if len(rows) < 2:
        return None
    loaded: dict[str, RunPoints | None] = {}

    def points(run_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        if run_id not in loaded:
            loaded[run_id] = load_points(sweep.client, run_id)
        found = loaded[run_id]
        return None if found is None else found.of(metric)

    reference, *others = rows.values()
    rates = []
    for row in others:
        for seed, run_id in row.items():
            pair = (points(run_id), points(reference[seed])) if seed in reference else (None, None)
            if pair[0] is not None and pair[1] is not None:
                a, b = paired(*pair)
                if len(a):
                    rates.append(float((a != b).mean()))
    return Agreement(sweep.name, metric, float(np.mean(rates)), len(rates)) if rates else None
