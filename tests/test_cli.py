"""What a sweep prints: --help before any heavy import, a line per trial event, and where to look afterwards."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import torch
from ray import tune
from ray.tune.experiment import Trial

from launch.optuna_search import build_search
from launch.progress import TrialLines, closing_lines, tune_output

ROOT = Path(__file__).resolve().parent.parent
# Every command-line script: the sweeps and the analysis commands.
SCRIPTS = sorted(path for folder in ("sweeps", "analysis") for path in (ROOT / folder).glob("*.py")
                 if "\ndef main(" in path.read_text())
HEAVY = ("ray", "torch", "mlflow", "optuna", "pandas", "matplotlib")
# Runs a script as `python sweeps/NAME.py --help` does, then says what it imported.
HELP = """
import runpy, sys
sys.argv = [{script!r}, "--help"]
try:
    runpy.run_path({script!r}, run_name="__main__")
except SystemExit as exc:
    print("exit", exc.code)
print("imported", sorted(name for name in {heavy!r} if name in sys.modules))
"""


def test_every_script_with_a_main_is_checked():
    assert {path.name for path in SCRIPTS} >= {"pi_ablation.py", "afs_merger.py", "uiat_search.py", "baselines.py",
                                              "biamat_tables.py", "afs_tables.py", "uiat_tables.py"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_help_answers_before_ray_torch_mlflow_or_pandas_is_imported(script):
    result = subprocess.run([sys.executable, "-c", HELP.format(script=str(script), heavy=HEAVY)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
    assert result.stdout.rstrip().endswith("exit 0\nimported []"), result.stdout[-500:]


def test_the_optuna_sampler_is_built_without_the_experimental_group_warning(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", optuna.exceptions.ExperimentalWarning)
        build_search("select/pgd3", "max", study_name="s", storage=f"sqlite:///{tmp_path / 'optuna.db'}", seed=0)


def fake_trial(trial_id: str, pi: float, status: str = Trial.RUNNING, **last_result: float) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, config={"variant": "at", "pi": pi, "seed": 0, "epochs": 4},
                           last_result=last_result, status=status, error_file="/runs/t/error.txt", num_failures=1)


def test_a_line_per_trial_event_named_by_the_swept_values(capsys):
    lines = TrialLines(("variant", "pi", "seed"), total=3, epoch_every_s=0)
    lines.setup()
    first, second, third = fake_trial("a", 0.45), fake_trial("b", 0.5), fake_trial("c", 0.55)
    trials = [first, second, third]
    lines.on_trial_start(0, trials, first)
    lines.on_trial_result(0, trials, first, {"training_iteration": 2, "select/clean": 0.25, "select/pgd3": 0.125})
    first.last_result = {"training_iteration": 4, "best/clean": 0.5, "best/pgd20": 0.25}
    lines.on_trial_result(0, trials, first, first.last_result)  # the last epoch: said by "finished"
    lines.on_trial_complete(0, trials, first)
    first.status = Trial.TERMINATED
    second.last_result = {"training_iteration": 2, "select/pgd3": 0.125}
    lines.on_trial_complete(0, trials, second)
    second.status = Trial.TERMINATED
    lines.on_trial_error(0, trials, third)
    third.status = Trial.ERROR
    lines.on_experiment_end(trials)
    out = [line.split(None, 1)[1] for line in capsys.readouterr().out.splitlines()]
    assert out == [
        "started  variant=at pi=0.45 seed=0",
        "epoch    variant=at pi=0.45 seed=0: 2/4, select/clean 0.250, select/pgd3 0.125",
        "finished variant=at pi=0.45 seed=0: best/clean 0.500, best/pgd20 0.250 (1/3 done)",
        "stopped  variant=at pi=0.5 seed=0: after epoch 2/4, select/pgd3 0.125 (2/3 done)",
        "FAILED   variant=at pi=0.55 seed=0: after epoch 0/4, 1 failure(s); error in /runs/t/error.txt (3/3 done)",
        "3 trials: 1 finished, 1 stopped before the last epoch, 1 failed",
    ]


def test_the_closing_lines_run_as_printed_from_where_the_sweep_ran(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs, models, *commands = closing_lines("http://127.0.0.1:5000/#/experiments/1", "sqlite:////x/mlflow.db",
                                            ["analysis/biamat_tables.py fig3 --sweep s --out fig3.png",
                                             "analysis/biamat_tables.py table13 --sweep s"], "--tracking-uri t")
    assert runs.startswith("Runs: ") and runs.endswith(" ui --backend-store-uri sqlite:////x/mlflow.db, then "
                                                      "http://127.0.0.1:5000/#/experiments/1")
    assert models.startswith("Models: ") and "runs:/<run_id>/best" in models
    script = ROOT / "analysis" / "biamat_tables.py"
    assert commands == [f"Next: {sys.executable} {script} fig3 --sweep s --out fig3.png --tracking-uri t",
                        f"      {sys.executable} {script} table13 --sweep s --tracking-uri t"]


@pytest.mark.parametrize(("flags", "message"), [
    (["--name", "a/b"], "'a/b': use letters, digits, '-', '_' and '.' only, e.g. a-b"),
    (["--name", "my sweep"], "e.g. my-sweep"),
    (["--name", ".."], "use letters, digits"),
    (["--seed", "3"], "unrecognized arguments: --seed 3"),  # not taken for --seeds
    (["--set", "attack_step=8/0"], "8/0 divides by zero"),
])
def test_a_bad_name_an_abbreviated_flag_or_a_bad_value_is_refused_while_parsing(flags, message, capsys):
    from launch.cli import run_parser

    with pytest.raises(SystemExit):
        run_parser("doc", ["smoke"]).parse_args(flags)
    assert message in capsys.readouterr().err


def test_analysis_subcommands_take_no_abbreviated_flag(capsys):
    from analysis import biamat_tables

    with pytest.raises(SystemExit):
        biamat_tables.build_parser().parse_args(["table13", "--sw", "x"])
    assert "one of the arguments --sweep --parent-run is required" in capsys.readouterr().err


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_tunes_misleading_records_are_dropped_around_a_fit_and_others_kept():
    """Tune's hint to resume with its Python API, its traceback for deleting a checkpoint a killed driver had deleted
    already, and its warning for trials without a results file say nothing true to a sweep script's user."""
    gone = FileNotFoundError("Path not found: checkpoint_000000")
    records = {
        "ray.tune.tune": [(("Experiment has been interrupted, but the most recent state was saved.\nResume experiment "
                           'with: Tuner.restore(path="/x", trainable=...)'), None, True),
                          ("Trials did not complete: [trainable_1]", None, True),
                          ("Total run time: 3.00 seconds", None, False)],
        "ray.tune.execution.tune_controller": [("Trial trainable_1: Error handling checkpoint /x", gone, True),
                                               ("Trial trainable_1: Error handling checkpoint /x",
                                                PermissionError("denied"), False)],
        "ray.tune.analysis.experiment_analysis": [
            ("Failed to fetch metrics for 1 trial(s):\n- t1: FileNotFoundError('progress.csv')", None, True),
            ("Failed to fetch metrics for 1 trial(s):\n- t1: ValueError('bad csv')", None, False)],
    }
    for name, cases in records.items():
        logger, handler = logging.getLogger(name), Collected()
        logger.addHandler(handler)
        try:
            with tune_output(verbose=False):
                for message, error, _ in cases:
                    logger.warning(message, exc_info=(type(error), error, None) if error else None)
            for message, error, _ in cases:  # after the fit, nothing is filtered any more
                logger.warning(message, exc_info=(type(error), error, None) if error else None)
        finally:
            logger.removeHandler(handler)
        kept = [message for message, _, dropped in cases if not dropped]
        assert handler.messages == kept + [message for message, _, _ in cases], name


