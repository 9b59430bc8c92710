"""A trial none of whose kept checkpoints can be read (cut short by a full disk, a partial upload): it fails once,
with the runtime's ``CorruptCheckpointError``, instead of Tune retrying it ``--max-failures`` times, each attempt
failing the same way with a traceback; and the sweep's last line names the one command that trains it again from
epoch 0 (``--resume --restart-unreadable``), keeping every other trial and its MLflow run."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ray.tune import Callback

from trainables.checkpoints import CorruptCheckpointError, any_intact


class FailUnreadableOnce(Callback):
    """Before a trial (re)starts from a checkpoint, check from the driver that one of its kept checkpoints is whole
    (:func:`trainables.checkpoints.any_intact`, which reads the end of each file, not the weights). Where none is,
    the coming failure is made its last: Tune retries while ``num_failures <= max_failures``, and has no switch per
    exception type. A trial that reports a result after all (``--restart-unreadable`` retrains it from epoch 0) gets
    its retries back, for the ordinary faults of the training ahead."""

    def __init__(self) -> None:
        self.retries: dict[str, int] = {}  # trial id -> its max_failures before the check lowered it

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.latest_checkpoint_result
        if result is not None and not any_intact(result.checkpoint):
            self.retries.setdefault(trial.trial_id, trial.max_failures)
            trial.max_failures = trial.run_metadata.num_failures

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if trial.trial_id in self.retries:
            trial.max_failures = self.retries.pop(trial.trial_id)


def unreadable_trials(errors: Iterable[BaseException]) -> int:
    """How many of a sweep's trial errors are the runtime's :class:`CorruptCheckpointError` (Ray re-raises a
    worker's exception as a subclass of its type)."""
    return sum(isinstance(error, CorruptCheckpointError) for error in errors)


def failed_lines(errors: list[BaseException], name: str) -> str:
    """The sweep's last line when trials failed: what recovers the damaged ones, and what the others need."""
    damaged = unreadable_trials(errors)
    lines = []
    if damaged:
        lines.append(f"error: {damaged} trial(s) have no readable checkpoint left (above): train them again from "
                     f"epoch 0, keeping every other trial and its MLflow run, with the same command plus --resume "
                     f"--restart-unreadable --name {name}")
    if len(errors) > damaged:
        lines.append(f"error: {len(errors) - damaged} trial(s) failed (their error files are listed above); fix the "
                     f"cause and continue with --resume --name {name}")
    return "\n".join(lines)
