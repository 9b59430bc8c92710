"""What BiaMAT's tables share: the BiaMAT trials of a sweep, the baseline each is compared with, the paper's
order of datasets, and the labels LaTeX sets its own way."""

from __future__ import annotations

from collections.abc import Hashable

import pandas as pd

from analysis.biamat.names import AUX_ORDER, BASELINE_TRAINING, PRIMARY_ORDER
from analysis.cells import Cell, bold_best
from analysis.render import Label
from analysis.runs import (
    dataset_name,
    recipe_differences,
)
from runstore.reader import SweepRuns, column

Y_TILDE = Label("ỹ", r"$\tilde{y}$")  # every auxiliary sample keeps its own label (labels=aux)
Y_ER = Label("y^ER", r"$y^{ER}$")  # every auxiliary sample gets the uniform label (labels=uniform, OAT)
LABEL_ROWS = {"aux": Y_TILDE, "uniform": Y_ER}
HIGH_HEADER = Label("n_high/n_aux (last epoch)", r"$n_{\mathrm{high}}/n_{\mathrm{aux}}$ (last epoch)")


def biamat_runs(df: pd.DataFrame, labels: str | None = "gated") -> pd.DataFrame:
    """BiaMAT trials of a frame that may also hold baselines; ``labels`` keeps one routing mode (pi and alpha only
    mean something for the gated one)."""
    keep = column(df, "tags.method") == "biamat"
    if labels is not None:
        keep &= column(df, "params.labels") == labels
    return df[keep]


def number(value: float) -> str:
    """Hyperparameters as the paper prints them: 0.50, 1.0 -> 1.00, but 0.525 keeps its third digit."""
    return f"{value:.2f}" if round(value, 2) == value else f"{value:g}"


def setting(df: pd.DataFrame) -> str:
    pairs = df[["params.dataset", "params.aux_datasets"]].drop_duplicates()
    return "; ".join(f"primary {dataset_name(d)}, auxiliary {dataset_name(a)}" for d, a in pairs.itertuples(index=False))


def matched_baseline(df: pd.DataFrame, source: SweepRuns, variant: str, dataset: str) -> pd.DataFrame:
    """The baseline trials of ``source`` that a table compares BiaMAT ``df`` with: trained as the variant's baseline
    on the same primary set, with the same recipe (or none found: an empty frame). ValueError names the differences
    of a baseline trained another way."""
    base = source.runs
    base = base[(column(base, "tags.method") == "baseline") & (column(base, "params.dataset") == dataset)
                & (column(base, "params.training") == BASELINE_TRAINING[variant])]
    differences = recipe_differences(df, base) if len(base) else []
    if differences:
        # A baseline trained another way (schedule, weight decay, attack BatchNorm, selection) would make the
        # comparison say nothing about the auxiliary data.
        raise ValueError(f"the {BASELINE_TRAINING[variant]} baseline of sweep {source.name!r} was not trained with the "
                         f"recipe of the BiaMAT rows: {'; '.join(differences)}. Train it with that recipe, e.g. "
                         "`python sweeps/baselines.py --preset biamat-paper` for the paper preset (Table 2's: "
                         "--preset biamat-main-<primary>-paper)")
    return base


def paper_order(aux: str) -> tuple[int, str]:
    """Tables 1 and 2's order: the paper's auxiliary sets first, in its order, then any other alphabetically."""
    return (AUX_ORDER.index(aux), "") if aux in AUX_ORDER else (len(AUX_ORDER), aux)


def primary_order(dataset: str) -> tuple[int, str]:
    """Tables 2 and 11's order of the primary datasets: the paper's, then any other alphabetically."""
    return (PRIMARY_ORDER.index(dataset), "") if dataset in PRIMARY_ORDER else (len(PRIMARY_ORDER), str(dataset))


def bold_best_per_column(rows: dict[Hashable, dict[str, Cell]]) -> dict[Hashable, dict[str, Cell]]:
    """``rows`` (row -> metric -> Cell) with each metric's column marked by :func:`analysis.runs.bold_best`."""
    columns = {m: bold_best({row: cells[m] for row, cells in rows.items() if m in cells})
               for m in {m for cells in rows.values() for m in cells}}
    return {row: {m: columns[m][row] for m in cells} for row, cells in rows.items()}
