"""How often the rows of a finished sweep's table disagree point by point: what a paired test on the same test points
(the analysis' ``--stats``) can resolve depends on it, and ``--dry-run`` uses it to size a planned sweep.

Two rows that agree on most points differ in accuracy by exactly the difference of their discordant counts, so the
standard error of that difference over ``n`` points is about ``sqrt(d / n)`` for a discordance rate ``d`` (the
McNemar test's large-sample form), not ``sqrt(2 p (1 - p) / n)`` as for two independent samples.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import cache

import numpy as np

from runstore.points import load_points, paired
from runstore.reader import SweepRuns

NAME_VALUE = re.compile(r"(\w+)=(\S+)")  # a trial's run name: "biamat variant=at pi=0.55 seed=0"


@dataclass(frozen=True)
class Agreement:
    """``discordant``: the mean fraction of shared test points on which two rows' runs of the same seed disagree
    under ``metric``, over ``pairs`` such pairs of runs."""

    sweep: str
    metric: str
    discordant: float
    pairs: int


def measure_agreement(sweep: SweepRuns, metric: str, row_key: str) -> Agreement | None:
    """The discordance under ``metric`` (``best/pgd20``) of every two runs of the sweep that differ in ``row_key``
    (the table's rows, pi in Table 13) and in nothing else their run names give (the variant, the seed): the
    comparisons ``--stats`` makes, rows of one column. None where the sweep has no such pair with per-point
    results."""
    runs: dict[tuple, dict[str, str]] = {}  # the other named values -> row value -> run id
    for _, run in sweep.runs.iterrows():
        named = dict(NAME_VALUE.findall(run["run_name"]))
        if row_key in named:
            value = named.pop(row_key)
            runs.setdefault(tuple(sorted(named.items())), {})[value] = run["run_id"]
    @cache  # a run is in several pairs: its points are downloaded once
    def points(run_id: str) -> tuple[np.ndarray, np.ndarray] | None:
        found = load_points(sweep.client, run_id)
        return None if found is None else found.of(metric)

    rates = []
    for column in runs.values():
        for first, second in itertools.combinations(sorted(column.values()), 2):
            pair = points(first), points(second)
            if pair[0] is not None and pair[1] is not None:
                a, b = paired(*pair)
                if len(a):
                    rates.append(float((a != b).mean()))
    return Agreement(sweep.name, metric, float(np.mean(rates)), len(rates)) if rates else None
