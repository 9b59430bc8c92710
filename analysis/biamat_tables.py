"""BiaMAT tables and Fig. 3 from a sweep's MLflow runs (Lee et al., WACV 2023, and its appendix).

    python analysis/biamat_tables.py table13 --sweep pi-ablation-paper            # Appendix Table 13: pi ablation
    python analysis/biamat_tables.py table1 --sweep biamat-labels-paper \\
        --baseline-sweep baselines-biamat-paper                                      # Table 1: y~ vs y^ER
    python analysis/biamat_tables.py table12 --sweep biamat-at-cifar10-imagenet32-paper  # Appendix Table 12
    python analysis/biamat_tables.py fig3 --sweep biamat-labels-paper --out fig3.png  # Fig. 3: n_high / n_aux
    python analysis/biamat_tables.py table11 --sweep baselines-biamat-paper \\
        --sweep biamat-labels-paper --sweep pi-ablation-paper                         # Appendix Table 11: hours
    python analysis/biamat_tables.py table14 --sweep biamat-labels-paper --aux imagenet32 \\
        --mapping imagenet32_to_cifar10.csv                                            # Appendix Table 14
    python analysis/biamat_tables.py table14-mapping --cinic synsets-to-cifar-10-classes.txt \\
        --classes map_clsloc.txt                                                    # Table 14's --mapping CSV
    python analysis/biamat_tables.py fig4 --run RUN_ID --aux-class 0 --out fig4.png  # Appendix Fig. 4
    python analysis/biamat_tables.py table2 --sweep biamat-main-cifar10-paper \\
        --baseline-sweep baselines-biamat-main-cifar10-paper                           # Table 2: main results
    python analysis/biamat_tables.py table9 --sweep biamat-oat-paper                  # Appendix Table 9: OAT
    python analysis/biamat_tables.py table5 --sweep biamat-data-density-paper        # Table 5: cifar-A/B/C
    python analysis/biamat_tables.py table6 --sweep biamat-robust-dataset-paper      # Table 6: robust datasets
    python analysis/biamat_tables.py table10 --sweep biamat-generated-data-paper \\
        --generated-sweep biamat-generated-data-paper-generated                        # Table 10: generated data
    python analysis/biamat_tables.py table7 --sweep biamat-semi-supervised-cifar10-paper \\
        --baseline-sweep baselines-biamat-main-cifar10-paper --biamat-sweep biamat-main-cifar10-paper  # Tables 3, 7
    python analysis/biamat_tables.py table8 --sweep biamat-pretraining-cifar10-paper \\
        --sweep biamat-pretraining-cifar10-paper-trades \\
        --pretraining-sweep biamat-pretraining-cifar10-paper-pretraining            # Appendix Table 8: fine-tuning

Every command takes ``--tracking-uri`` (default ``$MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db``), ``--experiment``
to look in one experiment only, ``--parent-run ID`` instead of ``--sweep`` (table11 reads several ``--sweep``);
tables take ``--format md|csv|latex|latex-doc`` and ``--out FILE``, and those of accuracies ``--metric`` (default: the
strongest attack logged, ``best/autoattack`` in a paper run). Table 14's mapping and the counts it reads:
``analysis/biamat/selection.py``. Only FINISHED trials count; the notes under each table say how many were skipped.
Nothing here retrains: a table with gaps means the sweep has not run those trials.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis.biamat.names import VARIANT_NAMES
from analysis.cli import add_source_arguments, add_table_commands, subcommands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = subcommands(parser)
    helps = {
        "table13": "appendix Table 13: AutoAttack accuracy vs pi, AT and TRADES (mean +- std over seeds)",
        "table1": "Table 1: auxiliary labels y~ vs uniform y^ER per auxiliary dataset, with the baseline",
        "table12": "appendix Table 12: best alpha and pi per setting from a search sweep",
        "table9": "appendix Table 9: OAT (every auxiliary sample y^ER) vs gated BiaMAT on the same auxiliary data",
        "table10": "appendix Table 10: BiaMAT, generated data (Gowal et al. [16]) and both, on one network",
    }
    add_table_commands(commands, helps)
    commands.choices["table12"].add_argument(
        "--by", default=None, help="metric that picks the winner (default: the search's select/pgd<k> objective)")
    table1_parser = commands.choices["table1"]
    table1_parser.add_argument("--baseline-sweep", default=None,
                               help="sweep with the baseline runs (default: baseline trials of --sweep itself)")
    table1_parser.add_argument("--variant", choices=sorted(VARIANT_NAMES), default=None,
                               help="BiaMAT variant, if the sweep has both")
    text = "appendix Table 4: one or several auxiliary datasets at once, with the baseline (every final accuracy)"
    table4_parser = commands.add_parser("table4", help=text, description=text)
    add_source_arguments(table4_parser)
    table4_parser.add_argument("--baseline-sweep", default=None,
                               help="sweep with the baseline runs (default: baseline trials of --sweep itself)")
    table4_parser.add_argument("--variant", choices=sorted(VARIANT_NAMES), default=None,
                               help="BiaMAT variant, if the sweep has both")
    table4_parser.add_argument("--checkpoint", choices=("best", "last"), default="best")
    text = "Table 2: AT and TRADES with and without BiaMAT per auxiliary dataset, the baselines first"
    table2_parser = commands.add_parser("table2", help=text, description=text)
    add_source_arguments(table2_parser)
    table2_parser.add_argument("--baseline-sweep", default=None,
                               help="sweep with the AT and TRADES baselines, e.g. baselines-biamat-main-cifar10-paper "
                                    "(default: baseline trials of --sweep itself)")
    table2_parser.add_argument("--checkpoint", choices=("best", "last"), default="best")
    text = "appendix Table 5: test error of standard training on cifar-A with cifar-B and/or cifar-C, per batch size"
    table5_parser = commands.add_parser("table5", help=text, description=text)
    add_source_arguments(table5_parser)
    table5_parser.add_argument("--checkpoint", choices=("best", "last"), default="last")
    text = "appendix Table 6: networks trained normally on the robust datasets of the AT and AT+BiaMAT models"
    table6_parser = commands.add_parser("table6", help=text, description=text)
    add_source_arguments(table6_parser)
    table6_parser.add_argument("--checkpoint", choices=("best", "last"), default="last")
    commands.choices["table10"].add_argument(
        "--generated-sweep", default=None, help="sweep with the trials on generated data alone, e.g. "
        "biamat-generated-data-paper-generated (default: those of --sweep itself)")
    for number, text in ((7, ("appendix Table 7: BiaMAT against Carmon et al.'s semi-supervised method and generated "
                              "data, per primary dataset (clean and the strongest attack)")),
                         (3, "Table 3: the same on CIFAR-10, with Table 2's columns")):
        comparison = commands.add_parser(f"table{number}", help=text, description=text)
        add_source_arguments(comparison)
        comparison.add_argument("--baseline-sweep", default=None, help="sweep with the TRADES baseline, e.g. "
                                "baselines-biamat-main-cifar10-paper (default: its row is left out)")
        comparison.add_argument("--biamat-sweep", default=None, help="sweep with the TRADES+BiaMAT rows, e.g. "
                                "biamat-main-cifar10-paper (default: left out)")
        comparison.add_argument("--generated-sweep", default=None, help="sweep with TRADES on generated data (Gowal "
                                "et al.), e.g. biamat-generated-data-paper-generated (default: left out)")
        comparison.add_argument("--fine-tuning-sweep", default=None, help="Hendrycks et al.'s rows: the sweep that "
                                "fine-tuned by AT, e.g. biamat-pretraining-cifar10-paper (with --pretraining-sweep)")
        comparison.add_argument("--pretraining-sweep", default=None, help="the sweep that pre-trained them, e.g. "
                                "biamat-pretraining-cifar10-paper-pretraining")
        comparison.add_argument("--checkpoint", choices=("best", "last"), default="best")
        comparison.add_argument("--metric", default=None, help="the attack column (default: the strongest logged; "
                                "Table 3 shows Table 2's columns besides)")
    text = "appendix Table 8: fine-tuning an adversarially pre-trained network by AT and by TRADES"
    tuning = commands.add_parser("table8", help=text, description=text)
    add_source_arguments(tuning, several=True)
    tuning.add_argument("--pretraining-sweep", required=True, help="the sweep that pre-trained the networks, e.g. "
                        "biamat-pretraining-cifar10-paper-pretraining")
    tuning.add_argument("--checkpoint", choices=("best", "last"), default="best")
    fig = commands.add_parser("fig3", help="Fig. 3: n_high / n_aux per epoch as a PNG line plot")
    add_source_arguments(fig, output=False)
    fig.add_argument("--metric", default="train/high_fraction", help="per-epoch metric to plot")
    fig.add_argument("--out", type=Path, default=Path("fig3.png"), help="PNG file to write")
    times = commands.add_parser("table11", help="appendix Table 11: training time per method, from the runs' epoch "
                                "times (repeat --sweep: baselines and BiaMAT sweeps)")
    add_source_arguments(times, several=True)
    gate = commands.add_parser("table14", help="appendix Table 14: share of auxiliary images the gate passes, per "
                               "primary class (the gated runs' per-class counts)")
    add_source_arguments(gate)
    gate.add_argument("--mapping", type=Path, default=None,
                      help="CSV of aux_class,primary_class (default: the synthetic sets' own related classes)")
    gate.add_argument("--aux", default=None, help="auxiliary dataset param, if the sweep has several (e.g. imagenet32)")
    gate.add_argument("--variant", choices=sorted(VARIANT_NAMES), default=None, help="if the sweep has both")
    gate.add_argument("--pi", type=float, default=None, help="if the sweep has several")
    gate.add_argument("--epoch", type=int, default=None, help="0-based epoch of the counts (default: the last)")
    gate.add_argument("--pass", dest="full_pass", choices=("best", "last"), default=None,
                      help="read the counts of sweeps/biamat_gate_pass.py's pass of that model over every auxiliary "
                           "training image (the paper's way) instead of a training epoch's")
    text = ("appendix Table 14's --mapping CSV, from CINIC-10's synsets-to-cifar-10-classes.txt and your ImageNet32 "
            "class list (map_clsloc.txt)")
    derive = commands.add_parser("table14-mapping", help=text, description=text)
    derive.add_argument("--cinic", type=Path, required=True, help="CINIC-10's synsets-to-cifar-10-classes.txt")
    derive.add_argument("--classes", type=Path, required=True,
                        help="your ImageNet32 class list: map_clsloc.txt (WNID LABEL NAME) or one WNID per line")
    derive.add_argument("--out", type=Path, default=Path("imagenet32_to_cifar10.csv"), help="CSV to write")
    extremes = commands.add_parser("fig4", help="appendix Fig. 4: an auxiliary class's most and least confident "
                                   "images, from sweeps/biamat_gate_pass.py --figure-class")
    extremes.add_argument("--run", required=True, help="the run the pass scored")
    extremes.add_argument("--aux-class", type=int, required=True, help="the auxiliary class (its label)")
    extremes.add_argument("--checkpoint", choices=("best", "last"), default="best")
    extremes.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI "
                          "or sqlite:///mlflow.db)")
    extremes.add_argument("--out", type=Path, default=Path("fig4.png"), help="PNG file to write")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer before pandas and MLflow load.
    from analysis.biamat.comparisons import comparison_table, table8
    from analysis.biamat.figures import fig3, fig4
    from analysis.biamat.robust_datasets import table6
    from analysis.biamat.selection import table14
    from analysis.biamat.tables import table1, table2, table4, table5, table9, table10, table12, table13
    from analysis.biamat.training_time import table11
    from analysis.render import emit
    from analysis.runs import load_from_args
    from analysis.significance import with_stats
    from runstore.reader import SweepNotFoundError, load_sweep

    try:
        if args.command == "table14-mapping":
            from analysis.biamat.synset_mapping import mapping_csv

            try:
                text, summary = mapping_csv(args.cinic.read_text(), args.classes.read_text())
            except OSError as exc:
                raise ValueError(f"cannot read {exc.filename} ({exc.strerror})") from None
            args.out.write_text(text)
            print(f"wrote {args.out}: {summary}")
            return
        if args.command == "fig4":
            from runstore.reader import open_store

            figure = fig4(open_store(args.tracking_uri), args.run, args.aux_class, args.checkpoint)
            figure.savefig(args.out, dpi=150)
            print(f"wrote {args.out} (auxiliary class {args.aux_class} of run {args.run}, {args.checkpoint} model)")
            return
        if args.command == "table8":
            pretraining = load_sweep(args.pretraining_sweep, experiment=args.experiment, tracking_uri=args.tracking_uri)
            sweeps = [load_sweep(name, experiment=args.experiment, tracking_uri=args.tracking_uri)
                      for name in args.sweep]
            emit(with_stats(table8(sweeps, pretraining, args.checkpoint), args), args.format, args.out)
            return
        if args.command == "table11":
            sweeps = [load_sweep(name, experiment=args.experiment, tracking_uri=args.tracking_uri)
                      for name in args.sweep]
            emit(with_stats(table11(sweeps), args), args.format, args.out)
            return
        sweep = load_from_args(args)
        if args.command == "fig3":
            figure = fig3(sweep, args.metric)
            figure.savefig(args.out, dpi=150)
            lines = sum(len(ax.get_lines()) for ax in figure.axes)
            print(f"wrote {args.out} ({lines} lines in {len(figure.axes)} panel(s); {sweep.summary()})")
            return
        if args.command == "table14":
            table = table14(sweep, args.mapping, aux=args.aux, variant=args.variant, pi=args.pi, epoch=args.epoch,
                            full_pass=args.full_pass)
        elif args.command == "table13":
            table = table13(sweep, args.metric)
        elif args.command == "table12":
            table = table12(sweep, args.metric, args.by)
        elif args.command == "table9":
            table = table9(sweep, args.metric)
        elif args.command == "table5":
            table = table5(sweep, args.checkpoint)
        elif args.command == "table6":
            table = table6(sweep, args.checkpoint)
        elif args.command in ("table3", "table7"):
            others = {key: load_sweep(name, tracking_uri=args.tracking_uri) if name else None
                      for key, name in (("baseline", args.baseline_sweep), ("biamat", args.biamat_sweep),
                                        ("generated", args.generated_sweep))}
            if bool(args.fine_tuning_sweep) != bool(args.pretraining_sweep):
                raise ValueError("Hendrycks et al.'s rows need both --fine-tuning-sweep and --pretraining-sweep")
            pretrained = args.fine_tuning_sweep and tuple(load_sweep(name, tracking_uri=args.tracking_uri) for name in
                                                          (args.fine_tuning_sweep, args.pretraining_sweep))
            table = comparison_table(sweep, **others, metric=args.metric, number=int(args.command[5:]),
                                     checkpoint=args.checkpoint, pretrained=pretrained or None)
        elif args.command == "table10":
            generated = args.generated_sweep and load_sweep(args.generated_sweep, tracking_uri=args.tracking_uri)
            table = table10(sweep, generated or None, args.metric)
        else:
            baseline = None
            if args.baseline_sweep:
                baseline = load_sweep(args.baseline_sweep, tracking_uri=args.tracking_uri)
            if args.command == "table4":
                table = table4(sweep, baseline, args.variant, args.checkpoint)
            elif args.command == "table2":
                table = table2(sweep, baseline, args.checkpoint)
            else:
                table = table1(sweep, baseline, args.metric, args.variant)
    except (SweepNotFoundError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None
    emit(with_stats(table, args), args.format, args.out)


if __name__ == "__main__":
    main()
