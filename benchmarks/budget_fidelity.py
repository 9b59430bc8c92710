"""How often a budgeted ablation (``--budget``, launch/budget.py) ranks its rows as the full grid does, and what it
saves: full grids trained on the built-in synthetic data, then every budgeted policy replayed on their learning
curves.

    python benchmarks/budget_fidelity.py                      # BiaMAT pi and UIAT lambda, 3 repeats each
    python benchmarks/budget_fidelity.py --ablations pi --repeats 1 --out /tmp/fidelity.csv   # a quicker look

Each repeat trains one full grid (every row to its last epoch, its selection score evaluated after every epoch, a
new training seed and selection draw per repeat) and reads from MLflow each row's curve of ``select/pgdK`` and its
final ``best/pgd20``. A policy is then replayed on those curves with the scheduler object itself: a trial's curve does
not depend on whether the others were stopped, so the replay sees what a live sweep would, and the cost is counted
in trial-epochs. The only thing a replay chooses is the order in which trials report: lockstep (every trial's epoch
e before any trial's epoch e + 1, as on a cluster with a GPU per trial). The synchronous rungs of launch/rungs.py do
not depend on it; Tune's ASHA and the median rule do.

Policies, at each budget 1/2, 1/4, 1/8 of the grid's trial-epochs:

- ``schedule``: ``--budget F`` (the default rungs: one rung right after the first LR decay, or as late as F allows);
- ``epochs``: ``--budget F --rungs epochs`` (ASHA's rungs g, 3g, 9g, ..., synchronous);
- ``tune-asha``: Tune's own ``ASHAScheduler`` (``--asha``) on the epochs plan's grace period and reduction factor 3,
  which decides each trial as it arrives;
- ``median``: Tune's ``MedianStoppingRule`` from the schedule plan's rung on (it has no budget: its cost is what it is).

Per policy and budget it prints the cost (trial-epochs trained over the full grid's), Kendall's tau between the
budgeted ranking (finished rows by their final accuracy, then stopped rows by how far they got and their last score)
and the full grid's, and how often the full grid's best row trained to the end, over repeats. A budget the grid's
rows and epochs cannot meet (keeping one row at the earliest rung costs more) is printed as such.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUDGETS = (1 / 2, 1 / 4, 1 / 8)
POLICIES = ("schedule", "epochs", "tune-asha", "median")
# The noise floor: the full grid against the full grid of the next repeat (another training seed and draw of
# selection and test points). No early-stopping policy can be told apart from the full grid by more than this.
REFERENCE = "full grid, next seed"
EVALUATION = {"eval_n": 256, "final_n": 512}
# The ablations: a finer grid than the smoke presets' (more rows to rank) and more, shorter epochs, so that a rung
# can sit anywhere in the schedule; 512 final test points and 256 selection points, so that a row's number moves by
# about 2 (final) and 3 (rung) points of accuracy between draws rather than 4 and 6. Each keeps its preset's method
# settings.
ABLATIONS: dict[str, dict[str, Any]] = {
    "pi": {"script": "pi_ablation", "row": "pi", "values": [0.15, 0.25, 0.35, 0.45, 0.55, 0.6, 0.65, 0.7],
           "fixed": {"variant": "at"},
           "set": {"epochs": 16, "train_n": 256, "warmup_epochs": 1, "lr_milestones": [0.5, 0.75], **EVALUATION}},
    "lambda": {"script": "uiat_lambda", "row": "lam", "values": [0.5, 1.0, 2.0, 3.0, 3.5, 4.0, 5.0, 6.0],
               "fixed": {}, "set": {"epochs": 16, "train_n": 256, "oneoff_epoch": 2, **EVALUATION}},
}
CURVE, FINAL = "select/pgd{steps}", "best/pgd20"


@dataclass(frozen=True)
class Grid:
    """One full grid's record: each row's selection score after every 1-based epoch, and its final accuracy."""

    curves: dict[float, dict[int, float]]
    final: dict[float, float]
    config: Any  # one trial's TrainConfig: epochs, schedule, warm-up


def train_grid(ablation: str, repeat: int, folder: Path) -> Grid:
    """Train the full grid of ``ablation`` once (repeat ``repeat``: its seed) and read it back from MLflow."""
    import importlib

    from ray import tune

    from launch.cli import run_parser
    from launch.run import run_sweep
    from launch.sweep import Sweep, no_extra_datasets
    from runstore.reader import load_sweep

    spec = ABLATIONS[ablation]
    script = importlib.import_module(f"sweeps.{spec['script']}")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    args = run_parser("", ["smoke"]).parse_args(["--tracking-uri", uri, "--storage-path", str(folder / "ray")])
    space = {**script.search_space("smoke", 1), **spec["fixed"], **spec["set"], "eval_every": 1, "eval_from": 1,
             "seed": repeat, "subset_seed": repeat, spec["row"]: tune.grid_search(spec["values"])}
    method = "biamat" if ablation == "pi" else "uiat"
    name = f"fidelity-{ablation}-{repeat}"
    sweep = Sweep.of(method, family="budget-fidelity", param_space=space, name_keys=(spec["row"],),
                     extra_datasets=(lambda cfg: cfg.aux_datasets) if method == "biamat" else no_extra_datasets)
    run_sweep(sweep, args, name)
    runs = load_sweep(name, tracking_uri=uri)
    from launch.checks import trial_configs

    config = trial_configs(sweep.config_cls, {**space, spec["row"]: spec["values"][0]})[0]
    curve = CURVE.format(steps=config.attack_steps)
    curves: dict[float, dict[int, float]] = {}
    final: dict[float, float] = {}
    for _, run in runs.runs.iterrows():
        row = float(run[f"params.{spec['row']}"])
        history = runs.history(curve, [run["run_id"]])
        curves[row] = {int(step) + 1: value for step, value in zip(history["step"], history["value"])}
        final[row] = float(run[f"metrics.{FINAL}"])
    return Grid(curves, final, config)


class _Trial:
    """What a scheduler reads of a trial."""

    def __init__(self, trial_id: str, config: dict) -> None:
        self.trial_id, self.config, self.status, self.is_saving = trial_id, config, "RUNNING", False
        self.last_result: dict = {}

    def __repr__(self) -> str:
        return self.trial_id


class _Controller:
    """What a scheduler asks of Tune's controller, for a replay."""

    def __init__(self, scheduler: Any, trials: list[_Trial]) -> None:
        self.scheduler, self.trials = scheduler, trials

    def get_trials(self) -> list[_Trial]:
        return self.trials

    def get_live_trials(self) -> list[_Trial]:
        return [t for t in self.trials if t.status != "TERMINATED"]

    def stop_trial(self, trial: _Trial) -> None:
        if trial.status in ("PENDING", "PAUSED"):
            self.scheduler.on_trial_remove(self, trial)
        trial.status = "TERMINATED"


