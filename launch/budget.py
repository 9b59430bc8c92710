"""``--budget F`` (a fraction of the full grid's trial-epochs) or ``--budget-hours H``: a sweep run with successive
halving, its rungs placed by the method's schedule, and the full schedule for the trials that survive them.

The trials compete within the groups a table compares: those that share every swept value but the table's row key
and the seed (the pi ablation's two variants; a search's trials are one group). Per group, :func:`plan_group` turns
the budget into rungs (1-based epochs) and a reduction factor for :class:`launch.rungs.RungScheduler`:

- ``--rungs schedule`` (the default): one rung, right after the first LR decay (after the LR peak of a cyclic
  schedule), keeping as many trials as the budget pays for. Adversarial training ranks configurations differently
  before the first decay than at the end, so that is the earliest rung whose ranking means something. Where the
  budget cannot pay for it even keeping one trial per rung, the rung moves as late as the budget allows, never into
  a warm-up, and the plan says it ranks before the decay and what budget would rank after it.
- ``--rungs epochs``: Tune's ASHA placement, rungs at ``g, 3g, 9g, ...`` epochs, ``g`` as late as the budget allows.

A plan's cost is the share of its group's trial-epochs it trains,
``(r_1 n + (r_2 - r_1) n_1 + ... + (T - r_k) n_k) / (n T)`` for ``n`` trials of ``T`` epochs of which ``n_i`` pass
rung ``i`` (:func:`launch.rungs.reach`: each rung keeps ``n // reduction``, at least one). What the rung placements cost in ranking fidelity is measured by ``benchmarks/budget_fidelity.py``.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from launch.checks import trial_configs
from launch.cost import full_hours, hours
from launch.mlflow_view import view_columns
from launch.rungs import RungScheduler, group_of, reach
from launch.space import Derived, searched_keys
from launch.sweep import Sweep
from trainables.config import ConfigError, TrainConfig
from trainables.training import first_decay_epoch

ASHA_REDUCTION = 3  # the epochs placement's reduction factor: the searches' default (sweeps/biamat_search.py)
# Steps per epoch for placing a fractional LR milestone: with this many, the decay's epoch is the one the runtime finds
# for any dataset whose milestone falls on an epoch boundary (60% of 100 epochs: epoch 61).
_PLAN_STEPS = 10**6


@dataclass(frozen=True)
class GroupPlan:
    """The rungs of one group of trials and what they cost."""

    group: str  # "variant=at", or "all trials"
    trials: int  # rows of the table (a row's seeds go on or stop together), or a search's trials
    epochs: int
    rungs: tuple[int, ...]
    reduction: int
    fraction: float  # the share of the group's trial-epochs it trains
    landmark: int  # the epoch right after the first LR decay (or the LR peak); epochs + 1 without one
    landmark_text: str = "the first LR decay"
    unit: str = "rows"  # what a rung ranks: a grid's rows, a search's trials

    def describe(self) -> str:
        rungs = ", ".join(map(str, self.rungs))
        counts = " -> ".join(map(str, reach(self.trials, self.reduction, len(self.rungs))))
        text = (f"{self.group}: {self.trials} {self.unit} of {self.epochs} epochs, rung(s) at epoch {rungs} with "
                f"reduction factor {self.reduction} ({counts} {self.unit} go on): {self.fraction:.2f} of its "
                "trial-epochs")
        if self.landmark < self.epochs and self.rungs[0] < self.landmark:
            text += (f"; ranks before {self.landmark_text} (epoch {self.landmark}), where rankings can still reorder: "
                     f"--budget {minimum_fraction(self, after_landmark=True):.2f} --rungs schedule ranks right after "
                     "it")
        return text


def landmark_epoch(cfg: TrainConfig) -> int:
    """The first epoch whose ranking a schedule makes meaningful: the first at a decayed LR (piecewise), the first
    past the peak (cyclic); ``epochs + 1`` for a constant LR."""
    if cfg.schedule == "piecewise":
        return first_decay_epoch(cfg, _PLAN_STEPS)
    if cfg.schedule == "cyclic":
        return cfg.epochs // 2 + 1
    return cfg.epochs + 1


def landmark_text(cfg: TrainConfig) -> str:
    return "the LR peak" if cfg.schedule == "cyclic" else "the first LR decay"


def cost_fraction(trials: int, epochs: int, rungs: Sequence[int], reduction: int) -> float:
    """The share of ``trials`` x ``epochs`` trained when successive halving stops trials at ``rungs``."""
    bounds = [0, *rungs, epochs]
    counts = reach(trials, reduction, len(rungs))
    return sum(n * (b - a) for n, a, b in zip(counts, bounds, bounds[1:])) / (trials * epochs)


def _candidates(trials: int, epochs: int, first: int, placement: str) -> list[tuple[tuple[int, ...], int]]:
    """Every (rungs, reduction) a placement may use, latest first rung first; ``first``: the earliest rung epoch."""
    if placement == "epochs":
        plans = []
        for grace in range(epochs - 1, first - 1, -1):
            rungs, epoch = [], grace
            while epoch < epochs and reach(trials, ASHA_REDUCTION, len(rungs))[-1] > 1:  # one left: nothing to rank
                rungs.append(epoch)
                epoch *= ASHA_REDUCTION
            plans.append((tuple(rungs), ASHA_REDUCTION))
        return plans
    return [((rung,), reduction) for rung in range(epochs - 1, first - 1, -1)
            for reduction in range(2, max(2, trials) + 1)]


def plan_group(group: str, trials: int, cfg: TrainConfig, budget: float, placement: str, unit: str = "rows"
               ) -> GroupPlan:
    """The plan of one group of ``trials`` rows (or a search's trials: ``unit``) like ``cfg`` (same epochs and
    schedule) within ``budget``; raises ConfigError, naming the smallest budget that works, when none does."""
    first = getattr(cfg, "warmup_epochs", 0) + 1  # never rank inside a warm-up
    if first >= cfg.epochs:
        raise ConfigError(f"--budget: {group} has no epoch to rank at: a rung comes after the warm-up ("
                          f"{first - 1} epochs) and before the last of {cfg.epochs} epochs: train longer "
                          f"(--set epochs={first + 1} or more) or leave out --budget")
    landmark = max(landmark_epoch(cfg), first)  # a decay inside the warm-up: the first rung is already after it
    fits = [GroupPlan(group, trials, cfg.epochs, rungs, reduction, fraction, landmark, landmark_text(cfg), unit)
            for rungs, reduction in _candidates(trials, cfg.epochs, first, placement)
            if (fraction := cost_fraction(trials, cfg.epochs, rungs, reduction)) <= budget]
    if placement == "schedule":
        after = [plan for plan in fits if plan.rungs[0] == landmark]
        if after:  # right after the decay, keeping as many as the budget pays for
            return min(after, key=lambda plan: plan.reduction)
        fits = [plan for plan in fits if plan.rungs[0] < landmark]
    if not fits:
        cheapest = minimum_fraction(GroupPlan(group, trials, cfg.epochs, (first,), 2, 1.0, landmark),
                                    placement=placement)
        raise ConfigError(f"--budget {budget:g} is too small for {group} ({trials} {unit} of {cfg.epochs} epochs, "
                          f"none ranked before epoch {first}): the cheapest {placement} rungs cost "
                          f"{cheapest:.2f} of its trial-epochs; pass --budget {cheapest:.2f} or more")
    return max(fits, key=lambda plan: (plan.rungs[0], -plan.reduction))


def minimum_fraction(plan: GroupPlan, after_landmark: bool = False, placement: str = "schedule") -> float:
    """The smallest budget a group's placement can meet (``after_landmark``: with its rung right after the decay)."""
    first = plan.landmark if after_landmark else plan.rungs[0]
    return min(cost_fraction(plan.trials, plan.epochs, rungs, reduction)
               for rungs, reduction in _candidates(plan.trials, plan.epochs, first, placement)
               if not after_landmark or rungs[0] == plan.landmark)


