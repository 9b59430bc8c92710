"""The user's own images, as the dataset names ``npz:PATH`` and ``folder:PATH`` (``trainables/datasets.py`` registers
them): the arrays and their checks, which ``dataset_files.py`` turns into an ``ImageSet``.

``npz:PATH``: arrays ``image`` (or ``images``) uint8 (N, H, W, 3) or (N, 3, H, W), told apart by where the 3 is, and
``label`` (or ``labels``) integers >= 0 (N,). A ``.npz`` file is the train split only (the published DDPM-generated
CIFAR-10 data, 1M images, is one); a folder holds ``train.npz`` and ``test.npz``. The number of classes is
max(label) + 1 over the train split.

``folder:PATH``: torchvision's ImageFolder layout, ``PATH/train/<class>/<image>`` and ``PATH/test/<class>/<image>``.
The classes are train's folder names, sorted (test may lack some, not add any). A folder of test images only
(``PATH/test`` without ``PATH/train``, for a config's ``test_data``) takes its own test folder names, sorted: name
them so that their order is the training labels' (``0``..``9``, zero-padded past 9: ``00``..``11``). The images are resized once to
``size`` x ``size`` (aspect ratio not kept, bilinear with antialiasing, RGB), 32 (:data:`FOLDER_SIZE`) unless the
name says otherwise: ``folder@64:PATH`` is the same folder at 64x64. The size sits before the colon, in the part of
the name that is never a path, so no PATH (``@`` in it or not) is read as a size; being part of the name, it reaches
every trial config, MLflow param and re-evaluation that names the data. The images are cached in
``PATH/.advsweep-cache/<split>-<size>.npz``, which is reused while it is newer than the split's folder, its class
folders and ``PATH/train`` (adding, removing or renaming an image changes its folder's time; editing one in place
does not: then delete the cache folder). The check before a sweep opens every image's header without decoding it
(:func:`check_folder`), or only reads the cache's layout while that cache is fresh.

A relative PATH resolves against the current directory of the process that reads it.
"""

from __future__ import annotations

import logging
import os
import struct
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from trainables.file_checks import ArraySpec, DatasetInvalidError, check_labels, describe, npy_spec, read_npy_header

if TYPE_CHECKING:
    from torchvision.datasets import ImageFolder

log = logging.getLogger(__name__)

IMAGE_KEYS = ("image", "images")
LABEL_KEYS = ("label", "labels")
# How to make the files, as a message ends "To get it, ..." or "To fix it, ...".
NPZ_HOW = ("write it with np.savez(FILE, image=uint8 array (N, H, W, 3) or (N, 3, H, W), label=integer array (N,) "
           "of classes 0..K-1)")
FOLDER_HOW = ("lay the images out as torchvision's ImageFolder does: PATH/train/<class>/<image> and "
              "PATH/test/<class>/<image>, test's classes among train's (a damaged cache: delete PATH/.advsweep-cache)")
CACHE_FOLDER = ".advsweep-cache"
FOLDER_SIZE = 32  # the side of folder:PATH's images; folder@SIZE:PATH gives another
MIN_SIZE = 4  # a cache of (N, 3, 3, 3) images would not say where its channels are


@dataclass(frozen=True)
class Arrays:
    """``images`` uint8 (N, 3, H, W) (an :class:`ArraySpec` in a layout check), ``labels`` int64 (N,)."""

    images: np.ndarray | ArraySpec
    labels: np.ndarray
    num_classes: int


def _member(path: Path, archive: zipfile.ZipFile, keys: tuple[str, ...]) -> tuple[str, str]:
    """The key and archive member of the one array named by ``keys`` (``image`` or ``images``)."""
    found = [key for key in keys if f"{key}.npy" in archive.namelist()]
    if len(found) != 1:
        held = sorted(name.removesuffix(".npy") for name in archive.namelist())
        what = "both" if found else "neither"
        raise DatasetInvalidError(f"{path} has {what} of the arrays {' and '.join(map(repr, keys))} (it has {held})")
    return found[0], f"{found[0]}.npy"