def replay(grid: Grid, scheduler: Any, rungs: set[int] = frozenset(), seed: int = 0) -> dict[float, int]:
    """The epochs each row trains under ``scheduler``: reports in lockstep, in a seeded random order within each epoch
    (live, whichever trial is quicker reports first; a tie at a rung goes to the first), ``rung/score`` at
    ``rungs``."""
    import random

    from ray.tune.schedulers import TrialScheduler

    from trainables.tracking import EPOCH_METRIC, RUNG_SCORE

    rows = sorted(grid.curves)
    trials = [_Trial(str(row), {"row": row}) for row in rows]
    controller = _Controller(scheduler, trials)
    for trial in trials:
        scheduler.on_trial_add(controller, trial)
    trained = dict.fromkeys(rows, 0)
    epochs = grid.config.epochs
    while any(t.status != "TERMINATED" for t in trials):
        # The paused trials a rung released run again, as Tune's choose_trial_to_run would start them.
        for trial in trials:
            if trial.status == "PAUSED" and trial.trial_id in getattr(scheduler, "released", ()):
                trial.status = "RUNNING"
        running = random.Random(f"{seed}-{sum(trained.values())}").sample(
            [t for t in trials if t.status == "RUNNING"], k=sum(t.status == "RUNNING" for t in trials))
        if not running:
            raise RuntimeError(f"replay stalled: every live trial waits ({scheduler.debug_string()})")
        for trial in running:
            row = trial.config["row"]
            epoch = trained[row] + 1
            trained[row] = epoch
            score = grid.curves[row][epoch]
            result = {EPOCH_METRIC: epoch - 1, "training_iteration": epoch, "score": score,
                      **({RUNG_SCORE: score} if epoch in rungs else {})}
            action = scheduler.on_trial_result(controller, trial, result)
            if epoch == epochs or action == TrialScheduler.STOP:
                if trial.status != "TERMINATED":
                    trial.status = "TERMINATED"
                    scheduler.on_trial_complete(controller, trial, result)
            elif action == TrialScheduler.PAUSE:
                trial.status = "PAUSED"
    return trained


