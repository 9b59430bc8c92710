"""UIAT tables and figures from sweeps' MLflow runs (Dong et al., "The Enemy of My Enemy is My Friend", CVPR 2023).

    python analysis/uiat_tables.py table6 --sweep uiat-ablation-paper        # Table 6: UAG / FR / IAM ablation
    python analysis/uiat_tables.py lambda --sweep uiat-lambda-paper          # Fig. 3 as a table
    python analysis/uiat_tables.py fig3 --sweep uiat-lambda-paper --out fig3.png   # Fig. 3: accuracy against lambda
    python analysis/uiat_tables.py table3 --sweep uiat-eps-paper --baseline-sweep uiat-eps-paper-trades \\
        --hat-sweep uiat-eps-paper-hat                                       # Table 3: training eps 10/12/16 /255
    python analysis/uiat_tables.py table2 --sweep uiat-ablation-paper --sweep uiat-eps-paper \\
        --sweep uiat-eps-paper-trades --sweep baselines-uiat-paper              # Table 2: minutes per training epoch
    python analysis/uiat_tables.py table4 --sweep uiat-extra-data-paper-baselines \\
        --sweep uiat-extra-data-paper-hat --sweep uiat-extra-data-paper         # Table 4: with extra generated data
    python analysis/uiat_tables.py fig1 --sweep uiat-figures-paper-baselines --out fig1.png   # Fig. 1
    python analysis/uiat_tables.py fig2 --sweep uiat-figures-paper \\
        --sweep uiat-figures-paper-baselines --out fig2.png                  # Fig. 2; also fig4, fig5

Figs. 1, 2, 4 and 5 need the runs of ``sweeps/uiat_figures.py`` and, for Figs. 1, 4 and 5, its re-evaluations
(``sweeps/reevaluate.py``): ``analysis/uiat/figures.py`` says which, with the smoke commands.

Every command takes ``--tracking-uri`` (default ``$MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db``) and
``--experiment``; tables take ``--metric`` for the robust column (default: the strongest attack logged,
``best/autoattack`` in a paper run), ``--format md|csv|latex`` and ``--out FILE``. Natural accuracy is ``best/clean``
(the checkpoint the robust column uses). Only FINISHED trials count; nothing here retrains.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis.cli import add_source_arguments, add_table_commands, subcommands

FIGURES = {
    "fig1": "Fig. 1: standard training and PGD-AT, accuracy at signed eps per half of the points by clean CE",
    "fig2": "Fig. 2: PGD-AT and one-off UIAT, natural and PGD accuracy per epoch on training and test points",
    "fig4": "Fig. 4: TRADES and UIAT, accuracy at signed eps per half by clean CE, the gap at 8/255 annotated",
    "fig5": "Fig. 5: AutoAttack accuracy of one-off UIAT and TRADES across budgets, and their difference",
}
MULTI_SWEEP_TABLES = ("table1", "table2", "table4", "table5")  # their methods train in several sweeps: --sweep repeats


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = subcommands(parser)
    helps = {
        "table6": "Table 6: UAG / FR / IAM ablation (natural, PGD-20, AutoAttack)",
        "lambda": "Fig. 3 as a table: natural and robust accuracy per lambda",
        "table3": "Table 3: TRADES, HAT, UIAT and one-off UIAT trained at eps 10/12/16 /255",
    }
    add_table_commands(commands, helps)
    commands.choices["table3"].add_argument("--baseline-sweep", default=None,
                                            help="sweep with the TRADES runs (default: TRADES trials of --sweep)")
    commands.choices["table3"].add_argument("--hat-sweep", default=None,
                                            help="sweep with the HAT runs (default: HAT trials of --sweep)")
    fig = commands.add_parser("fig3", help="Fig. 3: natural and robust accuracy against lambda as a PNG")
    add_source_arguments(fig, output=False)
    fig.add_argument("--metric", default=None, help="robust metric (default: the strongest attack logged)")
    fig.add_argument("--out", type=Path, default=Path("fig3.png"), help="PNG file to write")
    times = commands.add_parser("table2", help="Table 2: minutes per training epoch per method and model",
                                description="Table 2: minutes per training epoch per method and model")
    add_source_arguments(times, several=True)
    text = "Table 5: single-step methods alone and with one-off UIAT per eps, and seconds per epoch (repeat --sweep)"
    single = commands.add_parser("table5", help=text, description=text)
    add_source_arguments(single, several=True)
    single.add_argument("--metric", default=None, help="robust metric (default: the strongest attack logged)")
    text = "Table 4: natural and robust accuracy with extra generated data per dataset and network (repeat --sweep)"
    extra = commands.add_parser("table4", help=text, description=text)
    add_source_arguments(extra, several=True)
    extra.add_argument("--metric", default=None, help="robust metric (default: AutoAttack, else the strongest logged)")
    text = "Table 1: every method's natural, PGD-20, CW and AutoAttack accuracy per dataset (repeat --sweep)"
    methods = commands.add_parser("table1", help=text, description=text)
    add_source_arguments(methods, several=True)
    methods.add_argument("--checkpoint", choices=("best", "last"), default="best")
    for name, text in FIGURES.items():
        sub = commands.add_parser(name, help=f"{text} (PNG)", description=text)
        add_source_arguments(sub, output=False, several=True)
        sub.add_argument("--out", type=Path, default=Path(f"{name}.png"), help="PNG file to write")
        if name != "fig2":  # Fig. 2 reads per-epoch metrics; the others re-evaluations (sweeps/reevaluate.py)
            sub.add_argument("--attack", default="autoattack" if name == "fig5" else "pgd20",
                             help="the re-evaluated attack to plot (default: %(default)s)")
            sub.add_argument("--n", type=int, default=None,
                             help="re-evaluated on N test points (default: the largest N all methods have)")
            sub.add_argument("--checkpoint", choices=("best", "last"), default="best")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer before pandas and MLflow load.
    from analysis.render import emit
    from analysis.runs import load_from_args
    from analysis.significance import with_stats
    from analysis.uiat import figures as uiat_figures
    from analysis.uiat.tables import lambda_table, table1, table2, table3, table4, table5, table6
    from runstore.reader import SweepNotFoundError, load_sweep

    try:
        if args.command in MULTI_SWEEP_TABLES or args.command in FIGURES:
            sweeps = [load_sweep(name, experiment=args.experiment, tracking_uri=args.tracking_uri)
                      for name in args.sweep]
            if args.command in MULTI_SWEEP_TABLES:
                tables = {"table1": lambda: table1(sweeps, args.checkpoint), "table2": lambda: table2(sweeps),
                          "table4": lambda: table4(sweeps, args.metric), "table5": lambda: table5(sweeps, args.metric)}
                emit(with_stats(tables[args.command](), args), args.format, args.out)
                return
            options = {} if args.command == "fig2" else {"attack": args.attack, "n": args.n,
                                                         "checkpoint": args.checkpoint}
            figure = getattr(uiat_figures, args.command)(sweeps, **options)
            figure.savefig(args.out, dpi=150)
            print(f"wrote {args.out} ({'; '.join(s.summary() for s in sweeps)})")
            return
        sweep = load_from_args(args)
        if args.command == "fig3":
            uiat_figures.fig3(sweep, args.metric).savefig(args.out, dpi=150)
            print(f"wrote {args.out} ({sweep.summary()})")
            return
        if args.command == "table6":
            table = table6(sweep, args.metric)
        elif args.command == "lambda":
            table = lambda_table(sweep, args.metric)
        else:
            baseline, hat = (load_sweep(name, tracking_uri=args.tracking_uri) if name else None
                             for name in (args.baseline_sweep, args.hat_sweep))
            table = table3(sweep, baseline, args.metric, hat=hat)
    except (SweepNotFoundError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None
    emit(with_stats(table, args), args.format, args.out)


if __name__ == "__main__":
    main()
