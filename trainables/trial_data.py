"""Which images a trial trains on, selects its checkpoint on and is evaluated on.

Every subset is a seeded random sample, never "the first N": a folder of images is read class by class, where the
first N would hold the first classes only. One seed, the config's ``subset_seed`` (not the trial's ``seed``), draws
them all, so every trial of a sweep, whatever its seed, trains and is evaluated on the same images:

- ``train_n``: that many training images (all with 0), kept in file order; ``extra_data`` equal to ``dataset``
  adds the training images this leaves out.
- ``select_on="holdout"``: ``holdout_n`` of those, held out from training; the rest is trained on.
- the evaluation points (``image_set.evaluation_points``): ``eval_n`` (checkpoint selection on the test set),
  ``final_n`` (the final protocol) and AutoAttack's ``autoattack_n`` are prefixes of one order of the test split.
- ``train_eval_n``: that many of the training images, for the training-set learning curves.

The test split is the dataset's own, or that of ``test_data`` when the trials are tested on another source (a
folder of test images beside npz training data, say), checked to fit the training set.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trainables.config import TrainConfig
from trainables.dataset_names import test_split_of
from trainables.datasets import load_dataset
from trainables.image_set import ImageSet, evaluation_indices, evaluation_points, sample_order


@dataclass(frozen=True)
class TrialData:
    """The primary data of a trial. ``select`` drives checkpoint selection; ``test`` is for the final protocol, and
    ``test_indices`` says which points of the test split it holds (for per-point results); ``extra``
    (``extra_data``), when there is any, is mixed into every training batch (loader.MixedLoader)."""

    train: ImageSet
    select: ImageSet
    test: ImageSet
    extra: ImageSet | None = None
    test_indices: torch.Tensor | None = None

    @property
    def index_size(self) -> int:
        """How many sample indices a training batch's ``idx`` ranges over: the training set, then the extra data."""
        return len(self.train) + (len(self.extra) if self.extra is not None else 0)

    @classmethod
    def load(cls, cfg: TrainConfig, data_root: str | None) -> TrialData:
        full = load_dataset(cfg.dataset, "train", root=data_root)
        test = test_split(cfg, full, data_root)
        chosen = sample_order(len(full), cfg.subset_seed, "training-images")
        if cfg.train_n and cfg.train_n < len(full):
            train, left_out = full.subset(chosen[:cfg.train_n].sort().values), chosen[cfg.train_n:].sort().values
        else:
            train, left_out = full, chosen[:0]
        extra = extra_data(cfg, full, full.subset(left_out), data_root) if cfg.extra_data else None
        if cfg.select_on == "holdout":
            held = sample_order(len(train), cfg.subset_seed, "holdout-images")
            holdout = train.subset(held[:cfg.holdout_n])  # in drawn order: its first eval_n are a random sample
            train = train.subset(held[cfg.holdout_n:].sort().values)
            select = holdout.subset(torch.arange(min(cfg.eval_n, len(holdout))))
        else:
            select = evaluation_points(test, cfg.eval_n, cfg.subset_seed)
        final = evaluation_indices(len(test), cfg.final_n, cfg.subset_seed)
        return cls(train=train, select=select, test=test.subset(final), extra=extra, test_indices=final)

    def train_eval_points(self, n: int, seed: int) -> ImageSet:
        """``n`` of the training images (all if there are fewer), the same for every epoch: the training-set points
        of the learning curves (``train_eval_n``)."""
        return self.train.subset(sample_order(len(self.train), seed, "train-eval-images")[:n])


def test_split(cfg: TrainConfig, train: ImageSet, data_root: str | None) -> ImageSet:
    """The test split of ``test_data`` when it is set (``dataset_names.test_split_of``; ValueError if its images or
    classes do not fit the training set's), else the dataset's own."""
    if not cfg.test_data:
        return load_dataset(cfg.dataset, "test", root=data_root)
    test = load_dataset(cfg.test_data, test_split_of(cfg.test_data), root=data_root)
    what = f"test_data={cfg.test_data!r}"
    if test.images.shape[1:] != train.images.shape[1:]:
        raise ValueError(f"{what} has images of shape {tuple(test.images.shape[1:])}, {cfg.dataset} "
                         f"{tuple(train.images.shape[1:])}: the test images must be the training images' size")
    if int(test.labels.max()) >= train.num_classes:
        raise ValueError(f"{what} has labels up to {int(test.labels.max())}, but {cfg.dataset} has "
                         f"{train.num_classes} classes: test on images of the training set's classes")
    return ImageSet(test.images, test.labels, train.num_classes, test.name)


def extra_data(cfg: TrainConfig, full: ImageSet, left_out: ImageSet, data_root: str | None) -> ImageSet:
    """The train split of ``extra_data`` (with ``extra_data == dataset``: the training images that ``train_n`` leaves
    out), checked to fit the training set: the same image size, labels among its classes."""
    name = cfg.extra_data
    extra = left_out if name == cfg.dataset else load_dataset(name, "train", root=data_root)
    if len(extra) == 0:
        raise ValueError(f"extra_data={name!r} holds no images beyond the train_n={cfg.train_n} trained on: lower "
                         "train_n")
    if extra.images.shape[1:] != full.images.shape[1:]:
        raise ValueError(f"extra_data={name!r} has images of shape {tuple(extra.images.shape[1:])}, {cfg.dataset} "
                         f"{tuple(full.images.shape[1:])}: the extra images must be the training set's size")
    if extra.num_classes > full.num_classes:
        raise ValueError(f"extra_data={name!r} has labels up to {extra.num_classes - 1}, but {cfg.dataset} has "
                         f"{full.num_classes} classes: give it extra data of the same classes (cifar100_ddpm.npz "
                         "for cifar100, cifar10_ddpm.npz for cifar10)")
    return ImageSet(extra.images, extra.labels, full.num_classes, extra.name)
