"""Choosing what a table shows from a sweep's runs: the metric, its label, the params that tell runs apart, the
recipe differences from a baseline; and loading the sweep that an analysis command names.

Analysis reads MLflow only (``runstore``): it never imports ``launch/``, ``sweeps/`` or ``trainables/`` and never
retrains. An analysis script for another paper reuses these modules rather than copying them::

    from analysis.cells import Table, aggregate
    from analysis.cli import add_source_arguments
    from analysis.render import emit
    from analysis.runs import load_from_args, metric_label, resolve_metric

    parser = argparse.ArgumentParser()
    add_source_arguments(parser)              # --sweep/--parent-run/--experiment/--tracking-uri/--format/--out
    args = parser.parse_args(argv)
    sweep = load_from_args(args)              # SweepRuns: FINISHED children in .runs, other statuses counted
    df = sweep.runs                           # columns: run_id, run_name, status, params.*, metrics.*, tags.*
    metric = resolve_metric(None, df)         # best/autoattack, else the strongest attack the sweep has
    cells = aggregate(df, ["params.eps"], metric)  # {(eps,): Cell(mean, std, n)} over seeds
    rows = [[f"{eps:g}", cells[(eps,)]] for (eps,) in sorted(cells)]
    emit(Table(f"... {metric_label(metric)} ...", ["eps", "accuracy"], rows, [sweep.summary()]), args.format, args.out)

Per-epoch curves come from :meth:`runstore.reader.SweepRuns.history`; :func:`distinguishing_params` names lines or
rows by what differs between runs; :func:`only_value` narrows a frame to one value of a column (or says which values
exist). Datasets are named as the papers name them (:func:`dataset_name`: "ImageNet", not ``imagenet32``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import pandas as pd

from runstore.reader import ATTACK_NAME, SweepNotFoundError, SweepRuns, attack_strength, load_sweep


def resolve_metric(metric: str | None, *frames: pd.DataFrame, checkpoint: str = "best") -> str:
    """The metric a table shows: ``metric`` if given (it must exist), otherwise the strongest attack under
    ``<checkpoint>/`` that every non-empty frame has (``best/autoattack`` in a full run, e.g. ``best/pgd20`` in a
    smoke run). Raises ``ValueError`` listing the metrics that exist."""
    present = [{c.removeprefix("metrics.") for c in f.columns if c.startswith("metrics.")} for f in frames if len(f)]
    common = set.intersection(*present) if present else set()
    if metric is not None:
        if metric not in common:
            raise ValueError(f"metric {metric!r} is not logged by these runs; metrics: {', '.join(sorted(common))}")
        return metric
    attacks = [(attack_strength(m.split("/", 1)[1]), m) for m in common if m.startswith(f"{checkpoint}/")]
    ranked = sorted((strength, m) for strength, m in attacks if strength is not None)
    if not ranked:
        raise ValueError(f"no attack metric under {checkpoint}/ in these runs; metrics: {', '.join(sorted(common))}")
    return ranked[-1][1]


def metric_label(metric: str, *, checkpoint: bool = True, clean: str = "Clean") -> str:
    """``best/autoattack`` -> ``AutoAttack (best checkpoint)``; ``last/pgd20`` -> ``PGD-20 (last checkpoint)``.

    A paper's column header says neither checkpoint nor "Clean" where the paper does not: ``checkpoint=False`` leaves
    the checkpoint out (the table's title or notes then say it), ``clean="Natural"`` names clean accuracy as UIAT does.
    """
    tag, _, name = metric.partition("/")
    match = ATTACK_NAME.fullmatch(name)
    if name == "autoattack":
        pretty = "AutoAttack"
    elif name == "clean":
        pretty = clean
    elif name == "fgsm":
        pretty = "FGSM"
    elif match is not None:
        pretty = f"{match.group(1).upper()}-{match.group(2)}"
    else:
        return metric
    if tag not in ("best", "last"):
        return metric
    return f"{pretty} ({tag} checkpoint)" if checkpoint else pretty


# The papers' names of the datasets this project reads (ImageNet32x32 is "ImageNet" in BiaMAT's tables); other ids
# (the synthetic sets) are shown as they are.
DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "svhn": "SVHN", "imagenet32": "ImageNet",
                 "places365_32": "Places365", "places365_64": "Places365", "imgnet100": "ImgNet100",
                 "imgnet900": "ImgNet900"}


def dataset_name(ids: Any) -> str:
    """A dataset param as the papers name it: ``imagenet32`` -> ``ImageNet``, ``svhn,cifar100`` -> ``SVHN + CIFAR-100``
    (several auxiliary sets, logged comma-joined)."""
    return " + ".join(DATASET_NAMES.get(name, name) for name in str(ids).split(","))

def only_value(df: pd.DataFrame, column: str, wanted: Any = None) -> tuple[pd.DataFrame, Any]:
    """Rows whose ``column`` equals ``wanted``; with ``wanted=None`` the column must hold a single value. Raises
    ``ValueError`` naming the values present, so a table never silently mixes, e.g., AT and TRADES runs."""
    values = sorted(df[column].dropna().unique().tolist(), key=str) if column in df else []
    name = column.split(".", 1)[-1]
    if wanted is None:
        if len(values) != 1:
            raise ValueError(f"expected runs with one {name}, found {values or 'none'}: select one")
        wanted = values[0]
    elif wanted not in values:
        raise ValueError(f"no finished runs with {name}={wanted!r}; values: {values or 'none'}")
    return df[df[column] == wanted], wanted


def distinguishing_params(df: pd.DataFrame, exclude: Sequence[str] = ("seed",),
                          prefer: Sequence[str] = ()) -> list[str]:
    """A short list of params that tell the runs apart (``exclude`` aside). A param is kept only if it splits the
    runs further than those already kept, so schedule settings that merely follow ``variant`` are not repeated."""
    candidates = [f"params.{p}" for p in prefer] + sorted(c for c in df.columns if c.startswith("params."))
    chosen: list[str] = []
    groups = 1
    for col in dict.fromkeys(candidates):
        if col not in df or col.removeprefix("params.") in exclude:
            continue
        split = len(df[[*chosen, col]].astype(str).drop_duplicates())
        if split > groups:
            chosen.append(col)
            groups = split
    return chosen


# What makes two trainings comparable in one table: data, model, schedule, training attack and selection protocol.
# A method's own hyperparameters (alpha, pi, labels, lam, ...) are what the table compares, so they are not here.
RECIPE_PARAMS = ("dataset", "train_n", "model", "epochs", "batch_size", "lr", "momentum", "nesterov", "weight_decay",
                 "schedule", "lr_milestones", "lr_gamma", "eps", "attack_step", "attack_steps", "attack_start",
                 "attack_bn", "select_on", "holdout_n", "eval_n", "eval_every", "eval_from", "keep_epoch", "final_n",
                 "final_attack_step")


def recipe_differences(runs: pd.DataFrame, baseline: pd.DataFrame, keys: Sequence[str] = RECIPE_PARAMS) -> list[str]:
    """``"param: [runs' values] vs baseline [values]"`` for every recipe param on which a baseline's runs differ from
    the runs it is compared with (a param one side did not log counts as differing)."""

    def values(df: pd.DataFrame, key: str) -> list[str]:
        col = f"params.{key}"
        # A column with gaps turns 100 into 100.0: compare the numbers, not how pandas typed them.
        logged = sorted({f"{v:g}" if isinstance(v, float) else str(v) for v in df[col].dropna()}) if col in df else []
        return logged or ["not logged"]

    out = []
    for key in keys:
        mine, theirs = values(runs, key), values(baseline, key)
        if mine != theirs:
            out.append(f"{key}: {', '.join(mine)} vs baseline {', '.join(theirs)}")
    return out



def load_from_args(args: argparse.Namespace) -> SweepRuns:
    """:func:`load_sweep` from parsed :func:`add_source_arguments` flags; a missing sweep exits with the list."""
    try:
        return load_sweep(args.sweep, parent_run=args.parent_run, experiment=args.experiment,
                          tracking_uri=args.tracking_uri)
    except SweepNotFoundError as exc:
        raise SystemExit(f"error: {exc}") from None

