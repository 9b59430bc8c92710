"""MLflow logging from inside a trial: one run per trial, reopened (never duplicated) after a restart.

Why not Ray's ``MLflowLoggerCallback``: after ``Tuner.restore`` it opens a second run per trial and leaves the first
RUNNING, logs ``config/*`` junk and no git commit. Here the trial owns its run: the run id travels in the checkpoint,
and a trial restarted before its first checkpoint finds its run again by its Tune trial id under the sweep's parent.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from mlflow.entities import Metric, Param, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

# Experiments tagged like this open in the MLflow UI's classic runs table, not its GenAI (traces) view.
EXPERIMENT_KIND_TAG = {"mlflow.experimentKind": "custom_model_development"}
PARENT_TAG = "mlflow.parentRunId"
SWEEP_TAG = "sweep"  # the tag naming a sweep's parent run (written by sweeps/launcher.py, read by AFS's merger)
TRIAL_TAG = "trial_id"
NODE_TAG = "ray_node_id"  # the Ray node of the trial's latest attempt
# A trial's selected weights (a state_dict saved with torch.save), logged by methods that register them.
WEIGHTS_ARTIFACT = "weights.pt"


def experiment_id(client: MlflowClient, name: str) -> str:
    """Get or create an experiment by name (races between concurrent trials are resolved by re-reading)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, tags=EXPERIMENT_KIND_TAG)
    except MlflowException:
        return client.get_experiment_by_name(name).experiment_id


def find_trial_run(client: MlflowClient, exp_id: str, trial_id: str, parent_run_id: str | None) -> str | None:
    query = f"tags.{TRIAL_TAG} = '{trial_id}'"
    if parent_run_id:
        query += f" AND tags.`{PARENT_TAG}` = '{parent_run_id}'"
    runs = client.search_runs([exp_id], filter_string=query, max_results=1)
    return runs[0].info.run_id if runs else None


class TrialRun:
    """The MLflow run of one trial. Params are written once, at creation; metrics go out in one batch per epoch."""

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    @classmethod
    def open(
        cls,
        tracking_uri: str,
        experiment: str,
        *,
        run_name: str,
        params: Mapping[str, Any],
        tags: Mapping[str, str],
        trial_id: str | None,
        parent_run_id: str | None,
        run_id: str | None = None,
    ) -> TrialRun:
        client = MlflowClient(tracking_uri)
        exp_id = experiment_id(client, experiment)
        if run_id is None and trial_id is not None:
            run_id = find_trial_run(client, exp_id, trial_id, parent_run_id)
        if run_id is not None:
            client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
            return cls(client, run_id)
        all_tags = dict(tags)
        if trial_id is not None:
            all_tags[TRIAL_TAG] = trial_id
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id
        run = client.create_run(exp_id, run_name=run_name, tags=all_tags)
        client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
        return cls(client, run.info.run_id)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(_mlflow_key(k), float(v), now, step) for k, v in metrics.items()]
        # log_batch takes at most 1000 metrics per call.
        for start in range(0, len(batch), 1000):
            self.client.log_batch(self.run_id, metrics=batch[start : start + 1000])

    def log_weights(self, state_dict: Mapping[str, Any]) -> None:
        """Log weights as the run's :data:`WEIGHTS_ARTIFACT`. The run's artifact store decides where they land: the
        SQLite store's artifact root locally, the object store behind the tracking server on a cluster, so a trial on
        another node finds them (:func:`download_weights`). A restarted trial overwrites them."""
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / WEIGHTS_ARTIFACT
            torch.save(dict(state_dict), path)
            self.client.log_artifact(self.run_id, str(path))

    def set_tag(self, key: str, value: str) -> None:
        self.client.set_tag(self.run_id, key, value)

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)


def download_weights(client: MlflowClient, run_id: str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The weights a run logged with :meth:`TrialRun.log_weights`."""
    with tempfile.TemporaryDirectory() as directory:
        path = client.download_artifacts(run_id, WEIGHTS_ARTIFACT, directory)
        return torch.load(path, map_location=map_location, weights_only=True)


def _mlflow_key(key: str) -> str:
    # MLflow keys allow "/" (grouped in the UI) but not every character Tune metrics may carry.
    return key.replace(":", "_").replace("@", "_at_")
