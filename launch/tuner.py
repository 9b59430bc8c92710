"""Running one sweep: the checks before Ray (``launch/checks.py``), a local Ray or the cluster's, the MLflow parent
run, one Tuner (new or restored with ``--resume``), and the clean-up that leaves no MLflow run RUNNING.

A sweep script is a short record: its presets, its search space and a call to :func:`run_sweep`. Run settings (where
Ray, the storage and MLflow are; GPUs per trial; resuming) come from flags or the environment, never from the search
space, so they never show up as hyperparameters in MLflow or Optuna.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import ray
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_SOURCE_NAME, MLFLOW_SOURCE_TYPE
from ray import tune

from launch.budget import with_budget
from launch.checks import check_sweeps
from launch.cluster import check_cluster_reachable
from launch.full_disk import FullDiskStop, check_room_to_start, full_disk_message, stopped_by_full_disk
from launch.mlflow_runs import INTERRUPTED, close_child_runs, close_running_runs, parent_run, report_and_keep
from launch.mlflow_view import publish_view, ui_links, view_columns
from launch.overrides import with_overrides
from launch.progress import closing_lines, output_options, tune_output, without_token_auth_notice
from launch.resume import check_resumable, recorded_settings, set_aside_unreadable_state
from launch.space import with_absolute_datasets
from launch.stop_signals import INTERRUPTED_EXIT, StopSignals
from launch.stores import create_stores
from launch.sweep import Sweep
from launch.unreadable import FailUnreadableOnce, failed_lines
from runstore.uri import SQLITE, absolute_tracking_uri, resolve_tracking_uri
from trainables.config import RunSettings, git_commit
from trainables.tracking import SWEEP_TAG, experiment_id


def absolute_storage_path(path: str) -> str:
    return path if "://" in path else str(Path(path).resolve())


@dataclass(frozen=True)
class Where:
    """Where one sweep invocation keeps its state: Tune's storage and folder, and the MLflow store."""

    name: str
    storage: str
    tracking_uri: str

    @property
    def sweep_dir(self) -> str:
        return f"{self.storage.rstrip('/')}/{self.name}"

    def start_folders(self, local_ray: bool) -> dict[str, str]:
        """The local folders a sweep writes from its start, each with what moves it elsewhere: Tune's storage, the
        SQLite store's folder and, for a Ray this sweep starts, Ray's temp folder."""
        moved_by: dict[str, list[str]] = {}
        if "://" not in self.storage:
            moved_by.setdefault(self.storage, []).append("--storage-path")
        if self.tracking_uri.startswith(SQLITE):
            moved_by.setdefault(str(Path(self.tracking_uri.removeprefix(SQLITE)).parent), []).append("--tracking-uri")
        if local_ray:
            moved_by.setdefault(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir(), []).append("RAY_TMPDIR")
        return {folder: " and ".join(flags) for folder, flags in moved_by.items()}

    def state_saved_since(self, since: float) -> bool:
        """Whether Tune wrote the sweep's experiment state at or after ``since`` (a time.time()); unknown, so False,
        for a bucket."""
        if "://" in self.storage:
            return False
        return any(state.stat().st_mtime >= since for state in Path(self.sweep_dir).glob("experiment_state-*.json"))

    def written_folders(self) -> list[str]:
        """The local folders the sweep writes to, which a full disk stops (a bucket never fills)."""
        written = [self.storage] if "://" not in self.storage else []
        if self.tracking_uri.startswith(SQLITE):
            written.append(str(Path(self.tracking_uri.removeprefix(SQLITE)).parent))
        return written


@dataclass(frozen=True)
class Outcome:
    """What :func:`_fit` hands back: Tune's results, whether a signal cut the sweep short, the UI's links and the
    parent run's id."""

    results: tune.ResultGrid
    interrupted: bool
    ui: str
    parent_id: str


