"""AFS tables and figures from MLflow (Liu & Zhao, "Towards Both Accurate and Robust Neural Networks without Extra
Data"): stage-1 extractor sweeps (sweeps/afs_extractors.py) and stage-2 merger sweeps (sweeps/afs_merger.py).

    python analysis/afs_tables.py table1 --sweep afs-extractors-paper           # Table 1: eps x Clean/PGD-10/PGD-20
    python analysis/afs_tables.py delta-z --sweep afs-extractors-paper --out fig3.png  # Fig. 3, selected range marked
    python analysis/afs_tables.py table2 --sweep afs-table2-paper                # Table 2: alpha
    python analysis/afs_tables.py table3 --sweep afs-table3-paper                # Table 3: stacking masks
    python analysis/afs_tables.py tradeoff --sweep afs-table3-paper              # Table 4: mean of clean and AA
    python analysis/afs_tables.py tradeoff --sweep afs-default-paper-cifar100    # Table 5: the same on CIFAR-100
    python analysis/afs_tables.py scatter --sweep afs-table2-paper --out fig1.png   # Fig. 1 idea: clean vs robust
    python analysis/afs_tables.py table6 --sweep afs-table3-paper --ablation-sweep afs-ablation-paper   # Table 6
    python analysis/afs_tables.py fig4 --sweep afs-extractors-paper --out fig4.png   # t-SNE of network-3, -8, both
    python analysis/afs_tables.py fig5a --sweep afs-default-paper --out fig5a.png    # accuracy by attack budget
    python analysis/afs_tables.py fig5b --sweep afs-table2-paper --out fig5b.png     # importance ratio by alpha
    python analysis/afs_tables.py fig6 --sweep afs-default-paper --out fig6.png      # classifier weight histograms

Figs. 4, 5(a), 5(b) and 6 are drawn by analysis/afs_figures.py (its docstring says what each reads; Fig. 5(a) needs
``sweeps/reevaluate.py`` run first, and the figures from weights load the trials' logged models).

Merger commands read the extractor sweep named by the mergers' ``extractor_sweep`` param (or ``--extractor-sweep``).
Every command takes ``--tracking-uri``, ``--experiment``, ``--parent-run``; tables take ``--format``/``--out``. Only
FINISHED trials count, at their selected checkpoint (``best/*``): in the paper presets the epoch the reference code
keeps (extractors and Table 6's single networks: epoch 64 of 65; mergers of Tables 2, 3 and 6: epoch 5 of 7), in the
smoke presets the epoch with the best PGD accuracy on the selection points; each table's notes give its sweeps'
protocol. The extractors are evaluated at 8/255 whatever their training eps. Where no AutoAttack was run (smoke
presets), the trade-off uses the strongest attack logged and says so. ``tradeoff`` is Table 4 on CIFAR-10 runs and
Table 5 on CIFAR-100 runs (its title says which, from the runs' ``dataset``); its PGD column is PGD-20 (the paper's
tables do not say which PGD), and its single network at 8/255 is the paper's PGD-AT row (Sec. 3.4 compares AFS
"to the PGD-AT with a perturbation budget of 8/255"), trained on the same recipe as the stacked networks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from analysis.afs_selection import CONVEX_TOLERANCE, concave_range
from analysis.cells import Cell, Table, aggregate
from analysis.cli import add_source_arguments
from analysis.figure_style import distinct_styles, legend_outside
from analysis.render import emit
from analysis.runs import load_from_args, metric_label, only_value, resolve_metric
from runstore.reader import SweepNotFoundError, SweepRuns, column, load_sweep

EXTRACTOR_EXPERIMENT = "afs-extractors"  # as trainables/methods/afs.py names it (analysis does not import trainables)
ACCURACY_ROWS = ("clean", "pgd10", "pgd20")
MISSING = "-"
# Sec. 3.4: AFS against other methods, Table 4 on CIFAR-10 and Table 5 on CIFAR-100.
TRADEOFF_TABLES = {"cifar10": ("Table 4", "CIFAR-10"), "cifar100": ("Table 5", "CIFAR-100")}
TRADEOFF_PGD = "best/pgd20"
PGD_AT_EPS = 8  # the single network that is Tables 4/5's PGD-AT row


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
    eval_eps = ", ".join(f"{255 * e:g}/255" for e in sorted(df["params.eval_eps"].astype(float).unique()))
    return accuracy_table(f"Table 1. Extractors by training eps: accuracy (%) at {eval_eps}, selected checkpoint",
                          df, "extractor", labels, [sweep.summary()])


def delta_z(sweep: SweepRuns) -> dict[int, float]:
    """Mean Delta_z (selected checkpoint) per extractor, over seeds."""
    df = extractor_runs(sweep).dropna(subset=["metrics.best/delta_z"])
    return df.groupby("extractor")["metrics.best/delta_z"].mean().sort_index().to_dict()


def selected_extractors(sweep: SweepRuns) -> list[int]:
    """The extractors the Delta_z concavity rule keeps (:func:`analysis.afs_selection.concave_range`)."""
    values = delta_z(sweep)
    return concave_range(list(values), list(values.values()))


def delta_z_summary(sweep: SweepRuns) -> str:
    values = delta_z(sweep)
    chosen = selected_extractors(sweep)
    listing = ", ".join(f"{i}/255: {v:.3g}" for i, v in values.items())
    return (f"Delta_z (selected checkpoint) by training eps: {listing}\nconcave over eps {chosen[0]}..{chosen[-1]}/255 "
            f"(no slope rising by more than {CONVEX_TOLERANCE:.0%} of the largest |slope|)")


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


def points(merger: SweepRuns, extractors: SweepRuns) -> tuple[pd.DataFrame, str, str | None]:
    """One row per single extractor and per merger setting: ``label``, ``kind``, mean ``clean``, ``pgd`` (PGD-20,
    NaN where not logged), ``robust`` and ``tradeoff`` (the mean of clean and robust, per run); the robust metric:
    AutoAttack where both sweeps ran it; and the dataset of both sweeps (:func:`dataset_of`)."""
    singles, mergers = extractor_runs(extractors), merger_runs(merger)
    dataset = dataset_of(singles, mergers)
    robust = resolve_metric(None, singles, mergers)
    singles = singles.sort_values("extractor")
    singles = singles.assign(label=[f"single eps={i}/255" for i in singles["extractor"]], kind="single")
    mergers = mergers.sort_values(["params.mask", "params.alpha"])
    mergers = mergers.assign(label=mergers.apply(merger_label, axis=1), kind="merger")
    both = pd.concat([singles, mergers], ignore_index=True)
    both = both.assign(clean=both["metrics.best/clean"], pgd=column(both, f"metrics.{TRADEOFF_PGD}"),
                       robust=both[f"metrics.{robust}"])
    both["tradeoff"] = (both["clean"] + both["robust"]) / 2
    # One row per model, its runs (seeds) as lists, in the order above.
    values = ["clean", "pgd", "robust", "tradeoff"]
    return both.groupby(["kind", "label"], sort=False)[values].agg(list).reset_index(), robust, dataset


def cell_or_missing(values: list[float]) -> Cell | str:
    """The cell of a model's runs, or MISSING where none logged the metric."""
    return Cell.of(values) if pd.Series(values, dtype=float).notna().any() else MISSING


