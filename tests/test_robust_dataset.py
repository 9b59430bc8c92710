"""Ilyas et al.'s robust-dataset construction (trainables/robust_dataset.py), BiaMAT appendix Table 6's data: properties
only a correct construction has, and the chunked files a stopped construction resumes from."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from trainables.datasets import load_dataset
from trainables.robust_dataset import (
    Construction,
    assemble,
    build_chunk,
    different_starts,
    feature_distance,
    robust_images,
)


class LinearFeatures(nn.Module):
    """g(x) = W x: the gradient of ||g(x) - g(t)|| is W^T W (x - t) / ||W (x - t)||, known in closed form."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.weight.T


class ConvFeatures(nn.Module):
    """A small network with BatchNorm, whose statistics would tie the images of a batch together in train mode."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 16, 3),
                                  nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.body(torch.rand(16, 3, 8, 8))  # moves the running statistics away from their initial values

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_every_image_starts_from_another_one_chosen_by_the_seed():
    starts = different_starts(1000, seed=3)
    assert not (starts == torch.arange(1000)).any()
    assert torch.equal(starts, different_starts(1000, seed=3)) and not torch.equal(starts, different_starts(1000, 4))
    # Uniform over the others: every offset 1..n-1 is possible, none is favoured much.
    offsets = (starts - torch.arange(1000)) % 1000
    assert offsets.min() >= 1 and len(set(different_starts(3, 0).tolist())) >= 2
    with pytest.raises(ValueError, match="at least 2"):
        different_starts(1, 0)


def test_one_step_moves_each_image_by_the_step_along_the_normalised_gradient():
    torch.manual_seed(1)
    model = LinearFeatures(torch.randn(5, 12))
    targets = 0.4 + 0.2 * torch.rand(3, 3, 2, 2)
    starts = 0.4 + 0.2 * torch.rand(3, 3, 2, 2)  # far enough from 0 and 1 that no pixel is clipped
    stepped = robust_images(model, targets, starts, steps=1, step_size=0.05)
    w = model.weight.detach()
    diff = (starts - targets).flatten(1)
    grad = (diff @ w.T @ w) / (diff @ w.T).norm(dim=1, keepdim=True)
    expected = starts.flatten(1) - 0.05 * grad / grad.norm(dim=1, keepdim=True)
    assert torch.allclose(stepped.flatten(1), expected, atol=1e-6)
    assert torch.allclose((stepped - starts).flatten(1).norm(dim=1), torch.full((3,), 0.05), atol=1e-6)
    assert model.weight.grad is None  # the model is only read


def test_the_features_come_closer_to_the_targets_and_never_move_away():
    model = ConvFeatures()
    torch.manual_seed(2)
    targets, starts = torch.rand(6, 3, 8, 8), torch.rand(6, 3, 8, 8)
    goal = model.eval().features(targets).detach()
    before = feature_distance(model, starts, goal).detach()
    after = feature_distance(model, robust_images(model, targets, starts, steps=30, step_size=0.1), goal).detach()
    assert (after < 0.5 * before).all(), (before, after)
    # A step far too long overshoots at once: the best iterate is kept, so no image ends farther than it started.
    overshot = robust_images(model, targets, starts, steps=3, step_size=50.0)
    assert (feature_distance(model, overshot, goal).detach() <= before + 1e-6).all()
    assert overshot.min() >= 0 and overshot.max() <= 1


def test_an_image_does_not_depend_on_its_batch_and_the_models_mode_is_restored():
    model = ConvFeatures().train()
    torch.manual_seed(3)
    targets, starts = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    together = robust_images(model, targets, starts, steps=5, step_size=0.1)
    alone = torch.cat([robust_images(model, targets[i : i + 1], starts[i : i + 1], steps=5, step_size=0.1)
                       for i in range(4)])
    assert torch.allclose(together, alone, atol=1e-5)
    assert model.training and all(p.grad is None for p in model.parameters())


def test_chunks_are_written_once_and_joined_into_a_dataset_of_the_targets_labels(tmp_path):
    model = ConvFeatures()
    images = torch.randint(0, 256, (7, 3, 8, 8), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    job = Construction(tmp_path / "robust", "at-run", steps=2, chunk_size=3, batch_size=2)
    assert job.missing_chunks(7) == [0, 1, 2]
    for k in (0, 2):
        build_chunk(model, images, labels, job, k, torch.device("cpu"))
    assert job.missing_chunks(7) == [1]  # a stopped construction resumes with the chunk it lacks
    build_chunk(model, images, labels, job, 1, torch.device("cpu"))
    print(assemble(job, 7))
    with np.load(job.out) as data:
        assert np.array_equal(data["label"], labels.numpy()) and np.array_equal(data["target_index"], np.arange(7))
        assert (data["start_index"] != data["target_index"]).all() and data["image"].dtype == np.uint8
    robust = load_dataset(f"npz:{job.out}", "train")  # the trials read it like any npz: dataset
    assert len(robust) == 7 and robust.num_classes == 3
    # Chunks of another size (files copied under other settings' names) do not cover the images in order: refused.
    other = replace(job, chunk_size=2)
    other.chunk_folder.mkdir()
    for k, source in enumerate((0, 1, 2, 2)):
        other.chunk_path(k).write_bytes(job.chunk_path(source).read_bytes())
    with pytest.raises(ValueError, match="delete that folder"):
        assemble(other, 7)


def test_a_limit_builds_from_the_first_images_only(tmp_path):
    images = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    job = Construction(tmp_path, "d", steps=1, chunk_size=8, limit=4)
    build_chunk(ConvFeatures(), images, torch.arange(10) % 2, job, 0, torch.device("cpu"))
    assert job.size(10) == 4 and job.missing_chunks(4) == []
    with np.load(job.chunk_path(0)) as data:
        assert len(data["image"]) == 4 and (data["start_index"] < 4).all()
