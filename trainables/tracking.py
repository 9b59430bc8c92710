"""MLflow logging from inside a trial: one run per trial, reopened (never duplicated) after a restart.

Why not Ray's ``MLflowLoggerCallback``: after ``Tuner.restore`` it opens a second run per trial and leaves the first
RUNNING, logs ``config/*`` junk and no git commit. Here the trial owns its run: the run id travels in the checkpoint,
and a trial restarted before its first checkpoint finds its run again by its Tune trial id under the sweep's parent.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mlflow.pytorch
import torch
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT
from torch import nn

# Experiments tagged like this open in the MLflow UI's classic runs table, not its GenAI (traces) view.
EXPERIMENT_KIND_TAG = {"mlflow.experimentKind": "custom_model_development"}
# A trial run's link to its sweep's parent run. Not MLflow's own ``mlflow.parentRunId``: with it, the UI folds every
# trial under a collapsed parent row, and a table of trials (the point of a sweep) takes clicks to see.
PARENT_TAG = "sweep_run_id"
# The sweep's name, on its parent run and on every trial run (so filtering on it in the UI finds the trials).
SWEEP_TAG = "sweep"
TRIAL_TAG = "trial_id"  # only trial runs have it: it tells them from their sweep's parent run
END_REASON_TAG = "end_reason"  # why the sweep, not the trial, ended a run: interrupted, stopped_early, failed, ...
DISK_FULL = "disk_full"  # the end_reason of a run that failed because a disk it writes to is full
# What a full disk looks like in an error: OSError ENOSPC's text, and SQLite's own wording.
FULL_DISK_ERRORS = ("No space left on device", "database or disk is full")
EPOCH_METRIC = "epoch"  # logged with every epoch's batch: its steps are the epochs a run holds
# A budgeted sweep's rung: the selection metric after a rung epoch (TrainConfig.rung_epochs), what its scheduler
# ranks (launch/budget.py) and what a table shows for a trial stopped there.
RUNG_SCORE = "rung/score"
STOPPED_EARLY = "stopped_early"  # the end_reason of a run a budgeted sweep's scheduler stopped at a rung
NODE_TAG = "ray_node_id"  # the Ray node of the trial's latest attempt
# A trial's selected weights (a state_dict saved with torch.save), logged by methods that register them.
WEIGHTS_ARTIFACT = "weights.pt"
MLMODEL_FILE = "MLmodel"  # the file that makes an artifact folder an MLflow model
CONFIG_ARTIFACT = "config.json"  # a trial's config at full precision (params show floats to 6 digits)
# Which final points each checkpoint got right under each attack: an npz of ``indices`` (int64, the points' positions
# in the test split, in evaluation order) and one bool array per metric (``best/clean``, ``last/pgd20``; AutoAttack's
# covers the first entries of ``indices`` only). A re-evaluation's metrics get a file each under the same folder
# (:meth:`TrialRun.log_metric_points`). runstore/points.py reads both; two runs on the same points can then be
# compared point by point (a paired test) without evaluating again.
POINTS_ARTIFACT = "per_point/final.npz"


def experiment_id(client: MlflowClient, name: str) -> str:
    """Get or create an experiment by name (races between concurrent trials are resolved by re-reading)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, tags=EXPERIMENT_KIND_TAG)
    except MlflowException:
        return client.get_experiment_by_name(name).experiment_id


def dataset_input(name: str, context: str) -> DatasetInput:
    """A dataset by its registry name as an MLflow run input; ``context`` says its role ("train", "auxiliary")."""
    source = json.dumps({"dataset": name})
    digest = hashlib.sha256(source.encode()).hexdigest()[:8]
    return DatasetInput(Dataset(name=name, digest=digest, source_type="advsweep", source=source),
                        tags=[InputTag(key=MLFLOW_DATASET_CONTEXT, value=context)])


def log_datasets(client: MlflowClient, run_id: str, inputs: list[DatasetInput], tries: int = 3) -> None:
    """``client.log_inputs`` that survives two trials logging the same new dataset at once: MLflow's SQL store looks
    for the dataset row, then inserts it, so the second insert fails on the unique key (seen with concurrent trials
    on a fresh store; the trial then failed and was retried by Tune). A second try finds the row and links it."""
    for attempt in range(tries):
        try:
            client.log_inputs(run_id, datasets=inputs)
            return
        except MlflowException as exc:
            if "UNIQUE constraint failed" not in str(exc) or attempt == tries - 1:
                raise


