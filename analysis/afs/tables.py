"""AFS's tables from a sweep's MLflow runs (Liu & Zhao): Table 1 (extractors by eps, with Delta_z), Tables 2 and
3 (mergers by alpha and by stack), the trade-off of Tables 4 and 5, and Table 6 (size and accuracy of the ablations)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from analysis.afs.runs import (
    ACCURACY_ROWS,
    MISSING,
    cell_or_missing,
    dataset_of,
    extractor_runs,
    merger_label,
    merger_runs,
    single_label,
)
from analysis.afs.selection import CONVEX_TOLERANCE, concave_range
from analysis.cells import Cell, Table, aggregate
from analysis.runs import metric_label, only_value, resolve_metric
from runstore.reader import SweepRuns, column

# Sec. 3.4: AFS against other methods, Table 4 on CIFAR-10 and Table 5 on CIFAR-100.
TRADEOFF_TABLES = {"cifar10": ("Table 4", "CIFAR-10"), "cifar100": ("Table 5", "CIFAR-100")}
TRADEOFF_PGD = "best/pgd20"
PGD_AT_EPS = 8  # the single network that is Tables 4/5's PGD-AT row


def accuracy_table(title: str, df: pd.DataFrame, by: str, labels: dict, notes: list[str]) -> Table:
    """Rows Clean / PGD-10 / PGD-20 (those logged), one column per value of ``by`` (mean over seeds)."""
    rows: list[list[str | Cell]] = []
    for attack in ACCURACY_ROWS:
        metric = f"best/{attack}"
        if f"metrics.{metric}" not in df:
            continue
        cells = aggregate(df, [by], metric)
        rows.append([metric_label(metric).removesuffix(" (best checkpoint)"),
                     *(cells.get((value,), MISSING) for value in labels)])
    return Table(title, ["", *labels.values()], rows, notes)


def table1(sweep: SweepRuns) -> Table:
    """Table 1: accuracy and robustness (at 8/255) of every extractor, by its training eps."""
    df = extractor_runs(sweep)
    labels = {i: f"{i}/255" for i in sorted(df["extractor"].unique())}
    # Params keep 6 significant digits (8/255 reads back as 0.0313725): the nearest k/255 at 3 significant digits.
    eval_eps = ", ".join(f"{255 * e:.3g}/255" for e in sorted(df["params.eval_eps"].astype(float).unique()))
    return accuracy_table(f"Table 1. Extractors by training eps: accuracy (%) at {eval_eps}, selected checkpoint",
                          df, "extractor", labels, [sweep.summary()])


def delta_z(sweep: SweepRuns) -> dict[int, float]:
    """Mean Delta_z (selected checkpoint) per extractor, over seeds."""
    df = extractor_runs(sweep).dropna(subset=["metrics.best/delta_z"])
    return df.groupby("extractor")["metrics.best/delta_z"].mean().sort_index().to_dict()


def selected_extractors(sweep: SweepRuns) -> list[int]:
    """The extractors the Delta_z concavity rule keeps (:func:`analysis.afs.selection.concave_range`)."""
    values = delta_z(sweep)
    return concave_range(list(values), list(values.values()))


def delta_z_summary(sweep: SweepRuns) -> str:
    values = delta_z(sweep)
    chosen = selected_extractors(sweep)
    listing = ", ".join(f"{i}/255: {v:.3g}" for i, v in values.items())
    return (f"Delta_z (selected checkpoint) by training eps: {listing}\nconcave over eps {chosen[0]}..{chosen[-1]}/255 "
            f"(no slope rising by more than {CONVEX_TOLERANCE:.0%} of the largest |slope|)")


def table2(sweep: SweepRuns, mask: str | None = None) -> Table:
    """Table 2: mergers of one stack by alpha, at their selected checkpoint (paper preset: epoch 5 of 7)."""
    df, mask = only_value(merger_runs(sweep), "params.mask", mask)
    df, mode = only_value(df, "params.alpha_mode")
    labels = {a: f"{a:g}" for a in sorted(df["params.alpha"].unique())}
    return accuracy_table(f"Table 2. Mergers of stack {mask} by alpha ({mode}): accuracy (%), selected checkpoint", df,
                          "params.alpha", labels, [sweep.summary()])


def table3(sweep: SweepRuns, alpha: float | None = None) -> Table:
    """Table 3: mergers of one alpha by stacking mask, at their selected checkpoint (paper preset: epoch 5 of 7)."""
    df, alpha = only_value(merger_runs(sweep), "params.alpha", alpha)
    labels = {m: m for m in sorted(df["params.mask"].unique(), key=lambda m: (m.count("1"), m))}
    return accuracy_table(f"Table 3. Mergers by stack (alpha {alpha:g}): accuracy (%), selected checkpoint", df,
                          "params.mask", labels, [sweep.summary()])


# The rows of Tables 4 and 5 that are other methods (the paper cites them; here, runs of sweeps/afs_comparison.py and
# sweeps/baselines.py), named as the paper names them.
OTHER_METHODS = {("fat", "trades"): "FAT for TRADES [20]", ("fat", "at"): "FAT [20]", ("tla", ""): "TLA [11]",
                 ("lbgat", ""): "LBGAT+TRADES [4]", ("baseline", "trades"): "TRADES [19]",
                 ("baseline", "pgd_at"): "PGD-AT [13]"}


def other_label(run: pd.Series) -> str | None:
    """A run's row among the other methods, or None for a run that is none of them."""
    method = run.get("tags.method")
    kind = {"fat": run.get("params.variant"), "baseline": run.get("params.training")}.get(method, "")
    return OTHER_METHODS.get((method, kind if isinstance(kind, str) else ""))


