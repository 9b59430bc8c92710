"""AFS's figures drawn from logged accuracies alone: Fig. 3 (Delta_z by training eps, the concave range marked)
and the clean-vs-robust scatter of Fig. 1's idea. The figures drawn from logged models are
``analysis/afs/model_figures.py``'s."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.figure import Figure

from analysis.afs.tables import delta_z, points, selected_extractors
from analysis.figure_style import distinct_styles, legend_outside
from analysis.runs import metric_label
from runstore.reader import SweepRuns


def fig_delta_z(sweep: SweepRuns) -> Figure:
    """Fig. 3: Delta_z against the training eps, the concave (selected) range shaded."""
    values = delta_z(sweep)
    chosen = selected_extractors(sweep)
    figure = Figure(figsize=(4.5, 3.2), layout="constrained")
    ax = figure.subplots()
    ax.axvspan(chosen[0] - 0.3, chosen[-1] + 0.3, color="tab:green", alpha=0.15, label="selected (concave)")
    ax.plot(list(values), list(values.values()), marker="o", color="tab:blue")
    ax.set_xticks(list(values))
    ax.set_xlabel("training eps (/255)")
    ax.set_ylabel(r"$\Delta_z$ at 8/255")
    ax.set_title(f"Fig. 3: {sweep.name}", fontsize=9)
    ax.legend(fontsize=8)
    return figure


def scatter(merger: SweepRuns | None, extractors: SweepRuns | None, others: Sequence[SweepRuns] = ()) -> Figure:
    """Fig. 1's idea: clean against robust accuracy (means over seeds). The single extractors form one line in eps
    order, each point drawn as its training eps (a digit marker, so no label can overlap another); every merger
    setting is its own colour and hollow marker, named in a legend outside the axes; markers shrink down the list,
    so that mergers at the same point stay visible one inside the other; the other methods (``others``: FAT, TLA,
    LBGAT, TRADES, PGD-AT runs) are filled markers, named in the legend."""
    frame, robust, _ = points(merger, extractors, others)
    frame = frame.assign(x=[100 * pd.Series(v).mean() for v in frame["robust"]],
                         y=[100 * pd.Series(v).mean() for v in frame["clean"]])
    figure = Figure(figsize=(7, 4.2), layout="constrained")
    ax = figure.subplots()
    singles, mergers, rest = (frame[frame["kind"] == kind] for kind in ("single", "merger", "other"))
    (single_colour, _), *styles = distinct_styles(len(mergers) + len(rest) + 1)
    ax.plot(singles["x"], singles["y"], color=single_colour, linewidth=0.8, alpha=0.6, zorder=1,
            label="single networks (digit = training eps, /255)")
    for row in singles.itertuples():
        eps = row.label.removeprefix("single eps=").removesuffix("/255")
        ax.plot(row.x, row.y, linestyle="none", marker=f"${eps}$", markersize=9, color=single_colour, zorder=2)
    for i, (row, (colour, marker)) in enumerate(zip(mergers.itertuples(), styles)):
        ax.plot(row.x, row.y, linestyle="none", marker=marker, markersize=13 - 6 * i / max(len(mergers) - 1, 1),
                color=colour, markerfacecolor="none", markeredgewidth=1.6, zorder=3 + i, label=row.label)
    for row, (colour, marker) in zip(rest.itertuples(), styles[len(mergers):]):
        ax.plot(row.x, row.y, linestyle="none", marker=marker, markersize=8, color=colour, label=row.label)
    ax.set_xlabel(f"{metric_label(robust).split(' (')[0]} accuracy (%)")
    ax.set_ylabel("clean accuracy (%)")
    ax.grid(alpha=0.3)
    ax.set_title("Clean against robust accuracy (best checkpoint)", fontsize=9)
    legend_outside(ax)
    return figure
