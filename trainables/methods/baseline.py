"""Baselines on the shared runtime: standard training, PGD-AT and TRADES.

- PGD-AT: Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks" (ICLR 2018): minimise
  ``CE(f(x_adv), y)`` with ``x_adv`` from PGD on the CE loss.
- TRADES: Zhang et al., "Theoretically Principled Trade-off between Robustness and Accuracy" (ICML 2019), Eq. 5:
  ``CE(f(x), y) + beta * KL(p(x) || p(x_adv))``, the inner maximisation on the KL to the clean prediction of the
  model in eval mode (:func:`trainables.trades_loss.trades`, which HAT extends). The TRADES convention for its attack
  (start ``x + 0.001*N(0,1)``, 10 steps of 0.007, eps 0.031) is set by the sweeps through
  ``attack_start``/``attack_step``/``eps``.

AFS's extractors (eps = 0..9/255, eps 0 meaning standard training) and every table's baseline row use this trainable.
Checkpoint selection keeps the best clean accuracy for standard training and the best PGD accuracy otherwise
(:meth:`Baseline.selection_metric`).
AFS Table 6's "Rand. pert." network is PGD-AT with ``train_eps_range``: a fresh eps per batch, uniform in the range.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal

import torch.nn.functional as F
from torch import Tensor

from trainables import attacks
from trainables.config import ConfigError, RunSettings, TrainConfig
from trainables.loader import Batch
from trainables.runtime import Method, run_trial
from trainables.seeds import derive_seed
from trainables.trades_loss import trades


@dataclass(frozen=True)
class BaselineConfig(TrainConfig):
    training: Literal["standard", "pgd_at", "trades"] = "pgd_at"
    beta: float = 6.0
    # (low, high): each batch is attacked at an eps drawn uniformly from [low, high] instead of at ``eps``, with the
    # PGD step scaled to keep attack_step/eps (AFS Table 6, "random perturbation budgets ranging from 3/255 to 8/255").
    # ``eps`` stays the threat model of checkpoint selection. Empty: every batch at ``eps``.
    train_eps_range: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta < 0:
            raise ConfigError(f"beta={self.beta} must not be negative")
        if self.train_eps_range:
            if len(self.train_eps_range) != 2 or not 0 <= self.train_eps_range[0] < self.train_eps_range[1] <= 1:
                raise ConfigError(f"train_eps_range={list(self.train_eps_range)}: expected [low, high] with "
                                  "0 <= low < high <= 1, e.g. [3/255, 8/255]")
            if self.training == "standard" or self.eps == 0:
                raise ConfigError("train_eps_range needs adversarial training: training='pgd_at' or 'trades' and "
                                  "eps > 0 (the PGD step is attack_step scaled by drawn eps / eps)")


class Baseline(Method):
    name = "baseline"
    Config = BaselineConfig
    cfg: BaselineConfig
    _eps_draws: random.Random | None = None

    def on_epoch_start(self, epoch: int) -> None:
        # Seeded per epoch, so a trial resumed from its epoch checkpoint draws the same eps sequence.
        self._eps_draws = random.Random(derive_seed(self.cfg.seed, "train-eps", epoch))

    def training_eps(self) -> float:
        """This batch's attack radius: ``eps``, or a host-side uniform draw from ``train_eps_range`` (no device
        synchronisation in the step loop)."""
        if not self.cfg.train_eps_range:
            return self.cfg.eps
        if self._eps_draws is None:  # a loss computed outside the runtime's epoch loop
            self.on_epoch_start(0)
        return self._eps_draws.uniform(*self.cfg.train_eps_range)

    def selection_metric(self) -> str:
        """Standard training keeps its epoch of best clean accuracy. Its PGD accuracy is about 0 at every epoch, so
        picking by it keeps whichever epoch is least broken: at 16/255 that was the untrained epoch 0, 10% clean. At
        eps 0, PGD accuracy is clean accuracy anyway."""
        if self.cfg.training == "standard" or self.cfg.eps == 0:
            return "clean"
        return super().selection_metric()

    def loss(self, batch: Batch, epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
        cfg, model, x, y = self.cfg, self.model, batch.x, batch.y
        if cfg.training == "standard" or cfg.eps == 0:
            logits = model(x)
            return F.cross_entropy(logits, y), {"acc": (logits.argmax(1) == y).float().mean()}
        eps = self.training_eps()
        if cfg.training == "pgd_at":
            with attacks.bn_mode(model, cfg.attack_bn):
                x_adv = attacks.craft(cfg, attacks.ce(model, y), x, eps)
            logits = model(x_adv)
            return F.cross_entropy(logits, y), {"adv_acc": (logits.argmax(1) == y).float().mean()}
        loss, logs, _ = trades(cfg, model, x, y, cfg.beta, eps)
        return loss, logs


def trainable(config: dict[str, Any], settings: RunSettings) -> None:
    """Ray Tune function trainable; bind ``settings`` with ``tune.with_parameters``."""
    run_trial(config, Baseline, settings)
