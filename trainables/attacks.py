"""One Linf PGD with a pluggable objective, the objectives the methods need, and BatchNorm mode control for attacks.

An objective maps ``x_adv`` to a per-sample loss of shape ``(N,)`` that the attack maximises; :func:`pgd` sums it, so
each sample's gradient is its own loss's gradient. Every method crafts its examples through :func:`pgd`, the
single-step ones aside:

* PGD-AT / BiaMAT-AT / AFS / UIAT: ``pgd(ce(model, y), x, eps=8/255, step_size=2/255, steps=10)``, through
  :func:`craft`, which reads the threat model from the method's config;
* TRADES: ``pgd(kl_to(model, p_nat), x, eps=0.031, step_size=0.007, steps=10, random_start="normal")``;
* BiaMAT's uniform target y^ER: ``soft_ce(model, uniform)``; CW-100 evaluation: ``cw_margin(model, y)``;
* inverse adversaries (UIAT's instance-wise IAT): :func:`inverse_pgd`, the descent twin;
* single-step training (RS-FGSM, N-FGSM): :func:`fgsm`; GradAlign takes the gradient at x with
  :func:`input_gradient` (its regulariser reuses it) and steps with :func:`signed_step`;
* several terms on one batch (BiaMAT's mixed batch): any callable, e.g. a closure that concatenates per-sample losses.

Images are floats in [0, 1] and ``eps`` is in the same pixel units (normalisation lives inside the model).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainables.losses import kl_divergence, soft_cross_entropy

Objective = Callable[[Tensor], Tensor]

# All BatchNorm flavours (1d/2d/3d, SyncBatchNorm, lazy) share this base class and its forward logic, which the
# "batch" mode of bn_mode relies on.
_BATCH_NORM = nn.modules.batchnorm._BatchNorm


def pgd(
    objective: Objective,
    x: Tensor,
    *,
    eps: float,
    step_size: float,
    steps: int,
    random_start: Literal["uniform", "normal", "normal_clamped", "none"] = "uniform",
    normal_std: float = 0.001,
    descend: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Projected sign-gradient ascent (descent with ``descend=True``) on ``objective`` in the Linf ball around ``x``.

    Starts: ``"uniform"`` in the eps-ball (Madry et al.; Wong et al.'s fast-AT code), ``"normal"`` at
    ``x + normal_std * N(0, 1)`` as the TRADES, MART and HAT reference loops start, ``"normal_clamped"`` the same
    start projected first, ``"none"`` at ``x``. Every step's result is projected onto the intersection of the eps-ball
    and [0, 1] (both are boxes, so per-coordinate clamping is the exact projection), and so is the start, except
    ``"normal"``'s: those references take the first gradient at the unprojected start, which differs where pixels are
    saturated (0 or 1: on such images 20-48 % of ``x_adv``'s pixels change). With ``steps=0`` the start is returned
    projected whatever it is.
    Gradients are taken with ``torch.autograd.grad`` w.r.t. the input only, so no parameter ``.grad`` is touched and
    the model's train/eval mode is never changed (choose it with :func:`bn_mode`). Works under ``torch.autocast``
    and inside ``torch.no_grad()``. Returns a detached tensor of ``x``'s dtype.
    """
    if eps < 0 or step_size < 0 or steps < 0:
        raise ValueError(f"eps, step_size and steps must be non-negative, got {eps}, {step_size}, {steps}")
    x = x.detach()
    lower = (x - eps).clamp(min=0.0)
    upper = (x + eps).clamp(max=1.0)

    x_adv = start_point(x, eps=eps, random_start=random_start, normal_std=normal_std, generator=generator)
    if random_start != "normal" or steps == 0:
        x_adv = torch.minimum(torch.maximum(x_adv, lower), upper)

    direction = -1.0 if descend else 1.0
    for _ in range(steps):
        x_adv.requires_grad_(True)
        # enable_grad: evaluation code calls attacks from inside no_grad blocks.
        with torch.enable_grad():
            loss = objective(x_adv).sum()
        (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = x_adv.detach() + direction * step_size * grad.sign()
        x_adv = torch.minimum(torch.maximum(x_adv, lower), upper)
    return x_adv.detach()


def start_point(x: Tensor, *, eps: float, random_start: str, normal_std: float = 0.001,
                generator: torch.Generator | None = None) -> Tensor:
    """:func:`pgd`'s first point, not yet projected: uniform in the eps-ball, ``x + normal_std * N(0, 1)`` (both
    normal starts) or ``x`` itself (``"none"``)."""
    if random_start == "uniform":
        return x + (2 * _rand(torch.rand, x, generator) - 1) * eps
    if random_start in ("normal", "normal_clamped"):
        return x + normal_std * _rand(torch.randn, x, generator)
    if random_start == "none":
        return x.clone()
    raise ValueError(f"random_start must be 'uniform', 'normal', 'normal_clamped' or 'none', got {random_start!r}")


class ThreatModel(Protocol):
    """The training threat model of a config (``TrainConfig`` has these fields). A protocol, not the config class:
    the config's validation imports the evaluation code, which imports this module."""

    @property
    def eps(self) -> float: ...

    @property
    def attack_step(self) -> float: ...

    @property
    def attack_steps(self) -> int: ...

    @property
    def attack_start(self) -> Literal["uniform", "normal", "normal_clamped"]: ...


def craft(cfg: ThreatModel, objective: Objective, x: Tensor, eps: float | None = None) -> Tensor:
    """The training attack every PGD-trained method shares: PGD at the config's threat model, or at radius ``eps`` with
    the config's step scaled in proportion."""
    eps = cfg.eps if eps is None else eps
    step = cfg.attack_step if eps == cfg.eps else cfg.attack_step * eps / cfg.eps
    return pgd(objective, x, eps=eps, step_size=step, steps=cfg.attack_steps, random_start=cfg.attack_start)


def inverse_pgd(objective: Objective, x: Tensor, **kwargs: Any) -> Tensor:
    """PGD that minimises ``objective`` (inverse adversarial examples); takes the keyword arguments of :func:`pgd`."""
    return pgd(objective, x, descend=True, **kwargs)


def input_gradient(objective: Objective, x: Tensor, *, create_graph: bool = False) -> Tensor:
    """Gradient of the summed ``objective`` with respect to the input, at ``x``. With ``create_graph`` the result
    stays differentiable with respect to the model's parameters (double backprop: GradAlign's regulariser)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = objective(x).sum()
    (grad,) = torch.autograd.grad(loss, x, create_graph=create_graph)
    return grad


def signed_step(x: Tensor, start: Tensor, gradient: Tensor, *, step_size: float, eps: float | None) -> Tensor:
    """``start + step_size * sign(gradient)`` projected onto the eps-ball around ``x`` (no ball when ``eps`` is None)
    and onto [0, 1]; detached."""
    x_adv = start.detach() + step_size * gradient.detach().sign()
    if eps is not None:
        x_adv = torch.minimum(torch.maximum(x_adv, x - eps), x + eps)
    return x_adv.clamp(0.0, 1.0).detach()


def fgsm(
    objective: Objective,
    x: Tensor,
    *,
    step_size: float,
    eps: float | None,
    noise: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One signed-gradient ascent step on ``objective`` from ``x + U(-noise, noise)`` (clipped to [0, 1]), then
    :func:`signed_step`'s projections. The single-step training attacks are settings of it:

    * FGSM (GradAlign's): ``step_size=eps, eps=eps``, no noise;
    * RS-FGSM (Wong et al. 2020): ``noise=eps, step_size=1.25 * eps, eps=eps``;
    * N-FGSM (de Jorge et al. 2022): ``noise=2 * eps, step_size=eps, eps=None``: no projection onto the eps-ball, so
      the result lies up to 3 eps from ``x``.
    """
    if step_size < 0 or noise < 0 or (eps is not None and eps < 0):
        raise ValueError(f"step_size, noise and eps must be non-negative, got {step_size}, {noise}, {eps}")
    x = x.detach()
    start = (x + (2 * _rand(torch.rand, x, generator) - 1) * noise).clamp(0.0, 1.0) if noise else x
    return signed_step(x, start, input_gradient(objective, start), step_size=step_size, eps=eps)


def _rand(sampler: Callable[..., Tensor], x: Tensor, generator: torch.Generator | None) -> Tensor:
    # A generator only samples on its own device; draw there and move, so a CPU generator can seed a GPU attack.
    device = x.device if generator is None else generator.device
    return sampler(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)


def _logits(model: nn.Module, x: Tensor, head: str) -> Tensor:
    # The main head is the default of every project model; calling model(x) for it also accepts plain classifiers.
    return model(x) if head == "main" else model(x, head=head)


def ce(model: nn.Module, y: Tensor, head: str = "main") -> Objective:
    """Per-sample cross-entropy of ``head`` against hard labels ``y``."""

    def objective(x_adv: Tensor) -> Tensor:
        return F.cross_entropy(_logits(model, x_adv, head).float(), y, reduction="none")

    return objective


def cw_margin(model: nn.Module, y: Tensor, kappa: float = 50.0, head: str = "main") -> Objective:
    """Carlini-Wagner margin ``min(max_{j != y} z_j - z_y, kappa)``: positive once the sample is misclassified.

    The common CW-100 evaluation code maximises ``-relu(z_y - max_{j != y} z_j + kappa)``, which is this margin minus
    the constant kappa: same gradients, same attack.
    """

    def objective(x_adv: Tensor) -> Tensor:
        logits = _logits(model, x_adv, head).float()
        true = logits.gather(1, y[:, None]).squeeze(1)
        is_true = F.one_hot(y, logits.shape[1]).bool()
        other = logits.masked_fill(is_true, float("-inf")).amax(dim=1)
        return (other - true).clamp(max=kappa)

    return objective


def kl_to(model: nn.Module, p_ref: Tensor, head: str = "main") -> Objective:
    """Per-sample ``KL(p_ref || softmax(model(x_adv)))``, the TRADES inner maximisation; ``p_ref`` holds
    probabilities and is treated as a constant."""
    p_ref = p_ref.detach().float()

    def objective(x_adv: Tensor) -> Tensor:
        return kl_divergence(p_ref, _logits(model, x_adv, head).float())

    return objective


def soft_ce(model: nn.Module, q: Tensor, head: str = "main") -> Objective:
    """Per-sample soft-label cross-entropy ``-sum_k q_k log p_k`` (BiaMAT's y^ER loss with ``q`` uniform);
    ``q`` is treated as a constant."""
    q = q.detach().float()

    def objective(x_adv: Tensor) -> Tensor:
        return soft_cross_entropy(_logits(model, x_adv, head).float(), q)

    return objective


@contextmanager
def bn_mode(model: nn.Module, mode: Literal["eval", "batch", "train"]) -> Iterator[None]:
    """Run the body with ``model`` in a given mode and restore every submodule's mode on exit.

    ``"eval"``: ``model.eval()``, BatchNorm uses running statistics. ``"train"``: ``model.train()``. ``"batch"``:
    BatchNorm normalises with the statistics of the current batch but leaves ``running_mean``, ``running_var`` and
    ``num_batches_tracked`` untouched (BiaMAT crafts its attack this way on the mixed batch); every other module is
    in eval mode so the attack is deterministic (no dropout). Modes are restored per module, so a model that mixes
    modes (AFS: frozen extractors in eval inside a training merger) comes back exactly as it was.
    """
    if mode not in ("eval", "batch", "train"):
        raise ValueError(f"mode must be 'eval', 'batch' or 'train', got {mode!r}")
    modes = [(module, module.training) for module in model.modules()]
    tracking = [(module, module.track_running_stats) for module in model.modules() if isinstance(module, _BATCH_NORM)]
    try:
        model.train(mode == "train")
        if mode == "batch":
            for module, _ in tracking:
                # In training mode with track_running_stats off, _BatchNorm.forward normalises with batch statistics
                # and passes no running buffers to F.batch_norm, so nothing is updated or counted.
                module.train()
                module.track_running_stats = False
        yield
    finally:
        for module, training in modes:
            module.training = training
        for module, tracks in tracking:
            module.track_running_stats = tracks
