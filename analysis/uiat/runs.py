"""What UIAT's tables and figures share: each run labelled with the paper's name of its method, in the paper's
order, and the runs of several sweeps in one frame."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from analysis.cells import aggregate
from analysis.runs import metric_label, resolve_metric
from runstore.reader import SweepRuns, column

MISSING = "-"
SWITCHES = ("uag", "fr", "iam")
BASELINE_NAMES = {"standard": "Natural Training", "pgd_at": "PGD-AT", "trades": "TRADES"}
OTHER_METHOD_NAMES = {"mart": "MART", "hat": "HAT"}
SINGLE_STEP_NAMES = {"n_fgsm": "N-FGSM", "rs_fgsm": "RS-FGSM", "gradalign": "GradAlign"}
# The paper's row order (Tables 1, 2 and 5); other labels follow alphabetically.
METHOD_ORDER = ["Natural Training", "PGD-AT", "TRADES", "MART", "HAT", "IAT", "UIAT", "UIAT (One-off)",
                *(f"{name}{plus}" for name in SINGLE_STEP_NAMES.values() for plus in ("", " + UIAT"))]
NATURAL = "best/clean"


def in_method_order(names: Iterable[str]) -> list[str]:
    """Distinct method names in the paper's order (:data:`METHOD_ORDER`), others after them alphabetically."""
    return sorted(set(names), key=lambda name: (name not in METHOD_ORDER,
                                                METHOD_ORDER.index(name) if name in METHOD_ORDER else 0, name))


def is_oneoff(value: object) -> bool:
    return str(value) == "True"  # MLflow stores the bool param as a string


def single_step_name(row: pd.Series, attack: str) -> str:
    """``N-FGSM``, ``RS-FGSM``, ``GradAlign``, or ``FGSM`` for GradAlign without its regulariser."""
    lam = row.get("params.align_lam" if row.get("tags.method") == "uiat" else "params.lam")
    return "FGSM" if attack == "gradalign" and lam is not None and float(lam) == 0 else SINGLE_STEP_NAMES[attack]


def method_label(row: pd.Series) -> str:
    """The paper's name of a run's method: ``TRADES``, ``MART``, ``HAT``, ``IAT``, ``UIAT``, ``UIAT (One-off)``,
    ``N-FGSM``, ``N-FGSM + UIAT`` (Table 5: one-off UIAT without the feature term on a single-step attack); UIAT runs
    with other components name them, e.g. ``UIAT [uag+iam]``."""
    method = row.get("tags.method")
    if method == "baseline":
        return BASELINE_NAMES.get(row["params.training"], str(row["params.training"]))
    if method in OTHER_METHOD_NAMES:
        return OTHER_METHOD_NAMES[method]
    if method == "single_step":
        return SINGLE_STEP_NAMES[row["params.variant"]]
    if method == "gradalign":
        return single_step_name(row, "gradalign")
    if method != "uiat":
        return str(method)
    components, oneoff = row["params.components"], is_oneoff(row.get("params.oneoff"))
    attack = row.get("params.training_attack")
    if isinstance(attack, str) and attack != "pgd":  # runs from before the field have none: PGD
        usual = oneoff and components == "uag"  # Table 5's setting: one-off, beta = 0
        return f"{single_step_name(row, attack)} + UIAT" + ("" if usual else f" [{components}{', one-off' * oneoff}]")
    usual = "uag+fr" if oneoff else "uag+fr+iam"
    name = "IAT" if components == "none" and not oneoff else "UIAT" if components == usual else f"UIAT [{components}]"
    return f"{name} (One-off)" if oneoff else name


def uiat_runs(df: pd.DataFrame, oneoff: bool | None = None) -> pd.DataFrame:
    keep = column(df, "tags.method") == "uiat"
    if oneoff is not None:
        keep &= column(df, "params.oneoff").map(is_oneoff) == oneoff
    return df[keep]


def accuracy_columns(df: pd.DataFrame, metric: str | None, *frames: pd.DataFrame) -> list[str]:
    """Natural, PGD-20 (when logged and not already the robust column) and the robust metric."""
    robust = resolve_metric(metric, df, *frames)
    columns = [NATURAL] + (["best/pgd20"] if "metrics.best/pgd20" in df and robust != "best/pgd20" else [])
    return [*columns, robust]


def paper_headers(metrics: list[str]) -> tuple[list[str], list[str]]:
    """The columns as UIAT names them (Natural, PGD-20, AutoAttack) and a note naming their checkpoint; columns from
    different checkpoints (a ``--metric last/...``) keep the checkpoint in their own header instead."""
    tags = {m.partition("/")[0] for m in metrics}
    one = len(tags) == 1 and tags <= {"best", "last"}
    headers = [metric_label(m, checkpoint=not one, clean="Natural") for m in metrics]
    return headers, [f"accuracy of the {tags.pop()} checkpoint"] if one else []


def datasets(df: pd.DataFrame) -> str:
    pairs = df[["params.dataset", "params.model"]].drop_duplicates()
    return "; ".join(f"{d}, {m}" for d, m in pairs.itertuples(index=False))


def lambda_cells(sweep: SweepRuns, metric: str | None) -> tuple[pd.DataFrame, list[str], dict[str, dict]]:
    df = uiat_runs(sweep.runs)
    if df.empty:
        raise ValueError(f"no finished UIAT trials: {sweep.summary()}")
    metrics = [NATURAL, resolve_metric(metric, df)]
    return df, metrics, {m: aggregate(df, ["params.lam"], m) for m in metrics}


EPOCH_TIME = "epoch_time_s"  # seconds of a training pass (no evaluation), logged per epoch by the runtime


def all_runs(sweeps: Sequence[SweepRuns], epoch_times: bool = False) -> pd.DataFrame:
    """The finished trials of every sweep, each labelled with its method's name in the paper (``method``) and, with
    ``epoch_times``, its mean seconds per training epoch (``epoch_seconds``; missing where it logged none)."""
    frames = []
    for s in sweeps:
        if not len(s.runs):
            continue
        if epoch_times:
            means = s.history(EPOCH_TIME, s.runs["run_id"]).groupby("run_id")["value"].mean()
            frames.append(s.runs.assign(epoch_seconds=s.runs["run_id"].map(means)))
        else:
            frames.append(s.runs)
    if not frames:
        raise ValueError("no finished trials in " + "; ".join(s.summary() for s in sweeps))
    df = pd.concat(frames, ignore_index=True)
    return df.assign(method=[method_label(row) for _, row in df.iterrows()])
