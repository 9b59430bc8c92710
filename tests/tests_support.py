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


def reduced_pi_ablation(argv: list[str]) -> None:
    """``sweeps/pi_ablation.py --preset smoke`` on a 2 x 2 grid of short trials, for the end-to-end tests."""
    from sweeps import pi_ablation

    pi_ablation.PIS[:] = [0.5, 0.6]
    pi_ablation.SHARED["smoke"].update(train_n=128, eval_n=32, final_n=64, warmup_epochs=1)
    for variant in pi_ablation.VARIANTS["smoke"].values():
        variant["epochs"] = 2
    pi_ablation.main(argv)


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


if __name__ == "__main__":  # python tests/tests_support.py ARGS: the reduced pi ablation in a fresh process
    import sys

    reduced_pi_ablation(sys.argv[1:])


def train_without_ray(method_cls, config: dict[str, Any]):
    """Train a method through the runtime's Trial (the epoch loop run_trial drives) without Ray or MLflow."""
    import torch

    from trainables.runtime import Trial, TrialData
    from trainables.training import seed_everything

    cfg = method_cls.Config.from_dict(config)
    seed_everything(cfg.seed)
    method = method_cls(cfg, TrialData.load(cfg, None), torch.device("cpu"),
                        RunSettings(tracking_uri="sqlite:///unused.db", experiment="science"))
    trial = Trial(method)
    for epoch in range(cfg.epochs):
        trial.train_epoch(epoch)
    return trial
