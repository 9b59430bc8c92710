"""Dataset names and their splits: what a config may name, checked without a file and without torch.

A sweep validates every trial's config before anything heavy loads (``launch/checks.py``), so what a name means is
kept here, apart from the readers of ``trainables/datasets.py`` (which import torch). The registered names are the
keys of :data:`SPLITS`; the user's own data is ``npz:PATH`` (a ``.npz`` file, the train split only, or a folder of
``train.npz`` and ``test.npz``), ``folder:PATH`` or ``folder@SIZE:PATH`` (torchvision's ImageFolder layout); and
``NAME:PARTS`` (``cifar10:A+B``) names parts of a registered set's training images (``trainables/dataset_parts.py``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from trainables import user_data

# Every registered dataset and its splits. imgnet100's test is ImageNet's val (its test labels are not public).
SPLITS: dict[str, tuple[str, ...]] = {
    "cifar10": ("train", "test"),
    "cifar100": ("train", "test"),
    "svhn": ("train", "test", "extra"),
    "imagenet32": ("train", "val"),
    "imagenet64": ("train", "val"),
    "imgnet100": ("train", "val", "test"),
    "imgnet900": ("train", "val"),
    "places365_32": ("train", "val"),
    "places365_64": ("train", "val"),
    "synthetic": ("train", "test"),
    "synthetic_absent": ("train", "test"),
    "synthetic_aux": ("train", "test"),
    "synthetic_aux_unrelated": ("train", "test"),
}
# Generated in memory from a seed (trainables/synthetic_data.py) rather than read from files.
BUILT_IN = frozenset({"synthetic", "synthetic_absent", "synthetic_aux", "synthetic_aux_unrelated"})

# The user's own data, named "KIND:PATH" (trainables/user_data.py); not in dataset_names(), which lists fixed names.
USER_DATA_KINDS = ("npz", "folder")

# Parts of a registered set's train split, named NAME:PARTS (cifar10:A+C): BiaMAT appendix Table 5 splits CIFAR-10's
# 50,000 training images into cifar-A (25,000), cifar-B and cifar-C (12,500 each), the last with uniform noise added.
# Each letter's share of the train split (trainables/dataset_parts.py draws them); the test split is the set's own.
PARTS = {"A": (0.0, 0.5), "B": (0.5, 0.75), "C": (0.75, 1.0)}

# Datasets of digits: flipping one horizontally makes no digit (a 2 looks like an S, a 5 like a 2), so "auto"
# augmentation crops them without flipping. The papers do not state SVHN's augmentation.
DIGITS = frozenset({"svhn"})


def user_name(name: str) -> tuple[str, int, str] | None:
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


def parts_name(name: str) -> tuple[str, tuple[str, ...]] | None:
    """``("cifar10", ("A", "C"))`` for ``cifar10:A+C`` (a registered set's train split in parts, :data:`PARTS`), else
    None; ValueError, with the form, for parts that name nothing."""
    base, colon, parts = name.partition(":")
    if not colon or base not in SPLITS:
        return None
    letters = tuple(parts.split("+"))
    if not set(letters) <= set(PARTS) or len(set(letters)) != len(letters):
        raise ValueError(f"dataset {name!r}: the parts of {base}'s train split are {', '.join(PARTS)} (half, a "
                         f"quarter, a quarter with uniform noise), each at most once: e.g. {base}:A or {base}:A+B+C")
    return base, tuple(sorted(letters))


def base_name(name: str) -> str:
    """The registered set whose parts ``name`` names (``cifar10`` for ``cifar10:A+C``), else ``name`` itself."""
    parsed = parts_name(name)
    return name if parsed is None else parsed[0]


def npz_files(path: Path) -> tuple[Path, dict[str, tuple[str, ...]]]:
    """Where ``npz:PATH``'s files are and which split each holds: one ``.npz`` file is the train split only; a
    folder holds ``train.npz`` and ``test.npz`` (whose test split is read beside the train file's layout)."""
    if path.is_file() or (not path.is_dir() and path.suffix == ".npz"):
        return path.parent, {"train": (path.name,)}
    return path, {"train": ("train.npz",), "test": ("train.npz", "test.npz")}


def splits_of(name: str) -> tuple[str, ...]:
    """The splits of dataset ``name``; ValueError, listing the valid names, for a name that names nothing."""
    if name in SPLITS:
        return SPLITS[name]
    if (parts := parts_name(name)) is not None:
        return SPLITS[parts[0]]
    parsed = user_name(name)
    if parsed is None:
        raise ValueError(f"unknown dataset {name!r}; registered: {dataset_names()} (NAME:A+B+C for parts of one's "
                         "train split), or npz:PATH or folder:PATH (folder@SIZE:PATH for SIZExSIZE images) for your "
                         "own data")
    kind, _size, text = parsed
    return ("train", "test") if kind == "folder" else tuple(npz_files(Path(text).absolute())[1])


def data_root(root: str | os.PathLike | None) -> Path:
    """Where the datasets are: ``root``, else ``$ADVSWEEP_DATA``, else ``./data``."""
    return Path(root if root is not None else os.environ.get("ADVSWEEP_DATA", "data"))


def dataset_names() -> list[str]:
    """The registered dataset names, sorted (besides them, ``npz:PATH``, ``folder:PATH`` and ``folder@SIZE:PATH`` name
    the user's data)."""
    return sorted(SPLITS)


def validate_dataset_name(name: str) -> None:
    """ValueError, listing the valid names, unless ``name`` is registered or is ``npz:PATH``, ``folder:PATH``,
    ``folder@SIZE:PATH`` with a valid SIZE or ``NAME:PARTS`` (the form only: ``datasets.check_dataset`` looks at the
    files)."""
    splits_of(name)


def absolute_dataset_name(name: str) -> str:
    """``name`` with a user-data PATH made absolute against the current directory (``npz:gen/1m.npz`` ->
    ``npz:/home/me/gen/1m.npz``, ``folder@64:imgs`` -> ``folder@64:/home/me/imgs``); other names unchanged. For where a
    sweep builds its trials' configs: Ray runs a trial in another directory, where a relative PATH would name nothing.
    A bad ``@SIZE`` is left for the config's validation to refuse."""
    try:
        parsed = user_name(name)
    except ValueError:
        return name
    return name if parsed is None else f"{name.partition(':')[0]}:{os.path.abspath(parsed[2])}"


def test_split_of(name: str) -> str:
    """The split that ``test_data=name`` reads: the test split, or the only split of a dataset with one (an
    ``npz:FILE``, whose images are then the test points)."""
    splits = splits_of(name)
    return "test" if "test" in splits else splits[0]


def default_augmentation(name: str) -> Literal["crop_flip", "crop"]:
    """What ``augment="auto"`` means on dataset ``name``: the crop alone on digits, else crop and flip."""
    return "crop" if base_name(name) in DIGITS else "crop_flip"


def is_builtin(name: str) -> bool:
    """Whether ``name`` is generated in memory (the synthetic sets) rather than read from files."""
    return base_name(name) in BUILT_IN