def sweep_parent_filter(sweep: str | None = None) -> str:
    """The MLflow search filter that finds a sweep's parent run (its trials carry the same ``sweep`` tag), or with no
    ``sweep`` the parent runs of every sweep. ``runstore.reader.parent_filter`` is the same filter for the code that
    may read the store (trainables may not import runstore); a test holds the two equal."""
    name = "LIKE '%'" if sweep is None else f"= '{sweep}'"
    return f"tags.{SWEEP_TAG} {name} AND tags.{TRIAL_TAG} IS NULL"


def failure_reason(error: BaseException | None) -> str:
    """The ``end_reason`` of a run its trial ended with ``error``: :data:`DISK_FULL` when it or a cause of it (a
    wrapped OSError from torch.save or an upload) is a full disk, else ``failed``."""
    while error is not None:
        if any(text in str(error) for text in FULL_DISK_ERRORS):
            return DISK_FULL
        error = error.__cause__ or error.__context__
    return "failed"


def find_trial_run(client: MlflowClient, exp_id: str, trial_id: str, parent_run_id: str | None) -> str | None:
    query = f"tags.{TRIAL_TAG} = '{trial_id}'"
    if parent_run_id:
        query += f" AND tags.`{PARENT_TAG}` = '{parent_run_id}'"
    runs = client.search_runs([exp_id], filter_string=query, max_results=1)
    return runs[0].info.run_id if runs else None


UNREADABLE = "unreadable_checkpoints"  # end_reason of a trial's run whose checkpoints can no longer be read
REPLACED_BY_TAG = "replaced_by"  # on that run, once the trial is trained again from epoch 0: the new run's id


def retire_trial_run(tracking_uri: str, experiment: str, trial_id: str, parent_run_id: str | None,
                     replaced_by: str | None = None) -> None:
    """Close the run of a trial none of whose checkpoints can be read: FAILED, ``end_reason`` :data:`UNREADABLE`.
    With ``replaced_by`` (the trial is trained again from epoch 0 in a run of its own) the old run is also deleted
    (MLflow's soft delete: ``mlflow runs restore --run-id ...`` brings it back), so that the sweep's tables and views
    hold the trial once, and the new run is never mixed with the damaged one's epochs."""
    client = MlflowClient(tracking_uri)
    run_id = find_trial_run(client, experiment_id(client, experiment), trial_id, parent_run_id)
    if run_id is None:
        return
    client.set_tag(run_id, END_REASON_TAG, UNREADABLE)
    client.set_terminated(run_id, status="FAILED")
    if replaced_by is not None:
        client.set_tag(run_id, REPLACED_BY_TAG, replaced_by)
        client.delete_run(run_id)


