"""Image datasets as uint8 tensors in memory, read by name: ``load_dataset("cifar10", "train")``.

This module loads and checks each set by name; the names and their splits are in trainables/dataset_names.py (a
light module the configs check against), where each set's files are and how to get them here. The readers are
trainables/dataset_files.py (files in their published formats) and trainables/synthetic_data.py (built-in sets); every one returns an :class:`~trainables.image_set.ImageSet` (uint8 images (N, 3, H, W) and int64
labels, on the CPU), which the loader moves to the device once. A load and :func:`check_dataset` (before a sweep
starts) apply the same checks to each file's content (format, keys, shapes, dtypes, label range) and raise
:class:`DatasetInvalidError` naming the file, what is wrong and how to replace it.

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
directory (see ``trainables/user_data.py`` and ``dataset_names.absolute_dataset_name``).

``NAME:PARTS`` (``cifar10:A``, ``cifar10:A+B+C``) is a registered set with its train split in parts: half (A) and two
quarters (B, and C with uniform noise), for BiaMAT appendix Table 5 (trainables/dataset_parts.py); its files and test
split are the set's own.

``synthetic``, ``synthetic_absent``, ``synthetic_aux`` and ``synthetic_aux_unrelated`` are built-in data generated from
a seed (``root`` is ignored; options ``seed``, ``n``, ``size``, ``robust_p``, ``nonrobust_p``): what they hold, and why,
is trainables/synthetic_data.py's docstring.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cache, lru_cache, partial
from pathlib import Path

from trainables import user_data
from trainables.dataset_files import (
    CIFAR10,
    CIFAR100,
    IMAGENET32,
    IMAGENET64,
    IMGNET_SPLITS,
    PLACES365_FILES,
    SVHN_FILES,
    check_places365,
    check_svhn,
    npz_arrays,
    places365_missing,
    read_folder,
    read_npz,
    read_places365,
    read_svhn,
    torchvision_download,
)
from trainables.dataset_names import data_root, npz_files, parts_name, splits_of, user_name
from trainables.dataset_parts import parts_of
from trainables.file_checks import DatasetInvalidError
from trainables.image_set import ImageSet
from trainables.seeds import derive_seed
from trainables.synthetic_data import AUX_RELATED_CLASSES, read_synthetic, read_synthetic_aux


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are missing; the message names the expected paths and how to obtain them."""


@dataclass(frozen=True)
class _Reader:
    """How to find, obtain and read one dataset. Built-in data has ``folder=None``: it needs no files."""

    read: Callable[..., ImageSet]  # read(folder, split, **options); read(split, **options) for built-in data
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
        partial(read_places365, size=size), check_splits=("train",), folder="places365",
        files=PLACES365_FILES, missing=partial(places365_missing, size=size),
        how_to_get=_torchvision_hint("Places365('{folder}', split='train-standard', small=True, download=True)")
        + f", with split='val' for val; the first load writes a {size}x{size} cache, places365_{size}_{{split}}.npz, "
        "next to the files (train has 1.8M images, so that one-off downscale takes a while)",
        torchvision_class="Places365", check=partial(check_places365, size=size),
    )


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
    return IMGNET_SPLITS.read(folder, split, classes, "imgnet100" if primary else "imgnet900")


# Here, beside the names, because it describes the named auxiliary sets (synthetic_aux: the first AUX_RELATED_CLASSES
# classes; synthetic_aux_unrelated: related_classes=0, none) to the tests and analysis that check BiaMAT's gate on them.
def synthetic_aux_related(related_classes: int = AUX_RELATED_CLASSES) -> dict[int, int]:
    """Auxiliary class -> the primary class whose robust pattern it reuses; other auxiliary classes are unrelated."""
    return {a: a for a in range(related_classes)}


