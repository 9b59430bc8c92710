"""MART: misclassification-aware adversarial training on the shared runtime.

Paper: Wang et al., "Improving Adversarial Robustness Requires Revisiting Misclassified Examples" (ICLR 2020), Eq. 9
(the BCE form of the loss), averaged over the batch:

    BCE(p(x_adv), y) + beta * KL(p(x) || p(x_adv)) * (1 - p_y(x)),
    BCE(p(x_adv), y) = -log p_y(x_adv) - log(1 - max_{k != y} p_k(x_adv))   (the "boosted" cross-entropy)

with ``x_adv`` from the shared training attack (PGD on CE, as PGD-AT; the MART code starts it at
``x + 0.001 N(0, 1)`` with 10 steps of 0.007 and crafts in eval mode: ``attack_start``, ``attack_step``,
``attack_bn``). beta = 6 is the paper's CIFAR-10 value for ResNet-18.

Gradient through the weight: the paper does not say whether ``1 - p_y(x)`` is a constant; the authors' code computes it
from the clean softmax without detaching it, so the weight's own gradient reaches the model, and so it does here
(``tests/test_comparison_methods.py`` checks it). Neither is ``p(x)`` inside the KL detached (as in TRADES).
``log(1 - max_{k != y} p_k)`` is computed exactly from the logits (a log-sum-exp over the other classes) instead of the
code's ``log(1.0001 - p + 1e-12)``, which differs from the equation by up to 1e-4 in probability.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from trainables import attacks
from trainables.config import RunSettings
from trainables.loader import Batch
from trainables.losses import kl_divergence
from trainables.methods.configs import MARTConfig
from trainables.runtime import Method, run_trial


def boosted_cross_entropy(logits: Tensor, y: Tensor) -> Tensor:
    """Per-sample ``CE(logits, y) - log(1 - max_{k != y} p_k)``: the BCE of MART's Eq. 9."""
    is_true = F.one_hot(y, logits.shape[1]).bool()
    strongest_wrong = logits.masked_fill(is_true, float("-inf")).argmax(dim=1, keepdim=True)
    # log(1 - p_k) = log(sum_{j != k} exp z_j) - log(sum_j exp z_j): exact, no epsilon, no overflow.
    log_not_wrong = torch.logsumexp(logits.scatter(1, strongest_wrong, float("-inf")), dim=1) - torch.logsumexp(
        logits, dim=1)
    return F.cross_entropy(logits, y, reduction="none") - log_not_wrong


def mart_loss(logits_clean: Tensor, logits_adv: Tensor, y: Tensor, beta: float) -> tuple[Tensor, Tensor, Tensor]:
    """Eq. 9 averaged over the batch, and its two terms (boosted CE, weighted KL). Gradients reach ``p(x)`` both in
    the KL and in the weight ``1 - p_y(x)``."""
    p_clean = F.softmax(logits_clean, dim=1)
    boosted = boosted_cross_entropy(logits_adv, y).mean()
    weight = 1 - p_clean.gather(1, y[:, None]).squeeze(1)
    robust = (kl_divergence(p_clean, logits_adv) * weight).mean()
    return boosted + beta * robust, boosted, robust


class MART(Method):
    name = "mart"
    Config = MARTConfig
    cfg: MARTConfig

    def loss(self, batch: Batch, epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
        cfg, model, x, y = self.cfg, self.model, batch.x, batch.y
        with attacks.bn_mode(model, cfg.attack_bn):
            x_adv = attacks.craft(cfg, attacks.ce(model, y), x)
        logits_clean, logits_adv = model(x).float(), model(x_adv).float()
        total, boosted, robust = mart_loss(logits_clean, logits_adv, y, cfg.beta)
        return total, {
            "boosted_ce": boosted.detach(),
            "weighted_kl": robust.detach(),
            "acc": (logits_clean.argmax(1) == y).float().mean(),
            "adv_acc": (logits_adv.argmax(1) == y).float().mean(),
        }


def trainable(config: dict[str, Any], settings: RunSettings) -> None:
    """Ray Tune function trainable; bind ``settings`` with ``tune.with_parameters``."""
    run_trial(config, MART, settings)
