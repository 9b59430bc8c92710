"""BiaMAT appendix Table 11: training time per method, from the epoch times the trials log."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from analysis.biamat.names import TRAINING_NAMES, VARIANT_NAMES
from analysis.biamat.runs import LABEL_ROWS, primary_order
from analysis.cells import Cell, Table
from analysis.render import compose
from analysis.runs import (
    dataset_name,
)
from runstore.reader import SweepRuns

EPOCH_TIME = "epoch_time_s"  # one epoch's training pass in seconds, evaluation excluded (trainables/runtime.py)
DEVICE_TAG = "tags.device"  # the accelerator a trial ran on, where the runtime records it
UNITS = (("h", 3600), ("min", 60), ("s", 1))


def method_of(row: pd.Series) -> tuple[int, str] | None:
    """A run's method as appendix Table 11 names it, with its place in the table (the AT family before TRADES; in
    each the baseline, naive, then gated BiaMAT), or None for a method BiaMAT's tables do not show. Naive: without the
    confidence-based selection (every auxiliary sample routed one way, ``labels=aux`` or ``uniform``)."""
    method = row.get("tags.method")
    if method == "baseline":
        training = str(row.get("params.training"))
        return 10 * (training == "trades") + (training != "standard"), TRAINING_NAMES.get(training, training)
    if method != "biamat":
        return None
    variant, labels = str(row["params.variant"]), str(row.get("params.labels", "gated"))
    name, family = VARIANT_NAMES.get(variant, variant), 10 * (variant == "trades")
    if labels in LABEL_ROWS:
        return family + 2 + list(LABEL_ROWS).index(labels), compose(name, " (naive, ", LABEL_ROWS[labels], ")")
    return family + 4, name


def table11(sweeps: Sequence[SweepRuns]) -> Table:
    """Appendix Table 11: training time per primary dataset and method, from every run's own ``epoch_time_s``
    summed over its epochs (the training passes; selection, the final protocol and checkpoints are not timed),
    mean +- std over the runs of a method. Runs of one method with another model or epoch count get a row each."""
    records, other = [], 0
    labels: dict[str, str] = {}  # plain method name -> its Label, for LaTeX (pandas keeps only the plain text)
    for sweep in sweeps:
        if sweep.runs.empty:
            continue
        seconds = sweep.history(EPOCH_TIME, sweep.runs["run_id"]).groupby("run_id")["value"].sum()
        for _, row in sweep.runs.iterrows():
            method = method_of(row)
            if method is None:
                other += 1
            elif row["run_id"] in seconds:
                model, epochs = row.get("params.model"), row.get("params.epochs")
                records.append({"dataset": row["params.dataset"], "order": method[0], "method": str(method[1]),
                                "model": "-" if pd.isna(model) else str(model),
                                "epochs": "-" if pd.isna(epochs) else f"{float(epochs):g}",
                                "seconds": seconds[row["run_id"]], "device": row.get(DEVICE_TAG)})
                labels[str(method[1])] = method[1]
    if not records:
        raise ValueError(f"no baseline or BiaMAT run logged {EPOCH_TIME!r}: " + "; ".join(s.summary() for s in sweeps))
    times = pd.DataFrame(records)
    keys = ["dataset", "order", "method", "model", "epochs"]
    groups = times.groupby(keys, sort=False)["seconds"]
    # Hours as the paper, unless a smoke run would print 0.00667 h: then minutes or seconds.
    unit, scale = next((u, 1 / s) for u, s in UNITS if times["seconds"].max() >= s or u == "s")
    recipes = times.drop_duplicates(keys).groupby(["dataset", "method"]).size()
    ordered = sorted(groups.groups, key=lambda k: (*primary_order(k[0]), k[1], str(k[3]), k[4]))
    rows: list[list[str | Cell]] = []
    for i, key in enumerate(ordered):
        dataset, _, method, model, epochs = key
        name = labels[method]
        if recipes[(dataset, method)] > 1:
            name = compose(name, f" ({model}, {epochs} epochs)")
        first = i == 0 or ordered[i - 1][0] != dataset
        cell = Cell.of(groups.get_group(key), scale=scale, spec=".3g")
        rows.append([dataset_name(dataset) if first else "", name, cell])
    recipe = "; ".join(f"{labels[m]}: {model}, {epochs} epochs" for _, _, m, model, epochs in ordered)
    timed = (f"training time: each run's {EPOCH_TIME} summed over its epochs, the training passes only (selection "
             "evaluations, the final protocol and checkpoints are not timed)")
    pooled = "a cell: mean ± std over a method's runs, its seeds and settings that leave an epoch's work alike (pi)"
    notes = [timed, pooled, f"models: {recipe}", device_note(times["device"]), *(s.summary() for s in sweeps)]
    if other:
        notes.append(f"{other} run(s) of other methods left out")
    return Table("Table 11. The training times of the models", ["Primary dataset", "Method", f"Training time ({unit})"],
                 rows, notes, label="biamat-table11")


def device_note(devices: pd.Series) -> str:
    """Which accelerators the times come from (the runs' device tag), beside the paper's."""
    paper = "the paper's times: one Tesla V100 (CUDA 10.2, cuDNN 7.6.5)"
    counts = devices.dropna().value_counts()
    if counts.empty:
        return f"device: not recorded (the runs have no 'device' tag); {paper}"
    seen = ", ".join(f"{name} ({n} run{'s' if n > 1 else ''})" for name, n in counts.items())
    missing = devices.isna().sum()
    return f"device: {seen}" + (f", {missing} runs without a device tag" if missing else "") + f"; {paper}"
