"""The single-step training attacks, shared by the methods that train on them and by UIAT on each of them (UIAT
Table 5, methods/uiat.py):

- RS-FGSM and N-FGSM (methods/single_step.py): settings of :func:`trainables.attacks.fgsm`, :data:`SPECS`;
- GradAlign's FGSM and its gradient-alignment regulariser (methods/gradalign.py, which says how it follows the
  paper and the authors' code): :func:`aligned_fgsm`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call

from trainables import attacks


@dataclass(frozen=True)
class Spec:
    """A single-step attack in units of eps: uniform noise radius, step size, and whether to project onto the ball."""

    noise: float
    step: float
    project: bool

    def craft(self, objective: attacks.Objective, x: Tensor, eps: float) -> Tensor:
        """The attack at radius ``eps`` through :func:`attacks.fgsm`."""
        return attacks.fgsm(objective, x, noise=self.noise * eps, step_size=self.step * eps,
                            eps=eps if self.project else None)


SPECS: dict[str, Spec] = {
    "rs_fgsm": Spec(noise=1.0, step=1.25, project=True),
    "n_fgsm": Spec(noise=2.0, step=1.0, project=False),
}


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
    mean ``1 - cos``, differentiable with respect to the weights) and mean cosine; ``None`` for both at ``lam = 0``."""
    objective = attacks.ce(gradient_model(model, attack_bn, keeps_graph=lam > 0), y)
    misalignment = cos = None
    with attacks.bn_mode(model, attack_bn):
        grad_x = attacks.input_gradient(objective, x, create_graph=lam > 0)
        if lam > 0:
            eta = (2 * torch.rand_like(x) - 1) * eps
            misalignment, cos = alignment(grad_x, attacks.input_gradient(objective, x + eta, create_graph=True))
    return attacks.signed_step(x, x, grad_x, step_size=eps, eps=eps), misalignment, cos
