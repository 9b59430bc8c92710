"""BiaMAT Table 3 and appendix Table 7: BiaMAT against the semi-supervised method of Carmon et al. [4] (robust
self-training on pseudo-labelled auxiliary data), the generated data of Gowal et al. [16] and the TRADES baseline,
per primary dataset. Each method's rows come from its own sweep: ``sweeps/biamat_semi_supervised.py`` (Carmon et
al.), ``sweeps/baselines.py`` (TRADES), ``sweeps/biamat_main_results.py`` (TRADES+BiaMAT) and a sweep with TRADES
on generated data (``sweeps/biamat_generated_data.py``'s ``-generated`` one: Gowal et al.) and Hendrycks et al.'s
adversarial pre-training then fine-tuning [17] (``sweeps/biamat_pretraining.py``, whose runs also give appendix
Table 8: fine-tuning by AT and by TRADES)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.biamat.names import MISSING, TRAINING_NAMES, VARIANT_NAMES
from analysis.biamat.runs import biamat_runs, bold_best_per_column, paper_order, primary_order
from analysis.biamat.tables import TABLE2_ATTACKS
from analysis.cells import Cell, Table, aggregate
from analysis.runs import RECIPE_PARAMS, dataset_name, metric_label, recipe_differences, resolve_metric
from runstore.reader import SweepRuns, column

HENDRYCKS = "Hendrycks et al. [17]"
CARMON = "Carmon et al. [4]"
GOWAL = "Gowal et al. [16]"
BASELINE = "TRADES (baseline)"
OURS = f"{VARIANT_NAMES['trades']} (ours)"
# The recipe a comparison should share, less what the methods set their own way (RST's batch of primary plus
# pseudo-labelled images).
SHARED_RECIPE = tuple(p for p in RECIPE_PARAMS if p != "batch_size")


def pseudo_labelled_row(extra_data: str) -> tuple[str, tuple]:
    """The row name of a pseudo-labelled file as ``sweeps/biamat_semi_supervised.py`` names it (``imagenet32-500k.npz``,
    the top 50,000 images per CIFAR-10 class: ``ImageNet-500k``; ``cifar100.npz``, every image: ``CIFAR-100``) and its
    place in the paper's order: every image of a set before its top-k subsets, larger subsets first."""
    aux, _, size = Path(extra_data.removeprefix("npz:")).stem.partition("-")
    kept = int(size.removesuffix("k")) * 1000 if size.endswith("k") else int(size or 0)
    return (f"{dataset_name(aux)}-{size}" if size else dataset_name(aux)), (paper_order(aux), kept != 0, -kept)


def fine_tuned_runs(fine_tuning: SweepRuns, pretraining: SweepRuns) -> pd.DataFrame:
    """The fine-tuning trials of ``fine_tuning`` (``init_from`` set), each with ``_pretrained_on``: the dataset of the
    pre-training run it started from, a run of ``pretraining``."""
    df = fine_tuning.runs
    df = df[column(df, "params.init_from").fillna("") != ""]
    source = dict(zip(pretraining.runs["run_id"], pretraining.runs["params.dataset"], strict=True))
    origin = df["params.init_from"].map(lambda r: source.get(str(r).partition("/")[0]))
    if origin.isna().any():
        raise ValueError(f"{int(origin.isna().sum())} fine-tuning runs of {fine_tuning.summary()} start from runs that "
                         f"are not in {pretraining.summary()}: pass the sweep that pre-trained them")
    return df.assign(_pretrained_on=origin)


