"""Helpers the tests hand to Ray workers (pickled by value, see conftest.ray_local)."""

from __future__ import annotations

import functools
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainables.config import RunSettings

# A trial small enough for 2 CPU cores: 512 synthetic images, tiny CNN, PGD-3 during training.
TINY_TRIAL: dict[str, Any] = {
    "dataset": "synthetic", "train_n": 512, "model": "tiny-cnn", "epochs": 3, "batch_size": 64, "lr": 0.05,
    "attack_steps": 3, "attack_step": 4 / 255, "eval_n": 64, "final_n": 64, "final_attacks": ["clean", "pgd5"],
}


# About 4 x 31 SGD steps with a one-cycle LR, which is what tiny-cnn needs to pick up the texture.
SCIENCE = {"dataset": "synthetic", "train_n": 2000, "model": "tiny-cnn", "epochs": 4, "batch_size": 64, "lr": 0.1,
           "schedule": "cyclic", "nesterov": True, "eval_n": 500, "final_n": 500,
           # PGD-5 with 3/255 steps at eps 8/255: the same robustness as PGD-10 here, in half the time.
           "attack_steps": 5, "attack_step": 3 / 255}


def merger_over(extractors: dict) -> type:
    """AFS's Merger over extractors built in the test (``{eps index: Classifier}``) instead of fetched from MLflow."""
    from trainables.methods.afs import Merger

    class InTestMerger(Merger):
        def load_extractors(self) -> dict:
            return extractors

    return InTestMerger


@functools.cache
def science_pgd_at() -> tuple[Any, list[dict[str, float]]]:
    """PGD-AT on :data:`SCIENCE` and its per-epoch training metrics, trained once per test run: the reference that
    the science, single-step, UIAT and fast-path tests all compare against (each test only evaluates it). Under
    xdist the first worker that needs it trains it and saves the trial's state (the runtime's checkpoint state) and
    logs; the other workers load them."""
    import torch
    from filelock import FileLock

    from trainables.methods.baseline import Baseline

    config = {**SCIENCE, "training": "pgd_at"}
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")  # one id shared by the workers of one pytest run
    if run is None:
        logs: list[dict[str, float]] = []
        return train_without_ray(Baseline, config, logs), logs
    saved = Path(tempfile.gettempdir()) / f"advsweep-science-pgd-at-{run}.pt"
    with FileLock(f"{saved}.lock"):
        if saved.exists():
            state = torch.load(saved, weights_only=True)
            trial = new_trial(Baseline, config)
            trial.load_state_dict(state["trial"])
            return trial, state["logs"]
        logs = []
        trial = train_without_ray(Baseline, config, logs)
        torch.save({"trial": trial.state_dict(), "logs": logs}, saved)
        return trial, logs


def robustness(trial) -> dict[str, float]:
    """Clean and PGD-20 accuracy at 8/255 of a trained trial's model on its final test points."""
    from trainables.evaluation import evaluate

    test = trial.method.data.test
    return evaluate(trial.method.model, test.images, test.labels, eps=8 / 255, attacks=("clean", "pgd20"),
                    device="cpu")


def settings_for(tmp: Path, experiment: str = "tests", **kwargs: Any) -> RunSettings:
    return RunSettings(tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}", experiment=experiment, **kwargs)


def _report_logged(config: dict[str, Any], settings: RunSettings, body, log: str,
                   before: Callable[[int], None] = lambda epoch: None,
                   after: Callable[[int], None] = lambda epoch: None) -> None:
    """Run the trainable ``body`` with every report appended to ``log`` as a "pid node_id epoch" line (after Tune
    accepted it), so a test sees which process and node trained which epoch; ``before``/``after`` run around it."""
    import ray
    from ray import tune

    real_report = tune.report
    node = ray.get_runtime_context().get_node_id()

    def report(metrics: dict[str, Any], *, checkpoint=None) -> None:
        before(metrics["epoch"])
        real_report(metrics, checkpoint=checkpoint)
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {node} {metrics['epoch']}\n")
        after(metrics["epoch"])

    tune.report = report
    try:
        body(config, settings)
    finally:
        tune.report = real_report


def _first_time(log: str) -> bool:
    """True once per test (a marker file next to the log): the retried process must not act again."""
    marker = Path(log + ".fired")
    if marker.exists():
        return False
    marker.touch()
    return True