def tradeoff(merger: SweepRuns, extractors: SweepRuns) -> Table:
    """The trade-off of Tables 4 (CIFAR-10) and 5 (CIFAR-100): clean, PGD-20 and robust accuracy (AutoAttack where
    logged) and the mean of clean and robust, of the single extractors and the mergers. The title names the paper's
    table and the dataset from the runs' ``dataset``; other data (the smoke presets') gets a title without a number."""
    frame, robust, dataset = points(merger, extractors)
    name = metric_label(robust).removesuffix(" (best checkpoint)")
    # Where the robust metric is PGD-20 itself (no AutoAttack logged), it is not shown twice.
    pgd = [] if robust == TRADEOFF_PGD else [metric_label(TRADEOFF_PGD).removesuffix(" (best checkpoint)")]
    rows = [[row.label, *(cell_or_missing(v) for v in (row.clean, *([row.pgd] if pgd else []), row.robust,
                                                        row.tradeoff))] for row in frame.itertuples()]
    notes = [merger.summary(), extractors.summary()]
    if not robust.endswith("autoattack"):
        notes.append(f"no AutoAttack in these runs: the trade-off uses {name}")
    number, data = TRADEOFF_TABLES.get(dataset, (None, dataset))
    if number is not None and f"single eps={PGD_AT_EPS}/255" in set(frame["label"]):
        notes.append(f"PGD-AT: single eps={PGD_AT_EPS}/255, the paper's PGD-AT at 8/255 (Sec. 3.4), on the recipe of "
                     "the stacked networks")
    title = f"Trade-off{f' on {data}' if data else ''} (mean of clean and {name} accuracy, %)"
    return Table(f"{number}. {title}" if number else title, ["model", "Clean", *pgd, name, "Trade-off"], rows, notes)


