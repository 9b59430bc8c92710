"""Image datasets as uint8 tensors in memory, read by name: ``load_dataset("cifar10", "train")``.

Every reader returns an :class:`ImageSet` (uint8 images (N, 3, H, W) and int64 labels, on the CPU); the loader moves it
to the device once. Files are read in their published formats (not through torchvision's dataset classes, whose md5
checks reject the small files the tests write); torchvision is used only to download where that is possible. A load
and :func:`check_dataset` (before a sweep starts) apply the same checks to each file's content (format, keys, shapes,
dtypes, label range) and raise :class:`DatasetInvalidError` naming the file, what is wrong and how to replace it.

Layout under the data root (``root`` argument, else ``$ADVSWEEP_DATA``, else ``./data``)::

    cifar-10-batches-py/data_batch_1 .. data_batch_5, test_batch     cifar10     (torchvision download)
    cifar-100-python/train, test                                     cifar100    (torchvision download)
    svhn/train_32x32.mat, test_32x32.mat, extra_32x32.mat            svhn        (torchvision download)
    imagenet32/train_data_batch_1 .. train_data_batch_10, val_data   imagenet32  (manual download, image-net.org)
    imagenet64/train_data_batch_1 .. train_data_batch_10, val_data   imagenet64, imgnet100, imgnet900 (the same)
    places365/places365_train_standard.txt, data_256_standard/       places365_32, places365_64 (torchvision
    places365/places365_val.txt, val_256/                            download, then downscaled once into
                                                                     places365_<size>_<split>.npz)

``imgnet100`` is BiaMAT's ImgNet100: the 100 classes of :func:`imgnet100_classes` (a fixed draw), labelled 0..99;
``imgnet900`` the other 900 (labels 0..899), its auxiliary data. Their splits are ``train`` and ``val``, and
``imgnet100``'s ``test`` is ``val`` (ImageNet's test labels are not public; the paper evaluates on val).

The user's own data is named by its path, ``npz:PATH`` (a ``.npz`` file, the train split only, or a folder of
``train.npz`` and ``test.npz``) or ``folder:PATH`` (torchvision's ImageFolder layout, resized once to 32x32 and
cached; ``folder@64:PATH`` at 64x64); ``root`` does not apply, and a relative PATH resolves against the current
directory (see ``trainables/user_data.py`` and :func:`absolute_dataset_name`).

``synthetic``, ``synthetic_absent`` and ``synthetic_aux`` are built-in data generated from a seed in a second or two
(``root`` is ignored; options ``seed``, ``n``, ``size``, ``robust_p``, ``nonrobust_p``; see :func:`synthetic_patterns`).
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
primary R of the same index (:func:`synthetic_aux_related`), the rest fresh robust patterns; every auxiliary image
carries the texture of a random primary class.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cache, partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from trainables import user_data
from trainables.file_checks import DatasetInvalidError, check_labels, describe, load_batch, npy_spec

log = logging.getLogger(__name__)


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


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are missing; the message names the expected paths and how to obtain them."""


def derive_seed(*keys: int | str) -> int:
    """A stable 63-bit seed for the random stream named by ``keys`` (e.g. ``(seed, "epoch", 3)``).

    Hashing the whole key keeps streams independent: ``seed + epoch`` would make (seed 1, epoch 0) replay
    (seed 0, epoch 1), and Python's ``hash`` of strings changes between processes.
    """
    digest = hashlib.blake2b(repr(keys).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def seeded_subset(images: ImageSet, n: int, seed: int) -> ImageSet:
    """``n`` of the images, drawn without replacement and kept in their order in the set (e.g. BiaMAT Table 9's
    ImageNet-100k). The same ``n`` and ``seed`` draw the same images on every machine (a CPU ``torch.Generator``
    seeded by :func:`derive_seed`), and a smaller ``n`` draws a subset of what a larger one draws."""
    if not 1 <= n <= len(images):
        raise ValueError(f"seeded_subset: n={n} must be from 1 to the {len(images)} images of {images.name}")
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(derive_seed(seed, "seeded-subset")))
    return images.subset(order[:n].sort().values)


