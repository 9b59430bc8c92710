"""BiaMAT Fig. 3: the share of auxiliary samples the gate passes (n_high / n_aux) per epoch."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.biamat.names import HIGH_FRACTION, VARIANT_NAMES
from analysis.biamat.runs import biamat_runs, number
from analysis.figure_style import distinct_styles, legend_outside
from analysis.runs import (
    dataset_name,
    distinguishing_params,
)
from runstore.reader import SweepRuns

# How Fig. 3 names what tells its lines apart: in words, the papers' symbols, datasets by name.
SERIES_NAMES = {"params.aux_datasets": "auxiliary dataset", "params.dataset": "primary dataset",
                "params.variant": "method", "params.alpha": "α", "params.pi": "π"}


def series_label(col: str, value: object) -> str:
    if col in ("params.aux_datasets", "params.dataset"):
        return dataset_name(value)
    if col == "params.variant":
        return VARIANT_NAMES.get(str(value), str(value))
    name = SERIES_NAMES.get(col, col.removeprefix("params."))
    return f"{name} = {number(value) if isinstance(value, float) else value}"


def fig3(sweep: SweepRuns, key: str = HIGH_FRACTION) -> Figure:
    """Fig. 3: ``key`` per epoch, one line per auxiliary dataset (or per whatever else differs between the gated
    runs), averaged over seeds with a +-std band. Runs of both variants get one panel each (the pi ablation's twelve
    lines would not read on one axis); every line has its own colour and marker, the same in every panel, and one
    legend stands to the right of the panels. Built on a bare ``Figure`` (Agg when saved to PNG), not pyplot, so no
    global backend or figure registry is touched."""
    df = biamat_runs(sweep.runs)
    history = sweep.history(key, df["run_id"])
    if history.empty:
        raise ValueError(f"no {key!r} history in the finished gated BiaMAT trials: {sweep.summary()}")
    label_cols = distinguishing_params(df, prefer=("aux_datasets", "dataset", "variant", "alpha", "pi"))
    label_cols = label_cols or ["params.aux_datasets"]
    panel_col = "params.variant" if "params.variant" in label_cols and len(label_cols) > 1 else None
    series_cols = [c for c in label_cols if c != panel_col]
    history = history.merge(df[["run_id", *label_cols]], on="run_id")
    # MLflow's steps are 0-based epochs; the figure counts from 1, as the progress lines, the tables and UIAT's do.
    history = history.assign(step=history["step"] + 1)

    series = sorted(history[series_cols].drop_duplicates().itertuples(index=False, name=None))
    # An ordered hyperparameter (pi, alpha) reads best along a sequential colour map, datasets on distinct hues.
    ordered = len(series_cols) == 1 and pd.api.types.is_numeric_dtype(history[series_cols[0]])
    styles = dict(zip(series, distinct_styles(len(series), "viridis" if ordered else None)))
    panels = sorted(history[panel_col].unique()) if panel_col else [None]
    epochs = sorted(history["step"].unique())
    figure = Figure(figsize=(1.6 + 3.6 * len(panels), 3.4), layout="constrained")
    axes = figure.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        runs_of_panel = history if panel is None else history[history[panel_col] == panel]
        for values, runs in runs_of_panel.groupby(series_cols, sort=True):
            curve = runs.groupby("step")["value"].agg(["mean", "std", "count"])
            colour, marker = styles[values]
            label = ", ".join(series_label(c, v) for c, v in zip(series_cols, values))
            ax.plot(curve.index, curve["mean"], color=colour, marker=marker, markersize=4, label=label)
            if curve["count"].max() > 1:
                ax.fill_between(curve.index, curve["mean"] - curve["std"], curve["mean"] + curve["std"],
                                color=colour, alpha=0.15, linewidth=0)
        if panel is not None:
            ax.set_title(VARIANT_NAMES.get(panel, panel), fontsize=10)
        ax.set_xlabel("epoch")
        if len(epochs) <= 12:  # a tick per epoch (a one-epoch smoke run would get fractional ticks otherwise)
            ax.set_xticks(epochs)
            ax.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are epochs
        ax.grid(alpha=0.3)
    if key == HIGH_FRACTION:
        axes[0].set_ylabel(r"$n_\mathrm{high} / n_\mathrm{aux}$ (share above $\omega$)")
        axes[0].set_ylim(0, 1.02)
        what = r"Share of auxiliary samples above the threshold, $n_\mathrm{high} / n_\mathrm{aux}$"
    else:
        axes[0].set_ylabel(key)
        what = f"{key} per epoch"
    constant = [series_label(c, df[c].iloc[0]) for c in ("params.variant", "params.pi")
                if c in df and c not in label_cols and df[c].nunique() == 1]
    primary = ", ".join(dataset_name(d) for d in sorted(map(str, df["params.dataset"].unique())))
    seeds = history.groupby(label_cols)["run_id"].nunique().max()
    spread = f"mean over {seeds} seeds, band ±1 std" if seeds > 1 else "one seed"
    figure.suptitle(f"Fig. 3. {what}\n(primary {', '.join([primary, *constant])}; {spread})", fontsize=9)
    title = SERIES_NAMES.get(series_cols[0]) if len(series_cols) == 1 and not ordered else None
    legend_outside(figure if panel_col else axes[0], title=title)
    return figure


def fig4(client, run_id: str, aux_class: int, checkpoint: str = "best") -> Figure:
    """Appendix Fig. 4: an auxiliary class's 10 most confident training images (top row) and its 10 least confident
    (bottom row) under a run's trained model, each titled with its primary confidence, from what
    ``sweeps/biamat_gate_pass.py --figure-class`` logged into the run (``gate_pass/<checkpoint>_class_<N>.npz``)."""
    import tempfile

    import numpy as np

    path = f"gate_pass/{checkpoint}_class_{aux_class}.npz"
    if not any(f.path == path for f in client.list_artifacts(run_id, "gate_pass")):
        raise ValueError(f"run {run_id} has no {path}: run `python sweeps/biamat_gate_pass.py --run {run_id} "
                         f"--checkpoint {checkpoint} --figure-class {aux_class}` first")
    with tempfile.TemporaryDirectory() as directory:
        arrays = dict(np.load(client.download_artifacts(run_id, path, directory)))
    figure = Figure(figsize=(12, 3.2))
    rows = (("highest", "most confident"), ("lowest", "least confident"))
    axes = figure.subplots(2, max(len(arrays["highest"]), len(arrays["lowest"])), squeeze=False)
    for r, (key, label) in enumerate(rows):
        for c, ax in enumerate(axes[r]):
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(arrays[key]):
                ax.imshow(arrays[key][c].transpose(1, 2, 0))
                ax.set_title(f"{arrays[f'{key}_confidence'][c]:.3f}", fontsize=8)
        axes[r][0].set_ylabel(label, fontsize=9)
    figure.suptitle(f"Auxiliary class {aux_class}: the 10 most and least confident training images "
                    f"(primary confidence; omega = {float(arrays['omega']):.3f})", fontsize=10)
    return figure
