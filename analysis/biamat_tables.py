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
    python analysis/biamat_tables.py table2 --sweep biamat-main-cifar10-paper \\
        --baseline-sweep baselines-biamat-main-cifar10-paper                           # Table 2: main results
    python analysis/biamat_tables.py table9 --sweep biamat-oat-paper                  # Appendix Table 9: OAT

Every command takes ``--tracking-uri`` (default ``$MLFLOW_TRACKING_URI`` or ``sqlite:///mlflow.db``), ``--experiment``
to look in one experiment only, ``--parent-run ID`` instead of ``--sweep`` (table11 reads several ``--sweep``);
tables take ``--format md|csv|latex|latex-doc`` and ``--out FILE``, and those of accuracies ``--metric`` (default: the
strongest attack logged, ``best/autoattack`` in a paper run). Table 14's mapping and the counts it reads:
``analysis/biamat_selection.py``. Only FINISHED trials count; the notes under each table say how many were skipped.
Nothing here retrains: a table with gaps means the sweep has not run those trials.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.cells import Cell, Table, aggregate, bold_best
from analysis.cli import add_source_arguments, add_table_commands
from analysis.figure_style import distinct_styles, legend_outside
from analysis.render import Label, compose, emit
from analysis.runs import (
    dataset_name,
    distinguishing_params,
    load_from_args,
    metric_label,
    only_value,
    recipe_differences,
    resolve_metric,
)
from runstore.reader import SweepNotFoundError, SweepRuns, column, load_sweep

VARIANT_NAMES = {"at": "AT+BiaMAT", "trades": "TRADES+BiaMAT"}
# Table 1 compares each BiaMAT variant with the baseline trained the same way, minus the auxiliary data.
BASELINE_TRAINING = {"at": "pgd_at", "trades": "trades"}
TRAINING_NAMES = {"standard": "Standard", "pgd_at": "AT", "trades": "TRADES"}  # the baselines as the paper names them
Y_TILDE = Label("ỹ", r"$\tilde{y}$")  # every auxiliary sample keeps its own label (labels=aux)
Y_ER = Label("y^ER", r"$y^{ER}$")  # every auxiliary sample gets the uniform label (labels=uniform, OAT)
LABEL_ROWS = {"aux": Y_TILDE, "uniform": Y_ER}
# Table 1's columns in the paper's order; Table 2 adds ImgNet100's (Places365 at 64x64, ImgNet900) after them, and
# other auxiliary sets follow alphabetically.
PAPER_AUX_ORDER = ("svhn", "cifar100", "places365_32", "imagenet32")
AUX_ORDER = (*PAPER_AUX_ORDER, "places365_64", "imgnet900")
MISSING = "-"
HIGH_FRACTION = "train/high_fraction"  # n_high / n_aux, averaged over an epoch's steps (trainables/methods/biamat.py)
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
    names = [f"{VARIANT_NAMES.get(v, v)} ({dataset_name(d)}, {dataset_name(a)})" if several else VARIANT_NAMES.get(v, v)
             for v, d, a in columns]
    # What pi did: the share of auxiliary samples the gate passed in the last epoch, beside each accuracy. Shown when
    # the sweep logged it (every gated trial of this runtime does); a store without it keeps the paper's columns.
    high = aggregate(df, [*keys, "params.pi"], HIGH_FRACTION)
    header = [part for name in names for part in ([name, compose(name, " ", HIGH_HEADER)] if high else [name])]

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
    title = f"Table 13. Ablation on π ({setting(df)}): {metric_label(metric)} accuracy (%)"
    notes = [sweep.summary()]
    if high:
        notes.append(f"{HIGH_HEADER}: share of auxiliary samples with primary confidence >= omega over the last "
                     "epoch (train/high_fraction), mean over seeds")
    return Table(title, ["π", *header], rows, notes, label="biamat-table13")


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
    base = matched_baseline(df, source, variant, dataset)
    metric = resolve_metric(metric, df, base)
    cells = aggregate(df, ["params.labels", "params.aux_datasets"], metric)
    auxes = sorted({aux for _, aux in cells}, key=paper_order)
    for aux in auxes:
        if all((labels, aux) in cells for labels in LABEL_ROWS):  # bold: the better of the pair
            cells.update(bold_best({(labels, aux): cells[(labels, aux)] for labels in LABEL_ROWS}))
    base_scores = column(base, f"metrics.{metric}").dropna()
    base_cell: str | Cell = Cell.of(base_scores) if len(base_scores) else MISSING

    rows: list[list[str | Cell]] = [
        [name, *(cells.get((labels, aux), MISSING) for aux in auxes), base_cell if i == 0 else ""]
        for i, (labels, name) in enumerate(LABEL_ROWS.items())
    ]
    notes = ["ỹ: every auxiliary sample keeps its own label; y^ER: the uniform label",
             f"the better of the two per auxiliary dataset in bold; {sweep.summary()}"]
    if baseline is not None:
        notes.append(f"baseline from {baseline.summary()}")
    if isinstance(base_cell, str):
        notes.append(f"no finished {BASELINE_TRAINING[variant]} baseline on {dataset} with {metric} in "
                     f"sweep {source.name!r}")
    title = compose(f"Table 1. {VARIANT_NAMES[variant]} on {dataset_name(dataset)} with ", Y_TILDE, " or ", Y_ER,
                    f" for the auxiliary data: {metric_label(metric)} accuracy (%)")
    header = [compose(Y_TILDE, " / ", Y_ER), *map(dataset_name, auxes),
              f"Baseline ({TRAINING_NAMES[BASELINE_TRAINING[variant]]})"]
    return Table(title, header, rows, notes, label="biamat-table1")


# Table 4's columns: the final protocol's accuracies the runs logged, in the paper's order (it shows Clean, PGD-100,
# CW-100 and AA; the smoke preset evaluates clean and PGD-20).
TABLE4_ATTACKS = ("clean", "pgd20", "pgd100", "cw100", "autoattack")
AUX_MIX_NAMES = {"concatenated": "", "equal": " (equal shares)"}


def combination_order(aux: str) -> tuple[int, int, str]:
    """Table 4's row order: each combination right after the last of its sets in the paper's order (SVHN, CIFAR-100,
    SVHN + CIFAR-100, Places365, ImageNet, Places365 + ImageNet)."""
    parts = str(aux).split(",")
    return max(paper_order(p)[0] for p in parts), len(parts), str(aux)


def table4(sweep: SweepRuns, baseline: SweepRuns | None = None, variant: str | None = None,
           checkpoint: str = "best") -> Table:
    """Appendix Table 4: the variant's baseline ("-") and one BiaMAT row per auxiliary set or combination of sets
    (gated trials), with every final accuracy logged; the best per column in bold, the baseline included."""
    df = biamat_runs(sweep.runs)
    if df.empty:
        raise ValueError(f"no finished gated BiaMAT trials: {sweep.summary()}")
    df, variant = only_value(df, "params.variant", variant)
    df, dataset = only_value(df, "params.dataset")
    df = df.assign(mix=column(df, "params.aux_mix").fillna("concatenated"))  # runs from before aux_mix existed
    source = baseline or sweep
    base = matched_baseline(df, source, variant, dataset)
    metrics = [f"{checkpoint}/{a}" for a in TABLE4_ATTACKS if f"metrics.{checkpoint}/{a}" in df]
    if not metrics:
        raise ValueError(f"no {checkpoint}/* accuracy logged by the BiaMAT trials of {sweep.summary()}")
    cells = {m: aggregate(df, ["params.aux_datasets", "mix"], m) for m in metrics}
    keys = sorted({key for c in cells.values() for key in c}, key=lambda k: (combination_order(k[0]), k[1]))
    base_cells = {m: Cell.of(column(base, f"metrics.{m}").dropna()) for m in metrics
                  if column(base, f"metrics.{m}").notna().any()}
    for m in metrics:  # bold: the best mean of the column, baseline (key None) included
        cells[m] = bold_best({**cells[m], **({None: base_cells[m]} if m in base_cells else {})})
        if m in base_cells:
            base_cells[m] = cells[m].pop(None)
    base_name = TRAINING_NAMES[BASELINE_TRAINING[variant]]
    rows: list[list[str | Cell]] = [[base_name, "-", *(base_cells.get(m, MISSING) for m in metrics)]]
    rows += [[VARIANT_NAMES[variant] if i == 0 else "", dataset_name(aux).replace(" + ", ", ") + AUX_MIX_NAMES[mix],
              *(cells[m].get((aux, mix), MISSING) for m in metrics)] for i, (aux, mix) in enumerate(keys)]
    notes = [f"best mean per column in bold; {sweep.summary()}",
             ("several auxiliary sets: one auxiliary head over their classes; drawn from their concatenation (each in "
              "proportion to its size) unless marked (equal shares): aux_mix")]
    if baseline is not None:
        notes.append(f"baseline from {baseline.summary()}")
    if not base_cells:
        notes.append(f"no finished {BASELINE_TRAINING[variant]} baseline on {dataset} in sweep {source.name!r}")
    title = (f"Table 4. {VARIANT_NAMES[variant]} on {dataset_name(dataset)} with one or several auxiliary datasets: "
             f"accuracy (%) of the {checkpoint} checkpoint")
    header = ["Method", "Auxiliary dataset", *(metric_label(m, checkpoint=False) for m in metrics)]
    return Table(title, header, rows, notes, label="biamat-table4")


def paper_order(aux: str) -> tuple[int, str]:
    """Tables 1 and 2's order: the paper's auxiliary sets first, in its order, then any other alphabetically."""
    return (AUX_ORDER.index(aux), "") if aux in AUX_ORDER else (len(AUX_ORDER), aux)


def primary_order(dataset: str) -> tuple[int, str]:
    """Tables 2 and 11's order of the primary datasets: the paper's, then any other alphabetically."""
    return (PRIMARY_ORDER.index(dataset), "") if dataset in PRIMARY_ORDER else (len(PRIMARY_ORDER), str(dataset))


def bold_best_per_column(rows: dict[str, dict[str, Cell]]) -> dict[str, dict[str, Cell]]:
    """``rows`` (row -> metric -> Cell) with each metric's column marked by :func:`analysis.runs.bold_best`."""
    columns = {m: bold_best({row: cells[m] for row, cells in rows.items() if m in cells})
               for m in {m for cells in rows.values() for m in cells}}
    return {row: {m: columns[m][row] for m in cells} for row, cells in rows.items()}


TABLE2_ATTACKS = ("clean", "pgd100", "cw100", "autoattack")  # Table 2's columns: Clean, PGD-100, CW-100, AA


def table2(sweep: SweepRuns, baseline: SweepRuns | None = None, checkpoint: str = "best") -> Table:
    """Table 2: per primary dataset and variant, the baseline trained the same way ("AT", "TRADES": from ``baseline``,
    another sweep, or the baseline trials of ``sweep`` itself) and then one gated BiaMAT row per auxiliary set in the
    paper's order, with the paper's columns the runs logged. As the paper, the best mean per column within each
    variant's block (its baseline included) is bold."""
    df = biamat_runs(sweep.runs)
    if df.empty:
        raise ValueError(f"no finished gated BiaMAT trials: {sweep.summary()}")
    source = baseline or sweep
    # The paper's columns the runs logged; a run without them (smoke: clean and PGD-20) adds its strongest attack.
    strongest = resolve_metric(None, df, checkpoint=checkpoint)
    metrics = list(dict.fromkeys([*(f"{checkpoint}/{a}" for a in TABLE2_ATTACKS if f"metrics.{checkpoint}/{a}" in df),
                                  strongest]))
    primaries = sorted(df["params.dataset"].unique(), key=primary_order)
    rows: list[list[str | Cell]] = []
    settings, missing = [], []
    for dataset in primaries:
        of_primary = df[df["params.dataset"] == dataset]
        primary_cell = dataset_name(dataset)  # on the primary's first row only, as the paper prints it
        for variant in [v for v in VARIANT_NAMES if v in set(of_primary["params.variant"])]:
            runs = of_primary[of_primary["params.variant"] == variant]
            base = matched_baseline(runs, source, variant, dataset)
            block = {"-": {m: Cell.of(column(base, f"metrics.{m}").dropna()) for m in metrics
                           if column(base, f"metrics.{m}").notna().any()}}
            cells = {m: aggregate(runs, ["params.aux_datasets"], m) for m in metrics}
            for aux in sorted(set(runs["params.aux_datasets"]), key=paper_order):
                block[aux] = {m: cells[m][(aux,)] for m in metrics if (aux,) in cells[m]}
            methods = [TRAINING_NAMES[BASELINE_TRAINING[variant]], VARIANT_NAMES[variant]]
            for i, (aux, values) in enumerate(bold_best_per_column(block).items()):
                rows.append([primary_cell, methods[i] if i < 2 else "", "-" if i == 0 else dataset_name(aux),
                             *(values.get(m, MISSING) for m in metrics)])
                primary_cell = ""
            pairs = runs[["params.alpha", "params.pi"]].drop_duplicates().itertuples(index=False)
            settings.append(f"{dataset_name(dataset)} {VARIANT_NAMES[variant]} "
                            + " or ".join(f"{number(a)}, {number(p)}" for a, p in pairs))
            if not block["-"]:
                missing.append(f"no finished {BASELINE_TRAINING[variant]} baseline on {dataset} in sweep "
                               f"{source.name!r}")
    notes = [f"best mean per column within each method's rows (its baseline included) in bold; {sweep.summary()}",
             f"α, π: {'; '.join(settings)}"]
    if baseline is not None:
        notes.append(f"baseline from {baseline.summary()}")
    title = (f"Table 2. Accuracy (%) on {', '.join(map(dataset_name, primaries))} without and with BiaMAT per "
             f"auxiliary dataset, {checkpoint} checkpoint")
    header = ["Primary dataset", "Method", "Auxiliary dataset", *(metric_label(m, checkpoint=False) for m in metrics)]
    return Table(title, header, rows, [*notes, *missing], label="biamat-table2")


TABLE9_ROWS = {"uniform": "OAT", "gated": "BiaMAT"}  # labels -> the paper's row; OAT gives every sample y^ER


def table9(sweep: SweepRuns, metric: str | None = None) -> Table:
    """Appendix Table 9: OAT (every auxiliary sample labelled y^ER, ``labels=uniform``) and gated BiaMAT trained on
    the same auxiliary data, clean accuracy and ``metric`` (default: the strongest attack logged, AutoAttack in a
    paper run) of its checkpoint; the better row per column in bold."""
    df = biamat_runs(sweep.runs, labels=None)
    df = df[column(df, "params.labels").isin(list(TABLE9_ROWS))]
    if df.empty:
        raise ValueError(f"no finished BiaMAT trials with labels 'uniform' or 'gated': {sweep.summary()}")
    df, variant = only_value(df, "params.variant")
    df, dataset = only_value(df, "params.dataset")
    df, aux = only_value(df, "params.aux_datasets")
    df, aux_n = only_value(df, "params.aux_n") if "params.aux_n" in df else (df, 0)
    aux_n = int(aux_n)
    metric = resolve_metric(metric, df)
    checkpoint = metric.partition("/")[0]
    metrics = [m for m in dict.fromkeys([f"{checkpoint}/clean", metric]) if f"metrics.{m}" in df]
    cells = {m: aggregate(df, ["params.labels"], m) for m in metrics}
    rows = bold_best_per_column({labels: {m: cells[m][(labels,)] for m in metrics if (labels,) in cells[m]}
                      for labels in TABLE9_ROWS if labels in set(df["params.labels"])})
    # The paper's "ImageNet-100k": the auxiliary set and how many of its images the runs took.
    name = dataset_name(aux) + (f"-{aux_n // 1000}k" if aux_n and aux_n % 1000 == 0 else f" ({aux_n} images)"
                                if aux_n else "")
    gated = df[df["params.labels"] == "gated"][["params.alpha", "params.pi"]].drop_duplicates()
    at = " or ".join(f"α = {number(a)}, π = {number(p)}" for a, p in gated.itertuples(index=False))
    notes = [compose("OAT: every auxiliary sample gets the uniform label ", Y_ER, " (labels=uniform); BiaMAT: the "
                     f"confidence-based selection (labels=gated) at {at}"),
             (f"both trained as {VARIANT_NAMES[variant]} on the same recipe; better row per column in bold; "
              f"{sweep.summary()}")]
    if aux_n:
        notes.append(f"auxiliary data: a fixed random {aux_n:,} images of {dataset_name(aux)} (aux_n), the same for "
                     "both rows; the paper's ImageNet-100k is the 100k ImageNet images closest to CIFAR-10 (OAT's "
                     "selection)")
    where = f" of the {checkpoint} checkpoint" if checkpoint in ("best", "last") else ""
    title = f"Table 9. Results on {dataset_name(dataset)} when {name} is auxiliary: accuracy (%){where}"
    return Table(title, ["Method", *(metric_label(m, checkpoint=False) for m in metrics)],
                 [[TABLE9_ROWS[labels], *(values.get(m, MISSING) for m in metrics)] for labels, values in rows.items()],
                 notes, label="biamat-table9")


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
        [dataset_name(r["params.dataset"]), VARIANT_NAMES.get(r["params.variant"], r["params.variant"]),
         dataset_name(r["params.aux_datasets"]),
         number(r["params.alpha"]), number(r["params.pi"]), f"{100 * r[by_col]:.2f}", f"{100 * r[col]:.2f}",
         str(trials[tuple(r[k] for k in keys)]), r["run_name"]]
        for _, r in best.iterrows()
    ]
    header = ["Primary dataset", "Method", "Auxiliary dataset", "α", "π", f"selected by {by} (%)",
              f"{metric_label(metric)} (%)", "trials", "best run"]
    title = f"Table 12. α and π of the best trial per setting, chosen by {by}"
    return Table(title, header, rows, [sweep.summary()], label="biamat-table12")


