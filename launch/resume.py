"""``--resume``: continue a sweep that exists, with the settings it was started with."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from launch.overrides import OVERRIDES_TAG
from launch.sweep import Sweep
from runstore.reader import SWEEP_TAG, TRIALS_TAG, parent_filter
from runstore.uri import missing_sqlite_store
from trainables.config import git_commit

BUDGET_TAG = "budget"  # "0.25 schedule": the budget and its rung placement


def recorded_settings(args: argparse.Namespace, sweep: Sweep) -> dict[str, str]:
    """What a sweep's parent run records of the flags that shape its trials, so that ``--resume`` can hold a later
    command to them: the preset, the seeds, the number of trials (``--num-samples``, a script's own flags) and the
    ``--set`` values (the tag ``overrides``, recorded only where some were given)."""
    plan = getattr(sweep.scheduler, "plan", None)  # a budgeted sweep's (launch/budget.py)
    return {"preset": str(args.preset), "seeds": str(getattr(args, "seeds", 1)), TRIALS_TAG: str(sweep.size()),
            **({OVERRIDES_TAG: sweep.tags[OVERRIDES_TAG]} if OVERRIDES_TAG in sweep.tags else {}),
            **({BUDGET_TAG: f"{plan.budget:.4g} {plan.placement}"} if plan is not None else {})}


def check_resumable(sweep: Sweep, args: argparse.Namespace, name: str, storage: str, tracking_uri: str) -> None:
    """``--resume`` continues a sweep that exists (its Tune folder or its MLflow parent run) with the settings it was
    started with; otherwise it stops here, before Ray starts and before anything is written: a name that never ran
    lists the sweeps that did, and a changed setting is named."""
    local = "://" not in storage
    parents: dict[str, Run] = {}
    if not missing_sqlite_store(tracking_uri):
        client = MlflowClient(tracking_uri)
        experiment = client.get_experiment_by_name(sweep.family)
        if experiment is not None:
            found = client.search_runs([experiment.experiment_id], max_results=1000,
                                       filter_string=parent_filter())
            parents = {run.data.tags[SWEEP_TAG]: run for run in found}
    if name in parents:
        check_same_settings(name, parents[name].data.tags, recorded_settings(args, sweep),
                            getattr(args, "allow_code_change", False))
        return
    if local and Path(storage, name).exists():
        return
    in_storage = {p.name for p in Path(storage).iterdir() if p.is_dir()} if local and Path(storage).is_dir() else set()
    known = ", ".join(sorted(set(parents) | in_storage)) or "none"
    raise SystemExit(f"error: --resume: there is no sweep {name!r} (MLflow experiment {sweep.family!r} in "
                     f"{tracking_uri}, Tune storage {storage}); sweeps there: {known}. Pass --name of one of them, or "
                     "leave out --resume to start this one")


# How each recorded setting is given on the command line, for the refusal's message.
_AS_FLAGS = {"preset": "--preset {}", "seeds": "--seeds {}", TRIALS_TAG: "{} trials", OVERRIDES_TAG: "--set {}",
             BUDGET_TAG: "--budget {}"}
# Settings whose absence is a value (no --set, no --budget), compared even where one side does not record them.
_ABSENT_IS_NONE = (OVERRIDES_TAG, BUDGET_TAG)


def check_same_settings(name: str, recorded: Mapping[str, str], now: Mapping[str, str], allow_code_change: bool
                        ) -> None:
    """Refuse a ``--resume`` whose settings differ from those the sweep recorded when it started (a sweep from
    before they were recorded is held to what it has), and one from another commit unless ``allow_code_change``."""
    def shown(key: str, value: str | None) -> str:
        if key in _ABSENT_IS_NONE and not value:
            return "no " + _AS_FLAGS[key].split()[0]
        if key == BUDGET_TAG:
            budget, placement = value.split()
            return f"--budget {budget} --rungs {placement}"
        return _AS_FLAGS[key].format(" --set ".join(value.split(",")) if key == OVERRIDES_TAG else value)

    keys = [key for key in _AS_FLAGS if key in now or key in _ABSENT_IS_NONE]
    changed = [f"it was started with {shown(key, recorded.get(key))}, this command gives {shown(key, now.get(key))}"
               for key in keys
               if (key in recorded or key in _ABSENT_IS_NONE) and recorded.get(key, "") != now.get(key, "")]
    if changed:
        raise SystemExit(f"error: --resume --name {name}: {'; '.join(changed)}. A sweep continues with the settings "
                         "it was started with: repeat its command with --resume, or start a new sweep with --name")
    started_at, here = recorded.get("git_commit", "unknown"), git_commit()
    if "unknown" not in (started_at, here) and started_at != here and not allow_code_change:
        raise SystemExit(f"error: --resume --name {name}: the sweep was started at commit {started_at[:12]}, this "
                         f"checkout is at {here[:12]}: check out {started_at[:12]} to continue it with the same code, "
                         "or pass --allow-code-change to continue it with this code (each trial run records the "
                         "commit it ran at)")
