"""BiaMAT appendix Table 6: networks trained normally on the robust datasets of an AT and an AT+BiaMAT model
(``sweeps/biamat_robust_dataset.py``), clean and FGSM accuracy, mean and std over the runs."""

from __future__ import annotations

from pathlib import Path

from analysis.biamat.names import MISSING
from analysis.biamat.runs import bold_best_per_column
from analysis.cells import Table, aggregate
from analysis.runs import dataset_name, metric_label, only_value
from runstore.reader import SweepRuns, column

# The robust dataset's file name starts with its source: ``<at|biamat>-<run id>-<settings>.npz``.
SOURCE_ROWS = {"at": "AT", "biamat": "AT+BiaMAT"}


def source_of(dataset: str) -> str | None:
    """Table 6's row of a trial's ``dataset`` param: the source model its robust dataset came from, or None."""
    if not dataset.startswith("npz:"):
        return None
    return SOURCE_ROWS.get(Path(dataset.removeprefix("npz:")).name.partition("-")[0])


def table6(sweep: SweepRuns, checkpoint: str = "last") -> Table:
    """Rows: the source model (AT, AT+BiaMAT); columns: clean and FGSM accuracy of the ``checkpoint`` (default the
    last epoch's model: standard training chooses none on the test set), mean and std over the seeds; the better row
    per column in bold."""
    df = sweep.runs[column(sweep.runs, "params.training") == "standard"]
    df = df.assign(_row=column(df, "params.dataset").map(lambda d: source_of(str(d))))
    df = df[df["_row"].notna()]
    if df.empty:
        raise ValueError(f"no finished standard-training trials on a robust dataset (dataset npz:.../at-<run>-....npz or "
                         f"biamat-<run>-....npz, as sweeps/biamat_robust_dataset.py writes them): {sweep.summary()}")
    df, model = only_value(df, "params.model")
    for row, files in df.groupby("_row")["params.dataset"]:
        if files.nunique() > 1:  # e.g. a sweep resumed with other --sources: its seeds would mix two datasets
            raise ValueError(f"the {row} row's trials trained on {files.nunique()} robust datasets "
                             f"({', '.join(sorted(files.unique()))}): one table holds one dataset per source model; "
                             f"give a sweep of one pair of sources ({sweep.summary()})")
    test = sorted({str(t) for t in column(df, "params.test_data").dropna() if t}) or ["each dataset's own"]
    metrics = [m for m in (f"{checkpoint}/clean", f"{checkpoint}/fgsm") if f"metrics.{m}" in df]
    cells = {m: aggregate(df, ["_row"], m) for m in metrics}
    rows = bold_best_per_column({row: {m: cells[m][(row,)] for m in metrics if (row,) in cells[m]}
                                 for row in SOURCE_ROWS.values()})
    sources = sorted({Path(str(d).removeprefix("npz:")).name for d in column(df, "params.dataset")})
    eps = sorted({float(e) for e in column(df, "params.eps").dropna()})
    notes = [f"robust datasets (Ilyas et al.): {', '.join(sources)}; tested on {dataset_name(test[0])}'s test split",
             "FGSM: one signed gradient step of eps = " + " or ".join(f"{255 * e:.3g}/255" for e in eps) + " from x",
             (f"mean ± std over the seeds of the {checkpoint} checkpoint; better row per column in bold; "
              f"{sweep.summary()}")]
    title = (f"Table 6. Accuracy (%) of the models ({model}) trained on each robust dataset generated from the AT and "
             "AT+BiaMAT models")
    return Table(title, ["Source model", *(metric_label(m, checkpoint=False) for m in metrics)],
                 [[row, *(rows[row].get(m, MISSING) for m in metrics)] for row in SOURCE_ROWS.values()],
                 notes, label="biamat-table6")
