"""What every sweep script shares once its command line is parsed (``launch/cli.py``): validation before Ray starts,
the MLflow parent run, one Tuner (new or restored), and the clean-up that leaves no MLflow run RUNNING.

A sweep script is a short record: its presets, its search space and a call to :func:`run_sweep`. Run settings (where
Ray, the storage and MLflow are; GPUs per trial; resuming) come from flags or the environment, never from the search
space, so they never show up as hyperparameters in MLflow or Optuna.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from launch.cli import absolute_tracking_uri
from launch.full_disk import FullDiskStop, low_space
from launch.stop_signals import INTERRUPTED_EXIT, StopSignals
from trainables.config import ConfigError, RunSettings, TrainConfig, git_commit
from trainables.datasets import DatasetNotFoundError, absolute_dataset_name, check_dataset
from trainables.tracking import (
    DISK_FULL,
    END_REASON_TAG,
    PARENT_TAG,
    SWEEP_TAG,
    TRIAL_TAG,
    experiment_id,
    sweep_parent_filter,
)

REPORT_ARTIFACT = "table.md"  # what the sweep printed at its end, kept with its parent run
INTERRUPTED = "interrupted"  # end_reason of the runs a signal cut short; --resume reopens them


def missing_sqlite_store(tracking_uri: str) -> bool:
    """Whether ``tracking_uri`` (absolute, :func:`absolute_tracking_uri`) is a SQLite store not created yet: reading it
    would create it."""
    prefix = "sqlite:///"
    return tracking_uri.startswith(prefix) and not Path(tracking_uri[len(prefix):]).exists()


def absolute_storage_path(path: str) -> str:
    return path if "://" in path else str(Path(path).resolve())


def grid_points(space: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every configuration of a search space for validation: grid values expanded, sampled domains at both ends,
    and values that depend on others (``tune.sample_from``, see :func:`per_value`) resolved last."""
    from ray.tune.search.sample import Categorical, Domain, Function

    axes: dict[str, list[Any]] = {}
    derived: dict[str, Function] = {}
    for key, value in space.items():
        if isinstance(value, dict) and set(value) == {"grid_search"}:
            axes[key] = list(value["grid_search"])
        elif isinstance(value, Function):
            derived[key] = value
        elif isinstance(value, Categorical):
            axes[key] = list(value.categories)
        elif isinstance(value, Domain):
            axes[key] = [value.lower, value.upper]
        else:
            axes[key] = [value]
    for combo in itertools.product(*axes.values()):
        point = dict(zip(axes, combo))
        yield point | {key: function.func(point) for key, function in derived.items()}


def per_value(key: str, table: Mapping[Any, Mapping[str, Any]]) -> dict[str, Any]:
    """Hyperparameters that follow a grid axis, e.g. the model and schedule of each BiaMAT variant.

    Returns one ``tune.sample_from`` entry per field, so every trial's config stays a flat dict of typed values (what
    MLflow logs and the analysis groups by) instead of a nested per-variant dict.
    """
    from ray import tune

    fields = {field for values in table.values() for field in values}
    return {field: tune.sample_from(lambda config, field=field: table[config[key]][field]) for field in sorted(fields)}


def no_extra_datasets(cfg: TrainConfig) -> tuple[str, ...]:
    return ()


def trial_configs(config_cls: type[TrainConfig], space: Mapping[str, Any]) -> list[TrainConfig]:
    """The config of every point of ``space`` (:func:`grid_points`); a bad value exits with the reason."""
    try:
        return [config_cls.from_dict(point) for point in grid_points(space)]
    except ConfigError as exc:
        raise SystemExit(f"error: {exc}") from None


