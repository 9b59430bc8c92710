"""Readers of dataset files in their published formats, each returning an :class:`ImageSet`, and beside each a check
of the files' content (layout, keys, shapes, dtypes, labels) by the reader's own rules, without reading the pixels.
trainables/datasets.py names the sets and finds their files.

Files are read in their published formats, not through torchvision's dataset classes, whose md5 checks reject the
small files the tests write; torchvision is used only to download (:func:`torchvision_download`). A bad file raises
:class:`DatasetInvalidError` (trainables/file_checks.py) naming the file and what is wrong with it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainables import user_data
from trainables.file_checks import DatasetInvalidError, check_labels, describe, load_batch, npy_spec
from trainables.image_set import ImageSet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RowBatches:
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
SVHN_FILES = {s: (f"{s}_32x32.mat",) for s in ("train", "test", "extra")}
_IMAGENET32_FILES = {"train": tuple(f"train_data_batch_{i}" for i in range(1, 11)), "val": ("val_data",)}
PLACES365_FILES = {
    "train": ("places365_train_standard.txt", "data_256_standard"),
    "val": ("places365_val.txt", "val_256"),
}
_PLACES365_SPLITS = {"train": "train-standard", "val": "val"}  # our split name -> torchvision's


CIFAR10 = RowBatches(_CIFAR10_FILES, "labels", 10, "cifar10")
CIFAR100 = RowBatches(_CIFAR100_FILES, "fine_labels", 100, "cifar100")
IMAGENET32 = RowBatches(_IMAGENET32_FILES, "labels", 1000, "imagenet32", first_label=1)  # Python 3 pickles
IMAGENET64 = replace(IMAGENET32, name="imagenet64", size=64)  # the same file names, in <root>/imagenet64
# imgnet100 and imgnet900: imagenet64's files, with ImageNet's validation images as their test split (ImageNet's own
# test labels are not public, and the BiaMAT paper evaluates ImgNet100 on the validation images).
IMGNET_SPLITS = replace(IMAGENET64, files={**_IMAGENET32_FILES, "test": _IMAGENET32_FILES["val"]})
def _svhn_arrays(folder: Path, split: str, layout_only: bool = False) -> tuple[np.ndarray | None, np.ndarray]:
    """``X`` (32, 32, 3, N) uint8 and ``y`` (N, 1) in 1..10 of an SVHN file, checked. With ``layout_only`` X is not
    read (None): its shape and type come from the file's variable headers."""
    from scipy.io import loadmat, whosmat  # imported here: only SVHN needs scipy

    path = folder / SVHN_FILES[split][0]
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


def read_svhn(folder: Path, split: str) -> ImageSet:
    x, y = _svhn_arrays(folder, split)
    images = torch.from_numpy(x).permute(3, 2, 0, 1).contiguous()  # (H, W, C, N) -> (N, C, H, W)
    labels = torch.from_numpy(y.reshape(-1).astype(np.int64)) % 10  # label 10 is the digit 0
    return ImageSet(images, labels, 10, "svhn")


def check_svhn(folder: Path, split: str) -> None:
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


def read_places365(folder: Path, split: str, *, size: int) -> ImageSet:
    """Places365 at size x size (32 beside CIFAR, 64 beside ImgNet100: BiaMAT resizes auxiliary data to the primary
    data's size): downscaled from torchvision's 256x256 release on the first load, then read from a cache."""
    cache = _places365_cache(folder, split, size)
    if not cache.exists():
        _build_places365_cache(folder, split, cache, size)
    images, labels = _places365_arrays(cache, size)
    return ImageSet(torch.from_numpy(images), torch.from_numpy(labels), 365, f"places365_{size}")


def check_places365(folder: Path, split: str, *, size: int) -> None:
    cache = _places365_cache(folder, split, size)
    if cache.exists():
        _places365_arrays(cache, size, layout_only=True)
    else:
        _places365_entries(folder / PLACES365_FILES[split][0])


def _build_places365_cache(folder: Path, split: str, cache: Path, size: int) -> None:
    from PIL import Image

    list_file, image_dir = PLACES365_FILES[split]
    entries = _places365_entries(folder / list_file)
    log.info("downscaling %d Places365 %s images to %dx%d once, into %s", len(entries), split, size, size, cache)
    images = np.empty((len(entries), size, size, 3), dtype=np.uint8)
    for i, (relative, _) in enumerate(entries):
        with Image.open(folder / image_dir / relative.lstrip("/")) as img:
            # Pillow's bilinear filter widens with the scale factor when shrinking, so this is antialiased.
            images[i] = np.asarray(img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
    labels = np.array([label for _, label in entries], dtype=np.int64)
    user_data.save_npz_atomic(cache, images=images.transpose(0, 3, 1, 2), labels=labels)


def places365_missing(folder: Path, split: str, *, size: int) -> list[Path]:
    if _places365_cache(folder, split, size).exists():
        return []  # the cache is all a load needs
    return [folder / f for f in PLACES365_FILES[split] if not (folder / f).exists()]


def torchvision_download(cls_name: str, folder: Path, split: str) -> None:
    import torchvision.datasets as tvd

    if cls_name in ("CIFAR10", "CIFAR100"):
        getattr(tvd, cls_name)(str(folder.parent), train=split == "train", download=True)
    elif cls_name == "SVHN":
        tvd.SVHN(str(folder), split=split, download=True)
    else:
        tvd.Places365(str(folder), split=_PLACES365_SPLITS[split], small=True, download=True)


# --- the user's own data (trainables/user_data.py) --------------------------------------------------------------------


def _image_set(arrays: user_data.Arrays, name: str) -> ImageSet:
    return ImageSet(torch.from_numpy(arrays.images), torch.from_numpy(arrays.labels), arrays.num_classes, name)


def npz_arrays(folder: Path, split: str, files: dict[str, tuple[str, ...]], layout_only: bool = False
               ) -> user_data.Arrays:
    # A split's own file is its last one (test lists train's first: its labels give the number of classes).
    classes = None if split == "train" else user_data.npz_num_classes(folder / files["train"][-1])
    return user_data.npz_arrays(folder / files[split][-1], classes, layout_only)


def read_npz(folder: Path, split: str, *, files: dict[str, tuple[str, ...]], name: str) -> ImageSet:
    return _image_set(npz_arrays(folder, split, files), name)


def read_folder(size: int, name: str, folder: Path, split: str) -> ImageSet:
    # The size is bound positionally from the name (folder@SIZE:PATH), so no load option can contradict the name.
    return _image_set(user_data.folder_arrays(folder, split, size), name)
