"""Reading the MLflow store that the sweeps write: a sweep's parent run, its trials as a DataFrame, and the names of
what they logged. Both the launch package (resume checks, the UI view, re-evaluation) and the analysis read the store
through this module; it imports neither of them, nor training code.

The layout: one parent run per sweep invocation (run name and tag ``sweep`` = the sweep name, tag ``trials`` = its
size), one child run per trial (tag ``sweep_run_id`` = the parent's run id, tags ``sweep``, ``method``, ``trial_id``,
``git_commit``), hyperparameters as params (floats to 6 significant digits; the run's ``config.json`` artifact has
them exactly), the final protocol as ``best/<attack>`` and ``last/<attack>`` metrics (fractions), per-epoch metrics
with step = epoch. Nothing here creates a store: a ``sqlite:///`` file that is not there is an error
(:func:`open_store`).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.entities import Run, ViewType
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from runstore.uri import DEFAULT_TRACKING_URI, SQLITE, resolve_tracking_uri

# The same tag names the trials write (trainables/tracking.py), repeated here because reading the store must not
# import training code.
SWEEP_TAG = "sweep"
PARENT_TAG = "sweep_run_id"
TRIAL_TAG = "trial_id"  # only trial runs have it: a sweep's parent run is the run with its sweep tag and without this
TRIALS_TAG = "trials"  # on a parent run: how many trials the sweep was started with (absent on older sweeps)
END_REASON_TAG = "end_reason"  # why the sweep ended a trial's run
STOPPED_EARLY = "stopped_early"  # that end_reason of a trial a budgeted sweep stopped at a rung
RUNG_SCORE = "rung/score"  # the selection score a trial reported at its rungs
STOPPED_MARK = "*"  # after a stopped row's number in a table


class SweepNotFoundError(LookupError):
    """No parent run matches the requested sweep; the message lists the sweeps that do exist."""


class StoreNotFoundError(SweepNotFoundError):
    """The tracking URI names a SQLite file that does not exist or is not an MLflow store; analysis never creates one.
    """


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


def parent_filter(sweep: str | None = None) -> str:
    """The MLflow search filter that finds a sweep's parent run (its trials carry the same ``sweep`` tag, and a
    ``trial_id``), or with no ``sweep`` the parent runs of every sweep."""
    name = "LIKE '%'" if sweep is None else f"= '{sweep}'"
    return f"tags.{SWEEP_TAG} {name} AND tags.{TRIAL_TAG} IS NULL"


def list_sweeps(client: MlflowClient, experiment: str | None = None) -> list[tuple[str, str]]:
    """(experiment name, sweep name) of every parent run, for error messages and a quick overview."""
    experiments = _experiments(client, experiment)
    if not experiments:
        return []
    parents = _search_all(client, list(experiments), parent_filter())
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
    found = _search_all(client, list(experiments), parent_filter(sweep)) if experiments else []
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
    # The trials a budgeted sweep's scheduler stopped at a rung (launch/budget.py): KILLED, end_reason stopped_early,
    # with the epoch (metrics.epoch, 0-based) and the score (metrics.rung/score) they were stopped at.
    stopped: pd.DataFrame = field(default_factory=pd.DataFrame)

    def never_started(self) -> int | None:
        """Trials of the sweep that have no MLflow run yet (None when the sweep's size was not recorded)."""
        return None if self.trials is None else max(0, self.trials - len(self.runs) - sum(self.skipped.values()))

    def summary(self) -> str:
        n = len(self.runs)
        text = f"sweep {self.name!r} (experiment {self.experiment}, parent run {self.parent_id}): " \
               f"{n} finished trial{'' if n == 1 else 's'}"
        if self.skipped:
            skipped = dict(self.skipped)
            if len(self.stopped):  # of the KILLED runs, those the budget stopped at a rung
                skipped["KILLED"] -= len(self.stopped)
                skipped = {f"stopped at a rung by the budget{STOPPED_MARK}": len(self.stopped),
                           **{status: count for status, count in skipped.items() if count}}
            text += "; skipped " + ", ".join(f"{count} {status}" for status, count in sorted(skipped.items()))
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
        | (pd.to_numeric(column(df, "params.eps"), errors="coerce") == 0),
        # Runs logged before subset_seed existed selected on the first N test points (trainables/trial_data.py).
        sampled=column(df, "params.subset_seed").notna())
    described = []
    # Runs that differ only in keeping clean accuracy (an AFS extractor at eps 0 beside those at 1..9/255) are one
    # protocol with an exception, not two near-identical descriptions.
    for (select_on, n, every, start, keep, steps, sampled), group in protocols.groupby(
            [f"params.{k}" for k in keys] + ["sampled"], sort=False):
        drawn = "{} random test points" if sampled else "the first {} test points"
        where = drawn if select_on == "test" else "{} held-out training points"
        start = "the first LR decay" if start == "first_decay" else f"epoch {start}"
        clean = set(group["clean"])
        if clean == {True}:
            best = "best clean accuracy kept (standard training)"
        elif clean == {False}:
            best = f"best PGD-{steps} kept"
        else:
            best = f"best PGD-{steps} kept (best clean accuracy at eps 0 and for standard training)"
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
    stopped = (children["status"] == "KILLED") & (column(children, f"tags.{END_REASON_TAG}") == STOPPED_EARLY)
    return SweepRuns(
        name=parent.data.tags.get(SWEEP_TAG, parent.info.run_name),
        parent_id=parent.info.run_id,
        experiment=client.get_experiment(exp_id).name,
        runs=children[finished].reset_index(drop=True),
        skipped=children.loc[~finished, "status"].value_counts().to_dict(),
        client=client,
        trials=int(trials) if (trials := parent.data.tags.get(TRIALS_TAG, "")).isdigit() else None,
        status=parent.info.status,
        stopped=children[stopped].reset_index(drop=True),
    )




# Attack metrics are named pgd<steps> and cw<steps> (best/pgd20, last/cw40), and autoattack.
ATTACK_NAME = re.compile(r"(pgd|cw)([0-9]+)")


def attack_strength(attack: str) -> tuple[int, int] | None:
    """Sort key, stronger attacks larger: AutoAttack, then more steps, CW above PGD at equal steps (CW-k usually
    leaves lower accuracy than PGD-k on adversarially trained models), FGSM lowest. None for clean accuracy and other
    metrics."""
    if attack == "autoattack":
        return (1, 0)
    if attack == "fgsm":  # one step: below PGD-1, which starts at random
        return (0, 1)
    match = ATTACK_NAME.fullmatch(attack)
    if match is None:
        return None
    return (0, 2 * int(match.group(2)) + (match.group(1) == "cw"))

def column(df: pd.DataFrame, name: str) -> pd.Series:
    """``df[name]``, or all-missing values when no run of this sweep logged ``name`` (a sweep of baselines only has
    no ``params.labels``), so that filters on it simply match nothing."""
    return df[name] if name in df else pd.Series(None, index=df.index, dtype=object)
