"""Which differences in a table are real: a 95% interval per cell and a paired test of each row against the table's
reference row, the analysis scripts' ``--stats``.

- **Interval.** Over seeds where a cell has several (Student's t on the seeds' accuracies), else over the test points
  of its one run (the exact Clopper-Pearson interval of a binomial proportion, from the run's per-point results).
- **Paired test.** Two rows of one column were evaluated on the same test points (every trial draws them with the
  same ``subset_seed``), so they are compared point by point: the exact McNemar test, i.e. a two-sided binomial test
  of the discordant points (right in one row, wrong in the other) against 1/2. With several seeds, the runs pair by
  seed and their discordant points are pooled (seed s of a row against seed s of the reference). Holm's correction
  runs over the rows of each column; a row that differs at 5% after it gets a dagger.

scipy gives the binomial test and the intervals; Holm's step-down correction and the pairing are written here.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import cache

import numpy as np
from scipy import stats

from analysis.cells import Cell, Table
from runstore.points import RunPoints, load_points, paired
from runstore.reader import open_store

ALPHA = 0.05
MARK = "†"


def seeds_interval(mean: float, std: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """The t interval of a mean over ``n`` seeds (at least two) with sample standard deviation ``std``."""
    half = stats.t.ppf((1 + level) / 2, n - 1) * std / math.sqrt(n)
    return mean - half, mean + half


def points_interval(correct: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of an accuracy of ``correct`` out of ``n`` points."""
    ci = stats.binomtest(correct, n).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)


def mcnemar(discordant_a: int, discordant_b: int) -> float:
    """Two-sided exact McNemar p-value: ``discordant_a`` points right only under A, ``discordant_b`` only under B."""
    total = discordant_a + discordant_b
    return 1.0 if total == 0 else float(stats.binomtest(discordant_a, total, 0.5).pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (each compared with the level directly), in the input order."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted = [0.0] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def discordant(row: tuple[np.ndarray, np.ndarray], reference: tuple[np.ndarray, np.ndarray]) -> tuple[int, int]:
    """Points right only in ``row`` and only in ``reference`` (``(indices, correct)`` each), over the points both
    evaluated."""
    a, b = paired(row, reference)
    return int((a & ~b).sum()), int((~a & b).sum())


PointsOf = Callable[[str], RunPoints | None]


def cell_interval(cell: Cell, points_of: PointsOf) -> tuple[float, float] | None:
    """Over the seeds of a cell with several, else over the test points of its one run (None without them)."""
    if cell.n > 1 and cell.std is not None:
        return seeds_interval(cell.mean, cell.std, cell.n)
    points = points_of(cell.runs[0]) if len(cell.runs) == 1 else None
    found = points.of(cell.metric) if points is not None else None
    return None if found is None else points_interval(int(found[1].sum()), len(found[1]))


class NoPoints(LookupError):
    """A run of the comparison logged no per-point results (it was trained before they were logged)."""


def paired_p(cell: Cell, reference: Cell, points_of: PointsOf) -> float | None:
    """The McNemar p-value of ``cell`` against ``reference`` over their seed-paired runs; None for a metric that is
    not evaluated per point (an epoch time, a gate count), :class:`NoPoints` for a run without per-point results."""
    only_row = only_reference = 0
    for row_run, reference_run in zip(cell.runs, reference.runs):
        found = [points_of(run) for run in (row_run, reference_run)]
        if found[0] is None or found[1] is None:
            raise NoPoints(row_run if found[0] is None else reference_run)
        pairs = [points.of(cell.metric) for points in found]
        if pairs[0] is None or pairs[1] is None:
            return None
        a, b = discordant(pairs[0], pairs[1])
        only_row, only_reference = only_row + a, only_reference + b
    return mcnemar(only_row, only_reference) if cell.runs and reference.runs else None


def annotate(table: Table, points_of: PointsOf, reference: str | None = None) -> Table:
    """``table`` with a 95% interval in every cell and a dagger on each row that differs from the reference row
    (the row whose first column reads ``reference``, else the first row) in that column at 5% after Holm's correction
    over the column's rows."""
    labels = [str(row[0]) for row in table.rows]
    if reference is not None and reference not in labels:
        raise ValueError(f"--reference {reference!r} is no row of this table; its rows: {', '.join(labels)}")
    ref = labels.index(reference) if reference is not None else 0
    rows = [list(row) for row in table.rows]
    missing = 0
    for j in range(len(table.header)):
        column = {i: row[j] for i, row in enumerate(rows) if isinstance(row[j], Cell)}
        base = column.get(ref)
        tested = {}
        for i, cell in column.items():
            rows[i][j] = replace(cell, interval=cell_interval(cell, points_of))
            if base is not None and i != ref:
                try:
                    p = paired_p(cell, base, points_of)
                except NoPoints:
                    missing += 1
                    continue
                if p is not None:
                    tested[i] = p
        for i, adjusted in zip(tested, holm(list(tested.values()))):
            if adjusted < ALPHA:
                rows[i][j] = replace(rows[i][j], mark=MARK)
    notes = [(f"[low, high]: the 95% interval, over seeds (t) where a cell has several, else over its test points "
             f"(exact binomial); {MARK}: differs from the row '{labels[ref]}' at 5% (exact McNemar test on the same "
             "test points, seeds paired and pooled; Holm's correction over the rows of each column)")]
    if missing:
        notes.append(f"{missing} comparison(s) untested: runs without per-point results (trained before they were "
                     "logged)")
    return replace(table, rows=rows, notes=[*table.notes, *notes])


def with_stats(table: Table, args: argparse.Namespace) -> Table:
    """The table as the command line asks: annotated with ``--stats`` (against ``--reference``), else as it is."""
    if not getattr(args, "stats", False):
        return table
    client = open_store(args.tracking_uri)
    try:
        return annotate(table, cache(lambda run_id: load_points(client, run_id)), args.reference)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
