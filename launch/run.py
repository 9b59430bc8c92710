"""Running a script's sweeps: everything before Ray, MLflow and the training code load (``--set``, dataset paths,
``--budget``'s rungs and the checks of ``launch/checks.py``), then each sweep's Tuner (``launch/tuner.py``).

Nothing heavy is imported here: a bad flag or value is refused in a fraction of a second after the arguments are
parsed, and the sweeps' own imports (torch, Ray, MLflow) load only for a sweep that will run.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from launch.checks import check_sweeps
from launch.overrides import with_overrides, with_overrides_each
from launch.space import with_absolute_datasets
from launch.sweep import Sweep
from launch.where import Where


def prepare_sweeps(sweeps: Mapping[str, Sweep], args: argparse.Namespace,
                   before_checks: Callable[[dict[str, Sweep]], None] | None = None,
                   ) -> tuple[dict[str, Sweep], argparse.Namespace] | None:
    """A script's sweeps made ready to run, every one checked before the first starts: ``--set`` applied (in a
    multi-sweep script each key to the sweeps that have it), dataset paths made absolute, ``--budget``'s rungs set,
    then ``before_checks`` (a script's own check of the sweeps as they will run), then every trial validated
    (launch/checks.py). Returns the sweeps, marked prepared so that :func:`run_sweep` does not apply the flags again,
    and the arguments to run them with; None after a dry run, which only prints the plans. A refusal exits with the
    reason."""
    if getattr(args, "restart_unreadable", False) and not args.resume:
        raise SystemExit("error: --restart-unreadable continues a sweep: add --resume --name NAME of that sweep")
    if len(sweeps) == 1:  # every key of --set to the one sweep, whose refusal names a misspelt key
        ready = {name: with_overrides(sweep, args) for name, sweep in sweeps.items()}
    else:
        ready, args = with_overrides_each(sweeps, args)
    ready = {name: replace(sweep, param_space=with_absolute_datasets(sweep.param_space))
             for name, sweep in ready.items()}
    if getattr(args, "budget", None) is not None or getattr(args, "budget_hours", None) is not None:
        from launch.budget import ranks_nothing, with_budget  # its rungs are each trial's rung_epochs, checked below

        # A script's helper sweep (one standard-training model per seed) has nothing a budget could stop: it runs
        # whole, and the script's other sweeps are budgeted.
        whole = {name for name, sweep in ready.items() if len(ready) > 1 and ranks_nothing(sweep)}
        for name in sorted(whole):
            print(f"note: --budget leaves sweep {name} whole: each of its groups has one row, so no trial of it "
                  "competes with another")
        ready = {name: sweep if name in whole else with_budget(sweep, args) for name, sweep in ready.items()}
    if before_checks is not None:
        before_checks(ready)
    if check_sweeps(ready, args):
        return None
    return {name: replace(sweep, prepared=True) for name, sweep in ready.items()}, args


def args_for_later_sweep(original: argparse.Namespace, prepared: argparse.Namespace,
                         derived: Collection[str]) -> argparse.Namespace:
    """The arguments for a sweep that a script builds from an earlier sweep's results, after :func:`prepare_sweeps`
    (which ``run_sweep`` then applies to it): the ``--set`` values that ``prepare_sweeps`` took out of ``original``
    put back, less the keys the script derives for that sweep (a ``--set`` of those is the earlier sweep's)."""
    overrides = [o for o in (getattr(original, "overrides", None) or []) if o.key not in derived]
    return argparse.Namespace(**{**vars(prepared), "overrides": overrides})


def run_sweep(sweep: Sweep, args: argparse.Namespace, name: str, report: Callable[[], None] | None = None,
              next_steps: Sequence[str] = ()):
    """Start or resume the sweep ``name`` on a local Ray or the cluster at ``--address``; returns Tune's ResultGrid.

    A sweep that :func:`prepare_sweeps` did not make ready is prepared here. ``report`` prints the sweep's table (from
    MLflow) once its trials are done; then come where the runs and the weights are and ``next_steps``, the commands
    that print the sweep's other tables and figures (repository-relative script and arguments, see
    :func:`launch.progress.closing_lines`). Failed trials make the command exit non-zero after that, so a script or
    CI notices. With ``--dry-run`` it prints the plan and returns None.
    """
    if not sweep.prepared:
        prepared = prepare_sweeps({name: sweep}, args)
        if prepared is None:
            return None
        sweep, args = prepared[0][name], prepared[1]
    where = Where.of(name, args)
    if not args.resume and "://" not in where.storage and Path(where.sweep_dir).exists():
        raise SystemExit(f"error: {where.sweep_dir} exists: pass --resume to continue that sweep, or --name for a "
                         "new one")
    if args.resume:
        from launch.resume import check_resumable  # reads the MLflow store (MLflow itself, not the trials' code)

        check_resumable(sweep, args, name, where.storage, where.tracking_uri)
    from launch.tuner import start_sweep  # Ray, MLflow and the trials' code, once nothing is left to refuse here

    return start_sweep(sweep, args, where, report, next_steps)