def test_a_trial_with_no_whole_checkpoint_fails_once_unless_it_trains_on(tmp_path):
    """The driver-side check of launch/unreadable.py: no kept checkpoint is whole, so the trial's coming failure is
    its last; once it reports a result (retrained from epoch 0 with --restart-unreadable), its retries are back."""
    from launch.unreadable import FailUnreadableOnce
    from trainables.checkpoints import STATE_FILE

    folder = tmp_path / "checkpoint_000001"
    folder.mkdir()
    (folder / STATE_FILE).write_bytes(b"PK\x03\x04 cut short")
    trial = SimpleNamespace(trial_id="t1", max_failures=3, run_metadata=SimpleNamespace(num_failures=1),
                            latest_checkpoint_result=SimpleNamespace(checkpoint=tune.Checkpoint(str(folder))))
    check = FailUnreadableOnce()
    check.on_trial_start(iteration=0, trials=[trial], trial=trial)
    assert trial.max_failures == 1  # Tune recovers while num_failures <= max_failures: the next failure is final
    check.on_trial_result(iteration=1, trials=[trial], trial=trial, result={})
    assert trial.max_failures == 3
    # A whole checkpoint leaves the retries alone.
    torch.save({"next_epoch": 1}, folder / STATE_FILE)
    check.on_trial_start(iteration=2, trials=[trial], trial=trial)
    assert trial.max_failures == 3
