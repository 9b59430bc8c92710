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
from typing import Any

import torch.nn.functional as F
from torch import Tensor

from trainables import attacks
from trainables.config import RunSettings
from trainables.loader import Batch
from trainables.methods.configs import BaselineConfig
from trainables.runtime import Method, run_trial
from trainables.seeds import derive_seed
from trainables.trades_loss import trades


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