def validate(config_cls: type[TrainConfig], space: Mapping[str, Any], data_root: str | None,
             extra_datasets: Callable[[TrainConfig], Sequence[str]] = no_extra_datasets,
             notes: list[str] | None = None) -> list[TrainConfig]:
    """Reject bad hyperparameters and missing data before Ray starts (raises SystemExit with the reason); returns
    the configs of :func:`trial_configs`. With ``notes``, a missing dataset is added there instead: a dry run plans a
    sweep before its data is downloaded."""
    configs = trial_configs(config_cls, space)
    checked: set[tuple[str, bool]] = set()
    for cfg in configs:
        # extra_data (generated images mixed into the batches) is a dataset of every method's config.
        for name in (cfg.dataset, *extra_datasets(cfg), *([cfg.extra_data] if cfg.extra_data else [])):
            primary = name == cfg.dataset
            if (name, primary) in checked:
                continue
            checked.add((name, primary))
            try:
                # The primary set's test split too: a user's single .npz holds a train split only.
                check_dataset(name, root=data_root, splits=("train", "test") if primary else None)
            except DatasetNotFoundError as exc:
                if notes is None:
                    raise SystemExit(f"error: {exc}") from None
                notes.append(f"dataset {name} is not under {data_root or './data'}: {exc}")
            except ValueError as exc:  # DatasetInvalidError: files present but wrong, which a dry run must say too
                raise SystemExit(f"error: {exc}") from None
    return configs


DATASET_KEYS = ("dataset", "aux_datasets", "extra_data")


def with_absolute_datasets(space: Mapping[str, Any]) -> dict[str, Any]:
    """The search space with every ``npz:``/``folder:`` path made absolute: Ray runs each trial in another directory,
    where a path relative to the one the sweep started from would name nothing."""

    def absolute(value: Any) -> Any:
        if isinstance(value, str):
            return absolute_dataset_name(value)
        if isinstance(value, list | tuple):
            return type(value)(absolute(v) for v in value)
        if isinstance(value, dict) and set(value) == {"grid_search"}:  # tune.grid_search
            return {"grid_search": [absolute(v) for v in value["grid_search"]]}
        return value

    return {key: absolute(value) if key in DATASET_KEYS else value for key, value in space.items()}


@dataclass
class Sweep:
    """One Tune experiment: a trainable, its search space, and how to search it."""

    family: str  # MLflow experiment: one per sweep family (e.g. "biamat-pi-ablation")
    trainable: Callable[..., None]
    param_space: dict[str, Any]
    name_keys: tuple[str, ...]  # config keys that name each trial's run in the MLflow UI
    metric: str | None = None
    mode: str | None = None
    num_samples: int = 1
    # A Tune searcher, or a function that builds it once the checks have passed: opening an Optuna study creates
    # its storage, which a dry run or a refused sweep must not.
    search_alg: Any = None
    scheduler: Any = None
    tags: dict[str, str] = field(default_factory=dict)
    # The trials' config class, validated (with the datasets it names) before Ray starts; None for a sweep whose
    # trainable checks its own config (the tests' ad-hoc trainables).
    config_cls: type[TrainConfig] | None = None
    extra_datasets: Callable[[TrainConfig], Sequence[str]] = no_extra_datasets

    def size(self) -> int:
        """How many trials the sweep runs: every grid combination ``num_samples`` times."""
        combos = 1
        for value in self.param_space.values():
            if isinstance(value, dict) and set(value) == {"grid_search"}:
                combos *= len(value["grid_search"])
        return combos * self.num_samples


def parent_run(client: MlflowClient, exp_id: str, name: str, resume: bool, tags: Mapping[str, str]) -> str:
    """The sweep invocation's MLflow parent run; ``--resume`` reopens it instead of creating a second one."""
    found = client.search_runs([exp_id], filter_string=sweep_parent_filter(name), max_results=1)
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


def close_child_runs(client: MlflowClient, exp_id: str, parent_id: str, results, interrupted: bool) -> None:
    """Close the runs of trials that never reached their own ``finish``.

    A trial's run is still RUNNING when Tune stopped it: a scheduler (ASHA) ended it early, or a signal cut the sweep
    short (``interrupted``). Both end KILLED, tagged with why, so none is left RUNNING; ``--resume`` reopens the
    interrupted ones. Whether the sweep was interrupted comes from the signal, not from Tune's trial states: on its way
    out Tune marks the trials it cut off TERMINATED like the finished ones.
    """
    failed = {r.metrics.get("trial_id") for r in results if r.error is not None and r.metrics}

    def outcome(run: Run) -> tuple[str, str]:
        if run.data.tags.get(TRIAL_TAG) in failed and not interrupted:
            return "FAILED", "failed"
        return ("KILLED", INTERRUPTED) if interrupted else ("KILLED", "stopped_early")

    close_running_runs(client, exp_id, parent_id, outcome)