@dataclass(frozen=True)
class BudgetPlan:
    """A budgeted sweep's plan: the budget asked for, the placement and each group's rungs."""

    budget: float
    placement: str
    groups: tuple[GroupPlan, ...]
    group_keys: tuple[str, ...]
    configs: tuple[TrainConfig, ...] = ()  # every trial of the full grid, for the dry run's costs

    def lines(self) -> list[str]:
        lines = [(f"budget: {self.budget:.2f} of the full grid's trial-epochs, {self.placement} rungs (--budget, "
                  "launch/budget.py); a table marks the trials stopped at a rung with the score they had there")]
        lines += [f"  {group.describe()}" for group in self.groups]
        full = full_hours(self.configs)
        if full is not None:
            total, device = full
            by_group = {group.group: group.fraction for group in self.groups}
            spent = sum(fraction * full_hours([cfg])[0] for cfg, fraction in zip(
                self.configs, (by_group[label_of(cfg, self.group_keys)] for cfg in self.configs)))
            lines.append(f"  cost: about {hours(spent)} {device}-hours budgeted, against {hours(total)} for the full "
                         "grid, one GPU per trial")
        return lines


def label_of(cfg: TrainConfig, keys: Sequence[str]) -> str:
    return ", ".join(f"{key}={getattr(cfg, key)}" for key in keys) or "all trials"


def group_keys_of(sweep: Sweep) -> tuple[str, ...]:
    """The swept keys whose values split a sweep's trials into the groups a table compares: every grid axis but the
    table's row key and the seed. A search's trials are one group."""
    if searched_keys(sweep.param_space):
        return ()
    row_key = view_columns(sweep.name_keys, sweep.param_space).chart_x
    return tuple(key for key in sweep.name_keys if key not in (row_key, "seed"))


