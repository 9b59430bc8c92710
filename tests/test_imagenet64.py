"""Downsampled ImageNet 64x64 and its class split into imgnet100 (BiaMAT's primary ImgNet100) and imgnet900 (its
auxiliary data), on small pickles in the published layout.

The split is tested on the real draw over 1000 classes, not a shrunk one: the files hold rows of two classes drawn
for imgnet100 and two left to imgnet900, which is all a load needs to show where each row goes."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from trainables.datasets import (
    DatasetInvalidError,
    DatasetNotFoundError,
    check_dataset,
    imgnet100_classes,
    load_dataset,
)

ROW = 3 * 64 * 64


def rows(labels: list[int], seed: int) -> dict:
    """A batch as published (labels 1..1000); image i has R=10+i, G=20+i, B=30+i at row 1, column 2."""
    data = np.random.default_rng(seed).integers(0, 256, (len(labels), ROW), dtype=np.uint8)
    for i in range(len(labels)):
        for channel, value in enumerate((10, 20, 30)):
            data[i, channel * 64 * 64 + 1 * 64 + 2] = value + i
    return {"data": data, "labels": labels, "mean": np.zeros(ROW)}


def write_imagenet64(root: Path, train: list[list[int]], val: list[int]) -> Path:
    """``train[i]`` the 0-based classes of batch i + 1 (10 batches), ``val`` those of val_data."""
    folder = root / "imagenet64"
    folder.mkdir(parents=True)
    for i, classes in enumerate(train, 1):
        (folder / f"train_data_batch_{i}").write_bytes(pickle.dumps(rows([c + 1 for c in classes], i)))
    (folder / "val_data").write_bytes(pickle.dumps(rows([c + 1 for c in val], 0)))
    return folder


def test_the_imgnet100_draw_is_fixed() -> None:
    chosen = imgnet100_classes()
    assert len(chosen) == len(set(chosen)) == 100 and list(chosen) == sorted(chosen)
    assert 0 <= chosen[0] and chosen[-1] <= 999
    # Pinned: a hash of (IMGNET100_DRAW, class), the same on every machine and with every library version.
    assert chosen[:8] == (26, 28, 53, 57, 66, 67, 115, 124)


def test_imagenet64_reads_64x64_rows(tmp_path: Path) -> None:
    write_imagenet64(tmp_path, [[i] for i in range(10)], [0, 999, 5])
    check_dataset("imagenet64", root=tmp_path, splits=["train", "val"])
    train = load_dataset("imagenet64", "train", root=tmp_path)
    assert train.images.shape == (10, 3, 64, 64) and train.num_classes == 1000 and train.name == "imagenet64"
    assert train.labels.tolist() == list(range(10))  # the files' 1..1000, from 0
    val = load_dataset("imagenet64", "val", root=tmp_path)
    assert val.labels.tolist() == [0, 999, 5]
    assert [val.images[i, :, 1, 2].tolist() for i in range(3)] == [[10 + i, 20 + i, 30 + i] for i in range(3)]


def test_imgnet100_and_imgnet900_split_the_classes(tmp_path: Path) -> None:
    chosen = imgnet100_classes()
    others = sorted(set(range(1000)) - set(chosen))
    a, b, x, y = chosen[3], chosen[57], others[0], others[899]
    write_imagenet64(tmp_path, [[a, x], [y], [b, b]] + [[x]] * 7, [x, b, a, y])

    check_dataset("imgnet100", root=tmp_path)
    train = load_dataset("imgnet100", "train", root=tmp_path)
    assert (train.num_classes, train.name, train.images.shape) == (100, "imgnet100", (3, 3, 64, 64))
    assert train.labels.tolist() == [3, 57, 57]  # positions in the sorted draw
    full = load_dataset("imagenet64", "train", root=tmp_path)
    assert (train.images == full.images[[0, 3, 4]]).all()

    test = load_dataset("imgnet100", "test", root=tmp_path)
    assert test.labels.tolist() == [57, 3]  # ImageNet's val images
    assert (test.images == load_dataset("imgnet100", "val", root=tmp_path).images).all()
    assert [test.images[i, :, 1, 2].tolist() for i in range(2)] == [[11, 21, 31], [12, 22, 32]]

    check_dataset("imgnet900", root=tmp_path)
    aux = load_dataset("imgnet900", "train", root=tmp_path)
    assert (aux.num_classes, aux.name) == (900, "imgnet900")
    assert aux.labels.tolist() == [0, 899, *[0] * 7]  # positions among the other 900, sorted
    with pytest.raises(ValueError, match="no split 'test'"):
        load_dataset("imgnet900", "test", root=tmp_path)


def test_wrong_and_missing_imagenet64_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        check_dataset("imgnet100", root=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "imagenet64" / "train_data_batch_1") in message
    assert "Downsampled ImageNet 64x64" in message and "Imagenet64_train_part1.zip" in message

    folder = write_imagenet64(tmp_path, [[0]] * 10, [1])
    (folder / "val_data").write_bytes(pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [1]}))
    with pytest.raises(DatasetInvalidError) as info:
        check_dataset("imgnet100", root=tmp_path)
    message = str(info.value)
    assert message.startswith(f"imgnet100 (test): {folder / 'val_data'}: 'data' is uint8 of shape (1, 3072)")
    assert "expected uint8 of shape (N, 12288), one 64x64 RGB image per row" in message
    assert "Replace the file with the published one" in message and "Imagenet64_val.zip" in message
    check_dataset("imgnet900", root=tmp_path)  # train only: the auxiliary set
