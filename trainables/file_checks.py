"""Reading dataset files without trusting them: the checks every reader of ``trainables/dataset_files.py`` applies to a
file's content, and the layout-only reading that lets ``check_dataset`` apply them before a sweep without loading the
images.

A pickled batch is unpickled with only the globals a batch needs (numpy arrays, dtypes and scalars), since a pickle
can run code. With ``layout_only`` its large payloads are skipped instead of read and its arrays come back as
:class:`ArraySpec` (shape and dtype), so checking CIFAR-10's 185 MB reads 0.3 MB (measured in ``check_dataset``).
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np


class DatasetInvalidError(ValueError):
    """A dataset's file is there but is not what its reader expects (another format, damaged or truncated, missing
    keys, wrong shape or dtype, labels out of range); the message names the file, what is wrong and how to replace it.
    """


# Payloads this large are skipped, not read, when check_dataset looks at a file's layout: a CIFAR batch's 30 MB of
# pixels, an ImageNet32 batch's 390 MB. Smaller ones (labels) are read, so that their values are checked too.
SKIP_BYTES = 1 << 20


class SkippingFile:
    """A binary file for ``pickle.Unpickler`` that skips every payload of ``SKIP_BYTES`` or more instead of reading it.

    The unpickler asks for a payload by its length (``read(n)``, or ``readinto`` a buffer of that size); this seeks
    past it and returns zeros or the untouched buffer, so the keys, labels and array headers of a file cost a few small
    reads whatever its size. A payload cut short by the end of the file comes back short: the unpickler then reports
    the file as truncated, as a full load would.
    """

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._size = os.fstat(file.fileno()).st_size
        self.peek, self.readline = file.peek, file.readline

    def _skip(self, n: int) -> int:
        n = max(0, min(n, self._size - self._file.tell()))
        self._file.seek(n, os.SEEK_CUR)
        return n

    def read(self, n: int = -1) -> bytes:
        return bytes(self._skip(n)) if n >= SKIP_BYTES else self._file.read(n)

    def readinto(self, buffer: memoryview) -> int:
        n = memoryview(buffer).nbytes
        return self._skip(n) if n >= SKIP_BYTES else self._file.readinto(buffer)


class ArraySpec:
    """A numpy array as a layout check unpickles it: its shape and dtype, and its values only when its payload was
    read (under half ``SKIP_BYTES``: a Python-3 pickle of protocol 2 stores a payload as UTF-8 text, up to twice its
    size in the file)."""

    def __init__(self, shape: Sequence[int] = (), dtype: np.dtype | None = None, values: np.ndarray | None = None):
        self.shape, self.dtype, self.values = tuple(shape), dtype, values

    def __len__(self) -> int:
        return self.shape[0] if self.shape else 0

    @classmethod
    def reconstruct(cls, *args: object) -> ArraySpec:
        return cls()  # numpy's _reconstruct(ndarray, (0,), b"b"): the state that follows says what the array is

    def __setstate__(self, state: tuple) -> None:
        _, shape, dtype, fortran, raw = state
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        raw = raw.encode("latin1") if isinstance(raw, str) else raw  # Python 2 pickles hold the bytes as a str
        if isinstance(raw, (bytes, bytearray)) and len(raw) < SKIP_BYTES // 2:
            self.values = np.frombuffer(raw, self.dtype).reshape(self.shape, order="F" if fortran else "C")

    @classmethod
    def frombuffer(cls, buffer: bytes, dtype: np.dtype, shape: Sequence[int], order: str) -> ArraySpec:
        spec = cls(shape, np.dtype(dtype))  # numpy's pickle protocol 5 path
        if len(memoryview(buffer)) < SKIP_BYTES // 2:
            spec.values = np.frombuffer(buffer, spec.dtype).reshape(spec.shape, order=order)
        return spec


# All a dataset batch holds besides dicts, lists, numbers and strings: numpy arrays, dtypes and scalars, and the
# codec call Python 3 uses for bytes in a protocol-2 pickle. Pickles can run code; a batch never needs anything else.
_NUMPY_GLOBALS = {"_reconstruct", "_frombuffer", "ndarray", "dtype", "scalar"}


class BatchUnpickler(pickle.Unpickler):
    """Unpickles a dataset batch; with ``layout_only`` (on a :class:`SkippingFile`) arrays come back as
    :class:`ArraySpec`, so a 390 MB batch is checked without being read."""

    def __init__(self, file: BinaryIO | SkippingFile, layout_only: bool) -> None:
        # The CIFAR files were written by Python 2: its str become str (latin1) in a load, and stay bytes in a layout
        # check, which then never decodes the skipped payloads (the keys become b'data', see load_batch).
        super().__init__(file, encoding="bytes" if layout_only else "latin1")
        self.layout_only = layout_only

    def find_class(self, module: str, name: str) -> Any:
        if module.partition(".")[0] == "numpy" and name in _NUMPY_GLOBALS:
            if self.layout_only and name in ("_reconstruct", "_frombuffer"):
                return ArraySpec.reconstruct if name == "_reconstruct" else ArraySpec.frombuffer
            return super().find_class(module, name)
        if (module, name) == ("_codecs", "encode"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it holds a {module}.{name} object, which no dataset batch does")


def load_batch(path: Path, layout_only: bool = False) -> dict[str, Any]:
    """A pickled batch as a dict with str keys; DatasetInvalidError naming the file if it is not one."""
    try:
        with open(path, "rb") as f:
            batch = BatchUnpickler(SkippingFile(f) if layout_only else f, layout_only).load()
    except Exception as exc:  # noqa: BLE001 - unpickling arbitrary bytes raises almost any type
        raise DatasetInvalidError(f"{path} is not a readable pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(batch, dict):
        raise DatasetInvalidError(f"{path} holds a {type(batch).__name__}, not a dict of 'data' and labels")
    # A batch loaded in Python 3 with encoding='bytes' and pickled again has bytes keys (b'data'): the same content.
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in batch.items()}


def describe(value: object) -> str:
    """A value as an error message shows it: ``uint8 of shape (2, 3072)`` for an array, else its type."""
    shape = getattr(value, "shape", None)
    return f"{getattr(value, 'dtype', '?')} of shape {tuple(shape)}" if shape is not None else type(value).__name__


def check_labels(path: Path, key: str, labels: object, n: int, low: int, high: int) -> None:
    """``n`` integer labels in [low, high] (values that a layout check did not read are checked by the load)."""
    if not hasattr(labels, "__len__") or len(labels) != n:
        raise DatasetInvalidError(f"{path}: {key!r} is {describe(labels)} of length "
                                  f"{len(labels) if hasattr(labels, '__len__') else '?'}, expected {n} labels, one "
                                  "per image")
    values = labels.values if isinstance(labels, ArraySpec) else np.asarray(labels)
    dtype = labels.dtype if isinstance(labels, ArraySpec) else values.dtype
    if n and dtype.kind not in "iu":
        raise DatasetInvalidError(f"{path}: {key!r} holds {dtype} values, expected integer class labels")
    if values is None or not n:
        return
    if not low <= int(values.min()) <= int(values.max()) <= high:
        raise DatasetInvalidError(f"{path}: {key!r} has labels from {int(values.min())} to {int(values.max())}, "
                                  f"expected {low} to {high}")


def read_npy_header(f: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of the ``.npy`` array at ``f``'s position, leaving ``f`` at its data."""
    version = np.lib.format.read_magic(f)
    header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return header(f)


def npy_spec(archive: zipfile.ZipFile, member: str) -> ArraySpec:
    """An array's shape and dtype from its ``.npy`` header in an ``.npz`` archive, without reading the array."""
    with archive.open(member) as f:
        shape, _, dtype = read_npy_header(f)
    return ArraySpec(shape, dtype)