def stopped_by_full_disk(client: MlflowClient, exp_id: str, parent_id: str, written: Sequence[str],
                         failures: bool, since_ms: int) -> bool:
    """Whether the sweep ended on a full disk: a trial's run ended for that reason since ``since_ms`` (this
    invocation), or it had ``failures`` and a folder it writes to is nearly full. If so, its runs still open and its
    parent are closed as failed for that reason."""
    failed_on_it = client.search_runs([exp_id], max_results=1, filter_string=(
        f"tags.`{PARENT_TAG}` = '{parent_id}' AND tags.{END_REASON_TAG} = '{DISK_FULL}' "
        f"AND attributes.end_time >= {since_ms}"))
    if not failed_on_it and not (failures and low_space(written)):
        return False
    close_running_runs(client, exp_id, parent_id, lambda run: ("FAILED", DISK_FULL))
    client.set_tag(parent_id, END_REASON_TAG, DISK_FULL)
    return True


def full_disk_message(written: Sequence[str], name: str) -> str:
    where = low_space(written) or "a trial's node has no space left (its error file says where)"
    return (f"error: the sweep stopped on a full disk: {where}. Free space (old sweeps' Tune folders, MLflow "
            f"artifacts), then continue with the same command plus --resume --name {name}")


def set_aside_unreadable_state(sweep_dir: str) -> None:
    """If the newest of Tune's files that record the sweep (the experiment state, the searcher's and the callbacks'
    states) do not load, as when written on a full disk, set the experiment states aside: the sweep then starts
    afresh (``_fit``) rather than Tune restarting it by itself under new trial ids, with its old runs left open."""
    import cloudpickle

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