def _channels_first(path: Path, key: str, spec: ArraySpec) -> bool:
    """Whether 4-D uint8 images with 3 channels are (N, 3, H, W) rather than (N, H, W, 3)."""
    shape = spec.shape
    if spec.dtype != np.uint8 or len(shape) != 4 or 3 not in (shape[1], shape[3]):
        raise DatasetInvalidError(f"{path}: {key!r} is {describe(spec)}, expected uint8 images of shape (N, H, W, 3) "
                                  "or (N, 3, H, W)")
    if shape[1] == shape[3] == 3:
        raise DatasetInvalidError(f"{path}: {key!r} has shape {shape}: 3 in both places, so its channel axis is "
                                  "ambiguous; store it as (N, H, W, 3) with H, W other than 3")
    if not shape[0]:
        raise DatasetInvalidError(f"{path}: {key!r} holds no images")
    return shape[1] == 3


def _load_member(path: Path, archive: zipfile.ZipFile, member: str) -> np.ndarray:
    """An array of the archive, memory-mapped when it is stored uncompressed (``np.savez``; numpy ignores
    ``mmap_mode`` for ``.npz``), so 3 GB of images are copied once, into their final layout, not read and then
    copied."""
    info = archive.getinfo(member)
    if info.compress_type != zipfile.ZIP_STORED:
        with archive.open(member) as f:
            return np.lib.format.read_array(f)
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)  # the local file header, whose name and extra field precede the member's bytes
        if local[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"no local header for {member}")
        name_length, extra_length = struct.unpack("<HH", local[26:30])
        start = info.header_offset + 30 + name_length + extra_length
        f.seek(start)
        shape, fortran, dtype = read_npy_header(f)
        offset = f.tell()
    if offset - start + dtype.itemsize * int(np.prod(shape)) > info.file_size:
        raise EOFError(f"{member} holds fewer bytes than its header's shape {shape} needs")
    return np.memmap(path, dtype, "r", offset, shape, "F" if fortran else "C")


def npz_arrays(path: Path, num_classes: int | None = None, layout_only: bool = False) -> Arrays:
    """The images and labels of an npz file, checked before any pixel is read; with ``layout_only`` the pixels are
    never read. Labels must be below ``num_classes``, which defaults to max(label) + 1 (the train split's own)."""
    try:
        with zipfile.ZipFile(path) as archive:
            image_key, image_member = _member(path, archive, IMAGE_KEYS)
            label_key, label_member = _member(path, archive, LABEL_KEYS)
            spec = npy_spec(archive, image_member)
            with archive.open(label_member) as f:
                labels = np.lib.format.read_array(f, allow_pickle=False)
            channels_first = _channels_first(path, image_key, spec)
            n, *rest = spec.shape
            if labels.ndim != 1:
                raise DatasetInvalidError(f"{path}: {label_key!r} is {describe(labels)}, expected one label per image "
                                          f"(shape ({n},))")
            if num_classes is None:  # the train split: its own classes (labels of another kind fail just below)
                num_classes = int(labels.max()) + 1 if labels.size and labels.dtype.kind in "iu" else 1
            check_labels(path, label_key, labels, n, 0, num_classes - 1)
            if layout_only:
                images = ArraySpec(spec.shape if channels_first else (n, rest[2], rest[0], rest[1]), spec.dtype)
            else:
                x = _load_member(path, archive, image_member)
                images = np.array(x if channels_first else x.transpose(0, 3, 1, 2), order="C")  # the one copy
    except DatasetInvalidError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:  # a damaged, truncated or foreign file
        raise DatasetInvalidError(f"{path} is not a readable .npz file ({type(exc).__name__}: {exc})") from None
    return Arrays(images, labels.astype(np.int64), num_classes)


def npz_num_classes(train: Path) -> int:
    """max(label) + 1 of the train split's file (its labels checked, its pixels not read)."""
    return npz_arrays(train, layout_only=True).num_classes


def save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez`` under a unique temporary name, then renamed: a killed writer, or a concurrent trial, never leaves
    or reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------------------------------
# ImageFolder
# ---------------------------------------------------------------------------------------------------------------------


def _classes(split_folder: Path) -> list[str]:
    from torchvision.datasets.folder import find_classes

    try:
        return find_classes(split_folder)[0]
    except FileNotFoundError:
        message = f"{split_folder} has no class folders, expected {split_folder}/<class>/<image>"
        raise DatasetInvalidError(message) from None


def _class_folder(root: Path, split: str) -> Path:
    """Where the class names come from: ``PATH/train``, or a test split's own folder when there is no train split."""
    return root / "train" if split == "train" or (root / "train").is_dir() else root / split


