"""Single-step adversarial training: RS-FGSM and N-FGSM on the shared runtime.

Both train on ``CE(f(x_adv), y)`` with ``x_adv`` from one signed-gradient step on CE (:func:`trainables.attacks.fgsm`)
and differ only in three numbers, a :class:`~trainables.single_step_attacks.Spec` (shared with UIAT's single-step
variants):

- RS-FGSM: Wong, Rice & Kolter, "Fast is better than free: Revisiting adversarial training" (ICLR 2020), Algorithm 3:
  ``delta ~ U(-eps, eps)``, one step of ``alpha = 1.25 eps``, projected onto the eps-ball and [0, 1].
- N-FGSM: de Jorge et al., "Make Some Noise: Reliable and Efficient Single-Step Adversarial Training" (NeurIPS 2022),
  noise ``U(-k eps, k eps)`` with k = 2, one step of ``alpha = eps`` from the noisy point, and no
  projection onto the eps-ball (only onto [0, 1]): the training points lie up to 3 eps from ``x``.

As in both reference codes the noisy start is clipped to [0, 1]. The step's BatchNorm mode is ``attack_bn`` (eval by
default, as every attack here; both codes take it in train mode: ``attack_bn: train``). ``attack_step`` and
``attack_start`` do not apply; ``attack_steps`` sets the PGD of checkpoint selection only.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from trainables import attacks
from trainables.config import RunSettings
from trainables.loader import Batch
from trainables.methods.configs import SingleStepConfig
from trainables.runtime import Method, run_trial
from trainables.single_step_attacks import SPECS


class SingleStep(Method):
    name = "single_step"
    Config = SingleStepConfig
    cfg: SingleStepConfig

    def craft(self, batch: Batch) -> Tensor:
        """This batch's training points: one step of the variant's spec, in the attack's BatchNorm mode."""
        cfg = self.cfg
        with attacks.bn_mode(self.model, cfg.attack_bn):
            return SPECS[cfg.variant].craft(attacks.ce(self.model, batch.y), batch.x, cfg.eps)

    def loss(self, batch: Batch, epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
        logits = self.model(self.craft(batch)).float()
        return F.cross_entropy(logits, batch.y), {"adv_acc": (logits.argmax(1) == batch.y).float().mean()}


def trainable(config: dict[str, Any], settings: RunSettings) -> None:
    """Ray Tune function trainable; bind ``settings`` with ``tune.with_parameters``. ``variant`` picks the method."""
    run_trial(config, SingleStep, settings)
