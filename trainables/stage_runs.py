"""An earlier stage's finished trials, found in MLflow by its sweep's name: the one lookup of every method that consumes
another sweep's models (AFS's merger reads its extractor sweep, HAT its helper sweep).

A sweep is the parent run tagged ``sweep=<name>`` in its family's experiment; its trials are the runs that point to
that parent (``PARENT_TAG``). Only FINISHED trials count: a failed, interrupted or still running trial has no final
weights. Found through the tracking server alone, so a trial on any node finds them with no shared local path.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from trainables.tracking import PARENT_TAG, sweep_parent_filter


@dataclass(frozen=True)
class FinishedTrials:
    """The FINISHED trial runs of one sweep, newest first, and the sweep's preset (for the commands in errors)."""

    sweep: str
    experiment: str
    tracking_uri: str
    preset: str
    runs: list[Run]


def finished_trials(tracking_uri: str, experiment: str, sweep: str) -> FinishedTrials | None:
    """The finished trials of ``sweep`` in ``experiment``; None when the store holds no such sweep (the caller's error
    names the command that runs it)."""
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    parents = [] if found is None else client.search_runs(
        [found.experiment_id], filter_string=sweep_parent_filter(sweep), max_results=1
    )
    if not parents:
        return None
    children = client.search_runs(
        [found.experiment_id],
        filter_string=f"tags.`{PARENT_TAG}` = '{parents[0].info.run_id}' AND attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
    )
    return FinishedTrials(sweep, experiment, tracking_uri, parents[0].data.tags.get("preset", "<preset>"), children)
