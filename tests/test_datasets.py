"""Dataset readers on small files written in the published formats, the registry, and the synthetic benchmark."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from trainables import dataset_names as names
from trainables.dataset_names import dataset_names
from trainables.datasets import (
    DatasetInvalidError,
    DatasetNotFoundError,
    check_dataset,
    load_dataset,
    synthetic_aux_related,
)
from trainables.image_set import ImageSet
from trainables.seeds import derive_seed
from trainables.synthetic_data import NONROBUST_AMPLITUDE, ROBUST_AMPLITUDE, ROBUST_P, synthetic_patterns

FILE_DATASETS = ["cifar10", "cifar100", "svhn", "imagenet32", "imagenet64", "imgnet100", "imgnet900", "places365_32",
                 "places365_64"]
BUILT_IN = ["synthetic", "synthetic_absent", "synthetic_aux", "synthetic_aux_unrelated"]


def cifar_rows(n: int, seed: int) -> np.ndarray:
    """(n, 3072) uint8 rows with a known pixel: image i has R=10+i, G=20+i, B=30+i at row 1, column 2."""
    data = np.random.default_rng(seed).integers(0, 256, (n, 3072), dtype=np.uint8)
    for i in range(n):
        for channel, value in enumerate((10, 20, 30)):
            data[i, channel * 1024 + 1 * 32 + 2] = value + i  # plane, then row-major within the plane
    return data


def noise_rows(n: int) -> np.ndarray:
    return np.random.default_rng(n).integers(0, 256, (n, 3072), dtype=np.uint8)


def assert_known_pixel(images: torch.Tensor) -> None:
    for i in range(len(images)):
        assert images[i, :, 1, 2].tolist() == [10 + i, 20 + i, 30 + i]


def write_pickle(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj))


def test_cifar10(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    for i in range(1, 6):
        write_pickle(folder / f"data_batch_{i}", {"data": cifar_rows(2, i), "labels": [i, 9 - i], "batch_label": "x"})
    write_pickle(folder / "test_batch", {"data": cifar_rows(3, 0), "labels": [7, 0, 3]})

    train = load_dataset("cifar10", "train", root=tmp_path)
    assert train.images.shape == (10, 3, 32, 32) and train.images.dtype == torch.uint8
    assert train.labels.tolist() == [1, 8, 2, 7, 3, 6, 4, 5, 5, 4]  # batch files in order
    assert train.images[2:4].numpy().reshape(2, -1).tolist() == cifar_rows(2, 2).tolist()
    test = load_dataset("cifar10", "test", root=tmp_path)
    assert (test.num_classes, test.name, test.labels.dtype) == (10, "cifar10", torch.int64)
    assert test.labels.tolist() == [7, 0, 3]
    assert_known_pixel(test.images)


def test_cifar100_uses_fine_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    write_pickle(folder / "train", {"data": cifar_rows(3, 1), "fine_labels": [99, 0, 42], "coarse_labels": [1, 2, 3]})
    write_pickle(folder / "test", {"data": cifar_rows(2, 2), "fine_labels": [5, 6], "coarse_labels": [0, 0]})
    train = load_dataset("cifar100", "train", root=tmp_path)
    assert train.num_classes == 100 and train.labels.tolist() == [99, 0, 42]
    assert_known_pixel(train.images)
    assert load_dataset("cifar100", "test", root=tmp_path).labels.tolist() == [5, 6]


def test_svhn_layout_and_digit_zero(tmp_path: Path) -> None:
    from scipy.io import savemat

    x = np.random.default_rng(0).integers(0, 256, (32, 32, 3, 4), dtype=np.uint8)
    x[1, 2, :, 3] = [11, 22, 33]  # image 3, row 1, column 2
    (tmp_path / "svhn").mkdir()
    savemat(tmp_path / "svhn" / "test_32x32.mat", {"X": x, "y": np.array([[1], [10], [9], [10]], dtype=np.uint8)})
    test = load_dataset("svhn", "test", root=tmp_path)
    assert test.images.shape == (4, 3, 32, 32) and test.images.is_contiguous()
    assert test.labels.tolist() == [1, 0, 9, 0]  # 10 stands for the digit 0
    assert test.images[3, :, 1, 2].tolist() == [11, 22, 33]
    assert torch.equal(test.images[0, 1], torch.from_numpy(x[:, :, 1, 0]))


def test_imagenet32_labels_start_at_one(tmp_path: Path) -> None:
    folder = tmp_path / "imagenet32"
    for i in range(1, 11):
        batch = {"data": cifar_rows(1, i), "labels": [i], "mean": np.zeros(3072)}
        write_pickle(folder / f"train_data_batch_{i}", batch)
    write_pickle(folder / "val_data", {"data": cifar_rows(2, 0), "labels": [1, 1000]})
    train = load_dataset("imagenet32", "train", root=tmp_path)
    assert train.num_classes == 1000 and train.labels.tolist() == list(range(10))
    val = load_dataset("imagenet32", "val", root=tmp_path)
    assert val.labels.tolist() == [0, 999]
    assert_known_pixel(val.images)


QUADRANTS = {"top_left": (250, 0, 0), "top_right": (0, 250, 0), "bottom_left": (0, 0, 250), "bottom_right": (250,) * 3}


def write_places_image(path: Path) -> None:
    from PIL import Image

    img = np.zeros((64, 64, 3), dtype=np.uint8)
    img[:32, :32], img[:32, 32:] = QUADRANTS["top_left"], QUADRANTS["top_right"]
    img[32:, :32], img[32:, 32:] = QUADRANTS["bottom_left"], QUADRANTS["bottom_right"]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, quality=95)


def test_places365_downscales_once_and_caches(tmp_path: Path) -> None:
    folder = tmp_path / "places365"
    names = ["/a/airfield/00000001.jpg", "/b/bedroom/00000002.jpg", "/b/bedroom/00000003.jpg"]
    for name in names:
        write_places_image(folder / "data_256_standard" / name.lstrip("/"))
    lines = [f"{name} {label}\n" for name, label in zip(names, [0, 364, 7], strict=True)]
    (folder / "places365_train_standard.txt").write_text("".join(lines))

    train = load_dataset("places365_32", "train", root=tmp_path)
    assert train.images.shape == (3, 3, 32, 32) and train.num_classes == 365
    assert train.labels.tolist() == [0, 364, 7]
    for (row, col), quadrant in {(4, 4): "top_left", (4, 27): "top_right", (27, 4): "bottom_left"}.items():
        assert np.abs(train.images[1, :, row, col].numpy().astype(int) - QUADRANTS[quadrant]).max() <= 6
    assert (folder / "places365_32_train.npz").exists()

    # The second load reads the cache: it works without the JPEGs and without their list.
    for path in sorted(folder.rglob("*.jpg")) + [folder / "places365_train_standard.txt"]:
        path.unlink()
    check_dataset("places365_32", root=tmp_path)
    again = load_dataset("places365_32", "train", root=tmp_path)
    assert torch.equal(again.images, train.images) and torch.equal(again.labels, train.labels)


def test_places365_64_keeps_its_own_cache_beside_the_32x32_one(tmp_path: Path) -> None:
    folder = tmp_path / "places365"
    names = ["/a/airfield/00000001.jpg", "/b/bedroom/00000002.jpg"]
    for name in names:
        write_places_image(folder / "data_256_standard" / name.lstrip("/"))
    (folder / "places365_train_standard.txt").write_text(f"{names[0]} 3\n{names[1]} 364\n")

    small = load_dataset("places365_32", "train", root=tmp_path)
    large = load_dataset("places365_64", "train", root=tmp_path)
    assert (large.images.shape, large.name, large.num_classes) == ((2, 3, 64, 64), "places365_64", 365)
    assert small.images.shape == (2, 3, 32, 32) and large.labels.tolist() == small.labels.tolist() == [3, 364]
    for (row, col), quadrant in {(8, 8): "top_left", (8, 55): "top_right", (55, 8): "bottom_left"}.items():
        assert np.abs(large.images[0, :, row, col].numpy().astype(int) - QUADRANTS[quadrant]).max() <= 6
    assert sorted(p.name for p in folder.glob("*.npz")) == ["places365_32_train.npz", "places365_64_train.npz"]

    # Each size reads its own cache only: without the JPEGs and the 64x64 cache, places365_64 is missing again.
    for path in sorted(folder.rglob("*.jpg")) + [folder / "places365_train_standard.txt",
                                                  folder / "places365_64_train.npz"]:
        path.unlink()
    check_dataset("places365_32", root=tmp_path)
    with pytest.raises(DatasetNotFoundError, match="places365_64_train.npz"):
        check_dataset("places365_64", root=tmp_path)
    cache = folder / "places365_64_train.npz"
    np.savez(cache, images=np.zeros((2, 3, 32, 32), dtype=np.uint8), labels=np.array([0, 1]))
    assert_refused(tmp_path, "places365_64", "train", cache, "(2, 3, 32, 32)", "expected uint8 of shape (N, 3, 64, 64)")


def test_places365_val_layout(tmp_path: Path) -> None:
    folder = tmp_path / "places365"
    write_places_image(folder / "val_256" / "Places365_val_00000001.jpg")
    (folder / "places365_val.txt").write_text("Places365_val_00000001.jpg 165\n")
    assert load_dataset("places365_32", "val", root=tmp_path).labels.tolist() == [165]


@pytest.mark.parametrize(
    ("name", "split", "expected", "how"),
    [
        ("cifar10", "train", "cifar-10-batches-py", "torchvision.datasets.CIFAR10('{root}', download=True)"),
        ("cifar100", "test", "cifar-100-python", "torchvision.datasets.CIFAR100('{root}', download=True)"),
        ("svhn", "extra", "extra_32x32.mat", "torchvision.datasets.SVHN('{root}/svhn', split='extra'"),
        ("imagenet32", "train", "train_data_batch_10", "image-net.org"),
        ("places365_32", "train", "places365_train_standard.txt", "torchvision.datasets.Places365('{root}/places365'"),
    ],
)
def test_missing_files_say_where_and_how(tmp_path: Path, name: str, split: str, expected: str, how: str) -> None:
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset(name, split, root=tmp_path)
    message = str(info.value)
    assert expected in message and str(tmp_path) in message
    assert how.format(root=tmp_path) in message
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(DatasetNotFoundError):
        check_dataset(name, root=tmp_path)


def test_root_defaults_to_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADVSWEEP_DATA", str(tmp_path / "from-env"))
    with pytest.raises(DatasetNotFoundError, match="from-env"):
        load_dataset("cifar10", "test")
    monkeypatch.delenv("ADVSWEEP_DATA")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"data[/\\]cifar-10-batches-py"):
        load_dataset("cifar10", "test")


def write_cifar10(root: Path, n: int = 2, **replace: object) -> Path:
    """A CIFAR-10 folder of ``n`` images per file; ``replace`` swaps entries of data_batch_1 (None removes one)."""
    folder = root / "cifar-10-batches-py"
    for i, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        batch = {"data": cifar_rows(n, i), "labels": [i % 10] * n, "batch_label": name}
        if name == "data_batch_1":
            batch = {k: v for k, v in (batch | replace).items() if v is not None}
        write_pickle(folder / name, batch)
    return folder


def assert_refused(root: Path, name: str, split: str, file: Path, *fragments: str) -> None:
    """check_dataset (before a sweep) and load_dataset (in a trial) give the same message, naming the file, what is
    wrong and the fix."""
    with pytest.raises(DatasetInvalidError) as checked:
        check_dataset(name, root=root, splits=[split])
    with pytest.raises(DatasetInvalidError) as loaded:
        load_dataset(name, split, root=root)
    message = str(checked.value)
    assert message == str(loaded.value)
    assert message.startswith(f"{name} ({split}): {file}") and "Replace the file" in message, message
    assert all(fragment in message for fragment in fragments), message


def test_empty_placeholder_files_are_refused_before_any_load(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(b"")  # right names, no content
    assert_refused(tmp_path, "cifar10", "test", folder / "test_batch", "not a readable pickle", "download=True")
    assert isinstance(DatasetInvalidError("x"), ValueError)


@pytest.mark.parametrize(
    ("replace", "fragments"),
    [
        ({"labels": None}, ["no 'labels' key", "'batch_label', 'data'"]),
        ({"data": np.zeros((2, 32, 32, 3), dtype=np.uint8)}, ["'data' is uint8 of shape (2, 32, 32, 3)", "(N, 3072)"]),
        ({"data": np.zeros((2, 3072), dtype=np.float32)}, ["'data' is float32 of shape (2, 3072)", "expected uint8"]),
        ({"labels": [0]}, ["'labels' is list of length 1, expected 2 labels"]),
        ({"labels": [3, 10]}, ["labels from 3 to 10, expected 0 to 9"]),
        ({"labels": np.array([0.5, 1.0])}, ["float64 values, expected integer"]),
        ({"data": [[0] * 3072] * 2}, ["'data' is list, expected uint8"]),
    ],
    ids=["missing-key", "wrong-shape", "wrong-dtype", "label-count", "label-range", "float-labels", "list-data"],
)
def test_wrong_cifar_content_names_the_file_and_what_is_wrong(tmp_path: Path, replace: dict, fragments: list) -> None:
    folder = write_cifar10(tmp_path, **replace)
    assert_refused(tmp_path, "cifar10", "train", folder / "data_batch_1", *fragments)
    check_dataset("cifar10", root=tmp_path, splits=["test"])  # the other split's files are fine


def test_random_truncated_and_foreign_pickles_are_refused(tmp_path: Path) -> None:
    folder = write_cifar10(tmp_path)
    path = folder / "data_batch_1"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    assert_refused(tmp_path, "cifar10", "train", path, "not a readable pickle")
    big = pickle.dumps({"data": noise_rows(1000), "labels": [1] * 1000}, protocol=4)  # a 3 MB payload, skipped
    path.write_bytes(big[: len(big) // 2])
    assert_refused(tmp_path, "cifar10", "train", path, "not a readable pickle", "truncated")
    path.write_bytes(pickle.dumps({"data": Path("x"), "labels": [1]}))  # pickles can run code: only arrays pass
    assert_refused(tmp_path, "cifar10", "train", path, "pathlib", "no dataset batch does")
    path.write_bytes(pickle.dumps([1, 2]))
    assert_refused(tmp_path, "cifar10", "train", path, "holds a list, not a dict")


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_large_batches_in_every_pickle_protocol_and_bytes_keys_pass(tmp_path: Path, protocol: int) -> None:
    """Large payloads are skipped by the check and read by the load; Python-3 batches re-pickled with bytes keys
    (b'data', as ``pickle.load(f, encoding='bytes')`` gives them) are the same content."""
    folder = write_cifar10(tmp_path)
    data = noise_rows(700)  # 2.1 MB: over the size the check skips
    labels = np.arange(700, dtype=np.int64) % 10  # an array of labels, small enough to be read and range-checked
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": data, b"labels": labels}, protocol=protocol))
    check_dataset("cifar10", root=tmp_path)
    train = load_dataset("cifar10", "train", root=tmp_path)
    assert len(train) == 708 and train.images[:700].numpy().reshape(700, -1).tolist() == data.tolist()
    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": data, b"labels": labels + 1}, protocol=protocol))
    assert_refused(tmp_path, "cifar10", "train", folder / "data_batch_1", "labels from 1 to 10")


class Python2Pickler(pickle._Pickler):
    """Pickles as Python 2 did for the published CIFAR files: every str and bytes a BINSTRING, numpy under its old
    module name."""

    def save_binstring(self, obj: str | bytes) -> None:
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        self.write(pickle.BINSTRING + len(data).to_bytes(4, "little") + data)
        self.memoize(obj)

    def save_global(self, obj: object, name: str | None = None) -> None:
        module = getattr(obj, "__module__", "").replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__name__}\n".encode())
        self.memoize(obj)

    dispatch: ClassVar[dict] = {**pickle._Pickler.dispatch, str: save_binstring, bytes: save_binstring}


def test_python2_batches_as_published_are_checked_without_reading_the_pixels(tmp_path: Path) -> None:
    folder = write_cifar10(tmp_path)
    data = noise_rows(400)  # 1.2 MB: skipped by the check
    with open(folder / "data_batch_1", "wb") as f:
        Python2Pickler(f, protocol=2).dump({"batch_label": "training batch 1 of 5", "labels": [9] * 400,
                                            "data": data, "filenames": ["a.png"] * 400})
    assert b"numpy.core.multiarray\n_reconstruct" in (folder / "data_batch_1").read_bytes()
    check_dataset("cifar10", root=tmp_path)
    train = load_dataset("cifar10", "train", root=tmp_path)
    assert train.images[:400].numpy().reshape(400, -1).tolist() == data.tolist() and train.labels[399] == 9


SUPPORT = Path(__file__).with_name("tests_support.py")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (np.random.default_rng(1).bytes(2048), "is not a readable pickle"),
        (pickle.dumps({"data": np.zeros((2, 3072), dtype=np.uint8)}), "has no 'labels' key"),
        (pickle.dumps({"data": np.zeros((2, 3, 32, 32), dtype=np.uint8), "labels": [0, 1]}), "(N, 3072)"),
    ],
    ids=["random-bytes", "missing-key", "wrong-shape"],
)
def test_a_sweep_refuses_wrong_data_before_ray_starts(tmp_path: Path, content: bytes, expected: str) -> None:
    """The pi ablation's paper preset (CIFAR-10 with ImageNet32) as a user runs it, in its own process."""
    folder = write_cifar10(tmp_path / "data")
    (folder / "data_batch_1").write_bytes(content)
    result = subprocess.run(
        [sys.executable, str(SUPPORT), "--preset", "paper", "--data-root", str(tmp_path / "data"),
         "--storage-path", str(tmp_path / "ray"), "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1 and last.startswith(f"error: cifar10 (train): {folder / 'data_batch_1'}"), last
    assert expected in last and "download=True" in last
    assert not (tmp_path / "ray").exists() and not (tmp_path / "mlflow.db").exists()  # nothing started


def test_imagenet32_labels_must_be_1_to_1000(tmp_path: Path) -> None:
    folder = tmp_path / "imagenet32"
    write_pickle(folder / "val_data", {"data": cifar_rows(2, 0), "labels": [0, 1000]})
    assert_refused(tmp_path, "imagenet32", "val", folder / "val_data", "labels from 0 to 1000, expected 1 to 1000",
                   "image-net.org")


def test_wrong_svhn_files_are_refused(tmp_path: Path) -> None:
    from scipy.io import savemat

    (tmp_path / "svhn").mkdir()
    path = tmp_path / "svhn" / "test_32x32.mat"
    path.write_bytes(b"not a MATLAB file")
    assert_refused(tmp_path, "svhn", "test", path, "not a readable MATLAB file", "SVHN(")
    savemat(path, {"X": np.zeros((3, 32, 32, 2), dtype=np.uint8), "y": np.array([[1], [2]])})
    assert_refused(tmp_path, "svhn", "test", path, "'X' is uint8 of shape (3, 32, 32, 2), expected uint8 of shape "
                   "(32, 32, 3, N)")
    savemat(path, {"X": np.zeros((32, 32, 3, 2), dtype=np.uint8), "y": np.array([[1], [11]])})
    assert_refused(tmp_path, "svhn", "test", path, "labels from 1 to 11, expected 1 to 10")
    savemat(path, {"X": np.zeros((32, 32, 3, 2), dtype=np.uint8)})
    assert_refused(tmp_path, "svhn", "test", path, "no 'X' or 'y' variable")


def test_wrong_places365_list_and_cache_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "places365"
    (folder / "val_256").mkdir(parents=True)
    (folder / "places365_val.txt").write_text("a.jpg 3\nb.jpg 365\n")
    assert_refused(tmp_path, "places365_32", "val", folder / "places365_val.txt", "line 2", "label from 0 to 364")
    cache = folder / "places365_32_val.npz"
    np.savez(cache, images=np.zeros((2, 32, 32, 3), dtype=np.uint8), labels=np.array([0, 1]))
    assert_refused(tmp_path, "places365_32", "val", cache, "(2, 32, 32, 3)", "the next load rebuilds it")
    cache.write_bytes(b"PK\x03\x04 torn")
    assert_refused(tmp_path, "places365_32", "val", cache, "not a readable .npz cache")


def test_unknown_names_list_the_valid_ones() -> None:
    for call in (lambda: load_dataset("cifar11", "train"), lambda: check_dataset("cifar11")):
        with pytest.raises(ValueError) as info:
            call()
        assert all(name in str(info.value) for name in dataset_names())
    with pytest.raises(ValueError, match="'train', 'test'"):
        load_dataset("synthetic", "val")
    with pytest.raises(TypeError):
        check_dataset("synthetic", sede=1)  # a typo in an option fails before any data is made
    with pytest.raises(ValueError, match="cannot be downloaded.*image-net.org.*nonexistent/imagenet32"):
        load_dataset("imagenet32", "train", root="/nonexistent", download=True)


def test_registry_is_complete() -> None:
    """The names a config is checked against (trainables/dataset_names.py, no torch) are the readers' names, and
    the built-in ones are those that read no files."""
    from trainables.datasets import _READERS

    assert dataset_names() == sorted([*FILE_DATASETS, *BUILT_IN]) == sorted(_READERS)
    assert names.BUILT_IN == {name for name, reader in _READERS.items() if reader.folder is None} == set(BUILT_IN)


@pytest.mark.parametrize("name", dataset_names())
def test_every_registered_dataset(tmp_path: Path, name: str) -> None:
    """Built-in sets load from nothing; file-based ones fail with directions on an empty root."""
    if name in BUILT_IN:
        data = load_dataset(name, "train", root=tmp_path, n=20)
        assert len(data) == 20 and data.images.shape[1:] == (3, 32, 32) and data.name == name
    else:
        with pytest.raises(DatasetNotFoundError, match=str(tmp_path)):
            load_dataset(name, "train", root=tmp_path)


def test_image_set_checks_and_subset() -> None:
    images = torch.arange(4 * 3 * 2 * 2, dtype=torch.uint8).view(4, 3, 2, 2)
    data = ImageSet(images, torch.tensor([0, 1, 2, 1]), 3, "toy")
    first = data.subset(torch.arange(2))
    assert len(first) == 2 and torch.equal(first.images, images[:2]) and first.num_classes == 3
    assert data.subset([3, 0]).labels.tolist() == [1, 0]
    assert data.subset(data.labels == 1).labels.tolist() == [1, 1]
    with pytest.raises(ValueError, match="uint8"):
        ImageSet(images.float(), data.labels, 3, "toy")
    with pytest.raises(ValueError, match="outside"):
        ImageSet(images, torch.tensor([0, 1, 2, 3]), 3, "toy")


# ---------------------------------------------------------------------------------------------------------------------
# Synthetic benchmark
# ---------------------------------------------------------------------------------------------------------------------


def test_synthetic_is_deterministic_and_seeded() -> None:
    a = load_dataset("synthetic", "train", seed=3, n=500)
    b = load_dataset("synthetic", "train", seed=3, n=500)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, load_dataset("synthetic", "train", seed=4, n=500).images)
    assert not torch.equal(a.images, load_dataset("synthetic", "test", seed=3, n=500).images)
    assert not torch.equal(synthetic_patterns(3).robust, synthetic_patterns(4).robust)


def test_synthetic_defaults_range_and_balance() -> None:
    train, test = load_dataset("synthetic", "train"), load_dataset("synthetic", "test")
    assert (len(train), len(test)) == (10_000, 2_000)
    assert train.images.shape[1:] == (3, 32, 32) and train.images.dtype == torch.uint8 and train.num_classes == 10
    assert torch.bincount(train.labels).tolist() == [1000] * 10
    assert torch.bincount(test.labels[:1000], minlength=10).min() > 60  # the first N test points cover every class
    pixels = train.images.float() / 255
    assert 0.45 < pixels.mean() < 0.55 and pixels.std() > 0.05
    assert ((train.images == 0) | (train.images == 255)).float().mean() < 1e-3  # clipping would cut the patterns
    small = load_dataset("synthetic", "test", n=30, size=16)
    assert small.images.shape == (30, 3, 16, 16)


def test_synthetic_nonrobust_pattern_is_small_and_exact() -> None:
    patterns = synthetic_patterns(0)
    assert patterns.nonrobust.abs().max() == pytest.approx(NONROBUST_AMPLITUDE)
    assert NONROBUST_AMPLITUDE < 8 / 255
    assert patterns.nonrobust.mean(dim=(2, 3)).abs().max() < 1e-6  # no colour: a pure texture
    assert torch.equal(patterns.nonrobust, patterns.nonrobust.flip(-1))  # flip augmentation keeps it

    # Measured in the images: removing the texture (same seed, nonrobust_p=0) changes each image by N_y exactly.
    with_n = load_dataset("synthetic", "test", n=300, nonrobust_p=1.0)
    without = load_dataset("synthetic", "test", n=300, nonrobust_p=0.0)
    assert torch.equal(with_n.labels, without.labels)
    diff = with_n.images.float() - without.images.float()
    assert diff.abs().max() <= NONROBUST_AMPLITUDE * 255 + 1e-4
    unclipped = (without.images > 10) & (without.images < 245)
    expected = (patterns.nonrobust[with_n.labels] * 255).round()
    assert torch.equal(diff[unclipped], expected[unclipped])


def test_synthetic_robust_pattern_is_large_and_partly_predictive() -> None:
    patterns = synthetic_patterns(0)
    assert patterns.robust.abs().amax(dim=(1, 2, 3)).tolist() == pytest.approx([ROBUST_AMPLITUDE] * 10)
    assert ROBUST_AMPLITUDE > 6 * 8 / 255
    assert torch.allclose(patterns.robust, patterns.robust.flip(-1))  # flip augmentation keeps it
    distances = (patterns.robust[:, None] - patterns.robust[None]).abs().mean(dim=(2, 3, 4))
    assert (distances + torch.eye(10)).min() > 2 * 8 / 255  # no two classes within reach of an 8/255 attack

    # With the same seed, robust_p=1 changes exactly the images that carried another class's pattern.
    default = load_dataset("synthetic", "test", n=2000)
    always = load_dataset("synthetic", "test", n=2000, robust_p=1.0)
    changed = (default.images != always.images).flatten(1).any(1).float().mean()
    assert abs(changed - (1 - ROBUST_P)) < 0.04


def test_synthetic_absent_drops_the_decoy_robust_pattern() -> None:
    """``synthetic_absent``: the same images as ``synthetic``, except that those without their class's robust pattern
    carry none instead of another class's (AFS's science test needs images on which R says nothing)."""
    default = load_dataset("synthetic", "test", n=2000)
    absent = load_dataset("synthetic_absent", "test", n=2000)
    always = load_dataset("synthetic", "test", n=2000, robust_p=1.0)
    assert absent.name == "synthetic_absent" and torch.equal(absent.labels, default.labels)
    changed = (default.images != absent.images).flatten(1).any(1)
    assert torch.equal(changed, (default.images != always.images).flatten(1).any(1)), "exactly the decoy images"
    # There the difference is the decoy pattern: the other class's R (up to uint8 rounding and clipping).
    patterns = synthetic_patterns(0)
    diff = default.images[changed].float() - absent.images[changed].float()
    decoys = ((diff[:, None] - 255 * patterns.robust[None]).abs().mean(dim=(2, 3, 4))).argmin(1)
    assert (decoys != default.labels[changed]).all()
    assert ((diff - 255 * patterns.robust[decoys]).abs().mean(dim=(1, 2, 3)) < 1.5).all()


def test_synthetic_aux_shares_patterns_as_documented() -> None:
    related = synthetic_aux_related()
    assert related == {a: a for a in range(5)}
    patterns = synthetic_patterns(0)
    assert torch.equal(patterns.aux_robust[:5], patterns.robust[:5])
    assert patterns.aux_robust.shape == (10, 3, 32, 32)
    # The primary patterns do not depend on the auxiliary options.
    other = synthetic_patterns(0, aux_classes=20, related_classes=2)
    assert torch.equal(other.robust, patterns.robust) and torch.equal(other.nonrobust, patterns.nonrobust)
    assert torch.equal(other.aux_robust[:2], patterns.robust[:2]) and len(other.aux_robust) == 20

    # In the images: the mean of an auxiliary class is its robust pattern; related classes match a primary one.
    aux = load_dataset("synthetic_aux", "train", n=2000, robust_p=1.0, nonrobust_p=0.0)
    assert aux.num_classes == 10 and aux.name == "synthetic_aux"
    assert torch.bincount(aux.labels).tolist() == [200] * 10
    class_means = torch.stack([aux.images[aux.labels == a].float().mean(0) / 255 - 0.5 for a in range(10)])
    distance = (class_means[:, None] - patterns.robust[None]).abs().mean(dim=(2, 3, 4))  # (aux class, primary class)
    nearest, closest = distance.min(dim=1)
    assert closest[:5].tolist() == list(range(5)) and nearest[:5].max() < 0.03
    assert nearest[5:].min() > 2 * nearest[:5].max()  # the fresh patterns are unlike every primary pattern

    # synthetic_aux_unrelated: the same images but for the robust patterns, none of which is a primary one.
    unrelated = load_dataset("synthetic_aux_unrelated", "train", n=2000, robust_p=1.0, nonrobust_p=0.0)
    assert unrelated.name == "synthetic_aux_unrelated" and torch.equal(unrelated.labels, aux.labels)
    means = torch.stack([unrelated.images[unrelated.labels == a].float().mean(0) / 255 - 0.5 for a in range(10)])
    assert (means[:, None] - patterns.robust[None]).abs().mean(dim=(2, 3, 4)).min() > 2 * nearest[:5].max()


def test_synthetic_aux_carries_a_random_primary_texture() -> None:
    with_n = load_dataset("synthetic_aux", "train", n=400, seed=1)
    without = load_dataset("synthetic_aux", "train", n=400, seed=1, nonrobust_p=0.0)
    textures = (synthetic_patterns(1).nonrobust * 255).round()
    diff = with_n.images.float() - without.images.float()
    matches = (diff[:, None] - textures[None]).abs().flatten(2).amax(2) <= 1  # (image, primary class)
    carried = matches.float().argmax(1)
    assert matches.any(1).float().mean() > 0.98  # each image carries one primary texture (clipping aside)
    assert torch.bincount(carried, minlength=10).min() > 15  # drawn uniformly ...
    assert (carried == with_n.labels).float().mean() < 0.2  # ... and independently of the auxiliary label


def test_synthetic_aux_options() -> None:
    aux = load_dataset("synthetic_aux", "test", n=60, num_classes=6, related_classes=2, size=16)
    assert aux.num_classes == 6 and aux.images.shape == (60, 3, 16, 16)
    assert torch.bincount(aux.labels).tolist() == [10] * 6
    with pytest.raises(ValueError, match="related_classes"):
        load_dataset("synthetic_aux", "train", n=10, num_classes=4, related_classes=5)
    with pytest.raises(ValueError, match="robust_p"):
        load_dataset("synthetic", "train", n=10, robust_p=1.5)


def test_derive_seed_is_stable_and_separates_streams() -> None:
    assert derive_seed(0, "epoch", 1) == derive_seed(0, "epoch", 1)
    assert derive_seed(0, "epoch", 1) != derive_seed(1, "epoch", 0)
    assert 0 <= derive_seed(2**40, "x") < 2**63


def test_a_sets_train_split_in_parts_is_one_fixed_partition_with_noise_on_c() -> None:
    """NAME:PARTS (BiaMAT appendix Table 5): A is half the train split, B and C a quarter each, disjoint and together
    the whole split, the same draw every time; C's images are the originals plus bounded noise that changes most
    pixels; the test split is the set's own."""
    from trainables.dataset_parts import C_NOISE, part_indices

    full = load_dataset("synthetic", "train")
    indices = part_indices(len(full))
    assert [len(indices[p]) for p in "ABC"] == [len(full) // 2, len(full) // 4, len(full) // 4]
    joined = torch.cat([indices[p] for p in "ABC"])
    assert sorted(joined.tolist()) == list(range(len(full)))  # disjoint, and every image once
    assert torch.equal(part_indices(len(full))["B"], indices["B"])
    a_b = load_dataset("synthetic:A+B", "train")
    assert a_b.name == "synthetic:A+B" and len(a_b) == 3 * len(full) // 4
    assert torch.equal(a_b.images, full.images[torch.cat([indices["A"], indices["B"]])])
    c = load_dataset("synthetic:C", "train")
    difference = (c.images.float() - full.images[indices["C"]].float()).abs()
    assert torch.equal(c.labels, full.labels[indices["C"]])
    assert difference.max() <= round(C_NOISE * 255) and (difference > 0).float().mean() > 0.5
    assert torch.equal(load_dataset("synthetic:A", "test").images, load_dataset("synthetic", "test").images)
    for bad in ("synthetic:D", "synthetic:A+A", "synthetic:"):
        with pytest.raises(ValueError, match="the parts of synthetic's train split are A, B, C"):
            load_dataset(bad, "train")
