"""Ilyas et al.'s robust dataset (NeurIPS 2019, "Adversarial examples are not bugs, they are features"), which BiaMAT
appendix C builds from its AT and AT+BiaMAT models (``sweeps/biamat_robust_dataset.py``).

For every training image x with label y, an image x_r starts at another training image, chosen at random, and is
optimised to ``min ||g(x_r) - g(x)||_2``, g the model's penultimate features (``Classifier.features``): each step
moves x_r by ``step_size`` in L2 along the normalised negative gradient, then clips to [0, 1]. Ilyas et al. take
1000 steps of 0.1. The pair (x_r, y) joins the robust dataset. BatchNorm uses its running statistics (eval mode), so
an image's result does not depend on the batch it is built in. Of all the iterates, the one closest to g(x) in
feature space is kept (x_r itself when no step got closer): never worse than the last one.

The images are built in chunks of a fixed size, each written to its own file as soon as it is done, so a construction
that stops resumes with the chunks it lacks; :func:`assemble` joins them into one ``npz:`` dataset (uint8 images,
as every dataset here is stored: a rounding of at most 1/510 per pixel).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from trainables.evaluation import to_images
from trainables.user_data import save_npz_atomic

STEPS = 1000  # Ilyas et al.'s construction of the robust CIFAR-10 dataset
STEP_SIZE = 0.1


def different_starts(n: int, seed: int) -> Tensor:
    """For each of ``n`` images, the index of another one, uniformly at random among the other ``n - 1``."""
    if n < 2:
        raise ValueError(f"a robust dataset needs at least 2 training images to start from another one, got {n}")
    offsets = torch.randint(1, n, (n,), generator=torch.Generator().manual_seed(seed))
    return (torch.arange(n) + offsets) % n


def feature_distance(model: nn.Module, x: Tensor, target_features: Tensor) -> Tensor:
    """``||g(x) - g(target)||_2`` per image, g the penultimate features."""
    return (model.features(x) - target_features).flatten(1).norm(dim=1)


def robust_images(model: nn.Module, targets: Tensor, starts: Tensor, steps: int = STEPS,
                  step_size: float = STEP_SIZE) -> Tensor:
    """The optimised x_r of each pair (float images in [0, 1], on the targets' device): L2-normalised gradient descent
    on ``||g(x_r) - g(x)||_2`` from ``starts``, the iterate closest to ``g(targets)`` kept. The model's parameters get
    no gradient and its train/eval mode is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            goal = model.features(targets)
        best, best_distance = starts.clone(), torch.full((len(starts),), float("inf"), device=starts.device)

        def keep_closer(x: Tensor, distance: Tensor) -> None:
            closer = distance < best_distance
            best[closer] = x[closer]
            best_distance.copy_(torch.where(closer, distance, best_distance))

        x = starts.clone()
        for _ in range(steps):
            x.requires_grad_(True)
            distance = feature_distance(model, x, goal)
            (grad,) = torch.autograd.grad(distance.sum(), x)  # each image's gradient is its own distance's
            with torch.no_grad():
                keep_closer(x.detach(), distance.detach())  # this iterate's distance, from the pass just made
                norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (x.dim() - 1))
                x = (x - step_size * grad / norm).clamp_(0, 1)
        with torch.no_grad():
            keep_closer(x, feature_distance(model, x, goal))  # the last iterate
        return best.detach()
    finally:
        model.train(was_training)


