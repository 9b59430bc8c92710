"""The in-memory image set every dataset reader returns, and the seeded random samples drawn from one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from trainables.seeds import derive_seed


@dataclass(frozen=True)
class ImageSet:
    """A labelled image set in memory: ``images`` uint8 (N, 3, H, W), ``labels`` int64 (N,) in [0, num_classes)."""

    images: Tensor
    labels: Tensor
    num_classes: int
    name: str

    def __post_init__(self) -> None:
        # Checked once here so the loader, the attacks and the methods can rely on the layout without re-checking.
        if self.images.dtype != torch.uint8 or self.images.dim() != 4 or self.images.shape[1] != 3:
            raise ValueError(f"{self.name}: images must be uint8 (N, 3, H, W), got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        if self.labels.dtype != torch.int64 or self.labels.shape != self.images.shape[:1]:
            raise ValueError(f"{self.name}: labels must be int64 ({len(self.images)},), got {self.labels.dtype} "
                             f"{tuple(self.labels.shape)}")
        if len(self.labels) and not 0 <= int(self.labels.min()) <= int(self.labels.max()) < self.num_classes:
            raise ValueError(f"{self.name}: labels outside [0, {self.num_classes})")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_size(self) -> int:
        """The images' width (models built for one input size, such as ViTs, take it)."""
        return self.images.shape[-1]

    def subset(self, idx: Tensor | Sequence[int]) -> ImageSet:
        """The images at ``idx`` (indices, in that order, or a boolean mask); ``torch.arange(n)`` gives the first n
        in file order, the RobustBench protocol."""
        if not isinstance(idx, Tensor):
            idx = torch.as_tensor(idx, dtype=torch.int64)
        return ImageSet(self.images[idx], self.labels[idx], self.num_classes, self.name)


def sample_order(n_points: int, seed: int, purpose: str) -> Tensor:
    """A random order of the indices ``0 .. n_points - 1``, the same on every machine for the same ``seed`` and
    ``purpose`` (a CPU ``torch.Generator`` seeded by :func:`derive_seed`). Its first n are a random sample of n
    points, and a smaller n's sample lies inside a larger one's."""
    return torch.randperm(n_points, generator=torch.Generator().manual_seed(derive_seed(seed, purpose)))


def evaluation_indices(n_points: int, n: int, seed: int) -> Tensor:
    """The indices into a test split of ``n_points`` of :func:`evaluation_points`, in their drawn order."""
    return sample_order(n_points, seed, "evaluation-points")[:n]


def evaluation_points(test: ImageSet, n: int, seed: int) -> ImageSet:
    """The ``n`` points of ``test`` (all of them if it has fewer) that a trial's evaluations use, a seeded random
    sample in its drawn order, never "the first n": a folder of images is read class by class, where the first n
    would hold the first classes only. The checkpoint-selection points (``eval_n``), the final points (``final_n``),
    AutoAttack's (the first ``autoattack_n`` of the final points) and a re-evaluation's (``--n``) are all prefixes of
    one order, so each smaller set lies inside the larger, and every trial and sweep with the same ``seed``
    (``subset_seed``) evaluates on the same points."""
    return test.subset(evaluation_indices(len(test), n, seed))


def seeded_subset(images: ImageSet, n: int, seed: int) -> ImageSet:
    """``n`` of the images, drawn without replacement and kept in their order in the set (e.g. BiaMAT Table 9's
    ImageNet-100k). The same ``n`` and ``seed`` draw the same images on every machine, and a smaller ``n`` draws a
    subset of what a larger one draws."""
    if not 1 <= n <= len(images):
        raise ValueError(f"seeded_subset: n={n} must be from 1 to the {len(images)} images of {images.name}")
    return images.subset(sample_order(len(images), seed, "seeded-subset")[:n].sort().values)
