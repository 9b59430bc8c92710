"""A registered set's train split in parts, ``NAME:A+B+C`` (``trainables/dataset_names.py``): BiaMAT appendix B
splits CIFAR-10's training images into cifar-A (half), cifar-B and cifar-C (a quarter each) and adds uniform noise to
cifar-C "to sparsify the information included" in it, then trains on A alone and with B and/or C added (appendix
Table 5).

The split is one seeded draw, the same on every machine and for every trial (like imgnet100's classes): a random
order of the train split, cut at 1/2 and 3/4. The paper does not say how large cifar-C's noise is: here every pixel of
every cifar-C image gets its own fixed draw, uniform within plus or minus :data:`C_NOISE` of the [0, 1] range, rounded
back to uint8 and clipped to the image range; it is drawn once, so every epoch and trial sees the same noisy images.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from trainables.dataset_names import PARTS
from trainables.image_set import ImageSet, sample_order
from trainables.seeds import derive_seed

PARTS_DRAW = "train-split-parts"  # names the one draw of the parts: changing it changes the parts
C_NOISE = 32 / 255  # not stated by the paper: strong enough to hide fine detail, weak enough to keep the object


def part_indices(n_points: int) -> dict[str, torch.Tensor]:
    """The indices into a train split of ``n_points`` of each part: disjoint, together every index."""
    order = sample_order(n_points, 0, PARTS_DRAW)
    return {letter: order[round(low * n_points):round(high * n_points)] for letter, (low, high) in PARTS.items()}


def noisy(images: torch.Tensor) -> torch.Tensor:
    """``images`` (uint8) with cifar-C's fixed uniform noise, one draw per pixel from a generator of its own."""
    generator = torch.Generator().manual_seed(derive_seed(PARTS_DRAW, "C-noise"))
    noise = (torch.rand(images.shape, generator=generator) * 2 - 1) * C_NOISE * 255
    return (images.float() + noise).round().clamp(0, 255).to(torch.uint8)


def parts_of(train: ImageSet, parts: Sequence[str], name: str) -> ImageSet:
    """The union of ``parts`` of the train split ``train``, cifar-C's images with their noise, named ``name``."""
    indices = part_indices(len(train))
    chosen = [train.subset(indices[letter]) for letter in parts]
    images = [noisy(part.images) if letter == "C" else part.images for letter, part in zip(parts, chosen)]
    return ImageSet(torch.cat(images), torch.cat([part.labels for part in chosen]), train.num_classes, name)
