"""FAT, friendly adversarial training, on the shared runtime.

Paper: Zhang et al., "Attacks Which Do Not Kill Training Make Adversarial Learning Stronger" (ICML 2020), Alg. 1:
train on the "friendly" adversarial examples of early-stopped PGD. Each point runs PGD until it is misclassified;
from then on it may take ``tau`` more steps (fewer if the budget of ``attack_steps`` runs out), then it stops where
it is. Before each step the point's prediction is checked at its current iterate; a misclassified point with no
steps left is frozen there, one with some left spends one and steps on; a correct one steps on. A point never
misclassified takes every step. The outer loss is PGD-AT's CE on the friendly examples (FAT) or TRADES' on them
(FAT for TRADES, ``variant``), the attack's loss CE or TRADES' KL to the clean prediction, in ``attack_bn`` mode (the
FAT code crafts in eval mode).

The FAT code's choices, which the presets follow: tau grows with the epoch ("dynamic tau": FAT 0 / 1 / 2 after
epochs 50 and 90; FAT for TRADES 0 / 1 / 2 / 3 after epochs 30, 50 and 70), the start is clipped to [0, 1]
(``uniform`` for FAT, ``normal_clamped`` x + 0.001 N(0, 1) for FAT for TRADES), and ``omega`` adds N(0, omega^2)
noise to every step (0.001 for FAT, 0 for TRADES). ``train/attack_steps`` logs the mean number of gradient steps a
point took, the FAT code's "BP count".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainables import attacks
from trainables.config import RunSettings
from trainables.loader import Batch
from trainables.losses import kl_divergence
from trainables.methods.configs import FATConfig
from trainables.runtime import Method, run_trial
from trainables.trades_loss import trades_on

LossOfLogits = Callable[[Tensor, Tensor], Tensor]  # (logits of the points still running, their indices) -> per-point


def early_stopped_pgd(model: nn.Module, loss: LossOfLogits, x: Tensor, y: Tensor, *, eps: float, step_size: float,
                      steps: int, tau: int, random_start: str, omega: float = 0.0) -> tuple[Tensor, Tensor]:
    """Alg. 1's friendly adversarial examples of ``x`` and the number of gradient steps each point took. A point's
    steps are its own: the loss is a sum of per-point terms, so a frozen point changes no other point's gradient."""
    x = x.detach()
    lower, upper = (x - eps).clamp(min=0.0), (x + eps).clamp(max=1.0)
    # The FAT code clips its start to [0, 1] whatever the start (normal included); it lies in the ball already.
    x_adv = torch.minimum(torch.maximum(attacks.start_point(x, eps=eps, random_start=random_start), lower), upper)
    left = torch.full((len(x),), tau, device=x.device)  # steps a point may still take once misclassified
    running = torch.ones(len(x), dtype=torch.bool, device=x.device)
    taken = torch.zeros(len(x), device=x.device)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        with torch.enable_grad():
            logits = model(x_adv)
            wrong = logits.argmax(1) != y
            running = running & ~(wrong & (left == 0))
            left = torch.where(running & wrong, left - 1, left)
            (grad,) = torch.autograd.grad((loss(logits, y) * running).sum(), x_adv)
        stepped = x_adv.detach() + step_size * grad.sign() + omega * torch.randn_like(x_adv)
        stepped = torch.minimum(torch.maximum(stepped, lower), upper)
        x_adv = torch.where(running.view(-1, *[1] * (x.dim() - 1)), stepped, x_adv.detach())
        taken += running
    return x_adv.detach(), taken


class FAT(Method):
    name = "fat"
    Config = FATConfig
    cfg: FATConfig

    def loss(self, batch: Batch, epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
        cfg, model, x, y = self.cfg, self.model, batch.x, batch.y
        with attacks.bn_mode(model, cfg.attack_bn):
            if cfg.variant == "trades":
                p_clean = F.softmax(model(x), dim=1).detach()

                def attack_loss(logits: Tensor, y: Tensor) -> Tensor:
                    return kl_divergence(p_clean, logits)
            else:
                def attack_loss(logits: Tensor, y: Tensor) -> Tensor:
                    return F.cross_entropy(logits, y, reduction="none")
            x_adv, taken = early_stopped_pgd(model, attack_loss, x, y, eps=cfg.eps, step_size=cfg.attack_step,
                                             steps=cfg.attack_steps, tau=cfg.tau_at(epoch),
                                             random_start=cfg.attack_start, omega=cfg.omega)
        if cfg.variant == "trades":
            total, logs = trades_on(model, x, x_adv, y, cfg.beta)
        else:
            logits = model(x_adv)
            total, logs = F.cross_entropy(logits, y), {"adv_acc": (logits.argmax(1) == y).float().mean()}
        return total, {**logs, "attack_steps": taken.mean()}


def trainable(config: dict[str, Any], settings: RunSettings) -> None:
    """Ray Tune function trainable; bind ``settings`` with ``tune.with_parameters``."""
    run_trial(config, FAT, settings)