def table8(fine_tunings: list[SweepRuns], pretraining: SweepRuns, checkpoint: str = "best") -> Table:
    """Appendix Table 8: per pre-training set and fine-tuning method (AT, TRADES), the fine-tuned network's clean,
    PGD-20 and PGD-100 accuracy on the primary set (the paper's one row pair: ImageNet, CIFAR-10)."""
    df = pd.concat([fine_tuned_runs(sweep, pretraining) for sweep in fine_tunings])
    if df.empty:
        raise ValueError(f"no finished fine-tuning trial: {'; '.join(s.summary() for s in fine_tunings)}")
    strongest = resolve_metric(None, df, checkpoint=checkpoint)
    metrics = [m for m in dict.fromkeys([f"{checkpoint}/{a}" for a in ("clean", "pgd20", "pgd100")] + [strongest])
               if f"metrics.{m}" in df]
    keys = ["params.dataset", "_pretrained_on", "params.training"]
    cells = {m: aggregate(df, keys, m) for m in metrics}
    groups = sorted({k for found in cells.values() for k in found},
                    key=lambda k: (primary_order(k[0]), paper_order(k[1]), k[2] != "pgd_at", k[2]))
    rows = [[dataset_name(d) if i == 0 or groups[i - 1][0] != d else "", dataset_name(a), TRAINING_NAMES.get(t, t),
             *(cells[m].get((d, a, t), MISSING) for m in metrics)] for i, (d, a, t) in enumerate(groups)]
    schedules = df[["_pretrained_on", "params.lr", "params.epochs"]].drop_duplicates()
    notes = ["fine-tuning from the best pre-training checkpoint, every layer, for the rest of the pre-training's "
             "schedule: " + "; ".join(f"{dataset_name(a)} from LR {float(lr):g}, {int(e)} epoch(s)"
                                      for a, lr, e in schedules.itertuples(index=False)),
             *(sweep.summary() for sweep in fine_tunings), f"pre-training: {pretraining.summary()}"]
    header = ["Primary dataset", "Pre-trained on", "Fine-tuning", *(metric_label(m, checkpoint=False) for m in metrics)]
    return Table(f"Table 8. Fine-tuning an adversarially pre-trained network by AT and by TRADES: accuracy (%), "
                 f"{checkpoint} checkpoint", header, rows, notes, label="biamat-table8")


def trades_runs(sweep: SweepRuns | None, dataset: str, extra: bool) -> pd.DataFrame:
    """The TRADES trials of ``sweep`` on ``dataset``, with or without extra training data."""
    if sweep is None:
        return pd.DataFrame()
    df = sweep.runs
    has_extra = column(df, "params.extra_data").fillna("") != ""
    return df[(column(df, "tags.method") == "baseline") & (column(df, "params.training") == "trades")
              & (column(df, "params.dataset") == dataset) & (has_extra if extra else ~has_extra)]


