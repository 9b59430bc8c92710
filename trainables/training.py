"""Optimiser, learning-rate schedules, seeding and the precision switch shared by every method.

Schedules are per-step ``LambdaLR`` multipliers so a checkpoint taken at an epoch boundary resumes them exactly.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch import nn

from trainables.config import TrainConfig


def make_optimizer(params: Iterable[nn.Parameter], cfg: TrainConfig) -> torch.optim.SGD:
    return torch.optim.SGD(
        params, lr=cfg.scaled_lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
    )


def milestone_epochs(milestones: Iterable[float], epochs: int) -> list[float]:
    """Decay points in epochs: values below 1 are fractions of ``epochs`` (BiaMAT AT: 60% and 90%), others epochs."""
    return sorted(m * epochs if m < 1 else m for m in milestones)


def lr_factor(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """LR multiplier after ``step`` optimiser steps.

    piecewise: ``lr_gamma`` at each milestone (at epoch granularity, as in the papers' MultiStepLR).
    cyclic: one triangle from 0 up to ``lr`` at the middle of training and back to 0 (Smith & Topin, as in UIAT).
    """
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "piecewise":
        epoch = step // steps_per_epoch
        passed = sum(epoch >= m for m in milestone_epochs(cfg.lr_milestones, cfg.epochs))
        return cfg.lr_gamma**passed
    total = cfg.epochs * steps_per_epoch
    progress = step / total
    return max(0.0, 1.0 - abs(2.0 * progress - 1.0))


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Stepped once per optimiser step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(cfg, step, steps_per_epoch))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every RNG a step may draw from (PGD's random start uses torch's global generators)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def precision(mode: str, device: torch.device) -> Iterator[None]:
    """bf16 autocast for training and attack passes; a no-op for fp32. Final evaluation always runs in fp32."""
    if mode == "bf16":
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield
    else:
        yield
