"""Batches from an :class:`ImageSet` kept on the device as uint8, with batched augmentation there: no DataLoader.

The whole set moves to the device once (CIFAR-10's 50k training images are 150 MiB as uint8); a batch is an index
gather, a crop-and-flip done as two more gathers for the whole batch, and a conversion to float in [0, 1]. All
randomness comes from ``torch.Generator`` objects on the device seeded from ``(seed, epoch)`` or ``(seed, pass)``,
so a resumed trial replays the same batches, and nothing waits on the host between batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from trainables.image_set import ImageSet
from trainables.seeds import derive_seed

PAD = 4  # the random-crop padding of the CIFAR recipe (He et al. 2016)


@dataclass
class Batch:
    """Images ``x`` float32 in [0, 1], labels ``y`` int64, and ``idx`` the samples' indices in the ImageSet (UIAT
    keeps a per-sample buffer). All on the loader's device."""

    x: Tensor
    y: Tensor
    idx: Tensor


# A training stream's augmentation: random crop with a random horizontal flip (the CIFAR recipe), the crop alone
# (digits: a flipped 2 or 5 is no digit), or none. TrainConfig.augment chooses it per dataset.
Augment = Literal["crop_flip", "crop", "none"]


def augment_batch(x: Tensor, generator: torch.Generator, flip: bool = True) -> Tensor:
    """Random crop with ``PAD``-pixel zero padding and (with ``flip``) a random horizontal flip, drawn per sample.
    The flips are drawn either way, so the crops of a stream do not depend on whether it flips.

    Works on uint8 or float (N, C, H, W) on ``x``'s device (``generator`` must live there too) and keeps the dtype.
    The crop offsets and the flip become one row-index and one column-index table, so the whole batch is two gathers
    instead of a Python loop over samples.
    """
    n, c, h, w = x.shape
    dy, dx = torch.randint(0, 2 * PAD + 1, (2, n, 1), generator=generator, device=x.device)
    flips = (torch.rand(n, 1, generator=generator, device=x.device) < 0.5) & flip
    cols = torch.arange(w, device=x.device)
    rows = dy + torch.arange(h, device=x.device)  # (n, h): padded rows to keep
    cols = dx + torch.where(flips, cols.flip(0), cols)  # (n, w): padded columns, reversed for a flip
    padded = F.pad(x, (PAD, PAD, PAD, PAD))
    out = padded.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w + 2 * PAD))
    return out.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))