def policy_scheduler(policy: str, grid: Grid, budget: float) -> tuple[Any, set[int]] | str:
    """The scheduler of ``policy`` at ``budget`` and the rungs its trials report at, or why the budget cannot be met."""
    from ray.tune.schedulers import ASHAScheduler, MedianStoppingRule

    from launch.budget import ASHA_REDUCTION, plan_group
    from launch.rungs import RungScheduler, group_of
    from trainables.config import ConfigError

    rows = len(grid.curves)
    placement = "epochs" if policy in ("epochs", "tune-asha") else "schedule"
    try:
        plan = plan_group("all rows", rows, grid.config, budget, placement)
    except ConfigError as exc:
        return str(exc).split(": ", 1)[-1]
    group = group_of({}, ())
    if policy in ("schedule", "epochs"):
        return RungScheduler((), None, {group: plan.rungs}, {group: plan.reduction}, {group: rows}), set(plan.rungs)
    if policy == "tune-asha":
        return ASHAScheduler(time_attr="training_iteration", metric="score", mode="max", max_t=grid.config.epochs,
                             grace_period=plan.rungs[0], reduction_factor=ASHA_REDUCTION), set()
    return MedianStoppingRule(time_attr="training_iteration", metric="score", mode="max",
                              grace_period=plan.rungs[0], min_samples_required=3), set()


def ranking(grid: Grid, trained: dict[float, int]) -> list[float]:
    """Rows best first: those that trained to the end by final accuracy, then the others by epochs and last score."""
    def key(row: float) -> tuple[bool, float, float]:
        if trained[row] == grid.config.epochs:
            return True, grid.final[row], 0.0
        return False, trained[row], grid.curves[row][trained[row]]

    return sorted(grid.curves, key=key, reverse=True)


def measure(grids: list[Grid], policy: str, budget: float) -> dict[str, Any]:
    """Cost, Kendall's tau and best-row survival of one policy at one budget, over the repeats' grids."""
    from scipy.stats import kendalltau

    costs, taus, survived = [], [], []
    for repeat, grid in enumerate(grids):
        full = sorted(grid.final, key=grid.final.get, reverse=True)
        if policy == REFERENCE:  # the next repeat's full grid, "best survives": it has the same best row
            other = grids[(repeat + 1) % len(grids)]
            budgeted, trained = sorted(other.final, key=other.final.get, reverse=True), None
        else:
            built = policy_scheduler(policy, grid, budget)
            if isinstance(built, str):
                return {"cost": None, "tau": None, "tau_min": None, "best_survives": None, "note": built}
            trained = replay(grid, *built, seed=repeat)
            budgeted = ranking(grid, trained)
        costs.append(1.0 if trained is None else sum(trained.values()) / (len(trained) * grid.config.epochs))
        taus.append(kendalltau([full.index(r) for r in grid.final], [budgeted.index(r) for r in grid.final])[0])
        survived.append(budgeted[0] == full[0] if trained is None else trained[full[0]] == grid.config.epochs)
    return {"cost": sum(costs) / len(costs), "tau": sum(taus) / len(taus), "tau_min": min(taus),
            "best_survives": sum(survived) / len(survived), "note": ""}


def machine() -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                            check=False).stdout
    return f"{commit.strip() or 'unknown'} on {platform.machine()}, {os.cpu_count()} CPUs"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ablations", nargs="+", choices=list(ABLATIONS), default=list(ABLATIONS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "budget_fidelity.csv")
    args = parser.parse_args(argv)
    header = ["ablation", "budget", "policy", "cost", "tau", "tau_min", "best_survives", "repeats", "note", "commit"]
    rows: list[list[Any]] = []
    for ablation in args.ablations:
        with tempfile.TemporaryDirectory() as folder:
            grids = [train_grid(ablation, repeat, Path(folder)) for repeat in range(args.repeats)]
        for budget, policy in [(1.0, REFERENCE), *((b, p) for b in BUDGETS for p in POLICIES)]:
            found = measure(grids, policy, budget)
            rows.append([ablation, f"{budget:.3g}", policy, *(_cell(found[key]) for key in
                         ("cost", "tau", "tau_min", "best_survives")), args.repeats, found["note"], machine()])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 2)]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)))
    print(f"\nwritten to {args.out} ({machine()})")


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


if __name__ == "__main__":
    main()
