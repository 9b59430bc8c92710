"""What a sweep prints: a line per trial event while it runs and, once its table is out, where its runs and weights
are and what to run next.

Tune's own console output (``RunConfig(verbose=2)``, its default) prints a config box and a result box for every
trial and, every 30 s, a status table whose metric columns are whichever the trainable reported first (losses, never
the selection accuracy): about 90 lines per trial of a smoke sweep. A sweep prints :class:`TrialLines` instead, and
``--verbose`` brings Tune's output back.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.experiment import Trial
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
from ray.tune.result import TRAINING_ITERATION

from launch.optuna_search import FINAL_PREFIX, reached_end
from trainables.runtime import run_name
from trainables.tracking import RUNG_SCORE

REPO = Path(__file__).resolve().parent.parent
# Every epoch's selection scores (checkpoint selection on a fixed subset: clean and PGD accuracy, trainables/runtime.py);
# the last epoch adds the final protocol on the selected weights (FINAL_PREFIX).
SELECTION_PREFIX = "select/"
MODELS = ("Models: every trial's best and last weights as MLflow models, "
          "mlflow.pytorch.load_model('runs:/<run_id>/best') (or '/last')")


class TrialLines(tune.Callback):
    """One line per trial event, named by the swept values as its MLflow run is: started (or resumed from a
    checkpoint), an epoch's selection scores at most every ``epoch_every_s`` per trial (every epoch of a paper-preset
    trial, one or none of a smoke trial), finished with its final protocol, stopped early by the scheduler, failed and retried,
    failed for good; and a count of the trials by outcome at the end."""

    def __init__(self, name_keys: Sequence[str], total: int, epoch_every_s: float = 60.0) -> None:
        self.name_keys = tuple(name_keys)
        self.total = total
        self.epoch_every_s = epoch_every_s
        self._start = time.monotonic()
        self._last_line: dict[str, float] = {}

    def setup(self, **info: Any) -> None:
        # The callback is pickled with the Tuner, so a resumed sweep counts from its own start.
        self._start = time.monotonic()
        self._last_line = {}

    def _elapsed(self) -> str:
        minutes, seconds = divmod(int(time.monotonic() - self._start), 60)
        return f"{minutes:4d}:{seconds:02d}"

    def _print(self, trial: Trial, event: str, detail: str = "") -> None:
        self._last_line[trial.trial_id] = time.monotonic()
        label = run_name("", trial.config, self.name_keys).lstrip()  # the MLflow run name without the method
        print(f"{self._elapsed()}  {event:<8} {label}{': ' + detail if detail else ''}", flush=True)

    @staticmethod
    def _epoch(trial: Trial, result: Mapping[str, Any]) -> str:
        epochs = trial.config.get("epochs")
        return f"{result.get(TRAINING_ITERATION, 0)}" + (f"/{epochs}" if epochs else "")

    def _ended(self, trials: Sequence[Trial], trial: Trial) -> str:
        # Tune calls back before it sets the trial's final status.
        ended = sum(t.status in (Trial.TERMINATED, Trial.ERROR) for t in trials if t is not trial) + 1
        return f"({ended}/{self.total} done)"

    def on_trial_start(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        resumed = trial.last_result.get(TRAINING_ITERATION)
        self._print(trial, "resumed" if resumed else "started",
                    f"after epoch {self._epoch(trial, trial.last_result)}" if resumed else "")

    def on_trial_result(self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: Any) -> None:
        if RUNG_SCORE in result:  # a budgeted sweep's rung: the scheduler ranks this score within the trial's group
            self._print(trial, "rung", f"epoch {self._epoch(trial, result)}, {RUNG_SCORE} {result[RUNG_SCORE]:.3f} "
                                       "(waits for its group's rows to rank them)")
            return
        last = self._last_line.get(trial.trial_id, self._start)
        if reached_end(result) or time.monotonic() - last < self.epoch_every_s:
            return  # the last epoch's scores come with "finished"
        self._print(trial, "epoch", f"{self._epoch(trial, result)}, "
                                    f"{scores(result, SELECTION_PREFIX) or 'not evaluated this epoch'}")

    def on_trial_complete(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        result = trial.last_result
        if reached_end(result):
            self._print(trial, "finished", f"{scores(result, FINAL_PREFIX)} {self._ended(trials, trial)}")
        else:  # a scheduler (ASHA) stopped it before its last epoch
            self._print(trial, "stopped", f"after epoch {self._epoch(trial, result)}, "
                                          f"{scores(result, SELECTION_PREFIX) or 'no score'} {self._ended(trials, trial)}")

    def on_trial_recover(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._print(trial, "retrying", f"failed after epoch {self._epoch(trial, trial.last_result)} (failure "
                                       f"{trial.num_failures}); continues from its last checkpoint; error in "
                                       f"{trial.error_file}")

    def on_trial_error(self, iteration: int, trials: list[Trial], trial: Trial, **info: Any) -> None:
        self._print(trial, "FAILED", f"after epoch {self._epoch(trial, trial.last_result)}, {trial.num_failures} "
                                     f"failure(s); error in {trial.error_file} {self._ended(trials, trial)}")

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        failed = [t for t in trials if t.status == Trial.ERROR]
        trained = [t for t in trials if t not in failed and t.last_result.get(TRAINING_ITERATION)]
        counts = {"finished": sum(reached_end(t.last_result) for t in trained),
                  "stopped before the last epoch": sum(not reached_end(t.last_result) for t in trained),
                  "failed": len(failed),
                  "not started": self.total - len(trained) - len(failed)}  # also those Tune had not created yet
        outcome = ", ".join(f"{n} {what}" for what, n in counts.items() if n)
        print(f"{self._elapsed()}  {self.total} trials: {outcome}", flush=True)


def scores(result: Mapping[str, Any], prefix: str) -> str:
    """``select/clean 0.250, select/pgd3 0.156``: the result's metrics under ``prefix``."""
    return ", ".join(f"{key} {value:.3f}" for key, value in result.items()
                     if key.startswith(prefix) and isinstance(value, float | int))


