"""The sweep's MLflow parent run and the end of its trials' runs: one parent per sweep invocation (reopened by
``--resume``), and no child run left RUNNING whatever ended the sweep."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Collection, Mapping

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from runstore.reader import parent_filter
from trainables.tracking import (
    END_REASON_TAG,
    PARENT_TAG,
    STOPPED_EARLY,
    SWEEP_TAG,
    TRIAL_TAG,
)

REPORT_ARTIFACT = "table.md"  # what the sweep printed at its end, kept with its parent run


INTERRUPTED = "interrupted"  # end_reason of the runs a signal cut short; --resume reopens them


def parent_run(client: MlflowClient, exp_id: str, name: str, resume: bool, tags: Mapping[str, str]) -> str:
    """The sweep invocation's MLflow parent run; ``--resume`` reopens it instead of creating a second one."""
    found = client.search_runs([exp_id], filter_string=parent_filter(name), max_results=1)
    if found and resume:
        client.update_run(found[0].info.run_id, status="RUNNING")
        return found[0].info.run_id
    if found:
        raise SystemExit(f"error: an MLflow run for sweep {name!r} already exists: pass --resume to continue it, "
                         "or --name to start a new sweep")
    return client.create_run(exp_id, run_name=name, tags={SWEEP_TAG: name, **tags}).info.run_id


def close_running_runs(client: MlflowClient, exp_id: str, parent_id: str,
                       outcome: Callable[[Run], tuple[str, str]]) -> None:
    """End every RUNNING child run of the sweep with the ``(status, end_reason)`` that ``outcome`` gives it."""
    running = client.search_runs(
        [exp_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}' AND attributes.status = 'RUNNING'"
    )
    for run in running:
        status, reason = outcome(run)
        client.set_tag(run.info.run_id, END_REASON_TAG, reason)
        client.set_terminated(run.info.run_id, status=status)


def close_child_runs(client: MlflowClient, exp_id: str, parent_id: str, results, interrupted: bool,
                     stopped: Collection[str] = ()) -> None:
    """Close the runs of trials that never reached their own ``finish``.

    A trial's run is still RUNNING when Tune stopped it: a scheduler (ASHA, a budget's rung) ended it early, or a
    signal cut the sweep short (``interrupted``). Both end KILLED, tagged with why, so none is left RUNNING;
    ``--resume`` reopens the interrupted ones. Whether the sweep was interrupted comes from the signal, not from Tune's
    trial states: on its way out Tune marks the trials it cut off TERMINATED like the finished ones. ``stopped``: the
    trial ids a scheduler is known to have stopped (a budget's rungs keep them), which stay stopped early even when a
    signal came later: Tune will not resume them, so "interrupted" would be their last word.
    """
    failed = {r.metrics.get("trial_id") for r in results if r.error is not None and r.metrics}

    def outcome(run: Run) -> tuple[str, str]:
        trial = run.data.tags.get(TRIAL_TAG)
        if trial in failed and not interrupted:
            return "FAILED", "failed"
        return ("KILLED", INTERRUPTED) if interrupted and trial not in stopped else ("KILLED", STOPPED_EARLY)

    close_running_runs(client, exp_id, parent_id, outcome)


def report_and_keep(report: Callable[[], None], client: MlflowClient, parent_id: str) -> None:
    """Print the sweep's table as ``report`` does, and keep the same text as its parent run's ``table.md``."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            report()
    finally:
        print(printed.getvalue(), end="")
    client.log_text(parent_id, printed.getvalue(), REPORT_ARTIFACT)