@dataclass(frozen=True)
class Groups:
    """A sweep's trials as a budget ranks them: the keys that split them into groups, the keys of a row (None for a
    search, whose trials are its rows), every trial, and each group's trials by its label."""

    keys: tuple[str, ...]
    row_keys: tuple[str, ...] | None
    trials: list[TrainConfig]
    members: dict[str, list[TrainConfig]]

    def rows(self, label: str) -> int:
        group = self.members[label]
        return len(group) if self.row_keys is None else len({label_of(cfg, self.row_keys) for cfg in group})


def groups_of(sweep: Sweep) -> Groups:
    search = bool(searched_keys(sweep.param_space))
    keys = group_keys_of(sweep)
    configs = trial_configs(sweep.config_cls, sweep.param_space)  # a bad value exits with the reason
    # A search: num_samples trials like its first point (one method, model and schedule per search).
    trials = [configs[0]] * sweep.num_samples if search else configs * sweep.num_samples
    members: dict[str, list[TrainConfig]] = defaultdict(list)
    for cfg in trials:
        members[label_of(cfg, keys)].append(cfg)
    return Groups(keys, None if search else tuple(key for key in sweep.name_keys if key != "seed"), trials,
                  dict(members))


def ranks_nothing(sweep: Sweep) -> bool:
    """Whether every group of ``sweep`` has a single row (a script's helper sweep: one standard-training model per
    seed), so that a budget could stop no trial of it."""
    if sweep.config_cls is None:
        return False
    groups = groups_of(sweep)
    return all(groups.rows(label) < 2 for label in groups.members)


def with_budget(sweep: Sweep, args: argparse.Namespace) -> Sweep:
    """``sweep`` with the budget's scheduler and each trial's rung epochs, or unchanged without ``--budget``."""
    budget, budget_hours = getattr(args, "budget", None), getattr(args, "budget_hours", None)
    if budget is None and budget_hours is None:
        return sweep
    if sweep.scheduler is not None:
        raise SystemExit("error: --budget stops trials with its own rungs: leave out --asha")
    if sweep.config_cls is None or "rung_epochs" in sweep.param_space:
        raise SystemExit("error: --budget sets each trial's rung_epochs: leave out --set rung_epochs")
    groups = groups_of(sweep)
    keys, row_keys, trials, members = groups.keys, groups.row_keys, groups.trials, groups.members
    if budget_hours is not None:
        full = full_hours(trials)
        if full is None:
            raise SystemExit("error: --budget-hours needs a reference speed for every trial, on one device (see "
                             "--dry-run's GPU estimate): pass --budget FRACTION instead")
        budget = min(1.0, budget_hours / full[0])
    plans: dict[str, GroupPlan] = {}
    for label, group in members.items():
        shapes = {(cfg.epochs, cfg.schedule, tuple(cfg.lr_milestones), getattr(cfg, "warmup_epochs", 0))
                  for cfg in group}
        if len(shapes) > 1:
            raise SystemExit(f"error: --budget ranks trials of one schedule, but those of {label} differ in epochs, "
                             "schedule or warm-up: run them as separate sweeps")
        try:
            plans[label] = plan_group(label, groups.rows(label), group[0], budget, args.rungs,
                                      "trials" if row_keys is None else "rows")
        except ConfigError as exc:
            raise SystemExit(f"error: {exc}") from None
    largest = max(len(group) for group in members.values())
    if getattr(args, "concurrency", 0) and args.concurrency < largest:
        # Tune counts a paused trial against --concurrency: the trials still on their way would never start.
        raise SystemExit(f"error: --budget pauses each trial at a rung until its whole group ({largest} trials) has "
                         f"reached it, so all of them must be able to start: pass --concurrency {largest} or more, or "
                         "leave it out (a paused trial frees its GPU for the others)")
    plan = BudgetPlan(budget, args.rungs, tuple(plans.values()), keys, tuple(trials))
    # The scheduler knows a group by the values Tune puts in each trial's config.
    by_group = {group_of({key: getattr(cfg, key) for key in keys}, keys): label_of(cfg, keys) for cfg in trials}
    rungs = {group: plans[label].rungs for group, label in by_group.items()}
    scheduler = RungScheduler(keys, row_keys, rungs, {group: plans[label].reduction for group, label in by_group.items()},
                              {group: len(members[label]) for group, label in by_group.items()}, plan)
    return replace(sweep, scheduler=scheduler, param_space={**sweep.param_space, "rung_epochs": _rung_epochs(keys, rungs)})


def _rung_epochs(keys: Sequence[str], rungs: dict[str, tuple[int, ...]]):
    """Each trial's rung epochs: one value for every trial, or its group's (a value that follows the grid axes)."""
    if len(set(rungs.values())) == 1:
        return list(next(iter(rungs.values())))
    return Derived(lambda config: list(rungs[group_of(config, keys)]))