def output_options(verbose: bool, name_keys: Sequence[str], total: int) -> dict[str, Any]:
    """``RunConfig``'s ``verbose`` and ``callbacks``: Tune's default output with ``--verbose``, else silent Tune and
    :class:`TrialLines`. Either way the CSV and JSON loggers Tune adds by default, without its TensorBoard one
    (:func:`tune_output`)."""
    loggers = [CSVLoggerCallback(), JsonLoggerCallback()]
    if verbose:
        return {"verbose": None, "callbacks": loggers}
    return {"verbose": 0, "callbacks": [TrialLines(name_keys, total), *loggers]}


# Tune's own log records that say nothing true or useful to a user of the sweep scripts, by logger:
QUIETED: dict[str, Callable[[logging.LogRecord], bool]] = {
    # After a signal: how to resume with Tune's Python API, beside the script's own "--resume --name NAME" line.
    "ray.tune.tune": lambda record: record.getMessage().startswith(
        ("Experiment has been interrupted, but the most recent state was saved", "Trials did not complete")),
    # After a killed driver: Tune deletes a trial's checkpoints beyond the two kept, one of which the killed driver
    # had deleted already; the trial goes on, and nothing is lost.
    "ray.tune.execution.tune_controller": lambda record: record.getMessage().startswith(
        "Trial ") and "Error handling checkpoint" in record.getMessage() and record.exc_info is not None
        and isinstance(record.exc_info[1], FileNotFoundError),
    # Building the result grid: trials without a results file yet (never started, or cut off before reporting).
    "ray.tune.analysis.experiment_analysis": lambda record: record.getMessage().startswith(
        "Failed to fetch metrics") and all("FileNotFoundError" in line for line in
                                           record.getMessage().splitlines()[1:]),
}


@contextmanager
def without_records(quieted: Mapping[str, Callable[[logging.LogRecord], bool]]) -> Iterator[None]:
    """While inside: the records ``quieted[logger]`` matches are dropped from that logger, the others kept."""
    filters = {name: (lambda record, drop=drop: not drop(record)) for name, drop in quieted.items()}
    for name, keep in filters.items():
        logging.getLogger(name).addFilter(keep)
    try:
        yield
    finally:
        for name, keep in filters.items():
            logging.getLogger(name).removeFilter(keep)


@contextmanager
def tune_output(verbose: bool) -> Iterator[None]:
    """Around ``Tuner.fit``, without Tune's records in :data:`QUIETED`, and with the output settings Tune reads only
    from the environment (where not set already):

    - ``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1``: no TensorBoard logger, whose presence makes Tune print how to open
      its files with TensorBoard, which is not a dependency (MLflow holds the metrics). It also drops Tune's default
      CSV and JSON loggers, so :func:`output_options` passes those itself.
    - without ``--verbose``, ``RAY_AIR_NEW_OUTPUT=0``: at verbosity 0 the new output engine still prints a box for
      the experiment and the last result of every failed trial; the legacy one prints nothing.
    - without ``--verbose``, ``TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S=0``: no four-line warning
      each time trials end within 5 s of each other (every trial end forces a snapshot of Tune's state, which is
      what lets ``--resume`` lose nothing; short trials, as after a resume, make them frequent).
    """
    quiet = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0"}
    settings = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"} | ({} if verbose else quiet)
    unset = [key for key in settings if key not in os.environ]
    os.environ.update({key: settings[key] for key in unset})
    try:
        with without_records(QUIETED):
            yield
    finally:
        for key in unset:
            os.environ.pop(key, None)


def without_token_auth_notice() -> AbstractContextManager[None]:
    """While this process starts a local Ray: without Ray's warning that it turned token authentication on for the
    new cluster. That is Ray's default and asks nothing of the user; the warning's own way out, RAY_AUTH_MODE=disabled,
    would remove the protection, and RAY_AUTH_MODE=token set here would come too late (Ray reads it on import)."""
    return without_records({"ray._private.authentication.authentication_token_setup": lambda record: (
        record.getMessage().startswith("Token authentication is enabled for this Ray cluster"))})


def as_typed(path: Path) -> str:
    """``path`` as one types it here: relative to the working directory when under it."""
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def closing_lines(ui: str, tracking_uri: str, next_steps: Sequence[str], flags: str = "") -> list[str]:
    """Where the runs are (how to start the MLflow UI on a file store, then ``ui``: its link or links), where the
    weights are, and the commands that print the sweep's other tables and figures. ``next_steps`` are repository-relative
    script paths with their arguments (``analysis/biamat_tables.py fig3 --sweep NAME``), printed to run from here with
    this interpreter; ``flags`` (e.g. ``--tracking-uri URI``) is added to each."""
    mlflow = Path(sys.executable).with_name("mlflow")
    start = "" if tracking_uri.startswith("http") else \
        f"{as_typed(mlflow) if mlflow.exists() else 'mlflow'} ui --backend-store-uri {tracking_uri}, then "
    python = as_typed(Path(sys.executable))
    commands = [f"{python} {as_typed(REPO / script)} {arguments}{' ' + flags if flags else ''}"
                for script, arguments in (step.split(" ", 1) for step in next_steps)]
    lines = [f"Runs: {start}{ui}", MODELS]
    if commands:
        lines += [f"Next: {commands[0]}", *(f"      {command}" for command in commands[1:])]
    return lines
