"""BiaMAT appendix Table 14: which auxiliary classes the confidence gate passes, per primary class.

    python analysis/biamat_tables.py table14 --sweep biamat-labels-paper --aux imagenet32 --mapping imagenet_cifar10.csv
    python analysis/biamat_tables.py table14 --sweep biamat-labels-smoke --aux synthetic_aux   # the built-in mapping

A gated BiaMAT trial logs, for every epoch the gate routes, the artifact ``gate_counts/epoch_<NNNN>.csv`` (NNNN the
0-based epoch, the MLflow step): per auxiliary class (``aux_class``, the label as the trial counts it, several
auxiliary sets concatenated in ``aux_datasets`` order) how many samples the training stream drew (``seen``) and how
many the gate passed to their own label (``high``: primary confidence >= omega). A class's ratio is high / seen; the
table averages the ratios of the auxiliary classes that a user's CSV maps to each primary class (columns
``aux_class,primary_class``, one line per matched auxiliary class, any other columns ignored), then of the unmatched
ones ("Others") and of all. For ImageNet and CIFAR-10 the paper maps classes through CINIC-10's synset list
(``synsets-to-cifar-10-classes.txt``) by WordNet id; the CSV gives the ImageNet32 label index of each of those ids.

The paper scored its trained model once on every auxiliary training image: ``sweeps/biamat_gate_pass.py`` does that
and logs the counts as ``gate_pass/<checkpoint>.csv`` in the same format, which ``--pass best`` (or ``last``) reads.
Without it, the gate's own counts during one training epoch (the last by default: augmented images, as the stream
drew them) stand in for that pass.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path
from unittest.mock import patch

import pandas as pd

from analysis.biamat.names import VARIANT_NAMES
from analysis.biamat.runs import biamat_runs, number
from analysis.cells import Cell, Table
from analysis.runs import dataset_name
from runstore.reader import SweepRuns

GATE_COUNTS = "gate_counts"  # the artifact folder of trainables/methods/biamat.py
GATE_PASS = "gate_pass"  # the artifact folder of sweeps/biamat_gate_pass.py
PROGRESS_BAR = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
# The smoke sets' related classes, as trainables/datasets.py builds them (synthetic_aux_related): auxiliary class
# a < 5 of synthetic_aux carries primary class a's robust pattern, no class of synthetic_aux_unrelated does. Repeated
# because analysis does not import training code; tests/test_biamat_tables.py checks that the two agree.
SYNTHETIC_RELATED = {"synthetic_aux": 5, "synthetic_aux_unrelated": 0}
MAPPING_FORMAT = ("a CSV whose first line is aux_class,primary_class, then one line per auxiliary class that matches "
                  "a primary class: its label index as the trial counts it (from 0) and the primary class's name")


def read_mapping(path: Path) -> dict[int, str]:
    """Auxiliary class -> primary class from a user's CSV (:data:`MAPPING_FORMAT`); bad input is a ``ValueError``
    naming the file, the line and the fix."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValueError(f"cannot read the class mapping {path} ({exc.strerror}): pass --mapping {MAPPING_FORMAT}") \
            from None
    reader = csv.DictReader(io.StringIO(text))
    missing = sorted({"aux_class", "primary_class"} - set(reader.fieldnames or []))
    if missing:
        raise ValueError(f"the class mapping {path} has no column {', '.join(missing)}: it must be {MAPPING_FORMAT}")
    mapping: dict[int, str] = {}
    for line, row in enumerate(reader, start=2):
        index, target = (row["aux_class"] or "").strip(), (row["primary_class"] or "").strip()
        if not index.isdigit() or not target:
            raise ValueError(f"{path}, line {line}: aux_class must be a label index (0, 1, ...) and primary_class a "
                             f"name, not {index!r}, {target!r}")
        if int(index) in mapping:
            raise ValueError(f"{path}, line {line}: auxiliary class {index} is mapped twice ({mapping[int(index)]!r} "
                             f"and {target!r}); keep one line per auxiliary class")
        mapping[int(index)] = target
    return mapping


def builtin_mapping(aux: str) -> dict[int, str] | None:
    """The synthetic auxiliary sets' own related classes; None for a set that needs a user's mapping."""
    related = SYNTHETIC_RELATED.get(aux)
    return None if related is None else {a: f"class {a}" for a in range(related)}


def gate_counts(sweep: SweepRuns, run_id: str, epoch: int | None = None, full_pass: str | None = None,
                ) -> tuple[int | str, pd.DataFrame]:
    """The epoch and the per-class counts (columns aux_class, seen, high) a run logged for ``epoch``, its last one
    when None; with ``full_pass`` (a checkpoint), those of ``sweeps/biamat_gate_pass.py``'s pass of that model."""
    if full_pass is not None:
        path = f"{GATE_PASS}/{full_pass}.csv"
        if not any(f.path == path for f in sweep.client.list_artifacts(run_id, GATE_PASS)):
            raise ValueError(f"run {run_id} has no {path}: run `python sweeps/biamat_gate_pass.py --run {run_id} "
                             f"--checkpoint {full_pass}` first, or leave out --pass for the last training epoch's counts")
        with tempfile.TemporaryDirectory() as directory, patch.dict(os.environ, {PROGRESS_BAR: "false"}):
            return f"{full_pass} model, every training image", pd.read_csv(
                sweep.client.download_artifacts(run_id, path, directory))
    files = {int(Path(f.path).stem.removeprefix("epoch_")): f.path
             for f in sweep.client.list_artifacts(run_id, GATE_COUNTS) if f.path.endswith(".csv")}
    if not files:
        raise ValueError(f"run {run_id} logged no per-class gate counts ({GATE_COUNTS}/): it ran before the BiaMAT "
                         "trial logged them (trainables/methods/biamat.py); run its sweep again")
    chosen = max(files) if epoch is None else epoch
    if chosen not in files:
        raise ValueError(f"run {run_id} has no gate counts for epoch {epoch}; --epoch takes one of {sorted(files)}")
    # MLflow draws a progress bar on stderr for every download: one per run here, and noise around the table.
    with tempfile.TemporaryDirectory() as directory, patch.dict(os.environ, {PROGRESS_BAR: "false"}):
        return chosen, pd.read_csv(sweep.client.download_artifacts(run_id, files[chosen], directory))