def scatter(merger: SweepRuns, extractors: SweepRuns) -> Figure:
    """Fig. 1's idea: clean against robust accuracy (means over seeds). The single extractors form one line in eps
    order, each point drawn as its training eps (a digit marker, so no label can overlap another); every merger
    setting is its own colour and hollow marker, named in a legend outside the axes; markers shrink down the list,
    so that mergers at the same point stay visible one inside the other."""
    frame, robust, _ = points(merger, extractors)
    frame = frame.assign(x=[100 * pd.Series(v).mean() for v in frame["robust"]],
                         y=[100 * pd.Series(v).mean() for v in frame["clean"]])
    figure = Figure(figsize=(7, 4.2), layout="constrained")
    ax = figure.subplots()
    singles, mergers = frame[frame["kind"] == "single"], frame[frame["kind"] == "merger"]
    (single_colour, _), *styles = distinct_styles(len(mergers) + 1)
    ax.plot(singles["x"], singles["y"], color=single_colour, linewidth=0.8, alpha=0.6, zorder=1,
            label="single networks (digit = training eps, /255)")
    for row in singles.itertuples():
        eps = row.label.removeprefix("single eps=").removesuffix("/255")
        ax.plot(row.x, row.y, linestyle="none", marker=f"${eps}$", markersize=9, color=single_colour, zorder=2)
    for i, (row, (colour, marker)) in enumerate(zip(mergers.itertuples(), styles)):
        ax.plot(row.x, row.y, linestyle="none", marker=marker, markersize=13 - 6 * i / max(len(mergers) - 1, 1),
                color=colour, markerfacecolor="none", markeredgewidth=1.6, zorder=3 + i, label=row.label)
    ax.set_xlabel(f"{metric_label(robust).split(' (')[0]} accuracy (%)")
    ax.set_ylabel("clean accuracy (%)")
    ax.grid(alpha=0.3)
    ax.set_title("Clean against robust accuracy (best checkpoint)", fontsize=9)
    legend_outside(ax)
    return figure


def single_label(row: pd.Series) -> str:
    """A single network by model and training eps: ``wrn-28-10 eps 8/255``, ``wrn-28-10 eps U[3, 8]/255``."""
    drawn = row.get("params.train_eps_range")  # "low,high"; empty, or NaN for runs that predate the param
    if isinstance(drawn, str) and drawn:
        return f"{row['params.model']} eps U[{', '.join(f'{float(e) * 255:.3g}' for e in drawn.split(','))}]/255"
    return f"{row['params.model']} eps {row['extractor']}/255"


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


def extractors_of(merger: SweepRuns, name: str | None, tracking_uri: str | None) -> SweepRuns:
    """The extractor sweep of a merger sweep: ``name``, or the one its mergers were trained on."""
    if name is None:
        _, name = only_value(merger_runs(merger), "params.extractor_sweep")
    return load_sweep(str(name), experiment=EXTRACTOR_EXPERIMENT, tracking_uri=tracking_uri)


