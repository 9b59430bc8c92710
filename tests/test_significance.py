"""``--stats`` (analysis/significance.py): intervals that cover the truth at their stated rate, a paired test that
marks a real difference and not a chance one, Holm's correction, and the marks in every format."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.cells import Cell, Table
from analysis.render import render
from analysis.significance import MARK, annotate, holm, mcnemar, points_interval, seeds_interval
from runstore.points import RunPoints

N = 2000  # test points


def runs_table(correct: dict[str, list[np.ndarray]], indices: np.ndarray) -> tuple[Table, dict[str, RunPoints]]:
    """A one-column table with a row per name, each cell over that row's runs (one per seed), and their points."""
    points, rows = {}, []
    for name, seeds in correct.items():
        runs = tuple(f"{name}-{seed}" for seed in range(len(seeds)))
        for run, values in zip(runs, seeds):
            points[run] = RunPoints.sharing(indices, {"best/pgd20": values})
        cell = Cell.of([values.mean() for values in seeds])
        rows.append([name, Cell(cell.mean, cell.std, cell.n, runs=runs, metric="best/pgd20")])
    return Table("Table 0. Synthetic rows", ["Row", "PGD-20"], rows), points


def flipped(values: np.ndarray, count: int, rng: np.random.Generator, to: bool) -> np.ndarray:
    """``values`` with ``count`` of its points that are not ``to`` set to ``to``."""
    out = values.copy()
    out[rng.choice(np.flatnonzero(out != to), count, replace=False)] = to
    return out


def test_a_known_difference_is_marked_and_a_chance_one_is_not():
    rng = np.random.default_rng(0)
    reference = rng.random(N) < 0.5
    better = flipped(reference, 120, rng, True)  # +6 points, every change in one direction
    # The same accuracy as the reference, 60 points changed each way: McNemar sees 60 vs 60 discordant points.
    shuffled = flipped(flipped(reference, 60, rng, True), 60, rng, False)
    indices = rng.permutation(10_000)[:N]  # the points' positions in a test split, in drawn order
    table, points = runs_table({"reference": [reference], "better": [better], "same": [shuffled]}, indices)
    out = annotate(table, points.get)
    ref, up, same = (row[1] for row in out.rows)
    assert (ref.mark, up.mark, same.mark) == ("", MARK, "")
    # One seed: the exact binomial interval of the run's own points.
    assert up.interval == pytest.approx(points_interval(int(better.sum()), N))
    assert up.interval[0] < better.mean() < up.interval[1]
    text = render(out)
    assert f"[{100 * up.interval[0]:.2f}, {100 * up.interval[1]:.2f}]{MARK}" in text
    assert "differs from the row 'reference' at 5% (exact McNemar" in text and "Holm" in text
    assert "$^\\dagger$" in render(out, "latex") and MARK in render(out, "csv")
    # Against another reference row, by name; a name that is no row is refused with the rows listed.
    assert annotate(table, points.get, reference="better").rows[0][1].mark == MARK
    with pytest.raises(ValueError, match="'worse' is no row of this table; its rows: reference, better, same"):
        annotate(table, points.get, reference="worse")


def test_points_pair_by_index_and_seeds_pool():
    rng = np.random.default_rng(1)
    order = rng.permutation(N)
    seeds_a = [rng.random(N) < 0.5 for _ in range(3)]
    # Row b gains 30 points and loses 18 per seed: one seed is not significant (p 0.11), three pooled are (p 0.003).
    seeds_b = [flipped(flipped(a, 30, rng, True), 18, rng, False) for a in seeds_a]
    table, points = runs_table({"a": seeds_a, "b": seeds_b}, order)
    assert annotate(table, points.get).rows[1][1].mark == MARK
    single, single_points = runs_table({"a": seeds_a[:1], "b": seeds_b[:1]}, order)
    assert annotate(single, single_points.get).rows[1][1].mark == ""
    # The same points in another order in row b's runs: pairing is by test point, not by position.
    reordered = {run: RunPoints({k: (i[::-1], v[::-1]) for k, (i, v) in p.metrics.items()}) if run.startswith("b")
                 else p for run, p in points.items()}
    assert annotate(table, reordered.get).rows[1][1].mark == MARK
    # Several seeds: the interval is the t interval over the seeds' accuracies.
    cell = annotate(table, points.get).rows[0][1]
    assert cell.interval == pytest.approx(seeds_interval(cell.mean, cell.std, 3))


def test_runs_without_per_point_results_are_left_untested_and_said_so():
    rng = np.random.default_rng(2)
    table, points = runs_table({"a": [rng.random(N) < 0.5], "b": [rng.random(N) < 0.7]}, np.arange(N))
    del points["b-0"]
    out = annotate(table, points.get)
    assert out.rows[1][1].mark == "" and out.rows[1][1].interval is None
    assert "1 comparison(s) untested: runs without per-point results" in out.notes[-1]


def test_intervals_cover_the_truth_at_their_stated_rate():
    rng = np.random.default_rng(3)
    # Exact binomial intervals are conservative: at least 95% coverage, here of an accuracy of 0.6 on 300 points.
    covered = [lo <= 0.6 <= hi for lo, hi in (points_interval(int((rng.random(300) < 0.6).sum()), 300)
                                              for _ in range(1000))]
    assert 0.95 <= np.mean(covered) <= 0.99
    # t intervals over 3 seeds: 95% when the seeds' accuracies are normal around the truth (0.4, sd 0.02).
    draws = rng.normal(0.4, 0.02, size=(4000, 3))
    covered = [lo <= 0.4 <= hi for lo, hi in (seeds_interval(d.mean(), d.std(ddof=1), 3) for d in draws)]
    assert 0.94 <= np.mean(covered) <= 0.96


def test_the_paired_test_holds_its_level_under_no_difference():
    rng = np.random.default_rng(4)
    # Two models that agree on most points and each flip 5% at random: no real difference.
    rejections = 0
    for _ in range(500):
        disagree = rng.random(N) < 0.1
        only_a = int((disagree & (rng.random(N) < 0.5)).sum())
        rejections += mcnemar(only_a, int(disagree.sum()) - only_a) < 0.05
    assert rejections / 500 <= 0.06


def test_holm_adjusts_step_down():
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([]) == []
