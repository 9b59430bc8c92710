"""Per-sample losses shared by the methods and by the attack objectives (one definition each)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def soft_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """``-sum_k q_k log p_k`` per sample; with q uniform this is BiaMAT's y^ER loss (same gradient as KL(u || p))."""
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1)


def kl_divergence(reference: Tensor, logits: Tensor) -> Tensor:
    """``KL(reference || softmax(logits))`` per sample, ``reference`` a probability vector.

    Gradients flow into ``reference`` only if the caller lets them (TRADES keeps them; UIAT's target is detached).
    """
    # xlogy: classes with reference 0 contribute 0, not NaN.
    return (torch.special.xlogy(reference, reference) - reference * F.log_softmax(logits, dim=1)).sum(dim=1)
