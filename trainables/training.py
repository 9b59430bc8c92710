"""Optimiser, learning-rate schedules, seeding and the precision switch shared by every method.

Schedules are per-step ``LambdaLR`` multipliers so a checkpoint taken at an epoch boundary resumes them exactly.
"""

from __future__ import annotations

import contextlib
import math
import random
import sys
from collections.abc import Iterable, Iterator

import numpy as np
import torch
from torch import nn

from trainables.config import TrainConfig


def make_optimizer(params: Iterable[nn.Parameter], cfg: TrainConfig) -> torch.optim.SGD:
    return torch.optim.SGD(
        params, lr=cfg.scaled_lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
    )


def decay_steps(milestones: Iterable[float], epochs: int, steps_per_epoch: int) -> list[int]:
    """The optimiser steps at which each piecewise decay takes effect (the first step run at the decayed rate).

    The one milestone convention of every preset:

    - a value ``m >= 1`` is the 1-based epoch that first runs at the decayed rate, as the papers write it: BiaMAT's
      TRADES "decay at the 100th and 105th epoch" is ``[100, 105]`` and trains 99 / 5 / 6 epochs at 0.1 / 0.01 /
      0.001 (epoch indices 0-98, 99-103, 104-109), like its reference code; AFS's extractors ``[50, 60]`` decay at
      epoch indices 49 and 59.
    - a value ``f < 1`` is a fraction of the training steps: the decayed rate starts at the first step at or past
      ``f * epochs * steps_per_epoch`` (BiaMAT AT's "60% and 90%", counted in steps by its TF1 reference code: with
      100 epochs, epochs 1-60 at 0.1, 61-90 at 0.01, 91-100 at 0.001).
    """
    total = epochs * steps_per_epoch
    # round() first: 0.6 * 100 is 60.000000000000007 in floating point and must not become step 6001 of 60 x 100.
    return sorted(math.ceil(round(m * total, 6)) if m < 1 else (round(m) - 1) * steps_per_epoch for m in milestones)


def first_decay_epoch(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """The 1-based epoch in which the learning rate first decays (``epochs + 1`` without a piecewise decay)."""
    if cfg.schedule != "piecewise" or not cfg.lr_milestones:
        return cfg.epochs + 1
    return decay_steps(cfg.lr_milestones, cfg.epochs, steps_per_epoch)[0] // steps_per_epoch + 1


def lr_factor(cfg: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """LR multiplier for optimiser step ``step`` (0-based).

    piecewise: ``lr_gamma`` per milestone passed (:func:`decay_steps` says what a milestone means).
    cyclic: one triangle from 0 up to ``lr`` at the middle of training and back to 0 (Smith & Topin, as in UIAT).
    """
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "piecewise":
        passed = sum(step >= s for s in decay_steps(cfg.lr_milestones, cfg.epochs, steps_per_epoch))
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


def start_as_fresh_worker(seed: int) -> None:
    """Give a trial the process state a new worker would give it. Tune runs the next trial in the same worker
    (``reuse_actors``), so what the last trial left behind is reset: the global RNGs (seeded), and the graphs that
    ``torch.compile`` cached for the last trial's model, which a new model would add to until dynamo's cache limit
    quietly sends it back to eager. Nothing else is process-wide: data, model and MLflow run are the trial's own."""
    seed_everything(seed)
    if "torch._dynamo" in sys.modules:  # loaded by a compiled trial; importing it only to reset it costs a second
        sys.modules["torch._dynamo"].reset()


def rng_state() -> dict:
    """Every RNG a step may draw from (PGD's random start uses torch's global generators), in types that
    ``torch.load(..., weights_only=True)`` reads: numpy's key array as a tensor."""
    name, keys, position, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "numpy": (name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss,
                                                    gauss), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    name, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.int64).astype(np.uint32), position, has_gauss, gauss))
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
