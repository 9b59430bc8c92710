"""AFS tables and figures from MLflow (Liu & Zhao, "Towards Both Accurate and Robust Neural Networks without Extra
Data"): stage-1 extractor sweeps (sweeps/afs_extractors.py) and stage-2 merger sweeps (sweeps/afs_merger.py).

    python analysis/afs_tables.py table1 --sweep afs-extractors-paper           # Table 1: eps x Clean/PGD-10/PGD-20
    python analysis/afs_tables.py delta-z --sweep afs-extractors-paper --out fig3.png  # Fig. 3, selected range marked
    python analysis/afs_tables.py table2 --sweep afs-table2-paper                # Table 2: alpha
    python analysis/afs_tables.py table3 --sweep afs-table3-paper                # Table 3: stacking masks
    python analysis/afs_tables.py tradeoff --sweep afs-table3-paper              # Table 4: mean of clean and AA
    python analysis/afs_tables.py tradeoff --sweep afs-default-paper-cifar100    # Table 5: the same on CIFAR-100
    python analysis/afs_tables.py tradeoff --sweep afs-table3-paper --other-sweep afs-comparison-cifar10-paper-fat \\
        --other-sweep afs-comparison-cifar10-paper-lbgat                       # Table 4 with FAT and LBGAT
    python analysis/afs_tables.py scatter --sweep afs-table2-paper --out fig1.png   # Fig. 1 idea: clean vs robust
    python analysis/afs_tables.py table6 --sweep afs-table3-paper --ablation-sweep afs-ablation-paper   # Table 6
    python analysis/afs_tables.py fig4 --sweep afs-extractors-paper --out fig4.png   # t-SNE of network-3, -8, both
    python analysis/afs_tables.py fig5a --sweep afs-default-paper --out fig5a.png    # accuracy by attack budget
    python analysis/afs_tables.py fig5b --sweep afs-table2-paper --out fig5b.png     # importance ratio by alpha
    python analysis/afs_tables.py fig6 --sweep afs-default-paper --out fig6.png      # classifier weight histograms

Figs. 4, 5(a), 5(b) and 6 are drawn by analysis/afs/model_figures.py (its docstring says what each reads; Fig. 5(a) needs
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
from typing import TYPE_CHECKING

from analysis.cli import add_source_arguments, subcommands

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from runstore.reader import SweepRuns


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
    parser = argparse.ArgumentParser(description=__doc__, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = subcommands(parser)
    for name, text in COMMANDS.items():
        sub = commands.add_parser(name, help=text, description=text)
        add_source_arguments(sub, output=name not in FIGURES)
        if name in FIGURES:
            sub.add_argument("--out", type=Path, default=Path(FIGURES[name]), help="PNG file to write")
        if name in ("tradeoff", "scatter", "table6", "fig5a", "fig6"):
            sub.add_argument("--extractor-sweep", default=None,
                             help="extractor sweep (default: the one the mergers were trained on)")
    for name in ("tradeoff", "scatter"):
        commands.choices[name].add_argument(
            "--other-sweep", action="append", default=[], metavar="SWEEP",
            help="a sweep of other methods (FAT, TLA, LBGAT: sweeps/afs_comparison.py; TRADES, PGD-AT: "
                 "sweeps/baselines.py) whose runs are rows too (repeat)")
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
    """The flags of the figures drawn from models and re-evaluations (analysis/afs/model_figures.py)."""
    for name in ("fig4", "fig5a", "fig5b", "fig6"):
        commands[name].add_argument("--checkpoint", choices=("best", "last"), default="best",
                                    help="which logged model or re-evaluation (default: best, the selected one)")
    for name in ("fig5a", "fig6"):
        commands[name].add_argument("--alpha", type=float, default=None, help="the mergers' alpha, if several")
    for name in ("fig5a", "fig5b", "fig6"):
        commands[name].add_argument("--mask", default=None, help="the mergers' stack, if several")
    commands["fig4"].add_argument("--networks", type=networks, default=[3, 8],
                                  help="networks whose features to embed, then their concatenation (default: 3,8)")
    commands["fig4"].add_argument("--n", type=int, default=1000, help="N test points, the evaluation points of the trials (default: 1000)")
    commands["fig4"].add_argument("--data-root", default=None, help="dataset folder (default $ADVSWEEP_DATA or ./data)")
    commands["fig5a"].add_argument("--networks", type=networks, default=None,
                                   help="single networks to compare (default: those the mergers stack)")
    commands["fig5a"].add_argument("--attack", default=None,
                                   help="re-evaluated attack, e.g. pgd20 (default: the strongest every series has)")
    commands["fig5a"].add_argument("--n", type=int, default=None,
                                   help="re-evaluated on N test points (default: the most every series has)")
    commands["fig6"].add_argument("--networks", type=networks, default=[1, 8],
                                  help="single networks beside the merger (default: 1,8)")


def others_of(args: argparse.Namespace) -> list[SweepRuns]:
    """The ``--other-sweep`` sweeps, in any experiment of the store."""
    from runstore.reader import load_sweep

    return [load_sweep(name, tracking_uri=args.tracking_uri) for name in args.other_sweep]


def draw(args: argparse.Namespace, sweep: SweepRuns) -> Figure:
    """The figure a figure command names, from ``sweep`` (and the extractor sweep of its mergers)."""
    from analysis.afs.figures import fig_delta_z, scatter
    from analysis.afs.runs import extractor_runs, extractors_of
    from analysis.runs import only_value

    if args.command == "delta-z":
        return fig_delta_z(sweep)
    if args.command == "scatter":
        return scatter(sweep, extractors_of(sweep, args.extractor_sweep, args.tracking_uri), others_of(args))
    # Imported here: torch, scikit-learn and the logged models only for the figures that need them.
    from analysis.afs import model_figures as figures

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
    # Imported once the arguments are parsed, so that --help and a bad flag answer before pandas and MLflow load.
    from analysis.afs.runs import EXTRACTOR_EXPERIMENT, extractors_of
    from analysis.afs.tables import delta_z_summary, table1, table2, table3, table6, tradeoff
    from analysis.render import emit
    from analysis.runs import load_from_args
    from analysis.significance import with_stats
    from runstore.reader import SweepNotFoundError, load_sweep

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
                table = tradeoff(sweep, extractors, others_of(args))
            else:
                ablation = load_sweep(args.ablation_sweep, experiment=EXTRACTOR_EXPERIMENT,
                                      tracking_uri=args.tracking_uri) if args.ablation_sweep else None
                table = table6(extractors, sweep, ablation)
    except (SweepNotFoundError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None
    emit(with_stats(table, args), args.format, args.out)


if __name__ == "__main__":
    main()