def comparison_table(semi: SweepRuns, baseline: SweepRuns | None = None, biamat: SweepRuns | None = None,
                     generated: SweepRuns | None = None, metric: str | None = None, number: int = 7,
                     checkpoint: str = "best", pretrained: tuple[SweepRuns, SweepRuns] | None = None) -> Table:
    """Table 7 (``number=7``: every primary set of the sweeps, clean and ``metric``, by default the strongest attack
    logged) or Table 3 (``number=3``: CIFAR-10 alone, the columns of Table 2: clean, PGD-100, CW-100, AutoAttack).
    Rows per primary set: the TRADES baseline, Hendrycks et al. per pre-training set (``pretrained``: the AT
    fine-tuning sweep and the pre-training sweep), Carmon et al. per pseudo-labelled set, Gowal et al., TRADES+BiaMAT
    per auxiliary set; the best mean per column within a primary set in bold."""
    carmon = semi.runs[column(semi.runs, "params.extra_data").fillna("") != ""]
    if carmon.empty:
        raise ValueError(f"no finished robust self-training trial (TRADES with pseudo-labelled extra_data): "
                         f"{semi.summary()}")
    primaries = sorted(set(carmon["params.dataset"]), key=primary_order)
    if number == 3:
        primaries = [p for p in primaries if p in ("cifar10", "synthetic")][:1]
        if not primaries:
            raise ValueError("Table 3 is CIFAR-10's: the sweep holds no CIFAR-10 trials (Table 7 shows the others)")
    if metric is None and number == 3:
        logged = [f"{checkpoint}/{a}" for a in TABLE2_ATTACKS if f"metrics.{checkpoint}/{a}" in carmon]
        metrics = list(dict.fromkeys([*logged, resolve_metric(None, carmon, checkpoint=checkpoint)]))
    else:
        metric = resolve_metric(metric, carmon, checkpoint=checkpoint)
        metrics = list(dict.fromkeys([f"{metric.partition('/')[0]}/clean", metric]))
    rows: list[list[str | Cell]] = []
    notes, settings = [], []
    every_fine_tuned = fine_tuned_runs(*pretrained) if pretrained else pd.DataFrame(columns=["_pretrained_on"])
    for dataset in primaries:
        block: dict[tuple[str, str], dict[str, Cell]] = {}  # (method, row) -> metric -> cell, in the paper's order

        def add(method: str, row: str, runs: pd.DataFrame, block: dict = block) -> None:
            for m in metrics:
                cells = aggregate(runs.assign(_row=row), ["_row"], m) if len(runs) else {}
                if (row,) in cells:
                    block.setdefault((method, row), {})[m] = cells[(row,)]

        of_carmon = carmon[carmon["params.dataset"] == dataset]
        base = trades_runs(baseline or semi, dataset, extra=False)
        add(BASELINE, "-", base)
        fine_tuned = every_fine_tuned[(column(every_fine_tuned, "params.dataset") == dataset)
                                      & (column(every_fine_tuned, "params.training") == "pgd_at")]  # AT fine-tuning
        for aux in sorted(set(fine_tuned["_pretrained_on"]), key=paper_order):
            add(HENDRYCKS, dataset_name(aux), fine_tuned[fine_tuned["_pretrained_on"] == aux])
        for extra in sorted(set(of_carmon["params.extra_data"]), key=lambda e: pseudo_labelled_row(e)[1]):
            add(CARMON, pseudo_labelled_row(extra)[0], of_carmon[of_carmon["params.extra_data"] == extra])
        on_generated = trades_runs(generated, dataset, extra=True)
        if len(on_generated):  # another sweep may train several networks: the rows' own, else its only one
            same = on_generated[on_generated["params.model"].isin(set(of_carmon["params.model"]))]
            if same.empty and on_generated["params.model"].nunique() > 1:
                raise ValueError(f"{generated.summary()} trains TRADES on generated data with the networks "
                                 f"{sorted(set(on_generated['params.model']))}, none of them the table's "
                                 f"{sorted(set(of_carmon['params.model']))}: pass a sweep of one network")
            on_generated = same if len(same) else on_generated
        add(GOWAL, "Generated data", on_generated)
        ours = biamat_runs(biamat.runs) if biamat is not None else pd.DataFrame()
        ours = ours[(column(ours, "params.variant") == "trades") & (column(ours, "params.dataset") == dataset)
                    & (column(ours, "params.extra_data").fillna("") == "")]  # Table 10's BiaMAT+[16] is not a row
        for aux in sorted(set(ours.get("params.aux_datasets", [])), key=paper_order):
            add(OURS, dataset_name(aux), ours[ours["params.aux_datasets"] == aux])
        bold = bold_best_per_column(block)
        primary_cell, last = dataset_name(dataset), None
        for method, row in block:
            cells = bold[(method, row)]
            rows.append([primary_cell, method if method != last else "", row, *(cells.get(m, MISSING) for m in metrics)])
            primary_cell, last = "", method
        for what, runs in ((BASELINE, base), (GOWAL, on_generated), (OURS, ours)):
            if len(runs) and (differences := recipe_differences(of_carmon, runs, SHARED_RECIPE)):
                notes.append(f"{dataset_name(dataset)} {what} trained another way than {CARMON}: "
                             + "; ".join(differences))
        fractions = sorted({float(f) for f in column(of_carmon, "params.original_fraction").dropna()})
        settings.append(f"{dataset_name(dataset)}: " + ", ".join(f"{1 - f:.0%} pseudo-labelled" for f in fractions))
    missing = [what for what, sweep in (("TRADES baseline: --baseline-sweep", baseline),
                                        ("TRADES+BiaMAT: --biamat-sweep", biamat),
                                        ("Gowal et al.: --generated-sweep", generated),
                                        ("Hendrycks et al.: --fine-tuning-sweep and --pretraining-sweep", pretrained))
               if sweep is None]
    notes = [(f"best mean per column within each primary set in bold; {CARMON}: TRADES with half of each batch "
             f"from the auxiliary set, labelled by a classifier trained on the primary set ({'; '.join(settings)}); "
             f"{semi.summary()}"),
             *(f"{what} from {sweep.summary()}" for what, sweep in (("baseline", baseline), ("BiaMAT", biamat),
                                                                     ("generated data", generated),
                                                                     *((("fine-tuning", pretrained[0]),
                                                                        ("pre-training", pretrained[1]))
                                                                       if pretrained else ())) if sweep),
             *([f"rows not given: {', '.join(missing)}"] if missing else []),
             *notes]
    where = f", {checkpoint} checkpoint" if checkpoint in ("best", "last") else ""
    title = (f"Table {number}. Comparison (accuracy %) of BiaMAT with the semi-supervised [4] and pre-training [17] "
             f"methods on {', '.join(map(dataset_name, primaries))}{where}")
    header = ["Primary dataset", "Method", "Auxiliary dataset", *(metric_label(m, checkpoint=False) for m in metrics)]
    return Table(title, header, rows, notes, label=f"biamat-table{number}")