def _image_folder(root: Path, split: str, size: int | None = None) -> tuple[ImageFolder, np.ndarray, int]:
    """torchvision's ImageFolder of ``split`` (resizing to ``size`` when given), the map from its class indices to
    train's, and train's class count; DatasetInvalidError if test has a class that train lacks."""
    from torchvision import transforms
    from torchvision.datasets import ImageFolder

    classes = _classes(_class_folder(root, split))
    split_classes = _classes(root / split)
    extra = sorted(set(split_classes) - set(classes))
    if extra:
        raise DatasetInvalidError(f"{root / split} has class folders {extra[:5]} that {root / 'train'} lacks: the "
                                  "classes are train's folder names")
    resize = None if size is None else transforms.Resize(
        (size, size), interpolation=transforms.InterpolationMode.BILINEAR, antialias=True)
    try:
        # A test folder may lack images of some class; a train class without images is a mistake.
        data = ImageFolder(root / split, transform=resize, allow_empty=split != "train")
    except FileNotFoundError as exc:
        raise DatasetInvalidError(f"{root / split}: {exc}") from None
    if not data.samples:
        raise DatasetInvalidError(f"{root / split} holds no images")
    index = {name: i for i, name in enumerate(classes)}
    return data, np.array([index[name] for name in data.classes], dtype=np.int64), len(classes)


def _cache_is_fresh(cache: Path, root: Path, split: str) -> bool:
    if not cache.exists():
        return False
    folders = [_class_folder(root, split), root / split, *(e for e in os.scandir(root / split) if e.is_dir())]
    return cache.stat().st_mtime_ns >= max(os.stat(f).st_mtime_ns for f in folders)


def cache_path(root: Path, split: str, size: int) -> Path:
    return root / CACHE_FOLDER / f"{split}-{size}.npz"


def folder_arrays(root: Path, split: str, size: int = FOLDER_SIZE) -> Arrays:
    """The images of an ImageFolder split at ``size`` x ``size``, from the cache while it is fresh, else decoded,
    resized and cached."""
    if size < MIN_SIZE:
        raise ValueError(f"size must be at least {MIN_SIZE}, got {size}")
    cache = cache_path(root, split, size)
    if _cache_is_fresh(cache, root, split):
        return npz_arrays(cache, num_classes=len(_classes(_class_folder(root, split))))
    data, to_train, num_classes = _image_folder(root, split, size)
    log.info("resizing %d images of %s to %dx%d once, into %s", len(data), root / split, size, size, cache)
    images = np.empty((len(data), 3, size, size), dtype=np.uint8)
    for i, (file, _) in enumerate(data.samples):
        try:
            images[i] = np.asarray(data[i][0]).transpose(2, 0, 1)
        except OSError as exc:  # PIL's UnidentifiedImageError included
            raise _unreadable(file, exc) from None
    labels = to_train[np.asarray(data.targets, dtype=np.int64)]
    try:
        save_npz_atomic(cache, images=images, labels=labels)
    except OSError as exc:  # a read-only dataset folder: train anyway, and resize again next time
        log.warning("could not write the cache %s (%s); the next load resizes the images again", cache, exc)
    return Arrays(images, labels, num_classes)


# What PIL raises for a damaged file: OSError for an unknown format or a truncated one, SyntaxError for a PNG chunk
# whose checksum is wrong, and ValueError or EOFError from some plugins' header parsers.
_DAMAGED = (OSError, SyntaxError, ValueError, EOFError)


def _unreadable(file: str, exc: BaseException) -> DatasetInvalidError:
    return DatasetInvalidError(f"{file} is not a readable image ({type(exc).__name__}: {exc}); delete or replace it")


def check_folder(root: Path, split: str, size: int = FOLDER_SIZE) -> None:
    """What a load of ``split`` at ``size`` would refuse, without decoding a pixel: while the cache of that size is
    fresh, the cache's layout and labels (the load reads only the cache); otherwise the split's layout (class folders,
    test's classes among train's, no empty train class) and every image opened by PIL and verified (the header, and
    a PNG's chunk checksums), so that a damaged file is named before any trial starts. JPEG's ``verify`` reads only
    the header: a JPEG cut short after it is refused by the load instead."""
    from PIL import Image

    cache = cache_path(root, split, size)
    if _cache_is_fresh(cache, root, split):
        npz_arrays(cache, num_classes=len(_classes(_class_folder(root, split))), layout_only=True)
        return
    data, _, _ = _image_folder(root, split)
    for file, _ in data.samples:
        try:
            with Image.open(file) as image:
                image.verify()
        except _DAMAGED as exc:
            raise _unreadable(file, exc) from None
