"""Running one checked sweep (``launch/run.py`` checks it first): a local Ray or the cluster's, the MLflow parent run,
one Tuner (new or restored with ``--resume``), and the clean-up that leaves no MLflow run RUNNING.

A sweep script is a short record: its presets, its search space and a call to :func:`launch.run.run_sweep`. Run settings (where
Ray, the storage and MLflow are; GPUs per trial; resuming) come from flags or the environment, never from the search
space, so they never show up as hyperparameters in MLflow or Optuna.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import ray
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_SOURCE_NAME, MLFLOW_SOURCE_TYPE
from ray import tune

from launch.cluster import check_cluster_reachable
from launch.full_disk import FullDiskStop, check_room_to_start, full_disk_message, stopped_by_full_disk
from launch.mlflow_runs import INTERRUPTED, close_child_runs, close_running_runs, parent_run, report_and_keep
from launch.mlflow_view import publish_view, ui_links, view_columns
from launch.progress import closing_lines, output_options, tune_output, without_token_auth_notice
from launch.resume import recorded_settings
from launch.space import for_tune
from launch.stop_signals import INTERRUPTED_EXIT, StopSignals
from launch.stores import create_stores
from launch.sweep import Sweep
from launch.tune_record import set_aside_unreadable_state
from launch.unreadable import FailUnreadableOnce, failed_lines
from launch.where import Where
from runstore.uri import resolve_tracking_uri
from trainables.config import RunSettings, git_commit
from trainables.tracking import SWEEP_TAG, experiment_id


@dataclass(frozen=True)
class Outcome:
    """What :func:`_fit` hands back: Tune's results, whether a signal cut the sweep short, the UI's links and the
    parent run's id."""

    results: tune.ResultGrid
    interrupted: bool
    ui: str
    parent_id: str


def start_sweep(sweep: Sweep, args: argparse.Namespace, where: Where, report: Callable[[], None] | None,
                next_steps: Sequence[str]):
    """The part of :func:`launch.run.run_sweep` after the checks: the run settings' last refusals (those that read
    the MLflow store or the disk), the stores, Ray, the MLflow parent run and the Tuner; returns Tune's ResultGrid."""
    name = where.name
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
                                      param_space=for_tune(sweep.param_space))
        # The sweep's Tune state was lost (driver killed before Tune first saved it): Tune starts afresh with new
        # trial ids, so nothing will ever reopen the runs left RUNNING.
        close_running_runs(client, exp_id, parent_id, lambda run: ("KILLED", "orphaned"))
    return tune.Tuner(
        trainable,
        param_space=for_tune(sweep.param_space),
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
            trainable = tune.with_resources(tune.with_parameters(sweep.trial_function(), settings=settings),
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