def run_sweep(sweep: Sweep, args: argparse.Namespace, name: str, report: Callable[[], None] | None = None,
              next_steps: Sequence[str] = ()):
    """Start or resume the sweep ``name`` on a local Ray or the cluster at ``--address``; returns Tune's ResultGrid.

    ``report`` prints the sweep's table (from MLflow) once its trials are done; then come where the runs and the
    weights are and ``next_steps``, the commands that print the sweep's other tables and figures (repository-relative
    script and arguments, see :func:`launch.progress.closing_lines`). Failed trials make the command exit non-zero
    after that, so a script or CI notices. With ``--dry-run`` it prints the plan and returns None.
    """
    if getattr(args, "restart_unreadable", False) and not args.resume:
        raise SystemExit("error: --restart-unreadable continues a sweep: add --resume --name NAME of that sweep")
    sweep = with_overrides(sweep, args)  # --set first: every check and the MLflow runs see its values
    sweep = replace(sweep, param_space=with_absolute_datasets(sweep.param_space))
    sweep = with_budget(sweep, args)  # its rungs are each trial's rung_epochs, which the checks validate
    if check_sweeps({name: sweep}, args):
        return None
    where = Where(name, absolute_storage_path(args.storage_path), absolute_tracking_uri(args.tracking_uri))
    if not args.resume and "://" not in where.storage and Path(where.sweep_dir).exists():
        raise SystemExit(f"error: {where.sweep_dir} exists: pass --resume to continue that sweep, or --name for a "
                         "new one")
    if args.resume:
        check_resumable(sweep, args, name, where.storage, where.tracking_uri)
    check_room_to_start(where.start_folders(local_ray=args.address is None and not ray.is_initialized()))
    create_stores(args, optuna_study=sweep.search_alg is not None)  # once nothing is left to refuse
    if callable(sweep.search_alg):
        sweep = replace(sweep, search_alg=sweep.search_alg())

    # A caller that already runs Ray (a notebook, the tests) keeps its session; otherwise this sweep owns one.
    owns_ray = not ray.is_initialized()
    if owns_ray:
        # No --address: start a local Ray, as the flag says, rather than join whatever cluster this machine last
        # started; only then is Ray's notice that it protected that cluster with a token to be left out.
        with without_token_auth_notice() if args.address is None else nullcontext():
            ray.init(address=args.address or "local", include_dashboard=False, log_to_driver=False)
    # After ray.init: it installs its own SIGTERM handler in this process, which would end it on the spot.
    with StopSignals() as stop:
        try:
            check_cluster_reachable(where.tracking_uri, where.storage)
            outcome = _fit(sweep, args, where, stop)
        except KeyboardInterrupt:
            # Before the sweep's MLflow run existed (later ones _fit turns into INTERRUPTED_EXIT): nothing to resume.
            print(f"\nStopped ({stop.received or 'SIGINT'}) before the sweep started: run the same command again",
                  file=sys.stderr)
            raise SystemExit(128 + signal.Signals[stop.received or "SIGINT"]) from None
        finally:
            if owns_ray:
                ray.shutdown()
    if report is not None and not outcome.interrupted:
        print()  # after the progress lines
        report_and_keep(report, MlflowClient(where.tracking_uri), outcome.parent_id)
    # The analysis commands read the same default store from the same directory; another one must be named.
    flags = "" if args.tracking_uri == resolve_tracking_uri() else f"--tracking-uri {args.tracking_uri}"
    steps = () if outcome.interrupted else next_steps
    print("\n" + "\n".join(closing_lines(outcome.ui, where.tracking_uri, steps, flags)))
    if outcome.interrupted:
        raise SystemExit(INTERRUPTED_EXIT)
    if outcome.results.errors:
        raise SystemExit(failed_lines(outcome.results.errors, name))
    return outcome.results