def one_setting(df: pd.DataFrame, choices: dict[str, tuple[object, str]]) -> pd.DataFrame:
    """The runs of one trained setting: ``choices`` maps a column to (the wanted value or None, its flag)."""
    for col, (wanted, flag) in choices.items():
        values = sorted(df[col].dropna().unique().tolist(), key=str)
        if wanted is None and len(values) > 1:
            raise ValueError(f"Table 14 shows one model, and the gated runs have {col.removeprefix('params.')} "
                             f"{values}: pick one with {flag}")
        if wanted is not None:
            df = df[df[col] == wanted]
            if df.empty:
                raise ValueError(f"no gated BiaMAT runs with {flag} {wanted}; values: {values}")
    return df


def ratio_row(name: str, ratios: pd.Series) -> list[str]:
    """Mean and standard deviation of the classes' ratios, and how many classes; '-' where there is no spread."""
    if ratios.empty:
        return [name, "-", "-", "0"]
    spread = f"{ratios.std(ddof=1):.3f}" if len(ratios) > 1 else "-"
    return [name, f"{ratios.mean():.3f}", spread, str(len(ratios))]


def table14(sweep: SweepRuns, mapping: Path | None = None, *, aux: str | None = None, variant: str | None = None,
            pi: float | None = None, epoch: int | None = None, full_pass: str | None = None) -> Table:
    """Appendix Table 14 from the gated BiaMAT runs of one setting (``aux``/``variant``/``pi`` pick it when the
    sweep has several), seeds pooled: per primary class of ``mapping`` (a CSV; default: the synthetic set's own
    related classes), the mean and spread of its auxiliary classes' high / seen ratios, then Others and All; from
    the last epoch's counts (or ``epoch``'s), or with ``full_pass`` from the pass of that checkpoint's model."""
    df = biamat_runs(sweep.runs)
    if df.empty:
        raise ValueError(f"no finished gated BiaMAT trials: {sweep.summary()}")
    df = one_setting(df, {"params.aux_datasets": (aux, "--aux"), "params.variant": (variant, "--variant"),
                          "params.pi": (pi, "--pi")})
    aux_name, primary = str(df["params.aux_datasets"].iloc[0]), str(df["params.dataset"].iloc[0])
    logged = [gate_counts(sweep, run_id, epoch, full_pass) for run_id in df["run_id"]]
    classes = read_mapping(mapping) if mapping is not None else builtin_mapping(aux_name)
    if classes is None:
        raise ValueError(f"Table 14 needs the primary class of {dataset_name(aux_name)}'s classes: pass --mapping "
                         f"{MAPPING_FORMAT}")
    counts = pd.concat([c for _, c in logged]).groupby("aux_class")[["seen", "high"]].sum()
    unknown = sorted(set(classes) - set(counts.index))
    if unknown:
        raise ValueError(f"the class mapping names auxiliary class(es) {unknown[:5]}, but {dataset_name(aux_name)} has "
                         f"classes 0..{len(counts) - 1}: check --mapping")
    drawn = counts[counts["seen"] > 0]
    ratios = drawn["high"] / drawn["seen"]
    superclasses = dict.fromkeys(classes.values())
    rows: list[list[str | Cell]] = [ratio_row(name, ratios[ratios.index.isin([a for a, s in classes.items() if s == name])])
            for name in superclasses]
    others = ratios[~ratios.index.isin(list(classes))]
    if len(others):
        rows.append(ratio_row("Others (unmatched)", others))
    rows.append(ratio_row("All", ratios))

    epochs = sorted({e for e, _ in logged})
    setting = f"{VARIANT_NAMES.get(df['params.variant'].iloc[0])}, π = {number(float(df['params.pi'].iloc[0]))}"
    title = (f"Table 14. Average higher-than-threshold ratio of the {dataset_name(aux_name)} training images per "
             f"{dataset_name(primary)} superclass ({setting}, {'epoch ' if full_pass is None else ''}"
             f"{', '.join(map(str, epochs))})")
    source = f"class mapping: {mapping}" if mapping is not None else (
        "class mapping: the synthetic set's own related classes (auxiliary class a carries primary class a's pattern)")
    drawn_by = ("those the training stream drew in the epoch (0-based)" if full_pass is None else
                f"all its training images, scored once by the {full_pass} model (sweeps/biamat_gate_pass.py)")
    ratio = (f"ratio of an auxiliary class: the samples of it the gate passed (primary confidence >= omega) over "
             f"{drawn_by}, pooled over {len(df)} run(s); a row: the mean "
             "and the standard deviation of its classes' ratios ('-' for a single class), which the paper's "
             "'Standard error' column holds (0.219 over ImageNet's 1000 classes)")
    notes = [ratio, source, sweep.summary()]
    if len(drawn) < len(counts):
        notes.append(f"{len(counts) - len(drawn)} auxiliary classes the stream never drew in that epoch left out")
    header = [f"{dataset_name(primary)} superclass", "Average higher-than-threshold ratio", "Std over classes",
              "Auxiliary classes"]
    return Table(title, header, rows, notes, label="biamat-table14")