def other_runs(sweeps: Sequence[SweepRuns]) -> pd.DataFrame:
    """The finished runs of the other methods in ``sweeps``, each with its row ``label``."""
    frames = [sweep.runs.assign(label=sweep.runs.apply(other_label, axis=1)).dropna(subset=["label"])
              for sweep in sweeps if len(sweep.runs)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def points(merger: SweepRuns | None, extractors: SweepRuns | None,
           others: Sequence[SweepRuns] = ()) -> tuple[pd.DataFrame, str, str | None]:
    """One row per other method (``others``), single extractor and merger setting: ``label``, ``kind``, mean
    ``clean``, ``pgd`` (PGD-20, NaN where not logged), ``robust`` and ``tradeoff`` (the mean of clean and robust, per
    run); the robust metric: AutoAttack where every sweep ran it; and the dataset of all of them
    (:func:`dataset_of`)."""
    singles = extractor_runs(extractors) if extractors is not None else pd.DataFrame()
    mergers = merger_runs(merger) if merger is not None else pd.DataFrame()
    rest = other_runs(others)
    dataset = dataset_of(singles, mergers)
    if dataset is not None and len(rest) and {str(d) for d in column(rest, "params.dataset")} != {dataset}:
        found = ", ".join(sorted({str(d) for d in column(rest, "params.dataset")}))
        raise ValueError(f"the --other-sweep runs trained on {found}, the mergers on {dataset}: pass sweeps of the "
                         "same dataset (sweeps/afs_comparison.py --primary, or its smoke preset for the smoke mergers)")
    dataset = dataset or dataset_of(rest)
    robust = resolve_metric(None, singles, mergers, rest)
    parts = [rest.assign(kind="other")]
    if len(singles):
        singles = singles.sort_values("extractor")
        parts.append(singles.assign(label=[f"single eps={i}/255" for i in singles["extractor"]], kind="single"))
    if len(mergers):
        mergers = mergers.sort_values(["params.mask", "params.alpha"])
        parts.append(mergers.assign(label=mergers.apply(merger_label, axis=1), kind="merger"))
    both = pd.concat([part for part in parts if len(part)], ignore_index=True)
    both = both.assign(clean=both["metrics.best/clean"], pgd=column(both, f"metrics.{TRADEOFF_PGD}"),
                       robust=both[f"metrics.{robust}"])
    both["tradeoff"] = (both["clean"] + both["robust"]) / 2
    # One row per model, its runs (seeds) as lists, in the order above.
    values = ["clean", "pgd", "robust", "tradeoff"]
    return both.groupby(["kind", "label"], sort=False)[values].agg(list).reset_index(), robust, dataset


def tradeoff(merger: SweepRuns | None, extractors: SweepRuns | None, others: Sequence[SweepRuns] = ()) -> Table:
    """The trade-off of Tables 4 (CIFAR-10) and 5 (CIFAR-100): clean, PGD-20 and robust accuracy (AutoAttack where
    logged) and the mean of clean and robust, of the other methods (``others``: FAT, TLA, LBGAT, TRADES, PGD-AT
    runs), the single extractors and the mergers. The title names the paper's table and the dataset from the runs'
    ``dataset``; other data (the smoke presets') gets a title without a number."""
    frame, robust, dataset = points(merger, extractors, others)
    name = metric_label(robust).removesuffix(" (best checkpoint)")
    # Where the robust metric is PGD-20 itself (no AutoAttack logged), it is not shown twice.
    pgd = [] if robust == TRADEOFF_PGD else [metric_label(TRADEOFF_PGD).removesuffix(" (best checkpoint)")]
    rows = [[row.label, *(cell_or_missing(v) for v in (row.clean, *([row.pgd] if pgd else []), row.robust,
                                                        row.tradeoff))] for row in frame.itertuples()]
    notes = [sweep.summary() for sweep in (*others, merger, extractors) if sweep is not None]
    if not robust.endswith("autoattack"):
        notes.append(f"no AutoAttack in these runs: the trade-off uses {name}")
    number, data = TRADEOFF_TABLES.get(dataset, (None, dataset))
    if number is not None and f"single eps={PGD_AT_EPS}/255" in set(frame["label"]):
        notes.append(f"PGD-AT: single eps={PGD_AT_EPS}/255, the paper's PGD-AT at 8/255 (Sec. 3.4), on the recipe of "
                     "the stacked networks")
    if others:
        notes.append("other methods: at their own training eps and recipe (sweeps/afs_comparison.py), the model their "
                     "authors' code keeps: the last epoch's (FAT, LBGAT), the best PGD checkpoint (TLA, fine-tuned "
                     "from a PGD-AT network of Madry et al.'s recipe)")
    title = f"Trade-off{f' on {data}' if data else ''} (mean of clean and {name} accuracy, %)"
    return Table(f"{number}. {title}" if number else title, ["model", "Clean", *pgd, name, "Trade-off"], rows, notes)


def table6(extractors: SweepRuns | None = None, mergers: SweepRuns | None = None, ablation: SweepRuns | None = None,
           baseline_eps: int = 8) -> Table:
    """Table 6: parameters (M), MACs (G) per image, clean and PGD-20 accuracy of the baseline (the extractor at
    ``baseline_eps``), the single-network ablations (every run of ``ablation``, sweeps/afs_ablation.py: random eps,
    a larger model) and every merger setting, each at its selected checkpoint (the notes give each sweep's protocol).
    Each part is optional; a missing one is named in the notes."""
    parts, notes = [], []
    if extractors is not None:
        singles = extractor_runs(extractors)
        singles = singles[singles["extractor"] == baseline_eps]
        parts.append(singles.assign(label=["Baseline " + single_label(row) for _, row in singles.iterrows()]))
        notes.append(extractors.summary())
    if ablation is not None:
        singles = extractor_runs(ablation).sort_values("params.model")
        parts.append(singles.assign(label=[single_label(row) for _, row in singles.iterrows()]))
        notes.append(ablation.summary())
    else:
        notes.append("no random-eps or large-model rows: run sweeps/afs_ablation.py and pass --ablation-sweep")
    if mergers is not None:
        merged = merger_runs(mergers).sort_values(["params.mask", "params.alpha"])
        parts.append(merged.assign(label=merged.apply(merger_label, axis=1)))
        notes.append(mergers.summary())
    if not any(len(part) for part in parts):
        raise ValueError("Table 6 has no rows: " + "; ".join(notes))
    rows: list[list[str | Cell]] = []
    for label, group in pd.concat(parts, ignore_index=True).groupby("label", sort=False):
        first = group.iloc[0]
        rows.append([label, f"{first['metrics.model/params'] / 1e6:.2f}", f"{first['metrics.model/macs'] / 1e9:.3g}",
                     Cell.of(group["metrics.best/clean"]), Cell.of(column(group, "metrics.best/pgd20"))])
    return Table("Table 6. Cost and accuracy (%), selected checkpoints",
                 ["Setting", "Para. (M)", "MACs (G)", "Clean", "PGD-20"], rows, notes)