class _OnDevice:
    """The set's tensors on the device, moved once, and the batch assembly both loaders share."""

    def __init__(self, data: ImageSet, batch_size: int, device: torch.device | str, augment: Augment,
                 seed: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if len(data) == 0:
            raise ValueError(f"{data.name} is empty")
        self.device = torch.device(device)
        self.images = data.images.to(self.device)
        self.labels = data.labels.to(self.device)
        self.batch_size = batch_size
        self.augment = augment
        self.seed = seed

    def _generator(self, *keys: int | str) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(derive_seed(self.seed, *keys))

    def _batch(self, idx: Tensor, generator: torch.Generator) -> Batch:
        x = self.images[idx]
        if self.augment != "none":
            x = augment_batch(x, generator, flip=self.augment == "crop_flip")  # on uint8: a quarter of the bytes
        return Batch(x.float().div_(255), self.labels[idx], idx)


class DeviceLoader(_OnDevice):
    """Epochs over an ImageSet; batch order and augmentation depend only on ``(seed, epoch)``."""

    def __init__(
        self, data: ImageSet, batch_size: int, *, device: torch.device | str, augment: Augment, shuffle: bool, seed: int,
        drop_last: bool = False,
    ) -> None:
        super().__init__(data, batch_size, device, augment, seed)
        self.shuffle = shuffle
        self.drop_last = drop_last

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        # A fresh generator per epoch: epoch 7 of a resumed trial is epoch 7 of an uninterrupted one.
        g = self._generator("epoch", epoch)
        n, device = len(self.labels), self.device
        order = torch.randperm(n, generator=g, device=device) if self.shuffle else torch.arange(n, device=device)
        for i in range(len(self)):
            yield self._batch(order[i * self.batch_size:(i + 1) * self.batch_size], g)


class EndlessStream(_OnDevice):
    """An auxiliary stream that cycles forever, reshuffled each pass from ``(seed, pass)``; every batch holds exactly
    ``batch_size`` samples, running into the next pass where one ends. The position (pass, offset) is the whole state.
    """

    def __init__(
        self, data: ImageSet, batch_size: int, *, device: torch.device | str, augment: Augment, seed: int
    ) -> None:
        super().__init__(data, batch_size, device, augment, seed)
        self.pass_ = 0
        self.position = 0
        self._orders: dict[int, Tensor] = {}

    def _order(self, pass_: int) -> Tensor:
        if pass_ not in self._orders:
            g = self._generator("pass", pass_)
            # Only the current pass and the one a batch runs into are ever needed.
            self._orders = {p: o for p, o in self._orders.items() if p >= pass_ - 1}
            self._orders[pass_] = torch.randperm(len(self.labels), generator=g, device=self.device)
        return self._orders[pass_]

    def next(self) -> Batch:
        # Augmentation is seeded by where the batch starts, so a stream resumed from its state replays it exactly.
        g = self._generator("batch", self.pass_, self.position)
        pieces, need, n = [], self.batch_size, len(self.labels)
        while need:
            take = min(need, n - self.position)
            pieces.append(self._order(self.pass_)[self.position:self.position + take])
            need -= take
            self.position += take
            if self.position == n:
                self.pass_, self.position = self.pass_ + 1, 0
        return self._batch(torch.cat(pieces) if len(pieces) > 1 else pieces[0], g)

    def state_dict(self) -> dict:
        return {"pass": self.pass_, "position": self.position, "num_samples": len(self.labels), "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        # A state from another data set or seed would resume at a meaningless place without any error.
        if (state["num_samples"], state["seed"]) != (len(self.labels), self.seed):
            raise ValueError(f"stream state is for {state['num_samples']} samples and seed {state['seed']}, this "
                             f"stream has {len(self.labels)} and seed {self.seed}")
        self.pass_, self.position = state["pass"], state["position"]


class MixedLoader:
    """Epochs whose batches mix the training set with extra data (UIAT Table 4: 1M DDPM-generated images): each batch
    holds ``n_original`` training images and ``batch_size - n_original`` extra ones, each part drawn by an
    :class:`EndlessStream` of its own (own seed, reshuffled per pass over its set, augmented like the training set).
    In ``idx`` the extra images follow the training set: extra image j is ``len(original) + j``, so per-sample state
    (UIAT's targets) never mixes the two.

    An epoch (``epoch="images"``) is ``ceil(len(original) / batch_size)`` batches, as HAT's code counts it (github.com/imrahulr/hat,
    ``core/data/semisup.py``: ``num_batches = ceil(dataset_size / batch_size)`` with ``dataset_size`` the original
    set's size): as many images as an epoch without extra data, so epochs, LR schedules and epoch times compare with
    the runs without it; at a fraction of 0.3 one pass over the training set takes 1 / 0.3 = 3.3 epochs. Where each
    stream stands at the start of epoch e is a function of e (``e x batches x share`` images drawn), so epoch e of a
    fresh loader (a resumed trial) replays epoch e of an uninterrupted one and the checkpoint needs no loader state.
    With ``epoch="original_pass"`` an epoch is ``ceil(len(original) / n_original)`` batches, one pass over the
    training set whatever the share, as Carmon et al.'s robust self-training counts its epochs: at half of each batch
    that is twice the batches.

    Departures from HAT's sampler, whose numbers (0.7 generated per batch, batch 1024) the paper presets take: it
    draws the generated images with replacement and starts a fresh permutation of the original images every epoch;
    here both streams go through their sets without replacement, pass after pass.
    """

    def __init__(self, original: ImageSet, extra: ImageSet, batch_size: int, n_original: int, *,
                 device: torch.device | str, seed: int, augment: Augment = "crop_flip",
                 epoch: Literal["images", "original_pass"] = "images") -> None:
        if not 1 <= n_original < batch_size:
            raise ValueError(f"n_original={n_original} must leave both sets a part of batch_size={batch_size}")
        self.streams = [EndlessStream(part, share, device=device, augment=augment, seed=derive_seed(seed, role))
                        for part, share, role in ((original, n_original, "original"),
                                                  (extra, batch_size - n_original, "extra"))]
        self.offset = len(original)
        # "original_pass" (Carmon et al.'s robust self-training): as many batches as one pass over the training set
        # takes at n_original per batch.
        self.batches = -(-len(original) // (batch_size if epoch == "images" else n_original))

    def __len__(self) -> int:
        return self.batches

    def seek(self, epoch: int) -> None:
        """Put each stream where epoch ``epoch`` starts (through its own state)."""
        for stream in self.streams:
            drawn, n = epoch * self.batches * stream.batch_size, len(stream.labels)
            stream.load_state_dict({"pass": drawn // n, "position": drawn % n, "num_samples": n, "seed": stream.seed})

    def epoch(self, epoch: int) -> Iterator[Batch]:
        self.seek(epoch)
        original, extra = self.streams
        for _ in range(self.batches):
            a, b = original.next(), extra.next()
            yield Batch(torch.cat([a.x, b.x]), torch.cat([a.y, b.y]), torch.cat([a.idx, b.idx + self.offset]))
