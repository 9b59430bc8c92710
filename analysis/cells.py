"""What the analysis tables are made of: a :class:`Cell` (mean and spread of a metric over seeds), the
:class:`Table` that holds them with its title and notes, and :func:`aggregate` from a sweep's runs to cells.
Rendering a Table (Markdown, CSV, LaTeX) is ``analysis/render.py``'s."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

import pandas as pd

from runstore.reader import RUNG_SCORE, STOPPED_MARK


@dataclass(frozen=True)
class Cell:
    """Mean and sample standard deviation of a metric over seeds. Accuracies are fractions, shown in percent like the
    papers (the default ``scale`` and ``spec``); another quantity sets its own (hours: ``scale=1, spec=".3g"``)."""

    mean: float
    std: float | None  # None with a single seed
    n: int
    bold: bool = False
    scale: float = 100.0
    spec: str = ".2f"
    # What stands behind the cell, for analysis/significance.py: the runs (ordered by seed) and the metric.
    runs: tuple[str, ...] = field(default=(), compare=False)
    metric: str = field(default="", compare=False)
    # Set by analysis/significance.py (``--stats``): the 95% interval and a mark for a significant difference.
    interval: tuple[float, float] | None = None
    mark: str = ""

    @classmethod
    def of(cls, values: Iterable[float], *, scale: float = 100.0, spec: str = ".2f") -> Cell:
        series = pd.Series(list(values), dtype=float).dropna()
        if series.empty:
            raise ValueError("a cell needs at least one value")
        return cls(float(series.mean()), float(series.std(ddof=1)) if len(series) > 1 else None, len(series),
                   scale=scale, spec=spec)

    def text(self, show_n: bool = False, pm: str = "±") -> str:
        out = f"{self.scale * self.mean:{self.spec}}"
        if self.std is not None:
            out += f" {pm} {self.scale * self.std:{self.spec}}"
        if self.interval is not None:
            low, high = (self.scale * bound for bound in self.interval)
            out += f" [{low:{self.spec}}, {high:{self.spec}}]"
        return out + self.mark + (f" (n={self.n})" if show_n else "")


K = TypeVar("K")  # a table's cell key


def bold_best(cells: Mapping[K, Cell]) -> dict[K, Cell]:
    """One column's cells with the highest mean in bold (ties: all), as the papers mark the best method."""
    if not cells:
        return dict(cells)
    best = max(c.mean for c in cells.values())
    return {key: replace(c, bold=c.mean == best) for key, c in cells.items()}


def aggregate(df: pd.DataFrame, by: Sequence[str], metric: str) -> dict[tuple, Cell]:
    """One :class:`Cell` per combination of the ``by`` columns, over the runs (seeds) that logged ``metric``. Only
    finished runs: a run stopped at a rung, failed or cut short has no final-protocol numbers, and its last values
    beside finished ones would make a column of two kinds (:func:`stopped_texts` shows a stopped row instead)."""
    if "status" in df and (unfinished := df.loc[df["status"] != "FINISHED", "status"]).size:
        raise ValueError(f"{len(unfinished)} of the runs did not finish ({', '.join(sorted(set(unfinished)))}): a "
                         "table never mixes truncated runs with finished ones in a column. Aggregate SweepRuns.runs "
                         "(the finished ones) and show the rows a budget stopped with stopped_texts(sweep.stopped)")
    col = f"metrics.{metric}"
    logged = df.dropna(subset=[col]) if col in df else df.iloc[0:0]
    if "params.seed" in logged:  # the runs of a cell in seed order, so two cells' runs pair by seed
        logged = logged.assign(_seed=pd.to_numeric(logged["params.seed"], errors="coerce")).sort_values("_seed")
    return {(key if isinstance(key, tuple) else (key,)): replace(
                Cell.of(group[col]), runs=tuple(group["run_id"]) if "run_id" in group else (), metric=metric)
            for key, group in logged.groupby(list(by), sort=True)}


STOPPED_NOTE = (f"{STOPPED_MARK} stopped at a rung by the sweep's budget (--budget): the row's selection score (its "
                "PGD accuracy on the selection points) at that epoch, shown in place of the final protocol's number, "
                "which it never reached; neither bolded nor compared")


def stopped_texts(stopped: pd.DataFrame, by: Sequence[str]) -> dict[tuple, str]:
    """Per combination of the ``by`` columns, what a table shows for a row that a budgeted sweep stopped at a rung
    (``SweepRuns.stopped``): the mean score there in percent, marked, and the 1-based epoch, e.g. ``31.25* (epoch
    4)``. It is text, never a :class:`Cell`, so no mean, bold or significance test takes it for a final number."""
    score = f"metrics.{RUNG_SCORE}"
    if stopped.empty or score not in stopped:
        return {}
    return {(key if isinstance(key, tuple) else (key,)):
            f"{100 * group[score].mean():.2f}{STOPPED_MARK} (epoch {int(group['metrics.epoch'].max()) + 1})"
            for key, group in stopped.dropna(subset=[score]).groupby(list(by), sort=True)}


@dataclass
class Table:
    """A table to render in any format: ``rows`` hold strings and :class:`Cell` s, ``notes`` go under it. The title
    starts with the paper's number ("Table 13. ..."), which Markdown shows and LaTeX moves into ``label``
    (``tab:<label>``, by default from the title's words): LaTeX numbers its own captions."""

    title: str
    header: list[str]
    rows: list[list[str | Cell]]
    notes: list[str] = field(default_factory=list)
    label: str | None = None

    def cells(self) -> list[Cell]:
        return [c for row in self.rows for c in row if isinstance(c, Cell)]

    def typical_n(self) -> int | None:
        """The most common number of seeds per cell; cells with another count say theirs."""
        counts = Counter(c.n for c in self.cells())
        return counts.most_common(1)[0][0] if counts else None

    def all_notes(self) -> list[str]:
        """The table's notes after a line on how many seeds stand behind each cell."""
        n = self.typical_n()
        if n is None:
            return list(self.notes)
        seeds = "1 seed per cell" if n == 1 else f"mean ± sample std over {n} seeds per cell"
        if any(c.n != n for c in self.cells()):
            seeds += " (other seed counts marked n=k)"
        return [seeds, *self.notes]

