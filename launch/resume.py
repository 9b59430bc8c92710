"""``--resume``: continue a sweep that exists, from Tune's record of it where that record is readable."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cloudpickle
from mlflow.tracking import MlflowClient

from runstore.uri import missing_sqlite_store
from trainables.tracking import SWEEP_TAG, sweep_parent_filter


def set_aside_unreadable_state(sweep_dir: str) -> None:
    """If the newest of Tune's files that record the sweep (the experiment state, the searcher's and the callbacks'
    states) do not load, as when written on a full disk, set the experiment states aside: the sweep then starts
    afresh (``_fit``) rather than Tune restarting it by itself under new trial ids, with its old runs left open."""
    if "://" in sweep_dir:
        return  # a bucket's objects are written whole or not at all
    folder = Path(sweep_dir)
    unreadable = []
    for pattern, load in (("experiment_state-*.json", json.loads), ("*.pkl", cloudpickle.loads)):
        newest = max(folder.glob(pattern), key=lambda path: path.stat().st_mtime, default=None)
        try:
            if newest is not None:
                load(newest.read_bytes())
        except Exception:  # noqa: BLE001 - a cut-off file fails in many ways (EOFError, UnpicklingError, ...)
            unreadable.append(newest.name)
    if unreadable:
        for state in folder.glob("experiment_state-*.json"):
            state.rename(state.with_suffix(".json.unreadable"))
        print(f"note: Tune's record of this sweep is unreadable ({', '.join(unreadable)}; written on a full disk?): "
              "the sweep starts again from epoch 0; the runs of the first attempt stay in MLflow as they were closed",
              file=sys.stderr)


def check_resumable(family: str, name: str, storage: str, tracking_uri: str) -> None:
    """``--resume`` continues a sweep that exists (its Tune folder or its MLflow parent run); otherwise it stops
    here, before Ray starts, and lists the sweeps that do, instead of starting a new sweep under that name."""
    local = "://" not in storage
    if local and Path(storage, name).exists():
        return
    in_mlflow: set[str] = set()
    if not missing_sqlite_store(tracking_uri):
        client = MlflowClient(tracking_uri)
        experiment = client.get_experiment_by_name(family)
        if experiment is not None:
            parents = client.search_runs([experiment.experiment_id], max_results=1000,
                                         filter_string=sweep_parent_filter())
            in_mlflow = {run.data.tags[SWEEP_TAG] for run in parents}
    if name in in_mlflow:
        return
    in_storage = {p.name for p in Path(storage).iterdir() if p.is_dir()} if local and Path(storage).is_dir() else set()
    known = ", ".join(sorted(in_mlflow | in_storage)) or "none"
    raise SystemExit(f"error: --resume: there is no sweep {name!r} (MLflow experiment {family!r} in {tracking_uri}, "
                     f"Tune storage {storage}); sweeps there: {known}. Pass --name of one of them, or leave out "
                     "--resume to start this one")