EPOCH_TIME = "epoch_time_s"  # one epoch's training pass in seconds, evaluation excluded (trainables/runtime.py)
DEVICE_TAG = "tags.device"  # the accelerator a trial ran on, where the runtime records it
PRIMARY_ORDER = ("cifar10", "cifar100", "imgnet100")
UNITS = (("h", 3600), ("min", 60), ("s", 1))


def method_of(row: pd.Series) -> tuple[int, str] | None:
    """A run's method as appendix Table 11 names it, with its place in the table (the AT family before TRADES; in
    each the baseline, naive, then gated BiaMAT), or None for a method BiaMAT's tables do not show. Naive: without the
    confidence-based selection (every auxiliary sample routed one way, ``labels=aux`` or ``uniform``)."""
    method = row.get("tags.method")
    if method == "baseline":
        training = str(row.get("params.training"))
        return 10 * (training == "trades") + (training != "standard"), TRAINING_NAMES.get(training, training)
    if method != "biamat":
        return None
    variant, labels = str(row["params.variant"]), str(row.get("params.labels", "gated"))
    name, family = VARIANT_NAMES.get(variant, variant), 10 * (variant == "trades")
    if labels in LABEL_ROWS:
        return family + 2 + list(LABEL_ROWS).index(labels), compose(name, " (naive, ", LABEL_ROWS[labels], ")")
    return family + 4, name


