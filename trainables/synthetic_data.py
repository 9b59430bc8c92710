"""The built-in synthetic image sets ``synthetic``, ``synthetic_absent``, ``synthetic_aux`` and
``synthetic_aux_unrelated`` (named in trainables/datasets.py), generated from a seed in a second or two (options
``seed``, ``n``, ``size``, ``robust_p``, ``nonrobust_p``; see :func:`synthetic_patterns`).

They exist so CPU tests can check the science of adversarial training (Ilyas et al. 2019, "Adversarial examples are
not bugs, they are features"): each of the 10 classes has

* a robust pattern R_c: a smooth field of peak 0.25, far beyond an 8/255 attack, carried by an image of class y with
  probability ``ROBUST_P`` = 0.75 (otherwise R of another class), so it predicts the label only partly;
* a non-robust pattern N_c: a +-5/255 period-4 texture in every image of class y, so it predicts the label perfectly
  but an 8/255 attack can swap it for another class's;
* per-image background (a smooth field of peak 0.15 and 4/255 pixel noise).

Standard training therefore reads N and is broken by PGD; adversarial training at 8/255 has to read R, reaching about
R's predictiveness. Measured with tiny-cnn at 32x32 (2,000 training and 500 test images, batch 64, SGD + one-cycle LR
0.1, crop-and-flip augmentation, 4 epochs; PGD-20 of 2/255 steps at 8/255; 2 CPU cores, torch 2.15, 3 seeds):
standard training 1.00 clean / 0.00 PGD-20 in about 5 s; PGD-10 adversarial training 0.73-0.76 clean / 0.56-0.59
PGD-20 in about 45 s. Standard training needs about 100 SGD steps before it finds N (clean accuracy stays below
0.75 until then), and more at ``size=16``.

``synthetic_absent`` is ``synthetic`` with the same draws, except that the quarter of the images without their class's
robust pattern carry none instead of another class's (``robust_decoy=False``). A classifier can then tell when the
robust pattern says nothing and read the texture there: what AFS's merger needs to beat both of its extractors' trade
(see tests/test_afs.py). On ``synthetic`` the decoy images look like any other, so it cannot.

``synthetic_aux`` (BiaMAT's auxiliary data) has 10 classes of its own: the first ``related_classes`` = 5 carry the
primary R of the same index (``trainables.datasets.synthetic_aux_related``), the rest fresh robust patterns; every
auxiliary image carries the texture of a random primary class.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from trainables.image_set import ImageSet
from trainables.seeds import derive_seed

SYNTHETIC_CLASSES = 10
# Peak |R_c| in [0, 1] pixel units. Classes' patterns differ by 0.08-0.12 per pixel on average, several times an
# 8/255 perturbation, so R survives the attack.
ROBUST_AMPLITUDE = 0.25
# P(an image carries its own class's robust pattern); otherwise that of a uniformly drawn other class. This caps what a
# model using only robust patterns can reach, so it is also the robust accuracy adversarial training approaches.
ROBUST_P = 0.75
# |N_c| per pixel, an integer number of uint8 levels so the stored images hold it exactly. Below 8/255, so an 8/255
# attack can erase N_y and paint another class's N in its place.
NONROBUST_LEVELS = 5
NONROBUST_AMPLITUDE = NONROBUST_LEVELS / 255
# N_c is a tile of this period repeated over the image: a texture, so a convolution finds it at any crop offset.
NONROBUST_PERIOD = 4
# Per-image smooth background field (peak) and pixel noise (std): R must be told apart from structure of the same
# kind, and N must be found under noise of similar size.
BACKGROUND_AMPLITUDE = 0.15
NOISE_STD = 4 / 255
# Auxiliary set defaults: 10 classes, the first 5 reuse R of the primary classes with the same index.
AUX_CLASSES = 10
AUX_RELATED_CLASSES = 5
_SYNTHETIC_SIZES = {"train": 10_000, "test": 2_000}


@dataclass(frozen=True)
class SyntheticPatterns:
    """The class patterns behind ``synthetic`` and ``synthetic_aux`` for one seed, as float offsets in pixel units.

    ``robust`` (10, 3, S, S): smooth fields with peak ``ROBUST_AMPLITUDE``. ``nonrobust`` (10, 3, S, S): zero-mean
    period-4 textures of ``+-NONROBUST_AMPLITUDE``. ``aux_robust`` (aux_classes, 3, S, S): ``robust[a]`` for the
    related auxiliary classes ``a < related_classes``, fresh independent fields for the others.
    """

    robust: Tensor
    nonrobust: Tensor
    aux_robust: Tensor


def _smooth_fields(n: int, size: int, generator: torch.Generator) -> Tensor:
    """``n`` random low-frequency fields (n, 3, size, size) with peak |value| 1, symmetric under a horizontal flip.

    4x4 Gaussian noise upsampled bilinearly (as two small matrix products, several times faster than
    ``F.interpolate``): structure at a quarter of the image. The mirror symmetry makes flip augmentation leave a
    class's pattern unchanged.
    """
    low = torch.randn(n, 3, 4, 4, generator=generator)
    up = F.interpolate(torch.eye(4)[None], size=size, mode="linear", align_corners=False)[0].T  # (size, 4)
    fields = up @ low @ (up + up.flip(0)).T
    return fields.div_(fields.abs().amax(dim=(1, 2, 3), keepdim=True))


def _textures(k: int, size: int, generator: torch.Generator) -> Tensor:
    """``k`` distinct +-1 textures (k, 3, size, size): a random period-4 tile repeated over the image.

    Each channel of a tile has as many +1 as -1, so a texture adds no colour and no low-frequency content. Tiles are
    mirror-symmetric (columns a, b, b, a), so a flipped image keeps its texture. A tile too similar to an earlier one
    under some shift is redrawn: after a random crop the two classes would carry the same texture.
    """
    p = NONROBUST_PERIOD
    tiles: list[Tensor] = []
    while len(tiles) < k:
        signs = torch.tensor([1.0, -1.0]).repeat_interleave(p * p // 4)
        half = torch.stack([signs[torch.randperm(len(signs), generator=generator)] for _ in range(3)])
        half = half.view(3, p, p // 2)
        tile = torch.cat([half, half.flip(-1)], dim=-1)
        shifts = [tile.roll((dy, dx), dims=(1, 2)) for dy in range(p) for dx in range(p)]
        if all(float((s * other).mean()) < 0.75 for s in shifts for other in tiles):
            tiles.append(tile)
    reps = -(-size // p)
    return torch.stack(tiles).repeat(1, 1, reps, reps)[:, :, :size, :size]


def synthetic_patterns(
    seed: int = 0, size: int = 32, aux_classes: int = AUX_CLASSES, related_classes: int = AUX_RELATED_CLASSES
) -> SyntheticPatterns:
    """The patterns for ``seed``. Primary patterns are drawn first, so they do not depend on the auxiliary options."""
    most = min(aux_classes, SYNTHETIC_CLASSES)
    if not 0 <= related_classes <= most:
        raise ValueError(f"related_classes must be in [0, {most}], got {related_classes}")
    g = torch.Generator().manual_seed(derive_seed(seed, "synthetic-patterns"))
    robust = ROBUST_AMPLITUDE * _smooth_fields(SYNTHETIC_CLASSES, size, g)
    nonrobust = NONROBUST_AMPLITUDE * _textures(SYNTHETIC_CLASSES, size, g)
    fresh = ROBUST_AMPLITUDE * _smooth_fields(aux_classes - related_classes, size, g)
    return SyntheticPatterns(robust, nonrobust, torch.cat([robust[:related_classes], fresh]))


def _render(
    labels: Tensor, bank: Tensor, carried_nonrobust: Tensor, patterns: SyntheticPatterns, robust_p: float,
    nonrobust_p: float, generator: torch.Generator, robust_decoy: bool = True,
) -> Tensor:
    """uint8 images: grey + background field + a robust pattern + pixel noise, then a non-robust texture on top.

    ``bank[c]`` is the robust pattern of class c; ``carried_nonrobust[i]`` the primary class whose texture image i
    carries. An image without its own robust pattern carries another class's (``robust_decoy``) or none. Every random
    draw happens whatever the options, so changing ``robust_p``, ``nonrobust_p`` or ``robust_decoy`` changes only what
    they control (with ``nonrobust_p=0`` the same images lack exactly their texture).
    """
    n, k, size = len(labels), len(bank), bank.shape[-1]
    other = (labels + torch.randint(1, k, (n,), generator=generator)) % k  # uniform over the other classes
    bank = torch.cat([bank, torch.zeros_like(bank[:1])])  # last: no robust pattern
    robust_class = torch.where(torch.rand(n, generator=generator) < robust_p, labels, other if robust_decoy else k)
    has_nonrobust = torch.rand(n, generator=generator) < nonrobust_p
    x = _smooth_fields(n, size, generator).mul_(BACKGROUND_AMPLITUDE).add_(bank[robust_class])
    x.add_(torch.randn(x.shape, generator=generator), alpha=NOISE_STD).add_(0.5)
    # Quantise first and add the texture as whole levels: every image then carries exactly +-NONROBUST_LEVELS.
    textures = torch.cat([(patterns.nonrobust * 255).round(), torch.zeros(1, 3, size, size)])  # last: no texture
    levels = x.mul_(255).round_().add_(textures[torch.where(has_nonrobust, carried_nonrobust, SYNTHETIC_CLASSES)])
    return levels.clamp(0, 255).to(torch.uint8)


def _balanced_labels(n: int, k: int, generator: torch.Generator) -> Tensor:
    return (torch.arange(n) % k)[torch.randperm(n, generator=generator)]


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")


def read_synthetic(
    split: str, *, seed: int = 0, n: int | None = None, size: int = 32, robust_p: float = ROBUST_P,
    nonrobust_p: float = 1.0, robust_decoy: bool = True,
) -> ImageSet:
    """The primary benchmark: label y, R_y with probability ``robust_p`` (else R of another class, or with
    ``robust_decoy=False`` none), N_y with probability ``nonrobust_p``. Classes are balanced exactly; splits share the
    patterns but not the images."""
    _check_probability("robust_p", robust_p)
    _check_probability("nonrobust_p", nonrobust_p)
    n = _SYNTHETIC_SIZES[split] if n is None else n
    patterns = synthetic_patterns(seed, size)
    g = torch.Generator().manual_seed(derive_seed(seed, "synthetic", split))
    labels = _balanced_labels(n, SYNTHETIC_CLASSES, g)
    images = _render(labels, patterns.robust, labels, patterns, robust_p, nonrobust_p, g, robust_decoy)
    return ImageSet(images, labels, SYNTHETIC_CLASSES, "synthetic" if robust_decoy else "synthetic_absent")


def read_synthetic_aux(
    split: str, *, seed: int = 0, n: int | None = None, size: int = 32, robust_p: float = ROBUST_P,
    nonrobust_p: float = 1.0, num_classes: int = AUX_CLASSES, related_classes: int = AUX_RELATED_CLASSES,
    name: str = "synthetic_aux",
) -> ImageSet:
    """BiaMAT's auxiliary data: ``num_classes`` classes of their own; class a < ``related_classes`` carries primary
    R_a (see :func:`synthetic_aux_related`), the others fresh robust patterns.

    Each image carries the non-robust texture of a uniformly drawn primary class: the images keep the primary set's
    low-level statistics (as natural auxiliary images share natural textures with CIFAR), but the texture says nothing
    about the auxiliary label, so an auxiliary head can only learn robust patterns, and a primary head that reads the
    texture is confidently wrong on auxiliary images, which is what BiaMAT's uniform target for them corrects.
    """
    _check_probability("robust_p", robust_p)
    _check_probability("nonrobust_p", nonrobust_p)
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    n = _SYNTHETIC_SIZES[split] if n is None else n
    patterns = synthetic_patterns(seed, size, num_classes, related_classes)
    g = torch.Generator().manual_seed(derive_seed(seed, "synthetic_aux", split))
    labels = _balanced_labels(n, num_classes, g)
    texture_class = torch.randint(0, SYNTHETIC_CLASSES, (n,), generator=g)
    images = _render(labels, patterns.aux_robust, texture_class, patterns, robust_p, nonrobust_p, g)
    return ImageSet(images, labels, num_classes, name)