COMMANDS = {
    "table1": "Table 1: extractors by training eps (an extractor sweep)",
    "delta-z": "Fig. 3: Delta_z by training eps with the concave range (an extractor sweep), as a PNG",
    "table2": "Table 2: mergers by alpha (a merger sweep)",
    "table3": "Table 3: mergers by stacking mask (a merger sweep)",
    "tradeoff": "Table 4 (CIFAR-10 runs) or 5 (CIFAR-100 runs): trade-off (mean of clean and AutoAttack accuracy) "
                "of extractors and mergers",
    "scatter": "clean vs robust accuracy of extractors and mergers (Fig. 1 idea), as a PNG",
    "table6": "Table 6: parameters, MACs and accuracy of the eps-8 baseline, the single-network ablations and the "
              "mergers",
    "fig4": "Fig. 4: t-SNE of the features of two networks and of their concatenation (an extractor sweep), as a PNG",
    "fig5a": "Fig. 5(a): accuracy of the mergers and their single networks by attack budget (a merger sweep, "
             "re-evaluated with sweeps/reevaluate.py), as a PNG",
    "fig5b": "Fig. 5(b): importance ratio of each stacked network by alpha (a merger sweep), as a PNG",
    "fig6": "Fig. 6: histograms of the classifier weights of two networks and of a merger (a merger sweep), as a PNG",
}
FIGURES = {"delta-z": "fig3.png", "scatter": "fig1.png", "fig4": "fig4.png", "fig5a": "fig5a.png",
           "fig5b": "fig5b.png", "fig6": "fig6.png"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in COMMANDS.items():
        sub = commands.add_parser(name, help=text, description=text)
        add_source_arguments(sub, output=name not in FIGURES)
        if name in FIGURES:
            sub.add_argument("--out", type=Path, default=Path(FIGURES[name]), help="PNG file to write")
        if name in ("tradeoff", "scatter", "table6", "fig5a", "fig6"):
            sub.add_argument("--extractor-sweep", default=None,
                             help="extractor sweep (default: the one the mergers were trained on)")
    commands.choices["table6"].add_argument("--ablation-sweep", default=None,
                                            help="the random-eps and large-model sweep (sweeps/afs_ablation.py)")
    commands.choices["table2"].add_argument("--mask", default=None, help="stack to show, if the sweep has several")
    commands.choices["table3"].add_argument("--alpha", type=float, default=None, help="alpha, if several")
    add_figure_arguments(commands.choices)
    return parser


def networks(text: str) -> list[int]:
    """``--networks 3,8`` -> ``[3, 8]``: single networks by training eps in 1/255."""
    try:
        chosen = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected training eps in 1/255 separated by commas, e.g. 3,8") \
            from None
    if not chosen:
        raise argparse.ArgumentTypeError("name at least one network, e.g. 3,8")
    return chosen


def add_figure_arguments(commands: dict[str, argparse.ArgumentParser]) -> None:
    """The flags of the figures drawn from models and re-evaluations (analysis/afs_figures.py)."""
    for name in ("fig4", "fig5a", "fig5b", "fig6"):
        commands[name].add_argument("--checkpoint", choices=("best", "last"), default="best",
                                    help="which logged model or re-evaluation (default: best, the selected one)")
    for name in ("fig5a", "fig6"):
        commands[name].add_argument("--alpha", type=float, default=None, help="the mergers' alpha, if several")
    for name in ("fig5a", "fig5b", "fig6"):
        commands[name].add_argument("--mask", default=None, help="the mergers' stack, if several")
    commands["fig4"].add_argument("--networks", type=networks, default=[3, 8],
                                  help="networks whose features to embed, then their concatenation (default: 3,8)")
    commands["fig4"].add_argument("--n", type=int, default=1000, help="the first N test points (default: 1000)")
    commands["fig4"].add_argument("--data-root", default=None, help="dataset folder (default $ADVSWEEP_DATA or ./data)")
    commands["fig5a"].add_argument("--networks", type=networks, default=None,
                                   help="single networks to compare (default: those the mergers stack)")
    commands["fig5a"].add_argument("--attack", default=None,
                                   help="re-evaluated attack, e.g. pgd20 (default: the strongest every series has)")
    commands["fig5a"].add_argument("--n", type=int, default=None,
                                   help="re-evaluated on the first N test points (default: the most every series has)")
    commands["fig6"].add_argument("--networks", type=networks, default=[1, 8],
                                  help="single networks beside the merger (default: 1,8)")


def draw(args: argparse.Namespace, sweep: SweepRuns) -> Figure:
    """The figure a figure command names, from ``sweep`` (and the extractor sweep of its mergers)."""
    if args.command == "delta-z":
        return fig_delta_z(sweep)
    if args.command == "scatter":
        return scatter(sweep, extractors_of(sweep, args.extractor_sweep, args.tracking_uri))
    # Imported here: torch, scikit-learn and the logged models only for the figures that need them (and
    # analysis/afs_figures.py builds on this module).
    from analysis import afs_figures as figures

    if args.command == "fig4":
        dataset = only_value(extractor_runs(sweep), "params.dataset")[1]
        return figures.fig4(figures.embeddings(sweep, args.networks, args.n, args.data_root, args.checkpoint),
                            dataset)
    if args.command == "fig5b":
        return figures.fig5b(*figures.importance_ratios(sweep, args.mask, args.checkpoint), args.checkpoint)
    extractors = extractors_of(sweep, args.extractor_sweep, args.tracking_uri)
    if args.command == "fig5a":
        curves, attack, n = figures.budget_curves(sweep, extractors, alpha=args.alpha, mask=args.mask,
                                                  networks=args.networks, attack=args.attack, n=args.n,
                                                  checkpoint=args.checkpoint)
        return figures.fig5a(curves, attack, n, args.checkpoint)
    return figures.fig6(figures.classifier_weights(sweep, extractors, args.networks, alpha=args.alpha,
                                                   mask=args.mask, checkpoint=args.checkpoint), args.checkpoint)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sweep = load_from_args(args)
    try:
        if args.command in FIGURES:
            figure = draw(args, sweep)
            figure.savefig(args.out, dpi=150)
            print(f"wrote {args.out} ({sweep.summary()})")
            if args.command == "delta-z":
                print(delta_z_summary(sweep))
            return
        if args.command == "table1":
            table = table1(sweep)
        elif args.command == "table2":
            table = table2(sweep, args.mask)
        elif args.command == "table3":
            table = table3(sweep, args.alpha)
        else:
            extractors = extractors_of(sweep, args.extractor_sweep, args.tracking_uri)
            if args.command == "tradeoff":
                table = tradeoff(sweep, extractors)
            else:
                ablation = load_sweep(args.ablation_sweep, experiment=EXTRACTOR_EXPERIMENT,
                                      tracking_uri=args.tracking_uri) if args.ablation_sweep else None
                table = table6(extractors, sweep, ablation)
    except (SweepNotFoundError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None
    emit(table, args.format, args.out)


if __name__ == "__main__":
    main()