def table11(sweeps: Sequence[SweepRuns]) -> Table:
    """Appendix Table 11: training time per primary dataset and method, from every run's own ``epoch_time_s``
    summed over its epochs (the training passes; selection, the final protocol and checkpoints are not timed),
    mean +- std over the runs of a method. Runs of one method with another model or epoch count get a row each."""
    records, other = [], 0
    labels: dict[str, str] = {}  # plain method name -> its Label, for LaTeX (pandas keeps only the plain text)
    for sweep in sweeps:
        if sweep.runs.empty:
            continue
        seconds = sweep.history(EPOCH_TIME, sweep.runs["run_id"]).groupby("run_id")["value"].sum()
        for _, row in sweep.runs.iterrows():
            method = method_of(row)
            if method is None:
                other += 1
            elif row["run_id"] in seconds:
                model, epochs = row.get("params.model"), row.get("params.epochs")
                records.append({"dataset": row["params.dataset"], "order": method[0], "method": str(method[1]),
                                "model": "-" if pd.isna(model) else str(model),
                                "epochs": "-" if pd.isna(epochs) else f"{float(epochs):g}",
                                "seconds": seconds[row["run_id"]], "device": row.get(DEVICE_TAG)})
                labels[str(method[1])] = method[1]
    if not records:
        raise ValueError(f"no baseline or BiaMAT run logged {EPOCH_TIME!r}: " + "; ".join(s.summary() for s in sweeps))
    times = pd.DataFrame(records)
    keys = ["dataset", "order", "method", "model", "epochs"]
    groups = times.groupby(keys, sort=False)["seconds"]
    # Hours as the paper, unless a smoke run would print 0.00667 h: then minutes or seconds.
    unit, scale = next((u, 1 / s) for u, s in UNITS if times["seconds"].max() >= s or u == "s")
    recipes = times.drop_duplicates(keys).groupby(["dataset", "method"]).size()
    ordered = sorted(groups.groups, key=lambda k: (*primary_order(k[0]), k[1], str(k[3]), k[4]))
    rows: list[list[str | Cell]] = []
    for i, key in enumerate(ordered):
        dataset, _, method, model, epochs = key
        name = labels[method]
        if recipes[(dataset, method)] > 1:
            name = compose(name, f" ({model}, {epochs} epochs)")
        first = i == 0 or ordered[i - 1][0] != dataset
        cell = Cell.of(groups.get_group(key), scale=scale, spec=".3g")
        rows.append([dataset_name(dataset) if first else "", name, cell])
    recipe = "; ".join(f"{labels[m]}: {model}, {epochs} epochs" for _, _, m, model, epochs in ordered)
    timed = (f"training time: each run's {EPOCH_TIME} summed over its epochs, the training passes only (selection "
             "evaluations, the final protocol and checkpoints are not timed)")
    pooled = "a cell: mean ± std over a method's runs, its seeds and settings that leave an epoch's work alike (pi)"
    notes = [timed, pooled, f"models: {recipe}", device_note(times["device"]), *(s.summary() for s in sweeps)]
    if other:
        notes.append(f"{other} run(s) of other methods left out")
    return Table("Table 11. The training times of the models", ["Primary dataset", "Method", f"Training time ({unit})"],
                 rows, notes, label="biamat-table11")


