"""What AFS's tables and figures share: the extractor and merger trials of a sweep, how a merger is labelled, and
the extractor sweep a merger sweep stacked."""

from __future__ import annotations

import pandas as pd

from analysis.cells import Cell
from analysis.runs import only_value
from runstore.reader import SweepRuns, column, load_sweep

EXTRACTOR_EXPERIMENT = "afs-extractors"  # as trainables/methods/configs.py names it (analysis does not import trainables)
ACCURACY_ROWS = ("clean", "pgd10", "pgd20")
MISSING = "-"


def extractor_runs(sweep: SweepRuns) -> pd.DataFrame:
    """The extractor trials, with ``extractor`` = training eps in 255ths (0..9)."""
    df = sweep.runs[column(sweep.runs, "tags.method") == "afs_extractor"].copy()
    if df.empty:
        raise ValueError(f"no finished AFS extractor trials: {sweep.summary()}")
    df["extractor"] = (df["params.eps"].astype(float) * 255).round().astype(int)
    return df


def merger_runs(sweep: SweepRuns) -> pd.DataFrame:
    df = sweep.runs[column(sweep.runs, "tags.method") == "afs"]
    if df.empty:
        raise ValueError(f"no finished AFS merger trials: {sweep.summary()}")
    # Masks without a leading zero ("100010001") come back from runs_frame as numbers.
    return df.astype({"params.mask": str})


def merger_label(row: pd.Series) -> str:
    return f"AFS {row['params.mask']} alpha={row['params.alpha']:.3g}"


def dataset_of(*frames: pd.DataFrame) -> str | None:
    """The one dataset the runs trained on (None where they do not say); ValueError for mergers and extractors of
    different data, which no comparison may mix."""
    found = sorted({str(v) for df in frames for v in column(df, "params.dataset").dropna()})
    if len(found) > 1:
        raise ValueError(f"these runs trained on different datasets ({', '.join(found)}): pass the extractor sweep "
                         "the mergers stacked (--extractor-sweep, or leave it out to use theirs)")
    return found[0] if found else None


def cell_or_missing(values: list[float]) -> Cell | str:
    """The cell of a model's runs, or MISSING where none logged the metric."""
    return Cell.of(values) if pd.Series(values, dtype=float).notna().any() else MISSING


def single_label(row: pd.Series) -> str:
    """A single network by model and training eps: ``wrn-28-10 eps 8/255``, ``wrn-28-10 eps U[3, 8]/255``."""
    drawn = row.get("params.train_eps_range")  # "low,high"; empty, or NaN for runs that predate the param
    if isinstance(drawn, str) and drawn:
        return f"{row['params.model']} eps U[{', '.join(f'{float(e) * 255:.3g}' for e in drawn.split(','))}]/255"
    return f"{row['params.model']} eps {row['extractor']}/255"


def extractors_of(merger: SweepRuns, name: str | None, tracking_uri: str | None) -> SweepRuns:
    """The extractor sweep of a merger sweep: ``name``, or the one its mergers were trained on."""
    if name is None:
        _, name = only_value(merger_runs(merger), "params.extractor_sweep")
    return load_sweep(str(name), experiment=EXTRACTOR_EXPERIMENT, tracking_uri=tracking_uri)
