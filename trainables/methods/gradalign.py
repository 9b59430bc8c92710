"""GradAlign: FGSM training with a gradient-alignment regulariser, on the shared runtime.

Paper: Andriushchenko & Flammarion, "Understanding and Improving Fast Adversarial Training" (NeurIPS 2020): FGSM
training plus their regulariser Omega (the paper's gradient-alignment term):

    CE(f(x_adv), y) + lam * E[1 - cos(grad_x CE(x, y), grad_x CE(x + eta, y))],   eta ~ U(-eps, eps)^d

with ``x_adv`` from FGSM: one signed step of ``eps`` from ``x`` (no random start), clipped to [0, 1]. Both input
gradients are taken with ``create_graph=True`` (double backprop), so the regulariser's gradient reaches the weights
through each of them, as the paper's objective and the README snippet of the authors' code have it; their train.py
reuses the FGSM gradient at ``x`` detached, so only the gradient at ``x + eta`` carries the graph there. Here too the
gradient at ``x`` is computed once and serves both the FGSM step (its sign, detached) and the regulariser. As in their
code, ``x + eta`` is not clipped to [0, 1] (a point where a gradient is measured, not a training input) and samples
whose gradient at either point is exactly zero drop out of the mean. lam = 0.2 is their CIFAR-10 value at eps 8/255
(it grows with eps). Both gradients are taken in the attack's BatchNorm mode ``attack_bn`` (eval by default; their code
runs everything in train mode: ``attack_bn: train``). ``attack_step``/``attack_start`` do not apply; ``attack_steps``
sets the PGD of checkpoint selection only. ``lam = 0`` is plain FGSM training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from trainables import attacks
from trainables.config import ConfigError, RunSettings, TrainConfig
from trainables.loader import Batch
from trainables.runtime import Method, run_trial


@dataclass(frozen=True)
class GradAlignConfig(TrainConfig):
    lam: float = 0.2  # lambda, the weight of the alignment term

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.eps <= 0:
            raise ConfigError("GradAlign trains on FGSM adversarial examples: set eps > 0 (e.g. 8/255)")
        if self.lam < 0:
            raise ConfigError(f"lam={self.lam} must not be negative (0.2 at eps 8/255; 0 is plain FGSM training)")
        if self.compile and self.lam > 0:
            raise ConfigError("compile=true cannot train GradAlign: torch.compile has no double backward, which the "
                              "regulariser needs; set compile=false")


def alignment(grad_x: Tensor, grad_eta: Tensor) -> tuple[Tensor, Tensor]:
    """The batch mean of ``1 - cos`` between the per-sample input gradients, over the samples where neither is
    zero, and the mean cosine (for the logs). No host synchronisation: the count stays on the device."""
    a, b = grad_x.flatten(1).float(), grad_eta.flatten(1).float()
    norms = torch.linalg.vector_norm(a, dim=1) * torch.linalg.vector_norm(b, dim=1)
    valid = norms > 0
    cos = (a * b).sum(dim=1) / torch.where(valid, norms, torch.ones_like(norms))
    count = valid.sum().clamp(min=1)
    return ((1 - cos) * valid).sum() / count, (cos * valid).sum() / count


def gradient_model(model: nn.Module, attack_bn: str, keeps_graph: bool) -> Callable[[Tensor], Tensor]:
    """The model through which the input gradients are taken. In eval mode, BatchNorm's backward reads the running
    statistics when it runs, after the training pass has updated them in place: the double-backprop graph would
    differentiate through statistics it did not use (seen on tiny-cnn: a tenth of the regulariser's gradient), so
    the regulariser's passes read a copy of them."""
    if not keeps_graph or attack_bn != "eval":
        return model  # no graph kept, or no running statistics read (the train-mode passes update them)
    frozen = {name: buffer.clone() for name, buffer in model.named_buffers()}
    return lambda x: functional_call(model, frozen, (x,))


def aligned_fgsm(model: nn.Module, x: Tensor, y: Tensor, *, eps: float, lam: float,
                 attack_bn: str) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """GradAlign's training points (FGSM from the gradient at ``x``) and, for ``lam > 0``, its regulariser (the batch's
    mean ``1 - cos``, differentiable with respect to the weights) and mean cosine; ``None`` for both at ``lam = 0``.
    Shared with UIAT's GradAlign training attack (methods/uiat.py)."""
    objective = attacks.ce(gradient_model(model, attack_bn, keeps_graph=lam > 0), y)
    misalignment = cos = None
    with attacks.bn_mode(model, attack_bn):
        grad_x = attacks.input_gradient(objective, x, create_graph=lam > 0)
        if lam > 0:
            eta = (2 * torch.rand_like(x) - 1) * eps
            misalignment, cos = alignment(grad_x, attacks.input_gradient(objective, x + eta, create_graph=True))
    return attacks.signed_step(x, x, grad_x, step_size=eps, eps=eps), misalignment, cos


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
