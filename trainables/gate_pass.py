"""BiaMAT appendix F's pass of a trained model over every auxiliary training image: which images the confidence gate
passes to their own label (primary confidence >= omega), per auxiliary class (Table 14), and the most and least
confident images of a class (Fig. 4). ``sweeps/biamat_gate_pass.py`` runs it and logs what this module returns."""

from __future__ import annotations

import torch
from torch import Tensor

COUNTS_HEADER = "aux_class,seen,high"  # the format of the gate's per-epoch counts (trainables/methods/biamat.py)


def class_counts(confidence: Tensor, labels: Tensor, omega: float, classes: int) -> str:
    """``aux_class,seen,high`` per auxiliary class: its images, and those whose primary confidence is at least
    ``omega`` (the gate's "high": routed to their own label), one line per class 0..classes-1."""
    seen = torch.bincount(labels, minlength=classes)
    high = torch.bincount(labels[confidence >= omega], minlength=classes)
    return COUNTS_HEADER + "\n" + "".join(f"{c},{s},{h}\n" for c, (s, h) in enumerate(zip(seen.tolist(), high.tolist(),
                                                                                       strict=True)))


def extremes(confidence: Tensor, labels: Tensor, aux_class: int, k: int = 10) -> tuple[Tensor, Tensor]:
    """The indices of class ``aux_class``'s ``k`` most confident images, most confident first, and of its ``k`` least
    confident, least confident first (Fig. 4's two rows)."""
    members = (labels == aux_class).nonzero().squeeze(1)
    if len(members) == 0:
        raise ValueError(f"auxiliary class {aux_class} has no training image")
    order = torch.argsort(confidence[members], descending=True, stable=True)
    return members[order[:k]], members[order.flip(0)[:k]]
