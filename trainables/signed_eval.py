"""Accuracy under signed attack strengths, overall and per half of the points by clean cross-entropy: the data of
UIAT's Fig. 1 and Fig. 4 (Dong et al., CVPR 2023), which ``sweeps/reevaluate.py --ce-halves`` logs.

A signed eps is an attack direction and radius in one number:

- ``eps > 0``: PGD-k ascending the cross-entropy, the evaluation protocol's (``trainables/evaluation.py``: uniform
  start, step eps/4, a point counts only if its clean input is classified correctly too), so the overall accuracy
  equals :func:`trainables.evaluation.evaluate`'s ``pgd<k>`` on the same points and seed;
- ``eps < 0``: the inverse attack, PGD-k *descending* the cross-entropy within radius |eps|
  (:func:`trainables.attacks.inverse_pgd`, the descent UIAT's inverse adversaries use), started at ``x`` itself (a
  random start only adds noise to a search for lower loss), step |eps|/4. A point counts when its inverse example
  is classified correctly: inverse perturbations can rectify misclassified points, the paper's left halves.
- ``clean``: no perturbation, whatever the eps.

The halves follow the paper: points ranked by their clean cross-entropy in increasing order, the first half (lower
loss, the paper's "Top 50%") and the rest (higher loss, "Bottom 50%"; with an odd count it has the extra point).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainables.attacks import bn_mode, ce, inverse_pgd, pgd
from trainables.evaluation import parse_attack, to_images

HALVES = ("low_ce", "high_ce")


def clean_losses(model: nn.Module, x: Tensor, y: Tensor, *, batch_size: int, device: torch.device) -> Tensor:
    """Per-point cross-entropy of the clean inputs (eval mode, no gradient), on the CPU."""
    losses = []
    with bn_mode(model, "eval"), torch.no_grad():
        for start in range(0, len(x), batch_size):
            logits = model(to_images(x[start : start + batch_size], device)).float()
            losses.append(F.cross_entropy(logits, y[start : start + batch_size].to(device), reduction="none").cpu())
    return torch.cat(losses)


def ce_halves(losses: Tensor) -> dict[str, Tensor]:
    """Indices of the lower-loss and the higher-loss half of the points (a stable sort: ties keep file order)."""
    order = torch.argsort(losses, stable=True)
    half = len(order) // 2
    return {"low_ce": order[:half], "high_ce": order[half:]}


def correct_under(model: nn.Module, x: Tensor, y: Tensor, *, eps: float, steps: int, batch_size: int,
                  device: torch.device, seed: int) -> Tensor:
    """Per point (bool, on the CPU): classified correctly under PGD-``steps`` at signed ``eps`` (module docstring);
    ``steps=0`` or ``eps=0`` is the clean input. Eval mode throughout, the model's modes restored."""
    generator = torch.Generator(device=device).manual_seed(seed)  # as evaluate() seeds each PGD attack
    radius = abs(eps)
    correct = []
    with bn_mode(model, "eval"):
        for start in range(0, len(x), batch_size):
            xb = to_images(x[start : start + batch_size], device)
            yb = y[start : start + batch_size].to(device)
            with torch.no_grad():
                ok = model(xb).argmax(dim=1) == yb
            if steps and eps > 0:
                x_adv = pgd(ce(model, yb), xb, eps=radius, step_size=radius / 4, steps=steps, generator=generator)
                with torch.no_grad():
                    ok &= model(x_adv).argmax(dim=1) == yb
            elif steps and eps < 0:
                x_inv = inverse_pgd(ce(model, yb), xb, eps=radius, step_size=radius / 4, steps=steps,
                                    random_start="none")
                with torch.no_grad():
                    ok = model(x_inv).argmax(dim=1) == yb
            correct.append(ok.cpu())
    return torch.cat(correct)


def signed_points(model: nn.Module, x: Tensor, y: Tensor, *, eps: float, attacks: Sequence[str],
                  halves: bool = False, batch_size: int = 256, device: torch.device | str,
                  seed: int = 0) -> dict[str, tuple[Tensor, Tensor]]:
    """Which points each of ``attacks`` (``clean`` or ``pgd<k>``) at signed ``eps`` leaves correct, and, with
    ``halves``, the same per half by clean cross-entropy: per metric, the positions in ``x`` it covers and a bool per
    position, ``{"pgd20": (arange(N), bool (N,)), "pgd20/low_ce": (that half's positions, bool), ...}``. A metric's
    accuracy is the mean of its bools; the bools pair runs evaluated on the same points."""
    if len(x) != len(y) or len(x) < 2:
        raise ValueError(f"need the same number (at least 2) of images and labels, got {len(x)} and {len(y)}")
    steps = {}
    for attack in attacks:
        kind, k = parse_attack(attack)
        if kind not in ("clean", "pgd"):
            raise ValueError(f"signed eps and CE halves take clean and pgd<k> attacks, not {attack!r}")
        steps[attack] = k
    device = torch.device(device)
    groups = ce_halves(clean_losses(model, x, y, batch_size=batch_size, device=device)) if halves else {}
    every = torch.arange(len(x))
    results: dict[str, tuple[Tensor, Tensor]] = {}
    for attack, k in steps.items():
        correct = correct_under(model, x, y, eps=eps, steps=k, batch_size=batch_size, device=device, seed=seed)
        results[attack] = (every, correct)
        results |= {f"{attack}/{half}": (idx, correct[idx]) for half, idx in groups.items()}
    return results

