"""The TRADES loss on one batch: Zhang et al., "Theoretically Principled Trade-off between Robustness and Accuracy"
(ICML 2019), Eq. 5. The baseline trains on it (``training: trades``, methods/baseline.py) and HAT adds its helper term
to it (methods/hat.py).

Not in trainables/losses.py: it crafts its own adversarial examples, and the attacks import losses.py.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from trainables import attacks
from trainables.config import TrainConfig
from trainables.losses import kl_divergence


def trades(cfg: TrainConfig, model: nn.Module, x: Tensor, y: Tensor, beta: float,
           eps: float | None = None) -> tuple[Tensor, dict[str, Tensor], Tensor]:
    """TRADES on one batch: ``CE(f(x), y) + beta * KL(p(x) || p(x_adv))``, its logs, and ``x_adv`` (HAT builds on
    all three). The attack maximises the KL to the clean prediction in ``cfg.attack_bn`` mode, at ``eps`` or the
    config's."""
    x_adv = trades_examples(cfg, model, x, eps)
    loss, logs = trades_on(model, x, x_adv, y, beta)
    return loss, logs, x_adv


def trades_examples(cfg: TrainConfig, model: nn.Module, x: Tensor, eps: float | None = None) -> Tensor:
    """TRADES' inner maximisation: PGD on the KL to the model's clean prediction, in ``cfg.attack_bn`` mode, at
    ``eps`` or the config's (LBGAT+TRADES crafts the same)."""
    with attacks.bn_mode(model, cfg.attack_bn):
        p_clean = F.softmax(model(x), dim=1).detach()
        return attacks.craft(cfg, attacks.kl_to(model, p_clean), x, eps)


def trades_on(model: nn.Module, x: Tensor, x_adv: Tensor, y: Tensor, beta: float) -> tuple[Tensor, dict[str, Tensor]]:
    """Eq. 5's outer minimisation on given adversarial examples (FAT for TRADES crafts its own), and its logs."""
    logits_clean, logits_adv = model(x), model(x_adv)
    natural = F.cross_entropy(logits_clean, y)
    robust = kl_divergence(F.softmax(logits_clean, dim=1), logits_adv).mean()
    return natural + beta * robust, {
        "natural_loss": natural.detach(),
        "robust_loss": robust.detach(),
        "acc": (logits_clean.argmax(1) == y).float().mean(),
        "adv_acc": (logits_adv.argmax(1) == y).float().mean(),
    }
