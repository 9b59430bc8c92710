"""Model names, checked without building a model and, for the built-in ones, without importing torch: a sweep
validates every trial's config before anything heavy loads. The builders are ``trainables/models.py``'s."""

from __future__ import annotations

import re

# The built-in bodies (trainables/models.py builds each); besides them, any wrn-<depth>-<width> and tiny-cnn-<width>.
BUILT_IN = ("preact-resnet18", "resnet18", "tiny-cnn", "wrn-28-10", "wrn-34-10")
WRN_PATTERN = re.compile(r"wrn-(\d+)-(\d+)")
TINY_PATTERN = re.compile(r"tiny-cnn-([1-9]\d*)")
LIBRARIES = ("timm", "torchvision")  # named LIBRARY:NAME (trainables/library_models.py)


def split_library_name(name: str) -> tuple[str, str] | None:
    """``("timm", "resnet10t")`` for ``"timm:resnet10t"``; None for a name of no library (a built-in model)."""
    library, sep, arch = name.partition(":")
    return (library, arch) if sep and library in LIBRARIES else None


def check_wrn(depth: int, width: int) -> None:
    if depth < 10 or (depth - 4) % 6 != 0:
        raise ValueError(f"WRN depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, 34, ...), got {depth}")
    if width < 1:
        raise ValueError(f"WRN width must be at least 1, got {width}")


def validate_model_name(name: str) -> None:
    """ValueError, listing the valid forms, unless ``name`` names a model. A library model is looked up in its
    library (which imports it, and torch): only a config that names one pays for that."""
    if library_name := split_library_name(name):
        from trainables.library_models import check_library_model

        check_library_model(*library_name)
    elif match := WRN_PATTERN.fullmatch(name):
        check_wrn(int(match[1]), int(match[2]))
    elif name not in BUILT_IN and not TINY_PATTERN.fullmatch(name):
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(BUILT_IN)} (or any wrn-<depth>-<width>, "
                         "tiny-cnn-<width>, timm:NAME or torchvision:NAME)")
