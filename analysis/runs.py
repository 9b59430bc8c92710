"""Read a sweep's trials from MLflow into a DataFrame, and print paper tables from it as Markdown, CSV or LaTeX.

Analysis reads MLflow only: it never imports ``sweeps/`` or ``trainables/``, never retrains, and never creates a store
(a ``sqlite:///`` file that is not there is an error, :func:`open_store`). The layout it reads is the one the sweeps
write: one parent run per sweep invocation (run name and tag ``sweep`` = the sweep name, tag ``trials`` = its size),
one child run per trial (tag ``sweep_run_id`` = the parent's run id, tags ``sweep``, ``method``, ``trial_id``,
``git_commit``), hyperparameters as params (floats to 6 significant digits; the run's ``config.json`` artifact has
them exactly), the final protocol as ``best/<attack>`` and ``last/<attack>`` metrics (fractions), per-epoch metrics
with step = epoch.

An analysis script for another paper (AFS, UIAT) reuses this module rather than copying it::

    from analysis.cli import add_source_arguments
    from analysis.runs import (Table, aggregate, emit, load_from_args, metric_label,
                               resolve_metric)

    parser = argparse.ArgumentParser()
    add_source_arguments(parser)              # --sweep/--parent-run/--experiment/--tracking-uri/--format/--out
    args = parser.parse_args(argv)
    sweep = load_from_args(args)              # SweepRuns: FINISHED children in .runs, other statuses counted
    df = sweep.runs                           # columns: run_id, run_name, status, params.*, metrics.*, tags.*
    metric = resolve_metric(None, df)         # best/autoattack, else the strongest attack the sweep has
    cells = aggregate(df, ["params.eps"], metric)  # {(eps,): Cell(mean, std, n)} over seeds
    rows = [[f"{eps:g}", cells[(eps,)]] for (eps,) in sorted(cells)]
    emit(Table(f"... {metric_label(metric)} ...", ["eps", "accuracy"], rows, [sweep.summary()]), args.format, args.out)

Per-epoch curves come from :meth:`SweepRuns.history`; :func:`distinguishing_params` names lines or rows by what
differs between runs; :func:`only_value` narrows a frame to one value of a column (or says which values exist).

Labels follow the papers: :func:`dataset_name` ("ImageNet", not ``imagenet32``), Greek letters and check marks as
Unicode (LaTeX gets them in math mode, :func:`latex_escape`), and a :class:`Label` where LaTeX needs its own markup
(``Label("y^ER", "$y^{ER}$")``). ``--format latex`` drops the paper's number from the caption and adds a ``\\label``;
``latex-doc`` wraps the table in a document that pdflatex compiles as it is.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import re
import sqlite3
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Self, TypeVar

import pandas as pd
from mlflow.entities import Run, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from analysis.cli import DEFAULT_TRACKING_URI

# The same tag names the sweeps and trainables write (launch/launcher.py, trainables/tracking.py), repeated here
# because analysis must not import training code.
SWEEP_TAG = "sweep"
PARENT_TAG = "sweep_run_id"
TRIAL_TAG = "trial_id"  # only trial runs have it: a sweep's parent run is the run with its sweep tag and without this
TRIALS_TAG = "trials"  # on a parent run: how many trials the sweep was started with (absent on older sweeps)
SQLITE = "sqlite:///"


class SweepNotFoundError(LookupError):
    """No parent run matches the requested sweep; the message lists the sweeps that do exist."""


class StoreNotFoundError(SweepNotFoundError):
    """The tracking URI names a SQLite file that does not exist or is not an MLflow store; analysis never creates one.
    """


def resolve_tracking_uri(uri: str | None = None) -> str:
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def _has_mlflow_tables(path: Path) -> bool:
    # Read-only, so that not even an empty database file is written.
    with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
        return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'experiments'").fetchone() \
            is not None


def open_store(tracking_uri: str | None = None) -> MlflowClient:
    """A client of an existing MLflow store. MLflow creates a ``sqlite:///`` store that is not there, folder and
    all, and then finds no sweeps in it; this raises StoreNotFoundError instead, saying which file is missing, where
    the URI came from, and the store a sweep writes by default."""
    uri = resolve_tracking_uri(tracking_uri)
    if not uri.startswith(SQLITE):
        return MlflowClient(uri)  # a server (or another database): nothing here would create it
    path = Path(uri[len(SQLITE):].partition("?")[0])
    given = ("--tracking-uri" if tracking_uri else "$MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI")
             else "the default store")
    try:
        problem = None if _has_mlflow_tables(path) else "it holds no MLflow tables"
    except sqlite3.Error as exc:
        problem = "the file does not exist" if not path.exists() else f"it is not an SQLite database ({exc})"
    if problem is None:
        return MlflowClient(uri)
    default = Path(DEFAULT_TRACKING_URI[len(SQLITE):])
    here = f"; {default} exists here: leave --tracking-uri out to read it" if uri != DEFAULT_TRACKING_URI and \
        default.is_file() else ""
    raise StoreNotFoundError(
        f"no MLflow store at {path.resolve()} ({uri}, from {given}): {problem}, and analysis never creates one. Pass "
        f"the --tracking-uri the sweep logged to (a sweep's default is {DEFAULT_TRACKING_URI}, mlflow.db in the "
        f"directory it ran from, or $MLFLOW_TRACKING_URI){here}")


def _search_all(client: MlflowClient, experiment_ids: list[str], filter_string: str) -> list[Run]:
    # search_runs returns one page at a time (1000 runs at most); a large search sweep has more children than that.
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs(experiment_ids, filter_string=filter_string, run_view_type=ViewType.ACTIVE_ONLY,
                                  max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _experiments(client: MlflowClient, experiment: str | None) -> dict[str, str]:
    """Experiment id -> name: the one named, or all active ones."""
    if experiment is None:
        return {e.experiment_id: e.name for e in client.search_experiments()}
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = sorted(e.name for e in client.search_experiments())
        raise SweepNotFoundError(f"no MLflow experiment {experiment!r}; experiments: {', '.join(names) or 'none'}")
    return {found.experiment_id: found.name}


def list_sweeps(client: MlflowClient, experiment: str | None = None) -> list[tuple[str, str]]:
    """(experiment name, sweep name) of every parent run, for error messages and a quick overview."""
    experiments = _experiments(client, experiment)
    if not experiments:
        return []
    parents = _search_all(client, list(experiments), f"tags.{SWEEP_TAG} LIKE '%' AND tags.{TRIAL_TAG} IS NULL")
    return sorted({(experiments[r.info.experiment_id], r.data.tags[SWEEP_TAG]) for r in parents})


def find_parent(client: MlflowClient, sweep: str | None = None, parent_run: str | None = None,
                experiment: str | None = None) -> Run:
    """The parent run of a sweep, by its ``sweep`` tag (in one experiment or all) or by run id."""
    if parent_run is not None:
        try:
            return client.get_run(parent_run)
        except MlflowException:
            raise SweepNotFoundError(f"no MLflow run {parent_run!r} in {client.tracking_uri}") from None
    if sweep is None:
        raise ValueError("give a sweep name or a parent run id")
    experiments = _experiments(client, experiment)
    query = f"tags.{SWEEP_TAG} = '{sweep}' AND tags.{TRIAL_TAG} IS NULL"
    found = _search_all(client, list(experiments), query) if experiments else []
    if not found:
        known = ", ".join(f"{name} (experiment {exp})" for exp, name in list_sweeps(client, experiment)) or "none"
        raise SweepNotFoundError(f"no sweep named {sweep!r} in {client.tracking_uri}; sweeps: {known}")
    if len(found) > 1:
        where = ", ".join(f"{r.info.run_id} (experiment {experiments[r.info.experiment_id]})" for r in found)
        raise SweepNotFoundError(f"sweep {sweep!r} names {len(found)} parent runs: {where}; "
                                 "pass --experiment or --parent-run")
    return found[0]


def _numeric(column: pd.Series) -> pd.Series:
    # MLflow stores params as strings; convert a column only when every value is a number, so that "0.55" sorts and
    # averages as a number while "imagenet32" or "0.5,0.75" stay as they are. Digits with a leading zero
    # ("000111111", AFS's stacking masks) are codes, not numbers: converting them would drop the zeros.
    if column.dropna().astype(str).str.match(r"-?0[0-9]").any():
        return column
    converted = pd.to_numeric(column, errors="coerce")
    return converted if converted.notna().sum() == column.notna().sum() else column


def runs_frame(runs: Iterable[Run]) -> pd.DataFrame:
    """One row per run: ``run_id``, ``run_name``, ``status``, then ``params.*`` (numbers where numeric),
    ``metrics.*`` (the last logged value) and ``tags.*``, prefixed as in ``mlflow.search_runs``."""
    rows = []
    for run in runs:
        row: dict[str, Any] = {"run_id": run.info.run_id, "run_name": run.info.run_name, "status": run.info.status}
        row |= {f"params.{k}": v for k, v in run.data.params.items()}
        row |= {f"metrics.{k}": v for k, v in run.data.metrics.items()}
        row |= {f"tags.{k}": v for k, v in run.data.tags.items()}
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=["run_id", "run_name", "status"])
    df = pd.DataFrame(rows)
    for col in [c for c in df.columns if c.startswith("params.")]:
        df[col] = _numeric(df[col])
    return df


@dataclass(frozen=True)
class SweepRuns:
    """The FINISHED trials of one sweep invocation, and how many were left out (FAILED, KILLED, still RUNNING)."""

    name: str
    parent_id: str
    experiment: str
    runs: pd.DataFrame
    skipped: dict[str, int]
    client: MlflowClient = field(repr=False)
    trials: int | None = None  # how many the sweep was started with (its parent's ``trials`` tag), if recorded
    status: str = "FINISHED"  # the parent run's: RUNNING while the sweep runs, KILLED once interrupted

    def never_started(self) -> int | None:
        """Trials of the sweep that have no MLflow run yet (None when the sweep's size was not recorded)."""
        return None if self.trials is None else max(0, self.trials - len(self.runs) - sum(self.skipped.values()))

    def summary(self) -> str:
        n = len(self.runs)
        text = f"sweep {self.name!r} (experiment {self.experiment}, parent run {self.parent_id}): " \
               f"{n} finished trial{'' if n == 1 else 's'}"
        if self.skipped:
            text += "; skipped " + ", ".join(f"{count} {status}" for status, count in sorted(self.skipped.items()))
        waiting = self.never_started()
        if waiting:
            text += f"; {waiting} of {self.trials} trials never started"
        if self.status != "FINISHED":
            text += "; " + {"RUNNING": "the sweep is running (or its driver died: --resume continues it)",
                            "KILLED": "the sweep was interrupted (--resume continues it)"}.get(
                                self.status, f"the sweep ended {self.status}")
            if waiting is None:
                text += " (its size was not recorded, so trials that never started are not counted)"
        protocol = selection_protocol(self.runs)
        return f"{text}; {protocol}" if protocol else text

    def history(self, key: str, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """Per-step values of metric ``key`` (columns run_id, step, value), for the given or all finished runs."""
        rows = []
        for run_id in self.runs["run_id"] if run_ids is None else run_ids:
            # A trial resumed from a checkpoint logs the epochs after that checkpoint again: keep the latest value.
            latest: dict[int, tuple[int, float]] = {}
            for m in self.client.get_metric_history(run_id, key):
                if m.step not in latest or m.timestamp >= latest[m.step][0]:
                    latest[m.step] = (m.timestamp, m.value)
            rows += [(run_id, step, value) for step, (_, value) in sorted(latest.items())]
        return pd.DataFrame(rows, columns=["run_id", "step", "value"])


def selection_protocol(df: pd.DataFrame) -> str:
    """How the runs chose their selected (``best/*``) checkpoint, from their params, for a table's notes: where the
    selection points come from, how many, which epochs were evaluated and what was kept. Runs with different
    protocols are each described; runs logged before these params existed give an empty string.

    Standard training keeps its best clean accuracy, as does training at eps 0 (where PGD accuracy is clean accuracy):
    the rule of ``trainables/methods/baseline.py``, read here from the runs' ``training`` and ``eps`` params. Standard-trained
    runs logged before that rule (issue #19) kept their best PGD accuracy instead."""
    keys = ["select_on", "eval_n", "eval_every", "eval_from", "keep_epoch", "attack_steps"]
    if df.empty or any(f"params.{k}" not in df for k in keys):
        return ""
    protocols = df[[f"params.{k}" for k in keys]].assign(
        clean=(column(df, "params.training") == "standard")
        | (pd.to_numeric(column(df, "params.eps"), errors="coerce") == 0))
    described = []
    for select_on, n, every, start, keep, steps, clean in protocols.drop_duplicates().itertuples(index=False):
        where = "the first {} test points" if select_on == "test" else "{} held-out training points"
        start = "the first LR decay" if start == "first_decay" else f"epoch {start}"
        best = "best clean accuracy kept (standard training)" if clean else f"best PGD-{steps} kept"
        kept = f"epoch {keep} kept" if int(keep) else best
        described.append(f"PGD-{steps} on {where.format(n)}, every {every} epoch(s) from {start}, {kept}")
    return "checkpoint selection: " + " | ".join(described)


def load_sweep(sweep: str | None = None, *, parent_run: str | None = None, experiment: str | None = None,
               tracking_uri: str | None = None) -> SweepRuns:
    """Load a sweep's child runs. Only FINISHED ones go into ``.runs``: a FAILED trial or one a scheduler stopped
    early (KILLED) never reached the final protocol, and a partial score would bias means and maxima."""
    client = open_store(tracking_uri)
    parent = find_parent(client, sweep, parent_run, experiment)
    exp_id = parent.info.experiment_id
    children = runs_frame(_search_all(client, [exp_id], f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'"))
    finished = children["status"] == "FINISHED"
    return SweepRuns(
        name=parent.data.tags.get(SWEEP_TAG, parent.info.run_name),
        parent_id=parent.info.run_id,
        experiment=client.get_experiment(exp_id).name,
        runs=children[finished].reset_index(drop=True),
        skipped=children.loc[~finished, "status"].value_counts().to_dict(),
        client=client,
        trials=int(trials) if (trials := parent.data.tags.get(TRIALS_TAG, "")).isdigit() else None,
        status=parent.info.status,
    )


# --- choosing what to show -----------------------------------------------------------------------------------------

_ATTACK = re.compile(r"(pgd|cw)([0-9]+)")


def attack_strength(attack: str) -> tuple[int, int] | None:
    """Sort key, stronger attacks larger: AutoAttack, then more steps, CW above PGD at equal steps (CW-k usually
    leaves lower accuracy than PGD-k on adversarially trained models). None for clean accuracy and other metrics."""
    if attack == "autoattack":
        return (1, 0)
    match = _ATTACK.fullmatch(attack)
    if match is None:
        return None
    return (0, 2 * int(match.group(2)) + (match.group(1) == "cw"))


def resolve_metric(metric: str | None, *frames: pd.DataFrame, checkpoint: str = "best") -> str:
    """The metric a table shows: ``metric`` if given (it must exist), otherwise the strongest attack under
    ``<checkpoint>/`` that every non-empty frame has (``best/autoattack`` in a full run, e.g. ``best/pgd20`` in a
    smoke run). Raises ``ValueError`` listing the metrics that exist."""
    present = [{c.removeprefix("metrics.") for c in f.columns if c.startswith("metrics.")} for f in frames if len(f)]
    common = set.intersection(*present) if present else set()
    if metric is not None:
        if metric not in common:
            raise ValueError(f"metric {metric!r} is not logged by these runs; metrics: {', '.join(sorted(common))}")
        return metric
    attacks = [(attack_strength(m.split("/", 1)[1]), m) for m in common if m.startswith(f"{checkpoint}/")]
    ranked = sorted((strength, m) for strength, m in attacks if strength is not None)
    if not ranked:
        raise ValueError(f"no attack metric under {checkpoint}/ in these runs; metrics: {', '.join(sorted(common))}")
    return ranked[-1][1]


def metric_label(metric: str, *, checkpoint: bool = True, clean: str = "Clean") -> str:
    """``best/autoattack`` -> ``AutoAttack (best checkpoint)``; ``last/pgd20`` -> ``PGD-20 (last checkpoint)``.

    A paper's column header says neither checkpoint nor "Clean" where the paper does not: ``checkpoint=False`` leaves
    the checkpoint out (the table's title or notes then say it), ``clean="Natural"`` names clean accuracy as UIAT does.
    """
    tag, _, name = metric.partition("/")
    match = _ATTACK.fullmatch(name)
    if name == "autoattack":
        pretty = "AutoAttack"
    elif name == "clean":
        pretty = clean
    elif match is not None:
        pretty = f"{match.group(1).upper()}-{match.group(2)}"
    else:
        return metric
    if tag not in ("best", "last"):
        return metric
    return f"{pretty} ({tag} checkpoint)" if checkpoint else pretty


# The papers' names of the datasets this project reads (ImageNet32x32 is "ImageNet" in BiaMAT's tables); other ids
# (the synthetic sets) are shown as they are.
DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "svhn": "SVHN", "imagenet32": "ImageNet",
                 "places365_32": "Places365", "places365_64": "Places365", "imgnet100": "ImgNet100",
                 "imgnet900": "ImgNet900"}


def dataset_name(ids: Any) -> str:
    """A dataset param as the papers name it: ``imagenet32`` -> ``ImageNet``, ``svhn,cifar100`` -> ``SVHN + CIFAR-100``
    (several auxiliary sets, logged comma-joined)."""
    return " + ".join(DATASET_NAMES.get(name, name) for name in str(ids).split(","))


def column(df: pd.DataFrame, name: str) -> pd.Series:
    """``df[name]``, or all-missing values when no run of this sweep logged ``name`` (a sweep of baselines only has
    no ``params.labels``), so that filters on it simply match nothing."""
    return df[name] if name in df else pd.Series(None, index=df.index, dtype=object)


def only_value(df: pd.DataFrame, column: str, wanted: Any = None) -> tuple[pd.DataFrame, Any]:
    """Rows whose ``column`` equals ``wanted``; with ``wanted=None`` the column must hold a single value. Raises
    ``ValueError`` naming the values present, so a table never silently mixes, e.g., AT and TRADES runs."""
    values = sorted(df[column].dropna().unique().tolist(), key=str) if column in df else []
    name = column.split(".", 1)[-1]
    if wanted is None:
        if len(values) != 1:
            raise ValueError(f"expected runs with one {name}, found {values or 'none'}: select one")
        wanted = values[0]
    elif wanted not in values:
        raise ValueError(f"no finished runs with {name}={wanted!r}; values: {values or 'none'}")
    return df[df[column] == wanted], wanted


def distinguishing_params(df: pd.DataFrame, exclude: Sequence[str] = ("seed",),
                          prefer: Sequence[str] = ()) -> list[str]:
    """A short list of params that tell the runs apart (``exclude`` aside). A param is kept only if it splits the
    runs further than those already kept, so schedule settings that merely follow ``variant`` are not repeated."""
    candidates = [f"params.{p}" for p in prefer] + sorted(c for c in df.columns if c.startswith("params."))
    chosen: list[str] = []
    groups = 1
    for col in dict.fromkeys(candidates):
        if col not in df or col.removeprefix("params.") in exclude:
            continue
        split = len(df[[*chosen, col]].astype(str).drop_duplicates())
        if split > groups:
            chosen.append(col)
            groups = split
    return chosen


# What makes two trainings comparable in one table: data, model, schedule, training attack and selection protocol.
# A method's own hyperparameters (alpha, pi, labels, lam, ...) are what the table compares, so they are not here.
RECIPE_PARAMS = ("dataset", "train_n", "model", "epochs", "batch_size", "lr", "momentum", "nesterov", "weight_decay",
                 "schedule", "lr_milestones", "lr_gamma", "eps", "attack_step", "attack_steps", "attack_start",
                 "attack_bn", "select_on", "holdout_n", "eval_n", "eval_every", "eval_from", "keep_epoch", "final_n",
                 "final_attack_step")


def recipe_differences(runs: pd.DataFrame, baseline: pd.DataFrame, keys: Sequence[str] = RECIPE_PARAMS) -> list[str]:
    """``"param: [runs' values] vs baseline [values]"`` for every recipe param on which a baseline's runs differ from
    the runs it is compared with (a param one side did not log counts as differing)."""

    def values(df: pd.DataFrame, key: str) -> list[str]:
        col = f"params.{key}"
        # A column with gaps turns 100 into 100.0: compare the numbers, not how pandas typed them.
        logged = sorted({f"{v:g}" if isinstance(v, float) else str(v) for v in df[col].dropna()}) if col in df else []
        return logged or ["not logged"]

    out = []
    for key in keys:
        mine, theirs = values(runs, key), values(baseline, key)
        if mine != theirs:
            out.append(f"{key}: {', '.join(mine)} vs baseline {', '.join(theirs)}")
    return out


# --- cells and tables ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """Mean and sample standard deviation of a metric over seeds. Accuracies are fractions, shown in percent like the
    papers (the default ``scale`` and ``spec``); another quantity sets its own (hours: ``scale=1, spec=".3g"``)."""

    mean: float
    std: float | None  # None with a single seed
    n: int
    bold: bool = False
    scale: float = 100.0
    spec: str = ".2f"

    @classmethod
    def of(cls, values: Iterable[float], *, scale: float = 100.0, spec: str = ".2f") -> Cell:
        series = pd.Series(list(values), dtype=float).dropna()
        if series.empty:
            raise ValueError("a cell needs at least one value")
        return cls(float(series.mean()), float(series.std(ddof=1)) if len(series) > 1 else None, len(series),
                   scale=scale, spec=spec)

    def text(self, show_n: bool = False, pm: str = "±") -> str:
        out = f"{self.scale * self.mean:{self.spec}}"
        if self.std is not None:
            out += f" {pm} {self.scale * self.std:{self.spec}}"
        return out + (f" (n={self.n})" if show_n else "")


K = TypeVar("K")  # a table's cell key


def bold_best(cells: Mapping[K, Cell]) -> dict[K, Cell]:
    """One column's cells with the highest mean in bold (ties: all), as the papers mark the best method."""
    if not cells:
        return dict(cells)
    best = max(c.mean for c in cells.values())
    return {key: replace(c, bold=c.mean == best) for key, c in cells.items()}


def aggregate(df: pd.DataFrame, by: Sequence[str], metric: str) -> dict[tuple, Cell]:
    """One :class:`Cell` per combination of the ``by`` columns, over the runs (seeds) that logged ``metric``."""
    col = f"metrics.{metric}"
    logged = df.dropna(subset=[col]) if col in df else df.iloc[0:0]
    return {(key if isinstance(key, tuple) else (key,)): Cell.of(group[col])
            for key, group in logged.groupby(list(by), sort=True)}


class Label(str):
    """Text that LaTeX sets another way, usually in math mode: plain text in Markdown, CSV and comparisons (it is a
    ``str``), :attr:`latex` in :func:`to_latex`. ``Label("y^ER", "$y^{ER}$")`` is a header, row label or title like
    any other string; :func:`compose` joins labels and text (``+`` and f-strings give a plain ``str``)."""

    latex: str

    def __new__(cls, text: str, latex: str) -> Self:
        label = super().__new__(cls, text)
        label.latex = latex
        return label


def compose(*parts: str) -> str:
    """Parts joined into one :class:`Label` whose LaTeX escapes the plain parts, or a plain ``str`` if none is a Label."""
    text = "".join(parts)
    return Label(text, "".join(map(to_tex, parts))) if any(isinstance(p, Label) for p in parts) else text


@dataclass
class Table:
    """A table to render in any format: ``rows`` hold strings and :class:`Cell` s, ``notes`` go under it. The title
    starts with the paper's number ("Table 13. ..."), which Markdown shows and LaTeX moves into ``label``
    (``tab:<label>``, by default from the title's words): LaTeX numbers its own captions."""

    title: str
    header: list[str]
    rows: list[list[str | Cell]]
    notes: list[str] = field(default_factory=list)
    label: str | None = None

    def cells(self) -> list[Cell]:
        return [c for row in self.rows for c in row if isinstance(c, Cell)]

    def typical_n(self) -> int | None:
        """The most common number of seeds per cell; cells with another count say theirs."""
        counts = Counter(c.n for c in self.cells())
        return counts.most_common(1)[0][0] if counts else None

    def all_notes(self) -> list[str]:
        """The table's notes after a line on how many seeds stand behind each cell."""
        n = self.typical_n()
        if n is None:
            return list(self.notes)
        seeds = "1 seed per cell" if n == 1 else f"mean ± sample std over {n} seeds per cell"
        if any(c.n != n for c in self.cells()):
            seeds += " (other seed counts marked n=k)"
        return [seeds, *self.notes]


def _is_number(value: str | Cell) -> bool:
    if isinstance(value, Cell) or value in ("", "-"):
        return True
    try:
        float(value)
    except ValueError:
        return False
    return True


def _numeric_columns(table: Table) -> list[bool]:
    """Numbers align right, text left: a column is numeric when every cell is a number, a Cell or empty."""
    return [all(_is_number(row[j]) for row in table.rows) for j in range(len(table.header))]


def _cell_text(value: str | Cell, table: Table, pm: str = "±") -> str:
    return value.text(value.n != table.typical_n(), pm) if isinstance(value, Cell) else value


def to_markdown(table: Table) -> str:
    def line(cells: Iterable[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    def md(value: str | Cell) -> str:
        text = _cell_text(value, table)
        return f"**{text}**" if isinstance(value, Cell) and value.bold else text

    align = ["---:" if numeric else "---" for numeric in _numeric_columns(table)]
    body = [line(table.header), "|" + "|".join(align) + "|", *(line(md(v) for v in row) for row in table.rows)]
    notes = [f"_{note}_  " for note in table.all_notes()]
    return "\n".join([f"**{table.title}**", "", *body, "", *notes]).rstrip() + "\n"


def to_csv(table: Table) -> str:
    """Header and rows only (no title or notes), so any CSV reader takes it as is."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.header)
    writer.writerows([_cell_text(v, table) for v in row] for row in table.rows)
    return out.getvalue()


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  # What the tables print as Unicode in Markdown: pdflatex stops at most of it (U+2713, Greek), so
                  # LaTeX gets the math-mode symbol. \checkmark is amssymb's (:func:`latex_packages`).
                  "π": r"$\pi$", "α": r"$\alpha$", "β": r"$\beta$", "λ": r"$\lambda$", "ε": r"$\epsilon$",
                  "ω": r"$\omega$", "Δ": r"$\Delta$", "ỹ": r"$\tilde{y}$", "±": r"$\pm$", "×": r"$\times$",
                  "≥": r"$\geq$", "≤": r"$\leq$", "→": r"$\rightarrow$", "−": "-", "✓": r"$\checkmark$"}
# A caption's leading paper number ("Table 13. ", "Fig. 3. "), which LaTeX would print after its own "Table N:".
_PAPER_NUMBER = re.compile(r"(?:Table|Fig\.|Figure)\s+[0-9]+[a-z]?[.:]\s*")


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_tex(text: str) -> str:
    """Text as LaTeX: a :class:`Label`'s own LaTeX, anything else escaped."""
    return text.latex if isinstance(text, Label) else latex_escape(text)


def latex_label(table: Table) -> str:
    """The table's ``\\label``: ``tab:`` and its :attr:`Table.label`, else the first words of its title
    (``Table 6. Ablation of UIAT's components`` -> ``tab:table-6-ablation-of-uiat-s-components``)."""
    words = re.sub(r"[^a-z0-9]+", " ", (table.label or table.title).lower()).split()
    return "tab:" + "-".join(words if table.label else words[:7])


def latex_packages(tex: str) -> list[str]:
    """The packages LaTeX from :func:`to_latex` needs: booktabs' rules, graphicx's shrink to the line width, amssymb
    where a check mark is set."""
    return ["booktabs", "graphicx", *(["amssymb"] if "\\checkmark" in tex else [])]


def to_latex(table: Table) -> str:
    """A ``table`` environment with booktabs rules, its caption without the paper's number and a ``\\label``; the
    packages it needs in a first comment line, the notes as comments after it."""

    def tex(value: str | Cell) -> str:
        if isinstance(value, Cell):
            text = _cell_text(value, table, pm="$\\pm$")
            return f"\\textbf{{{text}}}" if value.bold else text
        return to_tex(value)

    spec = "".join("r" if numeric else "l" for numeric in _numeric_columns(table))
    title = to_tex(table.title)
    number = _PAPER_NUMBER.match(title)
    caption = title[number.end():] if number else title
    body = [
        "\\begin{table}[t]", "\\centering", f"\\caption{{{caption}}}", f"\\label{{{latex_label(table)}}}",
        # Shrunk to the line width only when wider (AFS Table 6, BiaMAT Table 11): \width is the natural width.
        "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%",
        f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
        " & ".join(map(to_tex, table.header)) + " \\\\", "\\midrule",
        *(" & ".join(tex(v) for v in row) + " \\\\" for row in table.rows),
        "\\bottomrule", "\\end{tabular}}", "\\end{table}",
    ]
    packages = ", ".join(f"\\usepackage{{{name}}}" for name in latex_packages("\n".join(body)))
    lines = [f"% needs {packages}", *body, *(f"% {' '.join(note.splitlines())}" for note in table.all_notes())]
    return "\n".join(lines) + "\n"


def latex_document(tables: Iterable[Table]) -> str:
    """A whole LaTeX document of the tables, which pdflatex compiles as it is."""
    body = "".join(map(to_latex, tables))
    preamble = [f"\\usepackage{{{name}}}" for name in latex_packages(body)]
    return "\n".join(["\\documentclass{article}", *preamble, "\\begin{document}", body + "\\end{document}"]) + "\n"


def render(table: Table, fmt: str = "md") -> str:
    renderers = {"md": to_markdown, "csv": to_csv, "latex": to_latex, "latex-doc": lambda t: latex_document([t])}
    if fmt not in renderers:
        raise ValueError(f"unknown format {fmt!r}; formats: {', '.join(renderers)}")
    return renderers[fmt](table)


# --- command-line plumbing shared by the analysis scripts ----------------------------------------------------------


def load_from_args(args: argparse.Namespace) -> SweepRuns:
    """:func:`load_sweep` from parsed :func:`add_source_arguments` flags; a missing sweep exits with the list."""
    try:
        return load_sweep(args.sweep, parent_run=args.parent_run, experiment=args.experiment,
                          tracking_uri=args.tracking_uri)
    except SweepNotFoundError as exc:
        raise SystemExit(f"error: {exc}") from None


def emit(table: Table, fmt: str = "md", out: Path | None = None) -> None:
    """Print the table, or write it to ``out``. CSV carries no title or notes, so those go to stderr."""
    text = render(table, fmt)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out}", file=sys.stderr)
    if fmt == "csv":
        print("\n".join([table.title, *table.all_notes()]), file=sys.stderr)
