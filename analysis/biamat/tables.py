"""BiaMAT's accuracy tables from a sweep's MLflow runs (Lee et al., WACV 2023, and its appendix): Table 1 (y~ vs
y^ER), Table 2 (main results), appendix Tables 4 (several auxiliary sets), 9 (OAT), 12 (the search's winners) and
13 (the pi ablation). Only FINISHED trials count; the notes under each table say how many were skipped. Nothing here
retrains: a table with gaps means the sweep has not run those trials."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from analysis.biamat.names import BASELINE_TRAINING, HIGH_FRACTION, MISSING, TRAINING_NAMES, VARIANT_NAMES
from analysis.biamat.runs import (
    HIGH_HEADER,
    LABEL_ROWS,
    Y_ER,
    Y_TILDE,
    biamat_runs,
    bold_best_per_column,
    matched_baseline,
    number,
    paper_order,
    primary_order,
    setting,
)
from analysis.cells import STOPPED_NOTE, Cell, Table, aggregate, bold_best, stopped_texts
from analysis.render import compose
from analysis.runs import (
    dataset_name,
    metric_label,
    only_value,
    resolve_metric,
)
from runstore.reader import SweepRuns, column


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

    stopped = stopped_texts(biamat_runs(sweep.stopped), [*keys, "params.pi"])

    def cells_of(col: tuple, pi: float) -> list[str | Cell]:
        accuracy = cells.get((*col, pi), stopped.get((*col, pi), MISSING))
        if not high:
            return [accuracy]
        passed = high.get((*col, pi))
        return [accuracy, MISSING if passed is None else f"{passed.mean:.2f}"]

    rows: list[list[str | Cell]] = [
        [number(pi), *(part for col in columns for part in cells_of(col, pi))]
        for pi in sorted({key[3] for key in [*cells, *stopped]})
    ]
    title = f"Table 13. Ablation on π ({setting(df)}): {metric_label(metric)} accuracy (%)"
    notes = [sweep.summary(), *([STOPPED_NOTE] if stopped else [])]
    if high:
        notes.append(f"{HIGH_HEADER}: share of auxiliary samples with primary confidence >= omega over the last "
                     "epoch (train/high_fraction), mean over seeds")
    return Table(title, ["π", *header], rows, notes, label="biamat-table13")


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


TABLE10_ROWS = ("BiaMAT", "[16]", "BiaMAT+[16]")  # the paper's columns: [16] is Gowal et al.'s generated data


def table10(sweep: SweepRuns, generated: SweepRuns | None = None, metric: str | None = None) -> Table:
    """Appendix Table 10: gated BiaMAT without generated images ("BiaMAT") and with them ("BiaMAT+[16]", ``extra_data``
    set), and adversarial training with the generated images alone ("[16]", Gowal et al.: the baseline trials with
    ``extra_data`` of ``generated``, another sweep, or of ``sweep`` itself), clean accuracy and ``metric`` (default:
    the strongest attack logged, AutoAttack in a paper run) of the checkpoint; the best row per column in bold. The
    paper prints the three methods side by side under each metric; here they are rows, so ``--stats`` compares them."""
    df = biamat_runs(sweep.runs)
    if df.empty:
        raise ValueError(f"no finished gated BiaMAT trials: {sweep.summary()}")
    df = df.assign(_row=column(df, "params.extra_data").fillna("").map(lambda e: TABLE10_ROWS[2 if e else 0]))
    source = (generated or sweep).runs
    on_generated = source[(column(source, "tags.method") == "baseline")
                          & (column(source, "params.extra_data").fillna("") != "")].assign(_row=TABLE10_ROWS[1])
    both = pd.concat([frame for frame in (df, on_generated) if len(frame)])
    both, model = only_value(both, "params.model")  # one network for every column, as in the paper
    both, dataset = only_value(both, "params.dataset")
    _, variant = only_value(df, "params.variant")
    metric = resolve_metric(metric, *(frame for frame in (df, on_generated) if len(frame)))
    checkpoint = metric.partition("/")[0]
    metrics = [m for m in dict.fromkeys([f"{checkpoint}/clean", metric]) if f"metrics.{m}" in both]
    cells = {m: aggregate(both, ["_row"], m) for m in metrics}
    rows = bold_best_per_column({row: {m: cells[m][(row,)] for m in metrics if (row,) in cells[m]}
                                 for row in TABLE10_ROWS})
    with_generated = both[both["_row"] != TABLE10_ROWS[0]]
    extra = sorted({Path(e.removeprefix("npz:")).name for e in column(with_generated, "params.extra_data").dropna()})
    fraction = sorted({float(f) for f in column(with_generated, "params.original_fraction").dropna()})
    gated = df[["params.alpha", "params.pi"]].drop_duplicates()
    at = " or ".join(f"α = {number(float(a))}, π = {number(float(p))}" for a, p in gated.itertuples(index=False))
    trainings = sorted({TRAINING_NAMES.get(t, t) for t in column(on_generated, "params.training").dropna()})
    notes = [(f"BiaMAT: {VARIANT_NAMES[variant]} at {at}; [16]: Gowal et al.'s generated data, trained with "
              f"{' or '.join(trainings) or 'no finished run'} and no auxiliary data"),
             f"generated images: {', '.join(extra) or 'none'} ("
             + ", ".join(f"{f:.0%} of each batch from {dataset_name(dataset)}" for f in fraction) + ")",
             f"better row per column in bold; {sweep.summary()}"]
    if generated is not None:
        notes.append(f"[16] from {generated.summary()}")
    if not len(on_generated):
        notes.append(f"no finished baseline trial with generated images in {(generated or sweep).summary()}: run "
                     "sweeps/biamat_generated_data.py, whose NAME-generated sweep trains them")
    where = f" of the {checkpoint} checkpoint" if checkpoint in ("best", "last") else ""
    title = f"Table 10. Performance improvements on {dataset_name(dataset)} ({model}): accuracy (%){where}"
    return Table(title, ["Method", *(metric_label(m, checkpoint=False) for m in metrics)],
                 [[row, *(rows[row].get(m, MISSING) for m in metrics)] for row in TABLE10_ROWS],
                 notes, label="biamat-table10")


TABLE5_PARTS = {"A": "cifar-A", "A+B": "cifar-A + cifar-B", "A+C": "cifar-A + cifar-C",
                "A+B+C": "cifar-A + cifar-B + cifar-C"}


def table5(sweep: SweepRuns, checkpoint: str = "last") -> Table:
    """Appendix Table 5: test error (100 - clean accuracy of the ``checkpoint``) of standard training on cifar-A and
    with cifar-B and/or cifar-C added (datasets ``NAME:A``, ``NAME:A+B``, ...), per batch size, mean and std over
    the seeds; the lowest error per batch size in bold."""
    df = sweep.runs[column(sweep.runs, "params.training") == "standard"]
    parts = column(df, "params.dataset").str.partition(":")[2]
    df = df[parts.isin(list(TABLE5_PARTS))].assign(_parts=parts)
    if df.empty:
        raise ValueError(f"no finished standard-training trials on parts of a dataset (NAME:A, NAME:A+B, ...): "
                         f"{sweep.summary()}")
    metric = f"{checkpoint}/clean"
    error = f"metrics.{checkpoint}/error"
    df = df.assign(**{error: 1 - column(df, f"metrics.{metric}")})
    # Test error is what the paper prints; the cells carry no runs, so --stats (made for accuracies) leaves them.
    cells = aggregate(df.drop(columns="run_id", errors="ignore"), ["params.batch_size", "_parts"],
                      f"{checkpoint}/error")
    rows: list[list[str | Cell]] = []
    for batch in sorted({int(b) for b, _ in cells}):
        block = {p: cells[(b, p)] for b, p in cells if int(b) == batch}
        lowest = min(cell.mean for cell in block.values())
        for i, parts_key in enumerate(p for p in TABLE5_PARTS if p in block):
            cell = replace(block[parts_key], bold=block[parts_key].mean == lowest)
            rows.append([str(batch) if i == 0 else "", TABLE5_PARTS[parts_key], cell])
    base = sorted(set(column(df, "params.dataset").str.partition(":")[0]))
    split = (f"{', '.join(dataset_name(b) for b in base)}'s training split in parts (cifar-A half, cifar-B and "
             "cifar-C a quarter each, cifar-C with uniform noise: trainables/dataset_parts.py)")
    notes = [(f"{split}; test error of the {checkpoint} checkpoint on the test split; lowest error per batch size in "
             f"bold; {sweep.summary()}")]
    return Table("Table 5. Effectiveness of data augmentation (cifar-B and cifar-C) on cifar-A: test error (%)",
                 ["Batch size", "Dataset", "Test error"], rows, notes, label="biamat-table5")