class TrialRun:
    """The MLflow run of one trial. Params are written once, at creation; metrics go out in one batch per epoch."""

    def __init__(self, client: MlflowClient, run_id: str, logged_steps: set[int] | None = None) -> None:
        self.client = client
        self.run_id = run_id
        # Epochs a reopened run already holds. A trial resumes from its last checkpoint that Tune recorded, which can
        # be older than the last epoch it logged (the driver died between the two, or a later checkpoint was
        # unreadable); it trains those epochs again from the same saved state and RNG, so their points are already
        # there and are not logged twice.
        self.logged_steps = logged_steps or set()

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
        config: Mapping[str, Any] | None = None,
        datasets: Sequence[tuple[str, str]] = (),
    ) -> TrialRun:
        """Reopen the trial's run (by ``run_id``, else by its Tune trial id under the parent) or create it with its
        params, tags, the exact ``config`` as the artifact ``config.json``, and ``datasets`` as ``(name, context)``
        inputs (the UI's Dataset column)."""
        client = MlflowClient(tracking_uri)
        exp_id = experiment_id(client, experiment)
        if run_id is None and trial_id is not None:
            run_id = find_trial_run(client, exp_id, trial_id, parent_run_id)
        if run_id is not None:
            client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
            # Why the sweep closed it last time (interrupted, stopped early) no longer holds once it runs again.
            if END_REASON_TAG in client.get_run(run_id).data.tags:
                client.delete_tag(run_id, END_REASON_TAG)
            logged = {metric.step for metric in client.get_metric_history(run_id, EPOCH_METRIC)}
            return cls(client, run_id, logged)
        all_tags = dict(tags)
        if trial_id is not None:
            all_tags[TRIAL_TAG] = trial_id
        if parent_run_id:
            all_tags[PARENT_TAG] = parent_run_id
        run = client.create_run(exp_id, run_name=run_name, tags=all_tags)
        client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
        if config is not None:
            client.log_dict(run.info.run_id, dict(config), CONFIG_ARTIFACT)
        if datasets:
            log_datasets(client, run.info.run_id, [dataset_input(name, context) for name, context in datasets])
        return cls(client, run.info.run_id)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """One batch of points at ``step``; a step the run already held when it was reopened is skipped."""
        if step in self.logged_steps:
            return
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

    def log_model(self, model: nn.Module, name: str) -> None:
        """Log ``model`` as an MLflow model in the run's artifact folder ``name``, so that
        ``mlflow.pytorch.load_model("runs:/<run_id>/<name>")`` returns it (or :func:`load_model`). A restarted trial
        overwrites it.

        Why not ``mlflow.pytorch.log_model``: in MLflow 3 it creates a LoggedModel in the fluent API's active
        experiment (the Default one when, as here, no fluent run is active) and reads the global tracking URI; a
        model saved into the run's own artifacts needs neither. Pickled, not MLflow 3's default ``pt2`` graph export:
        that keeps the object itself (every head, ``model(x, head="aux")``, train/eval switching), and loading imports
        its classes from this project. The requirements are given, since inferring them re-loads the model in a
        subprocess.
        """
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / name
            mlflow.pytorch.save_model(model, path, serialization_format="pickle",
                                      pip_requirements=mlflow.pytorch.get_default_pip_requirements())
            self.client.log_artifacts(self.run_id, str(path), artifact_path=name)

    def log_points(self, points: Mapping[str, torch.Tensor], indices: torch.Tensor) -> None:
        """Log the per-point results of the final protocol as :data:`POINTS_ARTIFACT` (compressed: a few kB for
        10,000 points and a dozen metrics). A restarted trial overwrites them."""
        self._log_npz(POINTS_ARTIFACT, indices=indices, **points)

    def log_metric_points(self, metric: str, indices: torch.Tensor, correct: torch.Tensor) -> None:
        """Log which points (positions in the test split) one metric got right, as ``per_point/<metric>.npz``
        (``per_point/reeval/best/pgd50/eps8_255/n1000.npz``). Logging the same metric again overwrites it."""
        self._log_npz(f"{Path(POINTS_ARTIFACT).parent}/{metric}.npz", indices=indices, correct=correct)

    def _log_npz(self, artifact: str, indices: torch.Tensor, **correct: torch.Tensor) -> None:
        import numpy as np

        arrays = {name: value.numpy().astype(bool) for name, value in correct.items()}
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / Path(artifact).name
            np.savez_compressed(path, indices=indices.numpy().astype(np.int64), **arrays)
            self.client.log_artifact(self.run_id, str(path), artifact_path=str(Path(artifact).parent))

    def log_artifacts(self, folder: str, artifact_path: str) -> None:
        """Every file of ``folder`` into the run's artifact folder ``artifact_path``."""
        self.client.log_artifacts(self.run_id, folder, artifact_path=artifact_path)

    def log_text(self, text: str, path: str) -> None:
        """``text`` as the run's artifact file ``path`` (a folder in it may be named: ``gate_counts/epoch_0001.csv``)."""
        self.client.log_text(self.run_id, text, path)

    def set_tag(self, key: str, value: str) -> None:
        self.client.set_tag(self.run_id, key, value)

    def finish(self, status: str = "FINISHED", reason: str | None = None) -> None:
        if reason is not None:
            self.client.set_tag(self.run_id, END_REASON_TAG, reason)
        self.client.set_terminated(self.run_id, status=status)


def download_weights(client: MlflowClient, run_id: str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The weights a run logged with :meth:`TrialRun.log_weights`."""
    with tempfile.TemporaryDirectory() as directory:
        path = client.download_artifacts(run_id, WEIGHTS_ARTIFACT, directory)
        return torch.load(path, map_location=map_location, weights_only=True)


def load_model(client: MlflowClient, run_id: str, name: str, map_location: str | torch.device = "cpu") -> nn.Module:
    """The model a run logged with :meth:`TrialRun.log_model`, in eval mode: what
    ``mlflow.pytorch.load_model("runs:/<run_id>/<name>")`` returns, read through ``client``'s tracking URI."""
    with tempfile.TemporaryDirectory() as directory:
        path = client.download_artifacts(run_id, name, directory)
        return mlflow.pytorch.load_model(path, map_location=map_location)


def has_model(client: MlflowClient, run_id: str, name: str) -> bool:
    """Whether the run logged a model ``name`` (runs trained before trials logged their models have none)."""
    return any(f.path == f"{name}/{MLMODEL_FILE}" for f in client.list_artifacts(run_id, name))


def _mlflow_key(key: str) -> str:
    # MLflow keys allow "/" (grouped in the UI) but not every character Tune metrics may carry.
    return key.replace(":", "_").replace("@", "_at_")