def _tuner(sweep: Sweep, args: argparse.Namespace, where: Where, trainable, client: MlflowClient, exp_id: str,
           parent_id: str, disk_guard: FullDiskStop) -> tune.Tuner:
    """A new Tuner, or with ``--resume`` the sweep's own one restored from its Tune folder."""
    output = output_options(args.verbose, sweep.name_keys, sweep.size())
    output["callbacks"] += [disk_guard, FailUnreadableOnce()]
    if args.resume:
        set_aside_unreadable_state(where.sweep_dir)
        if tune.Tuner.can_restore(where.sweep_dir):
            # The search space goes in again: Tune stores tune.sample_from entries as placeholders it cannot rebuild.
            return tune.Tuner.restore(where.sweep_dir, trainable, resume_unfinished=True, resume_errored=True,
                                      param_space=sweep.param_space)
        # The sweep's Tune state was lost (driver killed before Tune first saved it): Tune starts afresh with new
        # trial ids, so nothing will ever reopen the runs left RUNNING.
        close_running_runs(client, exp_id, parent_id, lambda run: ("KILLED", "orphaned"))
    return tune.Tuner(
        trainable,
        param_space=sweep.param_space,
        tune_config=tune.TuneConfig(
            metric=sweep.metric, mode=sweep.mode, num_samples=sweep.num_samples, search_alg=sweep.search_alg,
            scheduler=sweep.scheduler, max_concurrent_trials=args.concurrency or None,
            # A trial's worker runs the next trial: no new Python, torch and MLflow per trial. The runtime resets
            # what a trial leaves in its process (trainables.training.start_as_fresh_worker).
            reuse_actors=not args.fresh_workers,
        ),
        run_config=tune.RunConfig(
            name=where.name, storage_path=where.storage,
            failure_config=tune.FailureConfig(max_failures=args.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            stop=disk_guard,
            **output,
        ),
    )


def _fit(sweep: Sweep, args: argparse.Namespace, where: Where, stop: StopSignals) -> Outcome:
    """The MLflow parent run around one Tuner. Interrupted before or after the fit itself (a second signal), it
    closes the runs and exits with :data:`INTERRUPTED_EXIT`."""
    client = MlflowClient(where.tracking_uri)
    exp_id = experiment_id(client, sweep.family)
    commit = git_commit()
    # MLflow's own tags for where a run came from (the UI's Source and Version columns), on the parent and every trial.
    source = {MLFLOW_GIT_COMMIT: commit, MLFLOW_SOURCE_NAME: Path(sys.argv[0]).name, MLFLOW_SOURCE_TYPE: "LOCAL"}
    parent_id = parent_run(client, exp_id, where.name, args.resume,
                           {"git_commit": commit, "storage": where.sweep_dir, **recorded_settings(args, sweep),
                            **source, **sweep.tags})
    # From here on the parent run is closed whatever happens, a failure while the Tuner is built included.
    status = "FAILED"
    resume_line = f"\nInterrupted ({{}}): continue with the same command plus --resume --name {where.name}"
    started_ms = int(time.time() * 1000)
    written = where.written_folders()
    try:
        try:
            view = publish_view(client, exp_id, where.name, view_columns(sweep.name_keys, sweep.param_space))
            settings = RunSettings(tracking_uri=where.tracking_uri, experiment=sweep.family, data_root=args.data_root,
                                   parent_run_id=parent_id, name_keys=sweep.name_keys, git_commit=commit,
                                   tags={**sweep.tags, **source, SWEEP_TAG: where.name},
                                   restart_unreadable=getattr(args, "restart_unreadable", False))
            gpus = args.gpus_per_trial
            if gpus is None:
                gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
            trainable = tune.with_resources(tune.with_parameters(sweep.trainable, settings=settings),
                                            {"cpu": args.cpus_per_trial, "gpu": gpus})
            disk_guard = FullDiskStop(written)
            tuner = _tuner(sweep, args, where, trainable, client, exp_id, parent_id, disk_guard)

            def close_interrupted() -> None:  # what the end of a signalled fit does, for a fit stuck in Ray
                close_running_runs(client, exp_id, parent_id, lambda run: ("KILLED", INTERRUPTED))
                client.set_terminated(parent_id, status="KILLED")
                print(resume_line.format(stop.received))

            with tune_output(args.verbose), stop.graceful(where.state_saved_since, close_interrupted):
                results = tuner.fit()
        except Exception:
            if not stopped_by_full_disk(client, exp_id, parent_id, written, True, started_ms):
                raise
            # Tune itself may fail to read the error files it could not write.
            raise SystemExit(full_disk_message(written, where.name)) from None
        if stopped_by_full_disk(client, exp_id, parent_id, written, bool(results.errors), started_ms):
            raise SystemExit(full_disk_message(written, where.name))
        interrupted = stop.received is not None
        close_child_runs(client, exp_id, parent_id, results, interrupted, getattr(sweep.scheduler, "cut", ()))
        status = "KILLED" if interrupted else "FAILED" if results.errors else "FINISHED"
        if interrupted:
            print(resume_line.format(stop.received))
    except KeyboardInterrupt:
        close_running_runs(client, exp_id, parent_id, lambda run: ("KILLED", INTERRUPTED))
        status = "KILLED"
        print(resume_line.format(stop.received or "SIGINT"), file=sys.stderr)
        raise SystemExit(INTERRUPTED_EXIT) from None
    finally:
        client.set_terminated(parent_id, status=status)
    links = ui_links(where.tracking_uri, exp_id, view)
    return Outcome(results, interrupted, f"{links['table']}\n      charts: {links['charts']}", parent_id)
