"""Stable seeds for named random streams, the same on every machine and in every process."""

from __future__ import annotations

import hashlib


def derive_seed(*keys: int | str) -> int:
    """A stable 63-bit seed for the random stream named by ``keys`` (e.g. ``(seed, "epoch", 3)``).

    Hashing the whole key keeps streams independent: ``seed + epoch`` would make (seed 1, epoch 0) replay
    (seed 0, epoch 1), and Python's ``hash`` of strings changes between processes.
    """
    digest = hashlib.blake2b(repr(keys).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1
