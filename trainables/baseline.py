"""Baselines on the shared runtime: standard training, PGD-AT and TRADES.

- PGD-AT: Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks" (ICLR 2018): minimise
  ``CE(f(x_adv), y)`` with ``x_adv`` from PGD on the CE loss.
- TRADES: Zhang et al., "Theoretically Principled Trade-off between Robustness and Accuracy" (ICML 2019), Eq. 5:
  ``CE(f(x), y) + beta * KL(p(x) || p(x_adv))``, the inner maximisation on the KL to the clean prediction of the
  model in eval mode. The TRADES convention for its attack (start ``x + 0.001*N(0,1)``, 10 steps of 0.007,
  eps 0.031) is set by the sweeps through ``attack_start``/``attack_step``/``eps``.

AFS's extractors (eps = 0..9/255, eps 0 meaning standard training) and every table's baseline row use this trainable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch.nn.functional as F
from torch import Tensor

from trainables import attacks
from trainables.config import ConfigError, RunSettings, TrainConfig
from trainables.loader import Batch
from trainables.losses import kl_divergence
from trainables.runtime import Method, run_trial


@dataclass(frozen=True)
class BaselineConfig(TrainConfig):
    training: Literal["standard", "pgd_at", "trades"] = "pgd_at"
    beta: float = 6.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta < 0:
            raise ConfigError(f"beta={self.beta} must not be negative")


def craft(cfg: TrainConfig, objective: attacks.Objective, x: Tensor) -> Tensor:
    """The training attack every method shares: PGD at the config's threat model."""
    return attacks.pgd(
        objective, x, eps=cfg.eps, step_size=cfg.attack_step, steps=cfg.attack_steps, random_start=cfg.attack_start
    )


class Baseline(Method):
    name = "baseline"
    Config = BaselineConfig
    cfg: BaselineConfig

    def loss(self, batch: Batch, epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
        cfg, model, x, y = self.cfg, self.model, batch.x, batch.y
        if cfg.training == "standard" or cfg.eps == 0:
            logits = model(x)
            return F.cross_entropy(logits, y), {"acc": (logits.argmax(1) == y).float().mean()}
        if cfg.training == "pgd_at":
            with attacks.bn_mode(model, cfg.attack_bn):
                x_adv = craft(cfg, attacks.ce(model, y), x)
            logits = model(x_adv)
            return F.cross_entropy(logits, y), {"adv_acc": (logits.argmax(1) == y).float().mean()}
        with attacks.bn_mode(model, cfg.attack_bn):
            p_clean = F.softmax(model(x), dim=1).detach()
            x_adv = craft(cfg, attacks.kl_to(model, p_clean), x)
        logits_clean, logits_adv = model(x), model(x_adv)
        natural = F.cross_entropy(logits_clean, y)
        robust = kl_divergence(F.softmax(logits_clean, dim=1), logits_adv).mean()
        return natural + cfg.beta * robust, {
            "natural_loss": natural.detach(),
            "robust_loss": robust.detach(),
            "acc": (logits_clean.argmax(1) == y).float().mean(),
            "adv_acc": (logits_adv.argmax(1) == y).float().mean(),
        }


def trainable(config: dict[str, Any], settings: RunSettings) -> None:
    """Ray Tune function trainable; bind ``settings`` with ``tune.with_parameters``."""
    run_trial(config, Baseline, settings)
