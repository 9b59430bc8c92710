"""Which images a trial trains, selects and is evaluated on (trainables/trial_data.py): seeded random samples that
cover a class-sorted set in proportion, the same for every trial, and a test source other than the dataset's own."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from launch.checks import validate
from trainables.config import TrainConfig
from trainables.datasets import load_dataset
from trainables.image_set import evaluation_points
from trainables.trial_data import TrialData

CLASSES = 4
PER_CLASS = 25


def write_sorted_folder(root: Path, splits: tuple[str, ...] = ("train", "test")) -> Path:
    """An ImageFolder of 4 classes x 25 8x8 PNGs per split, each image its own colour: read class by class, so the
    first 25 images of a split are all class 0."""
    from PIL import Image

    for s, split in enumerate(splits):
        for c in range(CLASSES):
            (root / split / str(c)).mkdir(parents=True)
            for i in range(PER_CLASS):
                colour = (60 * c, 10 * i, 100 * s)
                Image.fromarray(np.full((8, 8, 3), colour, dtype=np.uint8)).save(root / split / str(c) / f"{i}.png")
    return root


def class_counts(labels: torch.Tensor) -> list[int]:
    return [Counter(labels.tolist()).get(c, 0) for c in range(CLASSES)]


@pytest.fixture(scope="module")
def sorted_folder(tmp_path_factory) -> str:
    return f"folder@8:{write_sorted_folder(tmp_path_factory.mktemp('sorted'))}"


def test_every_subset_of_a_class_sorted_folder_covers_every_class_in_proportion(sorted_folder):
    assert load_dataset(sorted_folder, "test").labels[:PER_CLASS].unique().tolist() == [0]  # the first 25: class 0
    cfg = TrainConfig.from_dict({"dataset": sorted_folder, "train_n": 40, "eval_n": 40, "final_n": 60,
                                 "train_eval_n": 20, "batch_size": 20})
    data = TrialData.load(cfg, None)
    # Every class, in counts a proportional random draw gives (chi-square against equal shares): "the first N" would
    # hold classes 0-1 of 40 points and 0-2 of 60 (p below 1e-8).
    for subset, n in ((data.select, 40), (data.test, 60), (data.train, 40), (data.train_eval_points(20, 0), 20)):
        counts = class_counts(subset.labels)
        assert sum(counts) == n and min(counts) > 0 and chisquare(counts).pvalue > 0.01, counts
    holdout = TrialData.load(TrainConfig.from_dict({**vars(cfg), "train_n": 0, "select_on": "holdout",
                                                    "holdout_n": 40}), None)
    counts = class_counts(holdout.select.labels)
    assert len(holdout.train) == 60 and min(counts) > 0 and chisquare(counts).pvalue > 0.01, counts


def test_the_points_are_nested_the_same_for_every_trial_seed_and_what_a_reevaluation_reads(sorted_folder):
    def points(**values) -> TrialData:
        return TrialData.load(TrainConfig.from_dict({"dataset": sorted_folder, "eval_n": 40, "final_n": 60,
                                                     **values}), None)

    data = points(seed=0)
    assert torch.equal(data.select.images, data.test.images[:40])  # selection points inside the final points
    assert torch.equal(points(seed=3).test.images, data.test.images)  # every trial of a sweep: the same points
    assert not torch.equal(points(subset_seed=1).test.images, data.test.images)  # another draw, when asked
    # sweeps/reevaluate.py's rule: --n equal to final_n evaluates the trial's own final points.
    again = evaluation_points(load_dataset(sorted_folder, "test"), 60, seed=0)
    assert torch.equal(again.images, data.test.images) and torch.equal(again.labels, data.test.labels)


def test_a_folder_of_test_images_only_tests_npz_training_data(tmp_path):
    train = load_dataset(f"folder@8:{write_sorted_folder(tmp_path / 'both')}", "train")
    np.savez(tmp_path / "train.npz", image=train.images.numpy(), label=train.labels.numpy())
    tests_only = write_sorted_folder(tmp_path / "tests-only", splits=("test",))  # no train/: its own class names
    space = {"dataset": f"npz:{tmp_path / 'train.npz'}", "test_data": f"folder@8:{tests_only}", "final_n": 100}
    with pytest.raises(SystemExit, match=r"has no split 'test'.*a \.npz file is the train split only"):
        validate(TrainConfig, {**space, "test_data": ""}, None)  # a single .npz has no test split of its own
    (cfg,) = validate(TrainConfig, space, None)  # the dry run's and the real run's check
    data = TrialData.load(cfg, None)
    assert data.test.num_classes == CLASSES and class_counts(data.test.labels) == [PER_CLASS] * CLASSES
    assert (data.test.images[:, 2] == 0).all()  # the test-only folder's images (blue 0), not the training folder's
    np.savez(tmp_path / "small.npz", image=np.zeros((3, 4, 4, 3), np.uint8), label=np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=r"test_data=.*small.npz' has images of shape \(3, 4, 4\).*training images"):
        TrialData.load(TrainConfig.from_dict({**space, "test_data": f"npz:{tmp_path / 'small.npz'}"}), None)
