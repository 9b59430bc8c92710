"""What happens before Ray starts: every trial's config and data validated, then either the dry run's plan or the
run settings checked (``launch/preflight.py``).

Cheap checks first: every config of every sweep is validated before anything heavy is imported (the config classes
and the search spaces need neither torch nor Ray nor MLflow), so a bad value is refused at once; the datasets' files
(torch, for data on disk), then the plan or the run settings (the stores are opened through SQLAlchemy and
MLflow only where they must be) come after.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from launch.space import grid_points
from launch.sweep import Sweep, no_extra_datasets
from trainables.config import ConfigError, TrainConfig
from trainables.dataset_names import base_name, is_builtin, test_split_of


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
    the configs of :func:`trial_configs`. With ``notes``, a missing dataset is added there instead, in the words that
    stop a run: a dry run plans a sweep before its data is downloaded."""
    configs = trial_configs(config_cls, space)
    check_data(configs, data_root, extra_datasets, notes)
    return configs


def check_data(configs: Sequence[TrainConfig], data_root: str | None,
               extra_datasets: Callable[[TrainConfig], Sequence[str]] = no_extra_datasets,
               notes: list[str] | None = None) -> None:
    """Every dataset the trials read, checked on disk (:func:`trainables.datasets.check_dataset`): a missing one
    raises SystemExit, or with ``notes`` is noted there; a present one in the wrong format raises SystemExit."""
    reads: dict[tuple[str, tuple[str, ...] | None], None] = {}
    for cfg in configs:
        # What a trial reads: the primary set's train split, the test split of test_data or else the primary set's
        # own (a user's single .npz holds a train split only), the method's other sets and extra_data.
        reads[(cfg.dataset, ("train",) if cfg.test_data else ("train", "test"))] = None
        if cfg.test_data:
            reads[(cfg.test_data, (test_split_of(cfg.test_data),))] = None
        for name in (*extra_datasets(cfg), *([cfg.extra_data] if cfg.extra_data else [])):
            reads[(name, None)] = None
    # Built-in sets have no files; a set's parts (cifar10:A+B) are its files, checked once.
    on_disk = list(dict.fromkeys((base_name(name), splits) for name, splits in reads if not is_builtin(name)))
    if not on_disk:
        return
    from trainables.datasets import DatasetNotFoundError, check_dataset  # the readers import torch

    for name, splits in on_disk:
        try:
            check_dataset(name, root=data_root, splits=splits)
        except DatasetNotFoundError as exc:
            if notes is None:
                raise SystemExit(f"error: {exc}") from None
            # A dry run plans a sweep before its data is there, and says in the real run's words what stops it.
            notes.append(f"a run would stop here until the data is there: error: {exc}")
        except ValueError as exc:  # DatasetInvalidError: files present but wrong, which a dry run must say too
            raise SystemExit(f"error: {exc}") from None


def check_sweeps(sweeps: Mapping[str, Sweep], args: argparse.Namespace) -> bool:
    """What happens before Ray starts: every trial of every sweep validated, and with ``--dry-run`` the sweeps'
    plans printed instead of run, or else the run settings checked (launch/preflight.py).
    Returns whether it was a dry run (then there is nothing more to do)."""
    notes: list[str] | None = [] if args.dry_run else None
    configs = {name: trial_configs(sweep.config_cls, sweep.param_space) if sweep.config_cls else []
               for name, sweep in sweeps.items()}
    for name, sweep in sweeps.items():
        check_data(configs[name], args.data_root, sweep.extra_datasets, notes)
    if args.dry_run:
        from launch.dry_run import measured_agreement, print_plans
        from launch.mlflow_view import view_columns

        views = {name: view_columns(sweep.name_keys, sweep.param_space) for name, sweep in sweeps.items()}
        measured = {name: measured_agreement(args, name, view.metrics[-1], view.chart_x) for name, view in views.items()}
        print_plans(sweeps, configs, list(dict.fromkeys(notes)), measured)  # sweeps on the same data note it once
    else:  # a dry run starts nothing and writes nothing
        from launch.preflight import check_run_settings

        check_run_settings(args, optuna_study=any(sweep.search_alg is not None for sweep in sweeps.values()))
        sources = {cfg.init_from for found in configs.values() for cfg in found if cfg.init_from}
        if sources:  # after the store's own check: the runs are looked up there
            from launch.preflight import check_initial_weights

            check_initial_weights(sources, args.tracking_uri)
    return args.dry_run
