"""Successive halving at chosen epochs, within the groups of trials a table compares: the scheduler of a budgeted
sweep (``--budget``, :mod:`launch.budget`).

Tune's ASHA places its rungs at ``grace_period * reduction_factor**k`` iterations, ranks every trial of the sweep
against every other, and decides at once: a trial that reaches a rung goes on unless it is below the scores recorded
there before it, so the first trials to arrive always go on (in a group of 6 with reduction factor 6, about 2.4 train
to the end, not 1). A budgeted ablation needs rungs where the method's schedule makes a ranking meaningful (right
after the first LR decay, which no geometric series hits), rankings within a group only (the pi ablation compares the
six pi of AT+BiaMAT with each other, never with TRADES+BiaMAT, whose accuracy is on another scale), and a cost it can
plan. So a rung here is synchronous, like Tune's HyperBand: a trial that reaches it pauses (Tune checkpoints it and
frees its GPU for the trials still on their way) until every trial of its group has reached it, then the best
``max(1, n // reduction)`` of the ``n`` rows there go on and the others stop. A row is what a table shows as one line:
its seeds are ranked by their mean score and go on or stop together, so a row is never half truncated.

Each trial reports its score at a rung as ``rung/score`` (``TrainConfig.rung_epochs``: its selection metric after
that epoch). A sweep resumed after an interruption starts with an empty record (Tune does not save a scheduler's
state): a restored trial counts as past every rung up to its last epoch, so no rung waits for a trial that will not
report there again, and the trials paused at an undecided rung train to the end, which costs more than the plan and
loses nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from trainables.tracking import EPOCH_METRIC, RUNG_SCORE


def group_of(config: Mapping[str, Any], keys: Sequence[str]) -> str:
    """The group a trial's config belongs to: its values of ``keys``, as text (a value may be a list)."""
    return json.dumps([config.get(key) for key in keys])