def crash_once(config: dict[str, Any], settings: RunSettings, body, crash_at_epoch: int, log: str) -> None:
    """Kill this worker process the first time it is about to report ``crash_at_epoch`` (no exception handler, no
    clean-up), so its last checkpoint is the one of the epoch before."""

    def before(epoch: int) -> None:
        if epoch == crash_at_epoch and _first_time(log):
            os._exit(1)

    _report_logged(config, settings, body, log, before=before)


def stalling(body, stall_at_epoch: int, log: str):
    """A trainable that, the first time it has reported ``stall_at_epoch`` (checkpoint saved), waits for the test: the
    test removes its node, or creates ``log + ".go"`` (after tampering with the checkpoint) to make the worker die."""

    def after(epoch: int) -> None:
        if epoch == stall_at_epoch and _first_time(log):
            go, deadline = Path(log + ".go"), time.time() + 300
            while not go.exists() and time.time() < deadline:
                time.sleep(0.2)
            os._exit(1)

    def trainable(config: dict[str, Any], settings: RunSettings) -> None:
        _report_logged(config, settings, body, log, after=after)

    return trainable


def epochs_by_process(log: Path) -> list[tuple[str, str, list[int]]]:
    """(pid, node_id, epochs reported) per process, in the order the processes first reported."""
    lines = [line.split() for line in log.read_text().splitlines()]
    processes = list(dict.fromkeys((pid, node) for pid, node, _ in lines))
    return [(pid, node, [int(e) for p, n, e in lines if (p, n) == (pid, node)]) for pid, node in processes]


def reduced_pi_ablation(argv: list[str]) -> None:
    """``sweeps/pi_ablation.py --preset smoke`` on a 2 x 2 grid of short trials, for the end-to-end tests; 2 epochs,
    or ``E2E_EPOCHS`` (a test that stops the sweep mid-trial needs trials that outlast the stopping)."""
    from sweeps import pi_ablation

    if os.environ.get("E2E_STUCK_CLEANUP"):
        stuck_cleanup_after_a_stop()
    pi_ablation.PIS[:] = [0.5, 0.6]
    pi_ablation.SHARED["smoke"].update(train_n=128, eval_n=32, final_n=64, warmup_epochs=1)
    for variant in pi_ablation.VARIANTS["smoke"].values():
        variant["epochs"] = int(os.environ.get("E2E_EPOCHS", "2"))
    pi_ablation.main(argv)


def stuck_cleanup_after_a_stop() -> None:
    """Make Tune's clean-up of a stopped fit block as it does when the stop signal also killed the local Ray's GCS
    (Slurm signals every process of a job): ``remove_placement_group`` waiting for it (seen with py-spy), until Ray
    ends the driver after 60 s."""
    import inspect

    from ray.air.execution.resources import placement_group

    remove = placement_group.remove_placement_group

    def stuck(pg):
        if any(frame.function == "_cleanup_trials" for frame in inspect.stack()):
            time.sleep(600)
        return remove(pg)

    placement_group.remove_placement_group = stuck


def fit_test_model(make_model, x, y, n_train: int = 1024):
    """A small model trained with Adam on the first ``n_train`` of (x, y), seeded and without touching the global
    RNG; returned in eval mode with no gradients (the fixtures of the attack and evaluation tests)."""
    import torch
    import torch.nn.functional as F

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = make_model()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(5):
            for start in range(0, n_train, 128):
                loss = F.cross_entropy(model(x[start : start + 128]), y[start : start + 128])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    model.zero_grad(set_to_none=True)
    model.eval()
    return model


def new_trial(method_cls, config: dict[str, Any]):
    """The runtime's Trial of a method on ``config``, untrained, without Ray or MLflow, on the CPU."""
    import torch

    from trainables.runtime import Trial
    from trainables.training import seed_everything
    from trainables.trial_data import TrialData

    cfg = method_cls.Config.from_dict(config)
    seed_everything(cfg.seed)
    method = method_cls(cfg, TrialData.load(cfg, None), torch.device("cpu"),
                        RunSettings(tracking_uri="sqlite:///unused.db", experiment="science"))
    return Trial(method)


def train_without_ray(method_cls, config: dict[str, Any], logs: list[dict[str, float]] | None = None):
    """Train a method through the runtime's Trial (the epoch loop run_trial drives) without Ray or MLflow; each
    epoch's training metrics are appended to ``logs`` when given."""
    trial = new_trial(method_cls, config)
    for epoch in range(trial.cfg.epochs):
        metrics = trial.train_epoch(epoch)
        if logs is not None:
            logs.append(metrics)
    return trial


if __name__ == "__main__":  # python tests/tests_support.py ARGS: the reduced pi ablation in a fresh process
    import sys

    reduced_pi_ablation(sys.argv[1:])
