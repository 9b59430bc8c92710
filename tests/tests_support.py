"""Helpers the tests hand to Ray workers (pickled by value, see conftest.ray_local)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from trainables.config import RunSettings

# A trial small enough for 2 CPU cores: 512 synthetic images, tiny CNN, PGD-3 during training.
TINY_TRIAL: dict[str, Any] = {
    "dataset": "synthetic", "train_n": 512, "model": "tiny-cnn", "epochs": 3, "batch_size": 64, "lr": 0.05,
    "attack_steps": 3, "attack_step": 4 / 255, "eval_n": 64, "final_n": 64, "final_attacks": ["clean", "pgd5"],
}


def settings_for(tmp: Path, experiment: str = "tests", **kwargs: Any) -> RunSettings:
    return RunSettings(tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}", experiment=experiment, **kwargs)


def crash_once(config: dict[str, Any], settings: RunSettings, body, crash_at_epoch: int, log: str) -> None:
    """Run ``trainable`` and kill this worker process the first time it is about to report ``crash_at_epoch``.

    The epochs each process trains are appended to ``log`` as "pid epoch" lines, so a test can see where the
    restarted process picked up.
    """
    from ray import tune

    real_report = tune.report

    def report(metrics: dict[str, Any], *, checkpoint=None) -> None:
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {metrics['epoch']}\n")
        marker = Path(log + ".crashed")
        if metrics["epoch"] == crash_at_epoch and not marker.exists():
            marker.touch()
            os._exit(1)  # a dying worker: no exception handler, no clean-up
        real_report(metrics, checkpoint=checkpoint)

    tune.report = report
    try:
        body(config, settings)
    finally:
        tune.report = real_report
