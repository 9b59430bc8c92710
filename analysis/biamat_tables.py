"""BiaMAT tables and Fig. 3 from a sweep's MLflow runs (Lee et al., WACV 2023, and its appendix).

    python analysis/biamat_tables.py table13 --sweep biamat-pi-paper              # Appendix Table 13: pi ablation
    python analysis/biamat_tables.py table1 --sweep biamat-labels-paper \\
        --baseline-sweep baselines-biamat-paper                                      # Table 1: y~ vs y^ER
    python analysis/biamat_tables.py table12 --sweep biamat-search-paper           # Appendix Table 12: best alpha, pi
    python analysis/biamat_tables.py fig3 --sweep biamat-labels-paper --out fig3.png  # Fig. 3: n_high / n_aux

Every command takes ``--tracking-uri`` (default ``$MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db``), ``--experiment``
to look in one experiment only, ``--parent-run ID`` instead of ``--sweep``; tables take ``--metric`` (default: the
strongest attack logged, ``best/autoattack`` in a paper run), ``--format md|csv|latex`` and ``--out FILE``. Only
FINISHED trials count; the notes under each table say how many were skipped. Nothing here retrains: a table with
gaps means the sweep has not run those trials.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.cli import add_source_arguments, add_table_commands
from analysis.runs import (
    Cell,
    SweepNotFoundError,
    SweepRuns,
    Table,
    aggregate,
    column,
    distinguishing_params,
    emit,
    load_from_args,
    load_sweep,
    metric_label,
    only_value,
    recipe_differences,
    resolve_metric,
)

VARIANT_NAMES = {"at": "AT+BiaMAT", "trades": "TRADES+BiaMAT"}
# Table 1 compares each BiaMAT variant with the baseline trained the same way, minus the auxiliary data.
BASELINE_TRAINING = {"at": "pgd_at", "trades": "trades"}
LABEL_ROWS = {"aux": "y~ (auxiliary labels)", "uniform": "y^ER (uniform labels)"}
MISSING = "-"
HIGH_FRACTION = "train/high_fraction"  # n_high / n_aux, averaged over an epoch's steps (trainables/biamat.py)
HIGH_HEADER = "n_high/n_aux (last epoch)"


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
    return "; ".join(f"primary {d}, auxiliary {a}" for d, a in pairs.itertuples(index=False))


def table13(sweep: SweepRuns, metric: str | None = None) -> Table:
    """Appendix Table 13: rows pi, one column per variant (and per primary/auxiliary pair if a sweep has several)."""
    df = biamat_runs(sweep.runs)
    if df.empty:
        raise ValueError(f"no finished gated BiaMAT trials: {sweep.summary()}")
    metric = resolve_metric(metric, df)
    keys = ["params.variant", "params.dataset", "params.aux_datasets"]
    cells = aggregate(df, [*keys, "params.pi"], metric)
    columns = sorted({key[:3] for key in cells})
    several = len({c[1:] for c in columns}) > 1
    names = [f"{VARIANT_NAMES.get(v, v)} ({d}, {a})" if several else VARIANT_NAMES.get(v, v) for v, d, a in columns]
    # What pi did: the share of auxiliary samples the gate passed in the last epoch, beside each accuracy. Shown when
    # the sweep logged it (every gated trial of this runtime does); a store without it keeps the paper's columns.
    high = aggregate(df, [*keys, "params.pi"], HIGH_FRACTION)
    header = [part for name in names for part in ([name, f"{name} {HIGH_HEADER}"] if high else [name])]

    def cells_of(col: tuple, pi: float) -> list[str | Cell]:
        accuracy = cells.get((*col, pi), MISSING)
        if not high:
            return [accuracy]
        passed = high.get((*col, pi))
        return [accuracy, MISSING if passed is None else f"{passed.mean:.2f}"]

    rows: list[list[str | Cell]] = [
        [number(pi), *(part for col in columns for part in cells_of(col, pi))]
        for pi in sorted({key[3] for key in cells})
    ]
    title = f"Table 13. Ablation on pi ({setting(df)}): {metric_label(metric)} accuracy (%)"
    notes = [sweep.summary()]
    if high:
        notes.append(f"{HIGH_HEADER}: share of auxiliary samples with primary confidence >= omega over the last "
                     "epoch (train/high_fraction), mean over seeds")
    return Table(title, ["pi", *header], rows, notes)


def table1(sweep: SweepRuns, baseline: SweepRuns | None = None, metric: str | None = None,
           variant: str | None = None) -> Table:
    """Table 1: rows y~ / y^ER, one column per auxiliary dataset, the better row bolded per dataset, and the
    variant-matched baseline from ``baseline`` (another sweep) or from the baseline trials of ``sweep`` itself."""
    df = biamat_runs(sweep.runs, labels=None)
    df = df[column(df, "params.labels").isin(list(LABEL_ROWS))]
    if df.empty:
        raise ValueError(f"no finished BiaMAT trials with labels 'aux' or 'uniform': {sweep.summary()}")
    df, variant = only_value(df, "params.variant", variant)
    df, dataset = only_value(df, "params.dataset")

    source = baseline or sweep
    base = source.runs
    base = base[(column(base, "tags.method") == "baseline") & (column(base, "params.dataset") == dataset)
                & (column(base, "params.training") == BASELINE_TRAINING[variant])]
    differences = recipe_differences(df, base) if len(base) else []
    if differences:
        # A baseline trained another way (schedule, weight decay, attack BatchNorm, selection) would make the
        # comparison say nothing about the auxiliary data.
        raise ValueError(f"the {BASELINE_TRAINING[variant]} baseline of sweep {source.name!r} was not trained with the "
                         f"recipe of the BiaMAT rows: {'; '.join(differences)}. Train it with that recipe, e.g. "
                         "`python sweeps/baselines.py --preset biamat-paper` for the paper preset")
    metric = resolve_metric(metric, df, base)
    cells = aggregate(df, ["params.labels", "params.aux_datasets"], metric)
    auxes = sorted({aux for _, aux in cells})
    for aux in auxes:
        pair = [cells.get((labels, aux)) for labels in LABEL_ROWS]
        if all(pair):
            best = max(c.mean for c in pair)
            for labels, cell in zip(LABEL_ROWS, pair):
                cells[(labels, aux)] = dataclasses.replace(cell, bold=cell.mean == best)
    base_scores = column(base, f"metrics.{metric}").dropna()
    base_cell: str | Cell = Cell.of(base_scores) if len(base_scores) else MISSING

    rows: list[list[str | Cell]] = [
        [name, *(cells.get((labels, aux), MISSING) for aux in auxes), base_cell if i == 0 else ""]
        for i, (labels, name) in enumerate(LABEL_ROWS.items())
    ]
    notes = [f"the better of y~ and y^ER per auxiliary dataset in bold; {sweep.summary()}"]
    if baseline is not None:
        notes.append(f"baseline from {baseline.summary()}")
    if isinstance(base_cell, str):
        notes.append(f"no finished {BASELINE_TRAINING[variant]} baseline on {dataset} with {metric} in "
                     f"sweep {source.name!r}")
    title = (f"Table 1. {VARIANT_NAMES[variant]} on {dataset} with y~ or y^ER for the auxiliary data: "
             f"{metric_label(metric)} accuracy (%)")
    header = ["labels", *auxes, f"Baseline ({BASELINE_TRAINING[variant]})"]
    return Table(title, header, rows, notes)


def selection_metric(df: pd.DataFrame) -> str:
    """The score a search selected on: ``select/pgd<k>`` (the training attack on the selection points, held-out
    training images in a search), the Optuna objective of ``sweeps/biamat_search.py``."""
    found = sorted(c.removeprefix("metrics.") for c in df.columns if c.startswith("metrics.select/pgd"))
    if len(found) != 1:
        raise ValueError(f"expected one select/pgd<k> metric in the search's trials, found {found or 'none'}")
    return found[0]


def table12(sweep: SweepRuns, metric: str | None = None, by: str | None = None) -> Table:
    """Appendix Table 12: per (primary dataset, variant, auxiliary dataset), the alpha and pi of the finished trial
    with the highest selection score ``by`` (default: the search's objective, :func:`selection_metric`), so the test
    set never picks the winner; the winner's test ``metric`` is shown beside it, with how many trials there were."""
    df = biamat_runs(sweep.runs)
    if df.empty:
        raise ValueError(f"no finished gated BiaMAT trials: {sweep.summary()}")
    metric = resolve_metric(metric, df)
    by = resolve_metric(by, df) if by else selection_metric(df)
    col, by_col = f"metrics.{metric}", f"metrics.{by}"
    df = df.dropna(subset=[by_col])
    keys = ["params.dataset", "params.variant", "params.aux_datasets"]
    best = df.loc[df.groupby(keys)[by_col].idxmax()]
    trials = df.groupby(keys).size()
    rows: list[list[str | Cell]] = [
        [r["params.dataset"], VARIANT_NAMES.get(r["params.variant"], r["params.variant"]), r["params.aux_datasets"],
         number(r["params.alpha"]), number(r["params.pi"]), f"{100 * r[by_col]:.2f}", f"{100 * r[col]:.2f}",
         str(trials[tuple(r[k] for k in keys)]), r["run_name"]]
        for _, r in best.iterrows()
    ]
    header = ["Primary dataset", "Method", "Auxiliary dataset", "alpha", "pi", f"selected by {by} (%)",
              f"{metric_label(metric)} (%)", "trials", "best run"]
    title = f"Table 12. alpha and pi of the best trial per setting, chosen by {by}"
    return Table(title, header, rows, [sweep.summary()])


def fig3(sweep: SweepRuns, key: str = "train/high_fraction") -> Figure:
    """Fig. 3: ``key`` per epoch, one line per auxiliary dataset (or per whatever else differs between the gated
    runs), averaged over seeds with a +-std band. Built on a bare ``Figure`` (Agg when saved to PNG), not pyplot,
    so no global backend or figure registry is touched."""
    df = biamat_runs(sweep.runs)
    history = sweep.history(key, df["run_id"])
    if history.empty:
        raise ValueError(f"no {key!r} history in the finished gated BiaMAT trials: {sweep.summary()}")
    label_cols = distinguishing_params(df, prefer=("aux_datasets", "dataset", "variant", "alpha", "pi"))
    label_cols = label_cols or ["params.aux_datasets"]
    history = history.merge(df[["run_id", *label_cols]], on="run_id")

    figure = Figure(figsize=(5.5, 3.5), layout="constrained")
    ax = figure.subplots()
    for values, runs in history.groupby(label_cols, sort=True):
        curve = runs.groupby("step")["value"].agg(["mean", "std", "count"])
        label = ", ".join(f"{c.removeprefix('params.')}={v}" for c, v in zip(label_cols, values)) \
            if len(label_cols) > 1 else str(values[0])
        (line,) = ax.plot(curve.index, curve["mean"], marker="o", markersize=3, label=label)
        if curve["count"].max() > 1:
            ax.fill_between(curve.index, curve["mean"] - curve["std"], curve["mean"] + curve["std"],
                            color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel(r"$n_\mathrm{high} / n_\mathrm{aux}$")
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are epochs
    primary = ", ".join(sorted(map(str, df["params.dataset"].unique())))
    ax.set_title(f"Fig. 3: {key}, primary {primary}", fontsize=9)
    ax.legend(title=label_cols[0].removeprefix("params.") if len(label_cols) == 1 else None, fontsize=8)
    return figure


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    helps = {
        "table13": "appendix Table 13: AutoAttack accuracy vs pi, AT and TRADES (mean +- std over seeds)",
        "table1": "Table 1: auxiliary labels y~ vs uniform y^ER per auxiliary dataset, with the baseline",
        "table12": "appendix Table 12: best alpha and pi per setting from a search sweep",
    }
    add_table_commands(commands, helps)
    commands.choices["table12"].add_argument(
        "--by", default=None, help="metric that picks the winner (default: the search's select/pgd<k> objective)")
    table1_parser = commands.choices["table1"]
    table1_parser.add_argument("--baseline-sweep", default=None,
                               help="sweep with the baseline runs (default: baseline trials of --sweep itself)")
    table1_parser.add_argument("--variant", choices=sorted(VARIANT_NAMES), default=None,
                               help="BiaMAT variant, if the sweep has both")
    fig = commands.add_parser("fig3", help="Fig. 3: n_high / n_aux per epoch as a PNG line plot")
    add_source_arguments(fig, output=False)
    fig.add_argument("--metric", default="train/high_fraction", help="per-epoch metric to plot")
    fig.add_argument("--out", type=Path, default=Path("fig3.png"), help="PNG file to write")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sweep = load_from_args(args)
    try:
        if args.command == "fig3":
            figure = fig3(sweep, args.metric)
            figure.savefig(args.out, dpi=150)
            print(f"wrote {args.out} ({len(figure.axes[0].get_lines())} lines; {sweep.summary()})")
            return
        if args.command == "table13":
            table = table13(sweep, args.metric)
        elif args.command == "table12":
            table = table12(sweep, args.metric, args.by)
        else:
            baseline = None
            if args.baseline_sweep:
                baseline = load_sweep(args.baseline_sweep, tracking_uri=args.tracking_uri)
            table = table1(sweep, baseline, args.metric, args.variant)
    except (SweepNotFoundError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None
    emit(table, args.format, args.out)


if __name__ == "__main__":
    main()
