"""UIAT tables and figures from sweeps' MLflow runs (Dong et al., "The Enemy of My Enemy is My Friend", CVPR 2023).

    python analysis/uiat_tables.py table6 --sweep uiat-ablation-paper        # Table 6: UAG / FR / IAM ablation
    python analysis/uiat_tables.py lambda --sweep uiat-lambda-paper          # Fig. 3 as a table
    python analysis/uiat_tables.py fig3 --sweep uiat-lambda-paper --out fig3.png   # Fig. 3: accuracy against lambda
    python analysis/uiat_tables.py table3 --sweep uiat-eps-paper \\
        --baseline-sweep uiat-eps-paper-trades                               # Table 3: training eps 10/12/16 /255
    python analysis/uiat_tables.py table2 --sweep uiat-ablation-paper --sweep uiat-eps-paper \\
        --sweep uiat-eps-paper-trades --sweep baselines-uiat-paper              # Table 2: minutes per training epoch
    python analysis/uiat_tables.py table4 --sweep uiat-extra-data-paper-baselines \\
        --sweep uiat-extra-data-paper-hat --sweep uiat-extra-data-paper         # Table 4: with extra generated data
    python analysis/uiat_tables.py fig1 --sweep uiat-figures-paper-baselines --out fig1.png   # Fig. 1
    python analysis/uiat_tables.py fig2 --sweep uiat-figures-paper \\
        --sweep uiat-figures-paper-baselines --out fig2.png                  # Fig. 2; also fig4, fig5

Figs. 1, 2, 4 and 5 need the runs of ``sweeps/uiat_figures.py`` and, for Figs. 1, 4 and 5, its re-evaluations
(``sweeps/reevaluate.py``): ``analysis/uiat_figures.py`` says which, with the smoke commands.

Every command takes ``--tracking-uri`` (default ``$MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db``) and
``--experiment``; tables take ``--metric`` for the robust column (default: the strongest attack logged,
``best/autoattack`` in a paper run), ``--format md|csv|latex`` and ``--out FILE``. Natural accuracy is ``best/clean``
(the checkpoint the robust column uses). Only FINISHED trials count; nothing here retrains.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from analysis.cells import Cell, Table, aggregate, bold_best
from analysis.cli import add_source_arguments, add_table_commands
from analysis.render import emit
from analysis.runs import dataset_name, load_from_args, metric_label, resolve_metric
from runstore.reader import SweepNotFoundError, SweepRuns, column, load_sweep

MISSING = "-"
# Table 6's rows in the paper's order (the `components` param of trainables/methods/uiat.py).
TABLE6_ROWS = ["none", "uag", "uag+fr", "uag+iam", "uag+fr+iam"]
SWITCHES = ("uag", "fr", "iam")
BASELINE_NAMES = {"standard": "Natural Training", "pgd_at": "PGD-AT", "trades": "TRADES"}
OTHER_METHOD_NAMES = {"mart": "MART", "hat": "HAT"}
SINGLE_STEP_NAMES = {"n_fgsm": "N-FGSM", "rs_fgsm": "RS-FGSM", "gradalign": "GradAlign"}
# The paper's row order (Tables 1, 2 and 5); other labels follow alphabetically.
METHOD_ORDER = ["Natural Training", "PGD-AT", "TRADES", "MART", "HAT", "IAT", "UIAT", "UIAT (One-off)",
                *(f"{name}{plus}" for name in SINGLE_STEP_NAMES.values() for plus in ("", " + UIAT"))]
NATURAL = "best/clean"
FIGURES = {
    "fig1": "Fig. 1: standard training and PGD-AT, accuracy at signed eps per half of the points by clean CE",
    "fig2": "Fig. 2: PGD-AT and one-off UIAT, natural and PGD accuracy per epoch on training and test points",
    "fig4": "Fig. 4: TRADES and UIAT, accuracy at signed eps per half by clean CE, the gap at 8/255 annotated",
    "fig5": "Fig. 5: AutoAttack accuracy of one-off UIAT and TRADES across budgets, and their difference",
}


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


def table6(sweep: SweepRuns, metric: str | None = None) -> Table:
    """Table 6: one row per component set (the paper's five first), check marks for UAG / FR / IAM, natural,
    PGD-20 and robust accuracy (best per column in bold)."""
    df = uiat_runs(sweep.runs, oneoff=False)
    if df.empty:
        raise ValueError(f"no finished UIAT trials (without one-off): {sweep.summary()}")
    metrics = accuracy_columns(df, metric)
    cells = {m: bold_best(aggregate(df, ["params.components"], m)) for m in metrics}
    present = set(df["params.components"])
    order = [c for c in TABLE6_ROWS if c in present] + sorted(present - set(TABLE6_ROWS))
    rows: list[list[str | Cell]] = [
        [*("✓" if s in components.split("+") else "" for s in SWITCHES),
         *(cells[m].get((components,), MISSING) for m in metrics)]
        for components in order
    ]
    headers, checkpoint = paper_headers(metrics)
    header = ["UAG", "FR", "IAM", *headers]
    notes = [("UAG: universal (class-wise) inverse adversaries, otherwise instance-wise IAT; FR: feature term of "
              "Eq. 4; IAM: inverse-adversary momentum (Eq. 8); best mean per column in bold"), *checkpoint,
             sweep.summary()]
    return Table(f"Table 6. Ablation of UIAT's components ({datasets(df)}): accuracy (%)", header, rows, notes)


def datasets(df: pd.DataFrame) -> str:
    pairs = df[["params.dataset", "params.model"]].drop_duplicates()
    return "; ".join(f"{d}, {m}" for d, m in pairs.itertuples(index=False))


def lambda_cells(sweep: SweepRuns, metric: str | None) -> tuple[pd.DataFrame, list[str], dict[str, dict]]:
    df = uiat_runs(sweep.runs)
    if df.empty:
        raise ValueError(f"no finished UIAT trials: {sweep.summary()}")
    metrics = [NATURAL, resolve_metric(metric, df)]
    return df, metrics, {m: aggregate(df, ["params.lam"], m) for m in metrics}


def lambda_table(sweep: SweepRuns, metric: str | None = None) -> Table:
    """Fig. 3 as a table: natural and robust accuracy for each lambda."""
    df, metrics, cells = lambda_cells(sweep, metric)
    lams = sorted({key[0] for c in cells.values() for key in c})
    rows: list[list[str | Cell]] = [[f"{lam:g}", *(cells[m].get((lam,), MISSING) for m in metrics)] for lam in lams]
    variant = ", ".join(sorted({method_label(r) for _, r in df.iterrows()}))
    title = f"Fig. 3. Sensitivity of {variant} to lambda ({datasets(df)}): accuracy (%)"
    headers, checkpoint = paper_headers(metrics)
    return Table(title, ["lambda", *headers], rows, [*checkpoint, sweep.summary()])


def eps_label(eps: float) -> str:
    # Params are logged to 6 significant digits: 10/255 reads back as 0.0392157, 1e-5 of a 255th off.
    return f"{round(eps * 255)}/255" if abs(round(eps * 255) - eps * 255) < 1e-4 else f"{eps:.4g}"


def table3(sweep: SweepRuns, baseline: SweepRuns | None = None, metric: str | None = None) -> Table:
    """Table 3: per training eps, TRADES, UIAT and one-off UIAT with natural and robust accuracy at that eps;
    TRADES from ``baseline`` (another sweep) or from the TRADES trials of ``sweep`` itself."""
    df = uiat_runs(sweep.runs)
    if df.empty:
        raise ValueError(f"no finished UIAT trials: {sweep.summary()}")
    base = (baseline or sweep).runs
    base = base[(column(base, "tags.method") == "baseline") & (column(base, "params.training") == "trades")]
    frame = pd.concat([df, base], ignore_index=True)
    frame["method"] = [method_label(r) for _, r in frame.iterrows()]
    metrics = [NATURAL, resolve_metric(metric, df, base)]
    cells = {m: aggregate(frame, ["params.eps", "method"], m) for m in metrics}
    methods = in_method_order(frame["method"])
    rows: list[list[str | Cell]] = []
    for eps in sorted(set(frame["params.eps"])):
        rows += [[eps_label(eps) if i == 0 else "", name, *(cells[m].get((eps, name), MISSING) for m in metrics)]
                 for i, name in enumerate(methods)]
    headers, checkpoint = paper_headers(metrics)
    notes = [*checkpoint, sweep.summary()] + ([f"TRADES from {baseline.summary()}"] if baseline is not None else [])
    if base.empty:
        notes.append("no finished TRADES trials found")
    title = f"Table 3. Training and evaluation at larger eps ({datasets(df)}): accuracy (%)"
    return Table(title, ["eps", "Method", *headers], rows, notes)


# Table 1's columns: its datasets in its order, then others; per dataset the final protocol's accuracies logged.
TABLE1_DATASETS = ("cifar10", "cifar100", "svhn")
TABLE1_ATTACKS = ("clean", "pgd20", "cw20", "autoattack")


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


def table1(sweeps: Sequence[SweepRuns], checkpoint: str = "best") -> Table:
    """Table 1: one row per method (the paper's order), per dataset its natural, PGD-20, CW and AutoAttack accuracy
    of the ``checkpoint``, from the runs of every sweep given (the methods train in several sweeps); the best mean
    per column in bold."""
    df = all_runs(sweeps)
    present = set(column(df, "params.dataset").dropna())
    order = [d for d in TABLE1_DATASETS if d in present] + sorted(present - set(TABLE1_DATASETS))
    columns = []  # (dataset, metric) with at least one value
    cells: dict[tuple[str, str], dict[tuple, Cell]] = {}
    for dataset in order:
        rows = df[df["params.dataset"] == dataset]
        for attack in TABLE1_ATTACKS:
            metric = f"{checkpoint}/{attack}"
            found = aggregate(rows, ["method"], metric)
            if found:
                columns.append((dataset, metric))
                cells[(dataset, metric)] = bold_best(found)
    if not columns:
        raise ValueError(f"no {checkpoint}/* accuracy logged in " + "; ".join(s.summary() for s in sweeps))
    methods = in_method_order(df["method"])
    rows_out: list[list[str | Cell]] = [[name, *(cells[c].get((name,), MISSING) for c in columns)]
                                         for name in methods]
    header = ["Method", *(f"{dataset_name(d)} {metric_label(m, checkpoint=False, clean='Natural')}"
                          for d, m in columns)]
    models = ", ".join(sorted(set(column(df, "params.model").dropna())))
    notes = [f"accuracy of the {checkpoint} checkpoint; best mean per column in bold; PGD-AT is the paper's SAT",
             *(s.summary() for s in sweeps)]
    return Table(f"Table 1. Adversarial training methods ({models}): accuracy (%)", header, rows_out, notes,
                 label="uiat-table1")


# Table 4's rows in its order, as the paper names them (its "Rebuffi et al." row is their loss, TRADES, trained with the
# extra data: sweeps/uiat_extra_data.py); HAT's standard-trained helpers are not a row.
TABLE4_METHODS = {"TRADES": "Rebuffi et al. (TRADES)", "HAT": "HAT", "UIAT": "UIAT", "UIAT (One-off)": "UIAT (One-off)"}
ARCHITECTURES = {"preact-resnet18": "PRN-18", "wrn-28-10": "WRN-28-10"}  # Table 4's names of its networks


def extra_data_note(df: pd.DataFrame) -> str:
    """Which extra data the runs trained with and the training set's share of each batch."""
    names = sorted({Path(str(name).removeprefix("npz:")).name for name in df["params.extra_data"]})
    shares = sorted({f"{float(share):g}" for share in column(df, "params.original_fraction").dropna()})
    return f"trained with extra data {', '.join(names)}; training-set share of each batch {', '.join(shares)}"


def table4(sweeps: Sequence[SweepRuns], metric: str | None = None) -> Table:
    """Table 4: per dataset and network, Rebuffi et al. (TRADES), HAT, UIAT and one-off UIAT trained with extra data
    (runs whose ``extra_data`` is set), their natural and robust accuracy: AutoAttack where the runs measured it, else
    the strongest attack they logged, which a note names (or ``metric``); the best mean per column in bold within each
    dataset and network."""
    df = all_runs(sweeps)
    with_extra = column(df, "params.extra_data").fillna("").astype(str) != ""
    shown = df[with_extra & df["method"].isin(TABLE4_METHODS)]
    if shown.empty:
        raise ValueError("no finished TRADES, HAT or UIAT trials with extra_data in "
                         + "; ".join(s.summary() for s in sweeps))
    shown = shown.assign(method=shown["method"].map(TABLE4_METHODS))
    robust = resolve_metric(metric, shown)
    metrics = [NATURAL, robust]
    datasets_in = set(shown["params.dataset"])
    dataset_order = [d for d in TABLE1_DATASETS if d in datasets_in] + sorted(datasets_in - set(TABLE1_DATASETS))
    rows: list[list[str | Cell]] = []
    for dataset in dataset_order:
        part = shown[shown["params.dataset"] == dataset]
        present = set(part["params.model"])
        models = [m for m in ARCHITECTURES if m in present] + sorted(present - set(ARCHITECTURES))
        for j, model in enumerate(models):
            runs = part[part["params.model"] == model]
            cells = {m: bold_best(aggregate(runs, ["method"], m)) for m in metrics}
            names = [name for name in TABLE4_METHODS.values() if name in set(runs["method"])]
            # Like the paper, a dataset and a network are named on their first row only.
            rows += [[dataset_name(dataset) if i == j == 0 else "", ARCHITECTURES.get(model, model) if i == 0 else "",
                      name, *(cells[m].get((name,), MISSING) for m in metrics)] for i, name in enumerate(names)]
    notes = [f"Natural: {metric_label(NATURAL, clean='Natural')}; Robust: {metric_label(robust)}"
             + ("" if robust.endswith("/autoattack") or metric else "; AutoAttack was not measured by these runs"),
             "best mean per column in bold within each dataset and network", extra_data_note(shown),
             ("Rebuffi et al.: their loss (TRADES) on the same recipe, without their weight averaging and other "
              "details (sweeps/uiat_extra_data.py)")]
    if len(shown) < with_extra.sum():
        notes.append("not shown: HAT's standard-trained helpers and methods Table 4 does not have")
    notes += [s.summary() for s in sweeps]
    return Table("Table 4. Adversarial training with extra generated data: accuracy (%)",
                 ["Dataset", "Architecture", "Method", "Natural", "Robust"], rows, notes, label="uiat-table4")


def is_single_step(row: pd.Series) -> bool:
    """A Table 5 run: a single-step method alone, or one-off UIAT on a single-step attack."""
    method = row.get("tags.method")
    attack = row.get("params.training_attack")
    return method in ("single_step", "gradalign") or (method == "uiat" and isinstance(attack, str) and attack != "pgd")


def table5(sweeps: Sequence[SweepRuns], metric: str | None = None) -> Table:
    """Table 5: single-step methods alone and with one-off UIAT, per training eps their natural and robust accuracy
    (``metric``, default the strongest attack logged: AutoAttack in a paper run), and seconds per training epoch
    (mean over each run's epochs, then over the method's runs at every eps); the best mean per column in bold."""
    df = all_runs(sweeps, epoch_times=True)
    df = df[[is_single_step(row) for _, row in df.iterrows()]]
    if df.empty:
        raise ValueError("no finished single-step trials (N-FGSM, RS-FGSM, GradAlign, or UIAT on one) in "
                         + "; ".join(s.summary() for s in sweeps))
    metrics = [NATURAL, resolve_metric(metric, df)]
    epsilons = sorted(set(df["params.eps"]))
    cells = {(eps, m): bold_best(aggregate(df[df["params.eps"] == eps], ["method"], m))
             for eps in epsilons for m in metrics}
    times = {(name,): Cell.of(group, scale=1.0, spec=".1f")
             for name, group in df.dropna(subset=["epoch_seconds"]).groupby("method")["epoch_seconds"]}
    rows: list[list[str | Cell]] = [
        [name, *(cells[(eps, m)].get((name,), MISSING) for eps in epsilons for m in metrics),
         times.get((name,), MISSING)]
        for name in in_method_order(df["method"])
    ]
    robust = metric_label(metrics[1], checkpoint=False)
    header = ["Method", *(f"eps {eps_label(eps)} {name}" for eps in epsilons for name in ("Natural", robust)),
              "Time (s/epoch)"]
    notes = [(f"accuracy of the best checkpoint (Robust: {robust}); best mean per column in bold; + UIAT: one-off "
              "UIAT without the feature term (beta = 0); times from whatever device ran each trial"),
             *(s.summary() for s in sweeps)]
    return Table(f"Table 5. Single-step adversarial training with one-off UIAT ({datasets(df)}): accuracy (%)",
                 header, rows, notes, label="uiat-table5")


def table2(sweeps: Sequence[SweepRuns]) -> Table:
    """Table 2: minutes per training epoch per method (rows) and model (columns): each run's mean of
    ``epoch_time_s`` (the training pass only, no evaluation) over its epochs, then the mean over runs."""
    df = all_runs(sweeps, epoch_times=True).dropna(subset=["epoch_seconds"])
    if df.empty:
        raise ValueError(f"no run logged {EPOCH_TIME!r}")
    times = pd.DataFrame({"method": df["method"], "model": df["params.model"], "minutes": df["epoch_seconds"] / 60})
    stats = times.groupby(["method", "model"])["minutes"].agg(["mean", "std", "count"])
    models = sorted(set(times["model"]))
    methods = in_method_order(times["method"])

    def text(method: str, model: str) -> str:
        if (method, model) not in stats.index:
            return MISSING
        mean, std, count = stats.loc[(method, model)]
        return f"{mean:.2f}" + (f" ± {std:.2f} (n={int(count)})" if count > 1 else "")

    rows: list[list[str | Cell]] = [[method, *(text(method, model) for model in models)] for method in methods]
    notes = [("mean over each run's epochs, then over runs; times come from whatever device ran each trial, so "
             "compare sweeps run on the same hardware"), *(s.summary() for s in sweeps)]
    return Table("Table 2. Training time (min/epoch)", ["Method", *models], rows, notes)


MULTI_SWEEP_TABLES = ("table1", "table2", "table4", "table5")  # their methods train in several sweeps: --sweep repeats


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    helps = {
        "table6": "Table 6: UAG / FR / IAM ablation (natural, PGD-20, AutoAttack)",
        "lambda": "Fig. 3 as a table: natural and robust accuracy per lambda",
        "table3": "Table 3: TRADES, UIAT and one-off UIAT trained at eps 10/12/16 /255",
    }
    add_table_commands(commands, helps)
    commands.choices["table3"].add_argument("--baseline-sweep", default=None,
                                            help="sweep with the TRADES runs (default: TRADES trials of --sweep)")
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
                             help="re-evaluated on the first N test points (default: the largest N all methods have)")
            sub.add_argument("--checkpoint", choices=("best", "last"), default="best")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    # The figures build on this module's labels, so their module imports this one: imported here, not at the top.
    from analysis import uiat_figures

    try:
        if args.command in MULTI_SWEEP_TABLES or args.command in FIGURES:
            sweeps = [load_sweep(name, experiment=args.experiment, tracking_uri=args.tracking_uri)
                      for name in args.sweep]
            if args.command in MULTI_SWEEP_TABLES:
                tables = {"table1": lambda: table1(sweeps, args.checkpoint), "table2": lambda: table2(sweeps),
                          "table4": lambda: table4(sweeps, args.metric), "table5": lambda: table5(sweeps, args.metric)}
                emit(tables[args.command](), args.format, args.out)
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
            baseline = load_sweep(args.baseline_sweep, tracking_uri=args.tracking_uri) if args.baseline_sweep else None
            table = table3(sweep, baseline, args.metric)
    except (SweepNotFoundError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None
    emit(table, args.format, args.out)


if __name__ == "__main__":
    main()
