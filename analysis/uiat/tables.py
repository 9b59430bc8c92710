"""UIAT's tables from sweeps' MLflow runs (Dong et al., CVPR 2023): Table 1 (every method), Table 2 (minutes per
epoch), Table 3 (training eps), Table 4 (extra generated data), Table 5 (single-step methods), Table 6 (the ablation)
and Fig. 3 as a table (lambda). Only FINISHED trials count; nothing here retrains."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from analysis.cells import STOPPED_NOTE, Cell, Table, aggregate, bold_best, stopped_texts
from analysis.runs import dataset_name, metric_label, resolve_metric
from analysis.uiat.runs import (
    EPOCH_TIME,
    METHOD_ORDER,
    MISSING,
    NATURAL,
    SWITCHES,
    accuracy_columns,
    all_runs,
    datasets,
    in_method_order,
    lambda_cells,
    method_label,
    paper_headers,
    uiat_runs,
)
from runstore.reader import SweepRuns, column

# Table 6's rows in the paper's order (the `components` param of UIATConfig, trainables/methods/configs.py).
TABLE6_ROWS = ["none", "uag", "uag+fr", "uag+iam", "uag+fr+iam"]


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


def lambda_table(sweep: SweepRuns, metric: str | None = None) -> Table:
    """Fig. 3 as a table: natural and robust accuracy for each lambda."""
    df, metrics, cells = lambda_cells(sweep, metric)
    # A row a budgeted sweep stopped at a rung: its rung score (a robust accuracy) under the robust column.
    stopped = stopped_texts(uiat_runs(sweep.stopped), ["params.lam"])
    lams = sorted({key[0] for c in cells.values() for key in c} | {key[0] for key in stopped})
    rows: list[list[str | Cell]] = [
        [f"{lam:g}", *(cells[m].get((lam,), stopped.get((lam,), MISSING) if m == metrics[-1] else MISSING)
                       for m in metrics)] for lam in lams]
    variant = ", ".join(sorted({method_label(r) for _, r in df.iterrows()}))
    title = f"Fig. 3. Sensitivity of {variant} to lambda ({datasets(df)}): accuracy (%)"
    headers, checkpoint = paper_headers(metrics)
    return Table(title, ["lambda", *headers], rows, [*checkpoint, sweep.summary(), *([STOPPED_NOTE] if stopped else [])])


def eps_label(eps: float) -> str:
    # Params are logged to 6 significant digits: 10/255 reads back as 0.0392157, 1e-5 of a 255th off.
    return f"{round(eps * 255)}/255" if abs(round(eps * 255) - eps * 255) < 1e-4 else f"{eps:.4g}"


def table3(sweep: SweepRuns, baseline: SweepRuns | None = None, metric: str | None = None, *,
           hat: SweepRuns | None = None) -> Table:
    """Table 3: per training eps, TRADES, HAT, UIAT and one-off UIAT with natural and robust accuracy at that eps;
    TRADES from ``baseline`` (another sweep) or from the TRADES trials of ``sweep`` itself, HAT from ``hat`` or from
    the HAT trials of ``sweep``."""
    df = uiat_runs(sweep.runs)
    if df.empty:
        raise ValueError(f"no finished UIAT trials: {sweep.summary()}")
    base = (baseline or sweep).runs
    base = base[(column(base, "tags.method") == "baseline") & (column(base, "params.training") == "trades")]
    hats = (hat or sweep).runs
    hats = hats[column(hats, "tags.method") == "hat"]
    frame = pd.concat([df, base, hats], ignore_index=True)
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
    notes += [f"HAT from {hat.summary()}"] if hat is not None else []
    notes += [f"no finished {name} trials found" for name, runs in (("TRADES", base), ("HAT", hats)) if runs.empty]
    title = f"Table 3. Training and evaluation at larger eps ({datasets(df)}): accuracy (%)"
    return Table(title, ["eps", "Method", *headers], rows, notes)


# Table 1's columns: its datasets in its order, then others; per dataset the final protocol's accuracies logged.
TABLE1_DATASETS = ("cifar10", "cifar100", "svhn")
TABLE1_ATTACKS = ("clean", "pgd20", "cw20", "autoattack")


def table1(sweeps: Sequence[SweepRuns], checkpoint: str = "best",
           title: str = "Table 1. Adversarial training methods") -> Table:
    """Table 1: one row per method (the paper's order), per dataset its natural, PGD-20, CW and AutoAttack accuracy
    of the ``checkpoint``, from the runs of every sweep given (the methods train in several sweeps); the best mean
    per column in bold. The same table of any sweep of baselines, under another ``title``."""
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
    return Table(f"{title} ({models}): accuracy (%)", header, rows_out, notes, label="uiat-table1")


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
    # The paper's methods only: Table 6's ablation sweep holds the IAT row beside partial UIATs ("UIAT [uag]").
    others = sorted(set(times["method"]) - set(METHOD_ORDER))
    times = times[times["method"].isin(METHOD_ORDER)]
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
    if others:
        notes.append(f"left out, not methods of the paper's table: {', '.join(others)}")
    return Table("Table 2. Training time (min/epoch)", ["Method", *models], rows, notes)
