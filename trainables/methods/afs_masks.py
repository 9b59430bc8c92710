"""AFS's masks: which of the ten extractors (trained at eps 0..9/255) a merger stacks, as a string of 0/1 where
character i selects the extractor of eps i/255 (Table 3's notation). Pure string logic, shared by the merger's config,
its training code and the analysis."""

from __future__ import annotations

from collections.abc import Iterable

from trainables.config import ConfigError

MASK_LENGTHS = (9, 10)  # Table 3 masks cover extractors 0..8; 10 characters include eps 9/255
DEFAULT_MASK = "000111111"  # the paper's default stack: eps 3..8 /255 (Sec. 3.1)
EVAL_EPS = 8 / 255


def eps_index(eps: float) -> int:
    """The extractor number of a training eps: 3/255 -> 3."""
    return round(eps * 255)


def mask_indices(mask: str) -> list[int]:
    """``"100010001"`` -> ``[0, 4, 8]``: the extractors (eps i/255) a mask selects."""
    return [i for i, char in enumerate(mask) if char == "1"]


def mask_of(indices: Iterable[int], length: int = MASK_LENGTHS[0]) -> str:
    """The mask selecting ``indices``: ``mask_of([3, 8])`` -> ``"000100001"``."""
    chosen = set(indices)
    if not chosen <= set(range(length)):
        raise ValueError(f"extractors {sorted(chosen)} do not fit a mask of length {length}")
    return "".join("1" if i in chosen else "0" for i in range(length))


def check_mask(mask: str) -> None:
    if len(mask) not in MASK_LENGTHS or set(mask) - {"0", "1"} or "1" not in mask:
        raise ConfigError(f"mask={mask!r}: expected {' or '.join(map(str, MASK_LENGTHS))} characters of 0/1 with at "
                          "least one 1 (character i selects the extractor trained at eps i/255, e.g. '000111111')")