_READERS: dict[str, _Reader] = {
    "cifar10": _Reader(
        CIFAR10.read, check_splits=("train", "test"), folder="cifar-10-batches-py",
        files=CIFAR10.files, how_to_get=_torchvision_hint("CIFAR10('{root}', download=True)"),
        torchvision_class="CIFAR10", check=CIFAR10.check,
    ),
    "cifar100": _Reader(
        CIFAR100.read, check_splits=("train", "test"), folder="cifar-100-python",
        files=CIFAR100.files, how_to_get=_torchvision_hint("CIFAR100('{root}', download=True)"),
        torchvision_class="CIFAR100", check=CIFAR100.check,
    ),
    "svhn": _Reader(
        read_svhn, check_splits=("train", "test"), folder="svhn",
        files=SVHN_FILES, how_to_get=_torchvision_hint("SVHN('{folder}', split='{split}', download=True)"),
        torchvision_class="SVHN", check=check_svhn,
    ),
    "imagenet32": _Reader(
        IMAGENET32.read, check_splits=("train",), folder="imagenet32",
        files=IMAGENET32.files, check=IMAGENET32.check,
        how_to_get=_imagenet_hint(32, "Imagenet32_train.zip, Imagenet32_val.zip"),
    ),
    "imagenet64": _Reader(
        IMAGENET64.read, check_splits=("train",), folder="imagenet64",
        files=IMAGENET64.files, check=IMAGENET64.check, how_to_get=_IMAGENET64_HINT,
    ),
    "imgnet100": _Reader(
        partial(_read_imgnet, primary=True), check_splits=("train", "test"),
        folder="imagenet64", files=IMGNET_SPLITS.files, check=IMGNET_SPLITS.check, how_to_get=_IMAGENET64_HINT,
    ),
    "imgnet900": _Reader(
        partial(_read_imgnet, primary=False), check_splits=("train",), folder="imagenet64",
        files=IMGNET_SPLITS.files, check=IMGNET_SPLITS.check, how_to_get=_IMAGENET64_HINT,
    ),
    "places365_32": _places365_reader(32),
    "places365_64": _places365_reader(64),  # BiaMAT's auxiliary Places365 beside the 64x64 ImgNet100
    "synthetic": _Reader(read_synthetic, check_splits=("train", "test")),
    "synthetic_absent": _Reader(partial(read_synthetic, robust_decoy=False), check_splits=("train", "test")),
    "synthetic_aux": _Reader(read_synthetic_aux, check_splits=("train",)),
    # No class shares a primary robust pattern: an auxiliary set unrelated to the primary task (as SVHN is to
    # CIFAR-10), beside synthetic_aux's half-related one (as ImageNet), so BiaMAT's gate has two cases to tell apart.
    "synthetic_aux_unrelated": _Reader(partial(read_synthetic_aux, related_classes=0, name="synthetic_aux_unrelated"),
                                       check_splits=("train",)),
}


def _user_reader(name: str) -> _Reader | None:
    """The reader of ``npz:PATH``, ``folder:PATH`` or ``folder@SIZE:PATH`` (a relative PATH against the current
    directory), else None."""
    parsed = user_name(name)
    if parsed is None:
        return None
    kind, size, text = parsed
    path = Path(text).absolute()
    relative = "" if Path(text).is_absolute() else " (a relative PATH resolves against the current directory)"
    if kind == "folder":
        return _Reader(partial(read_folder, size, name), check_splits=("train", "test"),
                       folder=str(path), files={"train": ("train",), "test": ("test",)},
                       check=partial(user_data.check_folder, size=size), how_to_get=user_data.FOLDER_HOW + relative,
                       fix=f"To fix it, {user_data.FOLDER_HOW}")
    folder, files = npz_files(path)
    hint = ("; a .npz file is the train split only: for a test split too, pass npz:FOLDER of train.npz and test.npz"
            if "test" not in files else "")
    return _Reader(partial(read_npz, files=files, name=name), check_splits=tuple(files),
                   folder=str(folder), files=files, check=partial(npz_arrays, files=files, layout_only=True),
                   how_to_get=user_data.NPZ_HOW + relative, fix=f"To fix it, {user_data.NPZ_HOW}", split_hint=hint)


def _parts_reader(name: str) -> _Reader | None:
    """The reader of ``NAME:PARTS`` (trainables/dataset_parts.py): NAME's files and checks, its train split in parts."""
    parsed = parts_name(name)
    if parsed is None:
        return None
    base, parts = parsed
    return replace(_READERS[base], read=partial(_read_parts, _READERS[base].read, parts, name))


def _read_parts(read: Callable[..., ImageSet], parts: Sequence[str], name: str, *args: object,
                **options: object) -> ImageSet:
    # ``args`` end with the split: (folder, split) for file data, (split,) for built-in data.
    images = read(*args, **options)
    return parts_of(images, parts, name) if args[-1] == "train" else images


def _reader(name: str) -> _Reader:
    splits_of(name)  # ValueError naming the valid names
    return _READERS.get(name) or _parts_reader(name) or _user_reader(name)


def _check_split(name: str, reader: _Reader, split: str) -> None:
    splits = splits_of(name)
    if split not in splits:
        raise ValueError(f"dataset {name!r} has no split {split!r}; splits: {list(splits)}{reader.split_hint}")


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
        return _built_in(name, split, tuple(sorted(options.items())))
    resolved = data_root(root)
    if options.pop("download", False):
        if reader.torchvision_class is None:
            how = reader.how_to_get.format(root=resolved, folder=resolved / reader.folder, split=split)
            raise ValueError(f"{name} cannot be downloaded automatically: {how}")
        torchvision_download(reader.torchvision_class, resolved / reader.folder, split)
    folder = _require_files(name, reader, resolved, split)
    with _naming_the_fix(name, reader, resolved, split):
        return reader.read(folder, split, **options)


@lru_cache(maxsize=8)
def _built_in(name: str, split: str, options: tuple[tuple[str, object], ...]) -> ImageSet:
    """A built-in set, a pure function of its name, split and options. A worker that Tune reuses for the next trial
    keeps the last few rather than generate them again (half a second per smoke trial); trials never write into a
    loaded set (a subset is a copy), which the reused-worker test in tests/test_runtime.py holds them to. Files are
    read anew by every trial: their sets can be gigabytes, and a few seconds beside a trial of hours."""
    return _reader(name).read(split, **dict(options))


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