def survivors(trials: int, reduction: int) -> int:
    """How many of ``trials`` at a rung go on: ``trials // reduction``, at least one."""
    return max(1, trials // reduction)


def reach(trials: int, reduction: int, rungs: int) -> list[int]:
    """How many of ``trials`` reach each of ``rungs`` successive rungs, then how many train to the end."""
    counts = [trials]
    for _ in range(rungs):
        counts.append(survivors(counts[-1], reduction))
    return counts


class RungScheduler(FIFOScheduler):
    """Successive halving at ``rungs[group]`` (1-based epochs) with ``reduction[group]``, separately in each group
of ``sizes[group]`` trials (a rung waits for trials Tune has not created yet too); a trial's group is
:func:`group_of` its config's ``group_keys``, its row :func:`group_of` its ``row_keys`` (None: each trial is a row
of its own, as in a search). ``plan`` is what the launcher planned (the dry run prints it; the sweep's parent run
records its budget)."""

    def __init__(self, group_keys: Sequence[str], row_keys: Sequence[str] | None, rungs: Mapping[str, Sequence[int]],
                 reduction: Mapping[str, int], sizes: Mapping[str, int], plan: Any = None) -> None:
        super().__init__()
        self.group_keys = tuple(group_keys)
        self.row_keys = None if row_keys is None else tuple(row_keys)
        self.rungs = {group: tuple(epochs) for group, epochs in rungs.items()}
        self.reduction = dict(reduction)
        self.sizes = dict(sizes)
        self.plan = plan
        self.members: dict[str, dict[str, Trial]] = {}  # group -> trial id -> trial
        self.scores: dict[tuple[str, int], dict[str, float]] = {}  # (group, rung) -> trial id -> score
        self.decided: set[tuple[str, int]] = set()
        self.cut: set[str] = set()  # trials stopped at a rung
        self.ended: set[str] = set()  # trials that failed or ended otherwise: no rung waits for them
        self.released: set[str] = set()  # paused trials that passed their rung, free to run again
        self.past: dict[tuple[str, int], set[str]] = {}  # (group, rung) -> restored trials already at or past it

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True  # it ranks rung/score, the selection metric a search's own metric also reads

    def _group(self, trial: Trial) -> str:
        return group_of(trial.config, self.group_keys)

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        group = self._group(trial)
        self.members.setdefault(group, {})[trial.trial_id] = trial
        self.ended.discard(trial.trial_id)  # Tune re-adds a failed trial it retries
        # A trial restored by --resume (or retried) may be at or past some rungs already: it will not report there.
        reached = int((getattr(trial, "last_result", None) or {}).get(EPOCH_METRIC, -1)) + 1
        for epoch in self.rungs.get(group, ()):
            if epoch <= reached:
                self.past.setdefault((group, epoch), set()).add(trial.trial_id)
        if trial.status == Trial.TERMINATED:  # restored finished or stopped: waits for no rung
            self.ended.add(trial.trial_id)

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: Mapping[str, Any]) -> str:
        if trial.trial_id in self.cut:
            return TrialScheduler.STOP
        group = self._group(trial)
        epoch = int(result.get(EPOCH_METRIC, -1)) + 1  # reported 0-based; rungs are 1-based like the milestones
        if RUNG_SCORE not in result or epoch not in self.rungs.get(group, ()):
            return TrialScheduler.CONTINUE
        self.scores.setdefault((group, epoch), {}).setdefault(trial.trial_id, float(result[RUNG_SCORE]))
        if (group, epoch) not in self.decided and not self._complete(group, epoch):
            self.released.discard(trial.trial_id)  # released at an earlier rung, it waits at this one
            return TrialScheduler.PAUSE
        self._decide(tune_controller, group, epoch, current=trial)
        return TrialScheduler.STOP if trial.trial_id in self.cut else TrialScheduler.CONTINUE

    def _complete(self, group: str, epoch: int) -> bool:
        """Whether every trial of the group has reached the rung, or was stopped or ended before it."""
        out = {tid for tid in self.members.get(group, {}) if tid in self.cut or tid in self.ended}
        there = set(self.scores.get((group, epoch), {})) | self.past.get((group, epoch), set())
        return len(out | there) >= self.sizes[group]

    def _decide(self, tune_controller: Any, group: str, epoch: int, current: Trial | None) -> None:
        """Rank the rows at a complete rung once, by their trials' mean score: the best rows' trials go on (paused
        ones are released), the others' stop."""
        if (group, epoch) in self.decided:
            return
        self.decided.add((group, epoch))
        scores = {tid: score for tid, score in self.scores[(group, epoch)].items() if tid not in self.ended}
        rows: dict[str, list[str]] = {}
        for tid in scores:
            config = self.members[group][tid].config
            rows.setdefault(tid if self.row_keys is None else group_of(config, self.row_keys), []).append(tid)
        mean = {row: sum(scores[tid] for tid in tids) / len(tids) for row, tids in rows.items()}
        ranked = sorted(rows, key=lambda row: -mean[row])  # stable: ties go on in the order they arrived
        keep = {tid for row in ranked[:survivors(len(ranked), self.reduction[group])] for tid in rows[row]}
        for tid in scores:
            trial = self.members[group][tid]
            if tid in keep:
                self.released.add(tid)
            else:
                self.cut.add(tid)
                if trial is not current and (trial.status == Trial.PAUSED or trial.is_saving):
                    tune_controller.stop_trial(trial)

    def _trial_gone(self, tune_controller: Any, trial: Trial) -> None:
        """A trial that failed or ended no longer holds up its group's rungs: decide those it completes."""
        if trial.trial_id in self.cut:
            return
        self.ended.add(trial.trial_id)
        group = self._group(trial)
        for epoch in self.rungs.get(group, ()):
            if (group, epoch) in self.scores and (group, epoch) not in self.decided and self._complete(group, epoch):
                self._decide(tune_controller, group, epoch, current=None)

    def on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        self._trial_gone(tune_controller, trial)

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: Mapping[str, Any]) -> None:
        self._trial_gone(tune_controller, trial)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        self._trial_gone(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        """Trials not yet started first, then paused ones that passed their rung; one waiting at a rung stays."""
        trials = tune_controller.get_trials()
        for trial in trials:
            if trial.status == Trial.PENDING:
                return trial
        for trial in trials:
            if trial.status == Trial.PAUSED and trial.trial_id in self.released:
                return trial
        return None

    def debug_string(self) -> str:
        return f"RungScheduler: {len(self.cut)} stopped at rungs {self.rungs}"