@dataclass(frozen=True)
class Construction:
    """One robust dataset: where its chunks and the joined file go, and how it is built."""

    folder: Path
    name: str  # what the images come from (``at-<run id>``); the files add :attr:`settings` to it
    steps: int = STEPS
    step_size: float = STEP_SIZE
    seed: int = 0  # of the start images
    chunk_size: int = 2000
    batch_size: int = 250
    limit: int = 0  # build from the first ``limit`` training images only (0: all of them)

    @property
    def settings(self) -> str:
        """What the images depend on besides the model and the data, for the file names
        (``steps1000-size0.1-seed0-all-chunk2000``)."""
        return (f"steps{self.steps}-size{self.step_size:g}-seed{self.seed}-{self.limit or 'all'}"
                f"-chunk{self.chunk_size}")

    @property
    def out(self) -> Path:
        """The joined ``.npz``: a file of other settings is never taken for this one."""
        return self.folder / f"{self.name}-{self.settings}.npz"

    @property
    def chunk_folder(self) -> Path:
        return self.folder / f"{self.name}-{self.settings}-chunks"

    def chunk_path(self, index: int) -> Path:
        return self.chunk_folder / f"chunk-{index:05d}.npz"

    def chunks(self, n: int) -> range:
        return range((n + self.chunk_size - 1) // self.chunk_size)

    def missing_chunks(self, n: int) -> list[int]:
        return [k for k in self.chunks(n) if not self.chunk_path(k).exists()]

    def size(self, available: int) -> int:
        """How many images the dataset holds, of the ``available`` training images."""
        return min(self.limit, available) if self.limit else available


def build_chunk(model: nn.Module, images: Tensor, labels: Tensor, job: Construction, index: int,
                device: torch.device) -> Path:
    """Chunk ``index`` of the robust dataset of ``images`` (uint8, N x 3 x H x W) and ``labels``: its x_r (uint8), the
    targets' labels and the indices of the targets and the start images; written atomically, so it is whole or absent."""
    model.to(device)
    images, labels = images[: job.size(len(images))], labels[: job.size(len(images))]
    starts = different_starts(len(images), job.seed)
    first = index * job.chunk_size
    targets = torch.arange(first, min(first + job.chunk_size, len(images)))
    built = []
    for batch in targets.split(job.batch_size):
        x_r = robust_images(model, to_images(images[batch], device), to_images(images[starts[batch]], device),
                            job.steps, job.step_size)
        built.append(x_r.mul(255).round_().to(torch.uint8).cpu())
    path = job.chunk_path(index)
    save_npz_atomic(path, image=torch.cat(built).numpy(), label=labels[targets].numpy(),
                    target_index=targets.numpy(), start_index=starts[targets].numpy())
    return path


def assemble(job: Construction, n: int) -> str:
    """Join the ``n`` images' chunks into ``job.out`` and return a line saying what was written."""
    keys = ("image", "label", "target_index", "start_index")
    parts = []
    for k in job.chunks(n):
        with np.load(job.chunk_path(k)) as chunk:
            parts.append({key: chunk[key] for key in keys})
    arrays = {key: np.concatenate([p[key] for p in parts]) for key in keys}
    if not np.array_equal(arrays["target_index"], np.arange(n)):
        raise ValueError(f"the chunks in {job.chunk_folder} do not cover images 0..{n - 1} in order (built for another "
                         "dataset or chunk size?): delete that folder and build again")
    save_npz_atomic(job.out, **arrays, steps=np.int64(job.steps), step_size=np.float64(job.step_size))
    return (f"wrote {job.out}: {n} robust images ({job.steps} steps of {job.step_size} from another training image, "
            f"start seed {job.seed}), labels of their targets")


def build_chunk_of_run(tracking_uri: str, run_id: str, dataset: str, data_root: str | None, job: Construction,
                       index: int) -> Path:
    """:func:`build_chunk` with run ``run_id``'s best model on ``dataset``'s training images, both read where this
    process runs (a Ray task on any node: the store and the data root must be reachable there, as for a trial)."""
    from mlflow.tracking import MlflowClient

    from trainables.datasets import load_dataset
    from trainables.safe_export import load_trained_model

    model = load_trained_model(MlflowClient(tracking_uri), run_id, "best")
    train = load_dataset(dataset, "train", root=data_root)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return build_chunk(model, train.images, train.labels, job, index, device)
