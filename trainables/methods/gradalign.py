"""GradAlign: FGSM training with a gradient-alignment regulariser, on the shared runtime.

Paper: Andriushchenko & Flammarion, "Understanding and Improving Fast Adversarial Training" (NeurIPS 2020): FGSM
training plus their regulariser Omega (the paper's gradient-alignment term):

    CE(f(x_adv), y) + lam * E[1 - cos(grad_x CE(x, y), grad_x CE(x + eta, y))],   eta ~ U(-eps, eps)^d

with ``x_adv`` from FGSM: one signed step of ``eps`` from ``x`` (no random start), clipped to [0, 1]. Both input
gradients are taken with ``create_graph=True`` (double backprop), so the regulariser's gradient reaches the weights
through each of them, as the paper's objective reads. This is a choice, not the authors' code: their train.py and
the README snippet both detach the gradient at ``x`` (it is the FGSM gradient, reused), so only the gradient at
``x + eta`` carries the graph there. Here the gradient at ``x`` is computed once too and serves both the FGSM step
(its sign, detached) and the regulariser. As in their
code, ``x + eta`` is not clipped to [0, 1] (a point where a gradient is measured, not a training input) and samples
whose gradient at either point is exactly zero drop out of the mean. lam = 0.2 is their CIFAR-10 value at eps 8/255
(it grows with eps). Both gradients are taken in the attack's BatchNorm mode ``attack_bn`` (eval by default; their code
runs everything in train mode: ``attack_bn: train``). ``attack_step``/``attack_start`` do not apply; ``attack_steps``
sets the PGD of checkpoint selection only. ``lam = 0`` is plain FGSM training.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from trainables.config import RunSettings
from trainables.loader import Batch
from trainables.methods.configs import GradAlignConfig
from trainables.runtime import Method, run_trial
from trainables.single_step_attacks import aligned_fgsm


class GradAlign(Method):
    name = "gradalign"
    Config = GradAlignConfig
    cfg: GradAlignConfig

    def loss(self, batch: Batch, epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
        cfg, model, y = self.cfg, self.model, batch.y
        x_adv, misalignment, cos = aligned_fgsm(model, batch.x, y, eps=cfg.eps, lam=cfg.lam, attack_bn=cfg.attack_bn)
        logits = model(x_adv).float()
        adv_ce = F.cross_entropy(logits, y)
        logs = {"adv_ce": adv_ce.detach(), "adv_acc": (logits.argmax(1) == y).float().mean()}
        if misalignment is None:  # plain FGSM training: no second gradient, no double backprop
            return adv_ce, logs
        return adv_ce + cfg.lam * misalignment, logs | {"grad_cos": cos.detach()}


def trainable(config: dict[str, Any], settings: RunSettings) -> None:
    """Ray Tune function trainable; bind ``settings`` with ``tune.with_parameters``."""
    run_trial(config, GradAlign, settings)
