"""A method built in the test process on 64 synthetic images: what the per-method property tests start from (no Ray,
no MLflow store)."""

from __future__ import annotations

import torch

from trainables.config import RunSettings
from trainables.datasets import load_dataset
from trainables.runtime import Method
from trainables.trial_data import TrialData

SMALL = {"epochs": 1, "batch_size": 32, "train_n": 64, "attack_steps": 2, "attack_step": 4 / 255, "eval_n": 32,
         "final_n": 32}
UNUSED_STORE = RunSettings(tracking_uri="sqlite:///unused.db", experiment="x")


def small_data() -> TrialData:
    train = load_dataset("synthetic", "train", n=64)
    test = load_dataset("synthetic", "test", n=32)
    return TrialData(train=train, select=test, test=test)


def make_method(method_cls: type[Method], data: TrialData, **overrides) -> Method:
    """``method_cls`` on ``data`` with :data:`SMALL` and ``overrides``, on the CPU; seeded, so every method made here
    starts from the same initial weights."""
    torch.manual_seed(0)
    return method_cls(method_cls.Config.from_dict({**SMALL, **overrides}), data, torch.device("cpu"), UNUSED_STORE)