def check_cluster_reachable(tracking_uri: str, storage: str | None = None) -> None:
    """Refuse, before any trial starts, a tracking store that trials on other machines cannot reach (``storage``:
    Tune's, for a sweep; None for work without checkpoints, such as ``sweeps/reevaluate.py``).

    Trials log to MLflow from whichever node runs them. On one machine (also a ``ray.cluster_utils.Cluster``, whose
    nodes share this machine's address) a SQLite file works; once a node has another address it needs the MLflow
    server. A local storage folder works only if it is a shared mount (NFS), which cannot be told from here.
    """
    import ray

    here = ray.util.get_node_ip_address()
    elsewhere = sorted({node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"]} - {here})
    if not elsewhere:
        return
    server = f"http://{here}:5000"
    if tracking_uri.startswith("sqlite:"):
        raise SystemExit(f"error: --tracking-uri {tracking_uri} is a file on this machine, but trials also run on "
                         f"{', '.join(elsewhere)}: pass the MLflow server's address (cluster.yaml starts one at "
                         f"{server}) or set MLFLOW_TRACKING_URI")
    if urlparse(tracking_uri).hostname in {"localhost", "127.0.0.1", "::1"}:
        raise SystemExit(f"error: --tracking-uri {tracking_uri} names this machine by its loopback address, which "
                         f"other nodes cannot reach: use this machine's address, e.g. {server}")
    if storage is not None and "://" not in storage:
        print(f"note: --storage-path {storage} is a local folder; on a multi-machine cluster it must be a shared "
              "mount, otherwise use s3://... or gs://... (cluster.yaml sets ADVSWEEP_STORAGE to the bucket)")


def check_sweeps(sweeps: Mapping[str, Sweep], args: argparse.Namespace) -> bool:
    """What happens before Ray starts: every trial of every sweep validated, and with ``--dry-run`` the sweeps'
    plans printed instead of run, or else the run settings checked and the stores created (launch/preflight.py).
    Returns whether it was a dry run (then there is nothing more to do)."""
    from launch.dry_run import print_plans  # it imports this module
    from launch.preflight import check_run_settings

    notes: list[str] | None = [] if args.dry_run else None
    configs = {name: validate(sweep.config_cls, sweep.param_space, args.data_root, sweep.extra_datasets, notes)
               if sweep.config_cls else [] for name, sweep in sweeps.items()}
    if args.dry_run:
        print_plans(sweeps, configs, list(dict.fromkeys(notes)))  # sweeps on the same data note it once
    else:  # a dry run starts nothing and writes nothing
        check_run_settings(args, optuna_study=any(sweep.search_alg is not None for sweep in sweeps.values()))
    return args.dry_run


def run_sweep(sweep: Sweep, args: argparse.Namespace, name: str, report: Callable[[], None] | None = None,
              next_steps: Sequence[str] = ()):
    """Start or resume the sweep ``name`` on a local Ray or the cluster at ``--address``; returns Tune's ResultGrid.

    ``report`` prints the sweep's table (from MLflow) once its trials are done; then come where the runs and the
    weights are and ``next_steps``, the commands that print the sweep's other tables and figures (repository-relative
    script and arguments, see :func:`launch.progress.closing_lines`). Failed trials make the command exit non-zero
    after that, so a script or CI notices. With ``--dry-run`` it prints the plan and returns None.
    """
    from launch.overrides import with_overrides  # --set first: every check and the MLflow runs see its values

    sweep = with_overrides(sweep, args)
    sweep = replace(sweep, param_space=with_absolute_datasets(sweep.param_space))
    if check_sweeps({name: sweep}, args):
        return None
    if callable(sweep.search_alg):
        sweep = replace(sweep, search_alg=sweep.search_alg())
    import ray

    storage = absolute_storage_path(args.storage_path)
    tracking_uri = absolute_tracking_uri(args.tracking_uri)
    sweep_dir = f"{storage.rstrip('/')}/{name}"
    if not args.resume and "://" not in storage and Path(sweep_dir).exists():
        raise SystemExit(f"error: {sweep_dir} exists: pass --resume to continue that sweep, or --name for a new one")
    if args.resume:
        check_resumable(sweep.family, name, storage, tracking_uri)

    # A caller that already runs Ray (a notebook, the tests) keeps its session; otherwise this sweep owns one.
    owns_ray = not ray.is_initialized()
    if owns_ray:
        from launch.progress import without_token_auth_notice

        # No --address: start a local Ray, as the flag says, rather than join whatever cluster this machine last
        # started; only then is Ray's notice that it protected that cluster with a token to be left out.
        with without_token_auth_notice() if args.address is None else nullcontext():
            ray.init(address=args.address or "local", include_dashboard=False, log_to_driver=False)
    # After ray.init: it installs its own SIGTERM handler in this process, which would end it on the spot.
    with StopSignals() as stop:
        try:
            check_cluster_reachable(tracking_uri, storage)
            results, interrupted, ui, parent_id = _fit(sweep, args, name, storage, tracking_uri, sweep_dir, stop)
        except KeyboardInterrupt:
            # Before the sweep's MLflow run existed (later ones _fit turns into INTERRUPTED_EXIT): nothing to resume.
            print(f"\nStopped ({stop.received or 'SIGINT'}) before the sweep started: run the same command again",
                  file=sys.stderr)
            raise SystemExit(128 + signal.Signals[stop.received or "SIGINT"]) from None
        finally:
            if owns_ray:
                ray.shutdown()
    if report is not None and not interrupted:
        print()  # after the progress lines
        report_and_keep(report, MlflowClient(tracking_uri), parent_id)
    from analysis.runs import resolve_tracking_uri
    from launch.progress import closing_lines

    # The analysis commands read the same default store from the same directory; another one must be named.
    flags = "" if args.tracking_uri == resolve_tracking_uri() else f"--tracking-uri {args.tracking_uri}"
    print("\n" + "\n".join(closing_lines(ui, tracking_uri, () if interrupted else next_steps, flags)))
    if interrupted:
        raise SystemExit(INTERRUPTED_EXIT)
    if results.errors:
        raise SystemExit(f"error: {len(results.errors)} trial(s) failed (their error files are listed above); "
                         f"fix the cause and continue with --resume --name {name}")
    return results


def report_and_keep(report: Callable[[], None], client: MlflowClient, parent_id: str) -> None:
    """Print the sweep's table as ``report`` does, and keep the same text as its parent run's ``table.md``."""
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            report()
    finally:
        print(printed.getvalue(), end="")
    client.log_text(parent_id, printed.getvalue(), REPORT_ARTIFACT)


def _fit(sweep: Sweep, args: argparse.Namespace, name: str, storage: str, tracking_uri: str, sweep_dir: str,
         stop: StopSignals):
    """The MLflow parent run around one Tuner (new, or restored with ``--resume``); returns the results, whether
    the sweep was interrupted (``stop``: by SIGINT or SIGTERM), the MLflow UI's links to its runs and its parent run's
    id. Interrupted before or after the fit itself (a second signal), it closes the runs and exits with
    :data:`INTERRUPTED_EXIT`."""
    import ray
    from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_SOURCE_NAME, MLFLOW_SOURCE_TYPE
    from ray import tune

    from launch.mlflow_view import publish_view, ui_links, view_columns
    from launch.progress import output_options, tune_output

    client = MlflowClient(tracking_uri)
    exp_id = experiment_id(client, sweep.family)
    commit = git_commit()
    # MLflow's own tags for where a run came from (the UI's Source and Version columns), on the parent and every trial.
    source = {MLFLOW_GIT_COMMIT: commit, MLFLOW_SOURCE_NAME: Path(sys.argv[0]).name, MLFLOW_SOURCE_TYPE: "LOCAL"}
    parent_id = parent_run(client, exp_id, name, args.resume,
                           {"git_commit": commit, "preset": args.preset, "storage": sweep_dir,
                            "trials": str(sweep.size()), **source, **sweep.tags})
    view = publish_view(client, exp_id, name, *view_columns(sweep.name_keys, sweep.param_space))
    settings = RunSettings(tracking_uri=tracking_uri, experiment=sweep.family, data_root=args.data_root,
                           parent_run_id=parent_id, name_keys=sweep.name_keys, git_commit=commit,
                           tags={**sweep.tags, **source, SWEEP_TAG: name})
    gpus = args.gpus_per_trial
    if gpus is None:
        gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
    trainable = tune.with_resources(tune.with_parameters(sweep.trainable, settings=settings),
                                    {"cpu": args.cpus_per_trial, "gpu": gpus})
    written = [storage] if "://" not in storage else []
    if tracking_uri.startswith("sqlite:///"):
        written.append(str(Path(tracking_uri.removeprefix("sqlite:///")).parent))
    disk_guard = FullDiskStop(written)
    output = output_options(args.verbose, sweep.name_keys, sweep.size())
    output["callbacks"].append(disk_guard)
    if args.resume:
        set_aside_unreadable_state(sweep_dir)
    if args.resume and tune.Tuner.can_restore(sweep_dir):
        # The search space goes in again: Tune stores tune.sample_from entries as placeholders it cannot rebuild.
        tuner = tune.Tuner.restore(sweep_dir, trainable, resume_unfinished=True, resume_errored=True,
                                   param_space=sweep.param_space)
    else:
        if args.resume:
            # The sweep's Tune state was lost (driver killed before Tune first saved it): Tune starts afresh with new
            # trial ids, so nothing will ever reopen the runs left RUNNING.
            close_running_runs(client, exp_id, parent_id, lambda run: ("KILLED", "orphaned"))
        tuner = tune.Tuner(
            trainable,
            param_space=sweep.param_space,
            tune_config=tune.TuneConfig(
                metric=sweep.metric, mode=sweep.mode, num_samples=sweep.num_samples, search_alg=sweep.search_alg,
                scheduler=sweep.scheduler, max_concurrent_trials=args.concurrency or None,
            ),
            run_config=tune.RunConfig(
                name=name, storage_path=storage,
                failure_config=tune.FailureConfig(max_failures=args.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                stop=disk_guard,
                **output,
            ),
        )
    status = "FAILED"
    resume_line = f"\nInterrupted ({{}}): continue with the same command plus --resume --name {name}"
    started_ms = int(time.time() * 1000)
    try:
        try:
            with tune_output(args.verbose), stop.graceful():
                results = tuner.fit()
        except Exception:
            if not stopped_by_full_disk(client, exp_id, parent_id, written, True, started_ms):
                raise
            # Tune itself may fail to read the error files it could not write.
            raise SystemExit(full_disk_message(written, name)) from None
        if stopped_by_full_disk(client, exp_id, parent_id, written, bool(results.errors), started_ms):
            raise SystemExit(full_disk_message(written, name))
        interrupted = stop.received is not None
        close_child_runs(client, exp_id, parent_id, results, interrupted)
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
    links = ui_links(tracking_uri, exp_id, view)
    return results, interrupted, f"{links['table']}\n      charts: {links['charts']}", parent_id