# ---------------------------------------------------------------------------------------------------------------------
# Synthetic benchmark
# ---------------------------------------------------------------------------------------------------------------------

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


def synthetic_aux_related(related_classes: int = AUX_RELATED_CLASSES) -> dict[int, int]:
    """Auxiliary class -> the primary class whose robust pattern it reuses; other auxiliary classes are unrelated."""
    return {a: a for a in range(related_classes)}


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


def _read_synthetic(
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


def _read_synthetic_aux(
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


# ---------------------------------------------------------------------------------------------------------------------
# Readers of files in their published formats
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RowBatches:
    """Pickled dicts of size x size RGB images as rows of 3 * size**2 bytes (the R, G and B planes, each row-major)
    under ``data`` and their labels under ``label_key``: the CIFAR python layout, which ImageNet32 and 64 share."""

    files: dict[str, tuple[str, ...]]
    label_key: str
    num_classes: int
    name: str
    first_label: int = 0  # ImageNet32 and 64 number their classes 1..1000
    size: int = 32

    def batches(self, folder: Path, split: str, layout_only: bool = False) -> Iterator[tuple[Any, Any]]:
        """``(data, labels)`` of each file of ``split`` in turn, checked; DatasetInvalidError names the first bad one.
        One file at a time: a reader that keeps some classes holds one 1.5 GB ImageNet64 batch, not all ten."""
        row = 3 * self.size**2
        for path in (folder / f for f in self.files[split]):
            batch = load_batch(path, layout_only)
            missing = [key for key in ("data", self.label_key) if key not in batch]
            if missing:
                raise DatasetInvalidError(f"{path} has no {' or '.join(map(repr, missing))} key (it has "
                                          f"{sorted(map(str, batch))})")
            data = batch["data"]
            shape = getattr(data, "shape", ())
            if getattr(data, "dtype", None) != np.uint8 or len(shape) != 2 or shape[1] != row:
                raise DatasetInvalidError(f"{path}: 'data' is {describe(data)}, expected uint8 of shape (N, {row}), "
                                          f"one {self.size}x{self.size} RGB image per row")
            last = self.first_label + self.num_classes - 1
            check_labels(path, self.label_key, batch[self.label_key], shape[0], self.first_label, last)
            yield data, batch[self.label_key]

    def read(self, folder: Path, split: str, classes: Sequence[int] | None = None, name: str | None = None) -> ImageSet:
        """The images of ``split``; with ``classes`` (0-based ids) only theirs, labelled by their position there."""
        keep = None if classes is None else np.full(self.num_classes, -1, dtype=np.int64)
        if keep is not None:
            keep[list(classes)] = np.arange(len(classes))
        parts, labels = [], []
        for data, y in self.batches(folder, split):
            y = np.asarray(y, dtype=np.int64) - self.first_label
            if keep is not None:
                y = keep[y]
                data, y = data[y >= 0], y[y >= 0]
            parts.append(data)
            labels.append(y)
        images = torch.from_numpy(np.ascontiguousarray(np.concatenate(parts), dtype=np.uint8))
        return ImageSet(images.view(-1, 3, self.size, self.size), torch.from_numpy(np.concatenate(labels)),
                        self.num_classes if classes is None else len(classes), name or self.name)

    def check(self, folder: Path, split: str) -> None:
        for _ in self.batches(folder, split, layout_only=True):
            pass


_CIFAR10_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
_CIFAR100_FILES = {"train": ("train",), "test": ("test",)}
_SVHN_FILES = {s: (f"{s}_32x32.mat",) for s in ("train", "test", "extra")}
_IMAGENET32_FILES = {"train": tuple(f"train_data_batch_{i}" for i in range(1, 11)), "val": ("val_data",)}
_PLACES365_FILES = {
    "train": ("places365_train_standard.txt", "data_256_standard"),
    "val": ("places365_val.txt", "val_256"),
}
_PLACES365_SPLITS = {"train": "train-standard", "val": "val"}  # our split name -> torchvision's


_CIFAR10 = _RowBatches(_CIFAR10_FILES, "labels", 10, "cifar10")
_CIFAR100 = _RowBatches(_CIFAR100_FILES, "fine_labels", 100, "cifar100")
_IMAGENET32 = _RowBatches(_IMAGENET32_FILES, "labels", 1000, "imagenet32", first_label=1)  # Python 3 pickles
_IMAGENET64 = replace(_IMAGENET32, name="imagenet64", size=64)  # the same file names, in <root>/imagenet64
# imgnet100 and imgnet900: imagenet64's files, with ImageNet's validation images as their test split (ImageNet's own
# test labels are not public, and the BiaMAT paper evaluates ImgNet100 on the validation images).
_IMGNET_SPLITS = replace(_IMAGENET64, files={**_IMAGENET32_FILES, "test": _IMAGENET32_FILES["val"]})
# Names the one draw of imgnet100's classes: changing it changes the task.
IMGNET100_DRAW = "imgnet100-classes"


@cache
def imgnet100_classes() -> tuple[int, ...]:
    """The 100 ImageNet classes of ``imgnet100``, sorted, as ``imagenet64`` numbers them (0..999: the files' label
    minus 1); ``imgnet100`` labels them 0..99 in this order, and ``imgnet900`` holds the other 900, labelled 0..899 in
    their sorted order. Each class is ranked by a hash of (``IMGNET100_DRAW``, class), so the draw is the same on every
    machine and with every library version; every trial that reads either set records it as its run's tag
    ``imgnet100_classes`` (trainables/runtime.py)."""
    return tuple(sorted(sorted(range(1000), key=lambda c: derive_seed(IMGNET100_DRAW, c))[:100]))


def _read_imgnet(folder: Path, split: str, primary: bool) -> ImageSet:
    chosen = imgnet100_classes()
    classes = chosen if primary else tuple(sorted(set(range(1000)) - set(chosen)))
    return _IMGNET_SPLITS.read(folder, split, classes, "imgnet100" if primary else "imgnet900")


def _svhn_arrays(folder: Path, split: str, layout_only: bool = False) -> tuple[np.ndarray | None, np.ndarray]:
    """``X`` (32, 32, 3, N) uint8 and ``y`` (N, 1) in 1..10 of an SVHN file, checked. With ``layout_only`` X is not
    read (None): its shape and type come from the file's variable headers."""
    from scipy.io import loadmat, whosmat  # imported here: only SVHN needs scipy

    path = folder / _SVHN_FILES[split][0]
    try:
        if layout_only:
            found = {name: (tuple(shape), kind) for name, shape, kind in whosmat(path)}
            mat = loadmat(path, variable_names=["y"])
        else:
            mat = loadmat(path)
            found = {name: (v.shape, v.dtype.name) for name, v in mat.items() if isinstance(v, np.ndarray)}
    except Exception as exc:  # noqa: BLE001 - scipy raises several types for what is not a MATLAB v5 file
        raise DatasetInvalidError(f"{path} is not a readable MATLAB file ({type(exc).__name__}: {exc})") from None
    if "X" not in found or "y" not in mat:
        raise DatasetInvalidError(f"{path} has no 'X' or 'y' variable (it has {sorted(found)})")
    shape, kind = found["X"]
    if kind != "uint8" or len(shape) != 4 or shape[:3] != (32, 32, 3):
        raise DatasetInvalidError(f"{path}: 'X' is {kind} of shape {shape}, expected uint8 of shape (32, 32, 3, N)")
    check_labels(path, "y", mat["y"].reshape(-1), shape[3], 1, 10)
    return (None if layout_only else mat["X"]), mat["y"]


def _read_svhn(folder: Path, split: str) -> ImageSet:
    x, y = _svhn_arrays(folder, split)
    images = torch.from_numpy(x).permute(3, 2, 0, 1).contiguous()  # (H, W, C, N) -> (N, C, H, W)
    labels = torch.from_numpy(y.reshape(-1).astype(np.int64)) % 10  # label 10 is the digit 0
    return ImageSet(images, labels, 10, "svhn")


def _check_svhn(folder: Path, split: str) -> None:
    _svhn_arrays(folder, split, layout_only=True)


def _places365_cache(folder: Path, split: str, size: int) -> Path:
    return folder / f"places365_{size}_{split}.npz"  # one cache per size: places365_32 and places365_64 coexist


def _places365_arrays(cache: Path, size: int, layout_only: bool = False) -> tuple[Any, np.ndarray]:
    """``images`` (N, 3, size, size) uint8 and ``labels`` (N,) of a Places365 cache, checked; with ``layout_only`` the
    images are not read (an :class:`_ArraySpec`)."""
    rebuild = "delete it, and the next load rebuilds it from the images"
    try:
        with np.load(cache) as f:
            labels = f["labels"]
            images = npy_spec(f.zip, "images.npy") if layout_only else f["images"]
    except Exception as exc:  # noqa: BLE001 - numpy and zipfile raise several types for a damaged archive
        raise DatasetInvalidError(f"{cache} is not a readable .npz cache ({type(exc).__name__}: {exc}): "
                                  f"{rebuild}") from None
    if images.dtype != np.uint8 or images.shape[1:] != (3, size, size):
        raise DatasetInvalidError(f"{cache}: 'images' is {describe(images)}, expected uint8 of shape "
                                  f"(N, 3, {size}, {size}): {rebuild}")
    check_labels(cache, "labels", labels, images.shape[0], 0, 364)
    return images, labels


def _places365_entries(path: Path) -> list[tuple[str, int]]:
    """The ``IMAGE LABEL`` lines of a Places365 list file; DatasetInvalidError names the first bad line."""
    try:
        lines = path.read_text().splitlines()
    except UnicodeDecodeError as exc:
        raise DatasetInvalidError(f"{path} is not a text file ({exc})") from None
    entries = []
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) > 364:
            raise DatasetInvalidError(f"{path}, line {number}: {line[:80]!r} is not 'IMAGE LABEL' with a label from 0 "
                                      "to 364")
        entries.append((parts[0], int(parts[1])))
    return entries


def _read_places365(folder: Path, split: str, *, size: int) -> ImageSet:
    """Places365 at size x size (32 beside CIFAR, 64 beside ImgNet100: BiaMAT resizes auxiliary data to the primary
    data's size): downscaled from torchvision's 256x256 release on the first load, then read from a cache."""
    cache = _places365_cache(folder, split, size)
    if not cache.exists():
        _build_places365_cache(folder, split, cache, size)
    images, labels = _places365_arrays(cache, size)
    return ImageSet(torch.from_numpy(images), torch.from_numpy(labels), 365, f"places365_{size}")


def _check_places365(folder: Path, split: str, *, size: int) -> None:
    cache = _places365_cache(folder, split, size)
    if cache.exists():
        _places365_arrays(cache, size, layout_only=True)
    else:
        _places365_entries(folder / _PLACES365_FILES[split][0])


def _build_places365_cache(folder: Path, split: str, cache: Path, size: int) -> None:
    from PIL import Image

    list_file, image_dir = _PLACES365_FILES[split]
    entries = _places365_entries(folder / list_file)
    log.info("downscaling %d Places365 %s images to %dx%d once, into %s", len(entries), split, size, size, cache)
    images = np.empty((len(entries), size, size, 3), dtype=np.uint8)
    for i, (relative, _) in enumerate(entries):
        with Image.open(folder / image_dir / relative.lstrip("/")) as img:
            # Pillow's bilinear filter widens with the scale factor when shrinking, so this is antialiased.
            images[i] = np.asarray(img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
    labels = np.array([label for _, label in entries], dtype=np.int64)
    user_data.save_npz_atomic(cache, images=images.transpose(0, 3, 1, 2), labels=labels)


def _places365_missing(folder: Path, split: str, *, size: int) -> list[Path]:
    if _places365_cache(folder, split, size).exists():
        return []  # the cache is all a load needs
    return [folder / f for f in _PLACES365_FILES[split] if not (folder / f).exists()]


def _torchvision_download(cls_name: str, folder: Path, split: str) -> None:
    import torchvision.datasets as tvd

    if cls_name in ("CIFAR10", "CIFAR100"):
        getattr(tvd, cls_name)(str(folder.parent), train=split == "train", download=True)
    elif cls_name == "SVHN":
        tvd.SVHN(str(folder), split=split, download=True)
    else:
        tvd.Places365(str(folder), split=_PLACES365_SPLITS[split], small=True, download=True)


# ---------------------------------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reader:
    """How to find, obtain and read one dataset. Built-in data has ``folder=None``: it needs no files."""

    read: Callable[..., ImageSet]  # read(folder, split, **options); read(split, **options) for built-in data
    splits: tuple[str, ...]
    check_splits: tuple[str, ...]  # what a sweep needs by default: train and test for a primary set, train for aux
    folder: str | None = None
    files: dict[str, tuple[str, ...]] | None = None  # split -> paths relative to the folder
    missing: Callable[[Path, str], list[Path]] | None = None  # replaces the ``files`` check where a cache can stand in
    how_to_get: str = ""  # formatted with root, folder and split
    torchvision_class: str | None = None  # enables download=True
    # check(folder, split): the files' layout, keys, shapes, dtypes and labels, by the checks ``read`` applies to what
    # it loads, without reading the pixels; DatasetInvalidError names the first bad file.
    check: Callable[[Path, str], None] | None = None
    # The user's own data (npz:, folder:): how to fix a refused file (else: replace it with the published one), and
    # what to do instead of asking for a split it lacks.
    fix: str | None = None
    split_hint: str = ""


def _torchvision_hint(call: str) -> str:
    return f'download it with: python -c "import torchvision; torchvision.datasets.{call}" (or pass download=True)'


def _imagenet_hint(size: int, zips: str) -> str:
    return (f"download it by hand (it needs an image-net.org login): from https://image-net.org/download-images take "
            f"'Downsampled ImageNet {size}x{size}' ({zips}) and unzip the batch files into {{folder}}")


_IMAGENET64_HINT = _imagenet_hint(64, "Imagenet64_train_part1.zip, Imagenet64_train_part2.zip, Imagenet64_val.zip")


def _places365_reader(size: int) -> _Reader:
    """Places365 downscaled to size x size, from the same torchvision files; each size caches its own images."""
    return _Reader(
        partial(_read_places365, size=size), splits=("train", "val"), check_splits=("train",), folder="places365",
        files=_PLACES365_FILES, missing=partial(_places365_missing, size=size),
        how_to_get=_torchvision_hint("Places365('{folder}', split='train-standard', small=True, download=True)")
        + f", with split='val' for val; the first load writes a {size}x{size} cache, places365_{size}_{{split}}.npz, "
        "next to the files (train has 1.8M images, so that one-off downscale takes a while)",
        torchvision_class="Places365", check=partial(_check_places365, size=size),
    )


_READERS: dict[str, _Reader] = {
    "cifar10": _Reader(
        _CIFAR10.read, splits=("train", "test"), check_splits=("train", "test"), folder="cifar-10-batches-py",
        files=_CIFAR10_FILES, how_to_get=_torchvision_hint("CIFAR10('{root}', download=True)"),
        torchvision_class="CIFAR10", check=_CIFAR10.check,
    ),
    "cifar100": _Reader(
        _CIFAR100.read, splits=("train", "test"), check_splits=("train", "test"), folder="cifar-100-python",
        files=_CIFAR100_FILES, how_to_get=_torchvision_hint("CIFAR100('{root}', download=True)"),
        torchvision_class="CIFAR100", check=_CIFAR100.check,
    ),
    "svhn": _Reader(
        _read_svhn, splits=("train", "test", "extra"), check_splits=("train", "test"), folder="svhn",
        files=_SVHN_FILES, how_to_get=_torchvision_hint("SVHN('{folder}', split='{split}', download=True)"),
        torchvision_class="SVHN", check=_check_svhn,
    ),
    "imagenet32": _Reader(
        _IMAGENET32.read, splits=("train", "val"), check_splits=("train",), folder="imagenet32",
        files=_IMAGENET32_FILES, check=_IMAGENET32.check,
        how_to_get=_imagenet_hint(32, "Imagenet32_train.zip, Imagenet32_val.zip"),
    ),
    "imagenet64": _Reader(
        _IMAGENET64.read, splits=("train", "val"), check_splits=("train",), folder="imagenet64",
        files=_IMAGENET32_FILES, check=_IMAGENET64.check, how_to_get=_IMAGENET64_HINT,
    ),
    "imgnet100": _Reader(
        partial(_read_imgnet, primary=True), splits=("train", "val", "test"), check_splits=("train", "test"),
        folder="imagenet64", files=_IMGNET_SPLITS.files, check=_IMGNET_SPLITS.check, how_to_get=_IMAGENET64_HINT,
    ),
    "imgnet900": _Reader(
        partial(_read_imgnet, primary=False), splits=("train", "val"), check_splits=("train",), folder="imagenet64",
        files=_IMGNET_SPLITS.files, check=_IMGNET_SPLITS.check, how_to_get=_IMAGENET64_HINT,
    ),
    "places365_32": _places365_reader(32),
    "places365_64": _places365_reader(64),  # BiaMAT's auxiliary Places365 beside the 64x64 ImgNet100
    "synthetic": _Reader(_read_synthetic, splits=("train", "test"), check_splits=("train", "test")),
    "synthetic_absent": _Reader(partial(_read_synthetic, robust_decoy=False), splits=("train", "test"),
                                check_splits=("train", "test")),
    "synthetic_aux": _Reader(_read_synthetic_aux, splits=("train", "test"), check_splits=("train",)),
    # No class shares a primary robust pattern: an auxiliary set unrelated to the primary task (as SVHN is to
    # CIFAR-10), beside synthetic_aux's half-related one (as ImageNet), so BiaMAT's gate has two cases to tell apart.
    "synthetic_aux_unrelated": _Reader(partial(_read_synthetic_aux, related_classes=0, name="synthetic_aux_unrelated"),
                                       splits=("train", "test"), check_splits=("train",)),
}


# The user's own data, named "KIND:PATH" (trainables/user_data.py); not in dataset_names(), which lists fixed names.
USER_DATA_KINDS = ("npz", "folder")


def _image_set(arrays: user_data.Arrays, name: str) -> ImageSet:
    return ImageSet(torch.from_numpy(arrays.images), torch.from_numpy(arrays.labels), arrays.num_classes, name)


def _npz_arrays(folder: Path, split: str, files: dict[str, tuple[str, ...]], layout_only: bool = False
                ) -> user_data.Arrays:
    # A split's own file is its last one (test lists train's first: its labels give the number of classes).
    classes = None if split == "train" else user_data.npz_num_classes(folder / files["train"][-1])
    return user_data.npz_arrays(folder / files[split][-1], classes, layout_only)


def _read_npz(folder: Path, split: str, *, files: dict[str, tuple[str, ...]], name: str) -> ImageSet:
    return _image_set(_npz_arrays(folder, split, files), name)


def _read_folder(size: int, name: str, folder: Path, split: str) -> ImageSet:
    # The size is bound positionally from the name (folder@SIZE:PATH), so no load option can contradict the name.
    return _image_set(user_data.folder_arrays(folder, split, size), name)


def _user_name(name: str) -> tuple[str, int, str] | None:
    """``(kind, size, PATH)`` of ``npz:PATH``, ``folder:PATH`` or ``folder@SIZE:PATH`` (the images' side: SIZE, else
    ``user_data.FOLDER_SIZE``; 0 for npz, whose images keep their own), else None. The size is written before the
    colon, so any PATH, one with ``@`` in it too, stays a path. ValueError for a bad ``@SIZE``, with the fix."""
    prefix, colon, text = name.partition(":")
    kind, at, size = prefix.partition("@")
    if not colon or kind not in USER_DATA_KINDS or not text:
        return None
    if not at:
        return kind, user_data.FOLDER_SIZE if kind == "folder" else 0, text
    if kind != "folder":
        raise ValueError(f"dataset {name!r}: only folder: data takes @SIZE (an npz file's images keep their own "
                         f"size); name it {kind}:{text}")
    if not (size.isascii() and size.isdigit()) or size[0] == "0" or int(size) < user_data.MIN_SIZE:
        raise ValueError(f"dataset {name!r}: {size!r} is not an image size; write folder@SIZE:PATH with SIZE a whole "
                         f"number of pixels, at least {user_data.MIN_SIZE} (e.g. folder@64:{text})")
    return kind, int(size), text


def _user_reader(name: str) -> _Reader | None:
    """The reader of ``npz:PATH``, ``folder:PATH`` or ``folder@SIZE:PATH`` (a relative PATH against the current
    directory), else None."""
    parsed = _user_name(name)
    if parsed is None:
        return None
    kind, size, text = parsed
    path = Path(text).absolute()
    relative = "" if Path(text).is_absolute() else " (a relative PATH resolves against the current directory)"
    if kind == "folder":
        return _Reader(partial(_read_folder, size, name), splits=("train", "test"), check_splits=("train", "test"),
                       folder=str(path), files={"train": ("train",), "test": ("train", "test")},
                       check=partial(user_data.check_folder, size=size), how_to_get=user_data.FOLDER_HOW + relative,
                       fix=f"To fix it, {user_data.FOLDER_HOW}")
    if path.is_file() or (not path.is_dir() and path.suffix == ".npz"):  # one file: the train split only
        folder, files = path.parent, {"train": (path.name,)}
        hint = "; a .npz file is the train split only: for a test split too, pass npz:FOLDER of train.npz and test.npz"
    else:
        folder, files, hint = path, {"train": ("train.npz",), "test": ("train.npz", "test.npz")}, ""
    return _Reader(partial(_read_npz, files=files, name=name), splits=tuple(files), check_splits=tuple(files),
                   folder=str(folder), files=files, check=partial(_npz_arrays, files=files, layout_only=True),
                   how_to_get=user_data.NPZ_HOW + relative, fix=f"To fix it, {user_data.NPZ_HOW}", split_hint=hint)


def dataset_names() -> list[str]:
    """The registered dataset names, sorted (besides them, ``npz:PATH``, ``folder:PATH`` and ``folder@SIZE:PATH`` name
    the user's data)."""
    return sorted(_READERS)


def validate_dataset_name(name: str) -> None:
    """ValueError, listing the valid names, unless ``name`` is registered or is ``npz:PATH``, ``folder:PATH`` or
    ``folder@SIZE:PATH`` with a valid SIZE (the form only: :func:`check_dataset` looks at the files)."""
    _reader(name)


def absolute_dataset_name(name: str) -> str:
    """``name`` with a user-data PATH made absolute against the current directory (``npz:gen/1m.npz`` ->
    ``npz:/home/me/gen/1m.npz``, ``folder@64:imgs`` -> ``folder@64:/home/me/imgs``); other names unchanged. For where a
    sweep builds its trials' configs: Ray runs a trial in another directory, where a relative PATH would name nothing.
    A bad ``@SIZE`` is left for the config's validation to refuse."""
    try:
        parsed = _user_name(name)
    except ValueError:
        return name
    return name if parsed is None else f"{name.partition(':')[0]}:{os.path.abspath(parsed[2])}"


def is_builtin(name: str) -> bool:
    """Whether ``name`` is generated in memory (the synthetic sets) rather than read from files."""
    return _reader(name).folder is None


def _reader(name: str) -> _Reader:
    reader = _READERS.get(name) or _user_reader(name)
    if reader is None:
        raise ValueError(f"unknown dataset {name!r}; registered: {dataset_names()}, or npz:PATH or folder:PATH "
                         "(folder@SIZE:PATH for SIZExSIZE images) for your own data")
    return reader


def _check_split(name: str, reader: _Reader, split: str) -> None:
    if split not in reader.splits:
        raise ValueError(f"dataset {name!r} has no split {split!r}; splits: {list(reader.splits)}{reader.split_hint}")


def data_root(root: str | os.PathLike | None) -> Path:
    """Where the datasets are: ``root``, else ``$ADVSWEEP_DATA``, else ``./data``."""
    return Path(root if root is not None else os.environ.get("ADVSWEEP_DATA", "data"))


def _require_files(name: str, reader: _Reader, root: Path, split: str) -> Path:
    """The dataset's folder, or DatasetNotFoundError naming what is missing and how to get it."""
    folder = root / reader.folder
    if reader.missing is not None:
        missing = reader.missing(folder, split)
    else:
        missing = [folder / f for f in reader.files[split] if not (folder / f).exists()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        expected = ", ".join(reader.files[split])
        raise DatasetNotFoundError(
            f"{name} ({split}) not found: expected {expected} in {folder}; missing {shown}. "
            f"To get it, {reader.how_to_get.format(root=root, folder=folder, split=split)}."
            + ("" if Path(reader.folder).is_absolute() else " The data root is the root argument, else $ADVSWEEP_DATA, "
               "else ./data.")  # the user's own data is named by its path
        )
    return folder


@contextlib.contextmanager
def _naming_the_fix(name: str, reader: _Reader, root: Path, split: str) -> Iterator[None]:
    """Adds the dataset, the split and how to get the files again to a DatasetInvalidError (which names the file and
    what is wrong with it): the same message from check_dataset before a sweep and from a trial's own load."""
    try:
        yield
    except DatasetInvalidError as exc:
        how = reader.how_to_get.format(root=root, folder=root / reader.folder, split=split)
        fix = reader.fix or f"Replace the file with the published one: {how}"
        raise DatasetInvalidError(f"{name} ({split}): {exc}. {fix}") from None


def load_dataset(name: str, split: str, root: str | os.PathLike | None = None, **options: object) -> ImageSet:
    """Read split ``split`` of dataset ``name`` into memory.

    File-based sets look in ``<root>/<folder>`` (module docstring); ``download=True`` fetches what torchvision can
    fetch first. Built-in sets ignore ``root`` and take their own options (``seed``, ``n``, ``size``, ...).
    """
    reader = _reader(name)
    _check_split(name, reader, split)
    if reader.folder is None:
        return reader.read(split, **options)
    resolved = data_root(root)
    if options.pop("download", False):
        if reader.torchvision_class is None:
            how = reader.how_to_get.format(root=resolved, folder=resolved / reader.folder, split=split)
            raise ValueError(f"{name} cannot be downloaded automatically: {how}")
        _torchvision_download(reader.torchvision_class, resolved / reader.folder, split)
    folder = _require_files(name, reader, resolved, split)
    with _naming_the_fix(name, reader, resolved, split):
        return reader.read(folder, split, **options)


def check_dataset(
    name: str, root: str | os.PathLike | None = None, *, splits: Sequence[str] | None = None, **options: object
) -> None:
    """Fail fast before a sweep starts, without loading the images: an unknown name or split or option raises
    ValueError or TypeError, missing files DatasetNotFoundError, and files whose content a trial's load would refuse
    (not the published format, damaged, truncated, wrong keys, shapes or dtypes, labels out of range)
    DatasetInvalidError, by the same checks the load applies. Only the files' structure, array headers and labels are
    read: 0.3 MB of CIFAR-10's 185 MB, in 0.14 s for its Python-2 pickles and 3 ms for Python-3 ones, where a load
    reads it all in 0.2-0.7 s (shared 2-core VM, files in the page cache, 2026-12-01). ``splits`` defaults to what a
    trial reads (train and test; train only for the auxiliary-only sets imagenet32 and places365_*)."""
    reader = _reader(name)
    for split in reader.check_splits if splits is None else splits:
        _check_split(name, reader, split)
        if reader.folder is None:
            inspect.signature(reader.read).bind(split, **options)  # TypeError on an unknown option
        else:
            inspect.signature(reader.read).bind(None, split, **{k: v for k, v in options.items() if k != "download"})
            resolved = data_root(root)
            folder = _require_files(name, reader, resolved, split)
            with _naming_the_fix(name, reader, resolved, split):
                reader.check(folder, split)