def device_note(devices: pd.Series) -> str:
    """Which accelerators the times come from (the runs' device tag), beside the paper's."""
    paper = "the paper's times: one Tesla V100 (CUDA 10.2, cuDNN 7.6.5)"
    counts = devices.dropna().value_counts()
    if counts.empty:
        return f"device: not recorded (the runs have no 'device' tag); {paper}"
    seen = ", ".join(f"{name} ({n} run{'s' if n > 1 else ''})" for name, n in counts.items())
    missing = devices.isna().sum()
    return f"device: {seen}" + (f", {missing} runs without a device tag" if missing else "") + f"; {paper}"


# How Fig. 3 names what tells its lines apart: in words, the papers' symbols, datasets by name.
SERIES_NAMES = {"params.aux_datasets": "auxiliary dataset", "params.dataset": "primary dataset",
                "params.variant": "method", "params.alpha": "α", "params.pi": "π"}


def series_label(col: str, value: object) -> str:
    if col in ("params.aux_datasets", "params.dataset"):
        return dataset_name(value)
    if col == "params.variant":
        return VARIANT_NAMES.get(str(value), str(value))
    name = SERIES_NAMES.get(col, col.removeprefix("params."))
    return f"{name} = {number(value) if isinstance(value, float) else value}"


def fig3(sweep: SweepRuns, key: str = HIGH_FRACTION) -> Figure:
    """Fig. 3: ``key`` per epoch, one line per auxiliary dataset (or per whatever else differs between the gated
    runs), averaged over seeds with a +-std band. Runs of both variants get one panel each (the pi ablation's twelve
    lines would not read on one axis); every line has its own colour and marker, the same in every panel, and one
    legend stands to the right of the panels. Built on a bare ``Figure`` (Agg when saved to PNG), not pyplot, so no
    global backend or figure registry is touched."""
    df = biamat_runs(sweep.runs)
    history = sweep.history(key, df["run_id"])
    if history.empty:
        raise ValueError(f"no {key!r} history in the finished gated BiaMAT trials: {sweep.summary()}")
    label_cols = distinguishing_params(df, prefer=("aux_datasets", "dataset", "variant", "alpha", "pi"))
    label_cols = label_cols or ["params.aux_datasets"]
    panel_col = "params.variant" if "params.variant" in label_cols and len(label_cols) > 1 else None
    series_cols = [c for c in label_cols if c != panel_col]
    history = history.merge(df[["run_id", *label_cols]], on="run_id")

    series = sorted(history[series_cols].drop_duplicates().itertuples(index=False, name=None))
    # An ordered hyperparameter (pi, alpha) reads best along a sequential colour map, datasets on distinct hues.
    ordered = len(series_cols) == 1 and pd.api.types.is_numeric_dtype(history[series_cols[0]])
    styles = dict(zip(series, distinct_styles(len(series), "viridis" if ordered else None)))
    panels = sorted(history[panel_col].unique()) if panel_col else [None]
    epochs = sorted(history["step"].unique())
    figure = Figure(figsize=(1.6 + 3.6 * len(panels), 3.4), layout="constrained")
    axes = figure.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        runs_of_panel = history if panel is None else history[history[panel_col] == panel]
        for values, runs in runs_of_panel.groupby(series_cols, sort=True):
            curve = runs.groupby("step")["value"].agg(["mean", "std", "count"])
            colour, marker = styles[values]
            label = ", ".join(series_label(c, v) for c, v in zip(series_cols, values))
            ax.plot(curve.index, curve["mean"], color=colour, marker=marker, markersize=4, label=label)
            if curve["count"].max() > 1:
                ax.fill_between(curve.index, curve["mean"] - curve["std"], curve["mean"] + curve["std"],
                                color=colour, alpha=0.15, linewidth=0)
        if panel is not None:
            ax.set_title(VARIANT_NAMES.get(panel, panel), fontsize=10)
        ax.set_xlabel("epoch")
        if len(epochs) <= 12:  # a tick per epoch (a one-epoch smoke run would get fractional ticks otherwise)
            ax.set_xticks(epochs)
            ax.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are epochs
        ax.grid(alpha=0.3)
    if key == HIGH_FRACTION:
        axes[0].set_ylabel(r"$n_\mathrm{high} / n_\mathrm{aux}$ (share above $\omega$)")
        axes[0].set_ylim(0, 1.02)
        what = r"Share of auxiliary samples above the threshold, $n_\mathrm{high} / n_\mathrm{aux}$"
    else:
        axes[0].set_ylabel(key)
        what = f"{key} per epoch"
    constant = [series_label(c, df[c].iloc[0]) for c in ("params.variant", "params.pi")
                if c in df and c not in label_cols and df[c].nunique() == 1]
    primary = ", ".join(dataset_name(d) for d in sorted(map(str, df["params.dataset"].unique())))
    seeds = history.groupby(label_cols)["run_id"].nunique().max()
    spread = f"mean over {seeds} seeds, band ±1 std" if seeds > 1 else "one seed"
    figure.suptitle(f"Fig. 3. {what}\n(primary {', '.join([primary, *constant])}; {spread})", fontsize=9)
    title = SERIES_NAMES.get(series_cols[0]) if len(series_cols) == 1 and not ordered else None
    legend_outside(figure if panel_col else axes[0], title=title)
    return figure


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    helps = {
        "table13": "appendix Table 13: AutoAttack accuracy vs pi, AT and TRADES (mean +- std over seeds)",
        "table1": "Table 1: auxiliary labels y~ vs uniform y^ER per auxiliary dataset, with the baseline",
        "table12": "appendix Table 12: best alpha and pi per setting from a search sweep",
        "table9": "appendix Table 9: OAT (every auxiliary sample y^ER) vs gated BiaMAT on the same auxiliary data",
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
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "table11":
            sweeps = [load_sweep(name, experiment=args.experiment, tracking_uri=args.tracking_uri)
                      for name in args.sweep]
            emit(table11(sweeps), args.format, args.out)
            return
        sweep = load_from_args(args)
        if args.command == "fig3":
            figure = fig3(sweep, args.metric)
            figure.savefig(args.out, dpi=150)
            lines = sum(len(ax.get_lines()) for ax in figure.axes)
            print(f"wrote {args.out} ({lines} lines in {len(figure.axes)} panel(s); {sweep.summary()})")
            return
        if args.command == "table14":
            # Imported here: that module builds on this one's names.
            from analysis.biamat_selection import table14

            table = table14(sweep, args.mapping, aux=args.aux, variant=args.variant, pi=args.pi, epoch=args.epoch)
        elif args.command == "table13":
            table = table13(sweep, args.metric)
        elif args.command == "table12":
            table = table12(sweep, args.metric, args.by)
        elif args.command == "table9":
            table = table9(sweep, args.metric)
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
    emit(table, args.format, args.out)


if __name__ == "__main__":
    main()
