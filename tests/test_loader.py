"""Device loader: epoch coverage, replay from (seed, epoch), batched crop-and-flip, and the endless auxiliary stream."""

from __future__ import annotations

import itertools

import pytest
import torch

from trainables.image_set import ImageSet
from trainables.loader import PAD, Batch, DeviceLoader, EndlessStream, augment_batch
from trainables.methods.configs import BiaMATConfig


def toy_set(n: int = 50, size: int = 8) -> ImageSet:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(1, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)  # no zeros: padding shows
    return ImageSet(images, torch.arange(n) % 10, 10, "toy")


def loader(data: ImageSet, batch_size: int = 16, **kwargs) -> DeviceLoader:
    options = {"device": "cpu", "augment": "crop_flip", "shuffle": True, "seed": 0, **kwargs}
    return DeviceLoader(data, batch_size, **options)


def same_batch(p: Batch, q: Batch) -> bool:
    return torch.equal(p.x, q.x) and torch.equal(p.y, q.y) and torch.equal(p.idx, q.idx)


def same_batches(a: list[Batch], b: list[Batch]) -> bool:
    return len(a) == len(b) and all(same_batch(p, q) for p, q in zip(a, b, strict=True))


def test_epoch_covers_every_index_once() -> None:
    data = toy_set(50)
    plain = loader(data, augment="none")
    batches = list(plain.epoch(0))
    assert len(plain) == len(batches) == 4 and [len(b.idx) for b in batches] == [16, 16, 16, 2]
    idx = torch.cat([b.idx for b in batches])
    assert sorted(idx.tolist()) == list(range(50))
    for b in batches:
        assert b.x.dtype == torch.float32 and b.y.dtype == torch.int64 and b.idx.dtype == torch.int64
        assert torch.equal(b.x, data.images[b.idx].float() / 255)  # no augmentation: the stored pixels
        assert torch.equal(b.y, data.labels[b.idx])

    dropping = loader(data, drop_last=True)
    batches = list(dropping.epoch(0))
    assert len(dropping) == len(batches) == 3 and all(len(b.idx) == 16 for b in batches)
    assert len(set(torch.cat([b.idx for b in batches]).tolist())) == 48

    in_order = loader(data, shuffle=False, augment="none")
    assert torch.equal(torch.cat([b.idx for b in in_order.epoch(5)]), torch.arange(50))


def test_epoch_replays_from_seed_and_epoch() -> None:
    data = toy_set(50)
    first = list(loader(data).epoch(3))
    resumed = list(loader(data).epoch(3))  # a fresh loader, as after a restart
    assert same_batches(first, resumed)
    other_epoch = torch.cat([b.idx for b in loader(data).epoch(4)])
    other_seed = torch.cat([b.idx for b in loader(data, seed=1).epoch(3)])
    order = torch.cat([b.idx for b in first])
    assert not torch.equal(order, other_epoch) and not torch.equal(order, other_seed)
    assert all(b.x.min() >= 0 and b.x.max() <= 1 for b in first)


def find_shift(out: torch.Tensor, image: torch.Tensor) -> tuple[int, int, bool] | None:
    """The (dy, dx, flip) that turn ``image`` into ``out`` by zero-padded translation, if there is one."""
    padded = torch.nn.functional.pad(image, (PAD, PAD, PAD, PAD))
    h, w = image.shape[-2:]
    for dy, dx, flip in itertools.product(range(2 * PAD + 1), range(2 * PAD + 1), (False, True)):
        crop = padded[:, dy:dy + h, dx:dx + w]
        if torch.equal(out, crop.flip(-1) if flip else crop):
            return dy, dx, flip
    return None


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_augment_is_a_small_translation_with_zero_fill(dtype: torch.dtype) -> None:
    images = toy_set(64).images
    x = images if dtype == torch.uint8 else images.float() / 255
    out = augment_batch(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == dtype
    shifts = [find_shift(out[i], x[i]) for i in range(len(x))]
    assert all(s is not None for s in shifts)  # every sample: at most PAD pixels of translation, zeros outside
    assert len({(dy, dx) for dy, dx, _ in shifts}) > 20  # offsets are drawn per sample
    assert torch.equal(augment_batch(x, torch.Generator().manual_seed(0)), out)


def test_augment_flips_about_half() -> None:
    ramp = torch.arange(1, 17, dtype=torch.uint8).expand(2000, 3, 16, 16)  # pixel value = column + 1
    out = augment_batch(ramp, torch.Generator().manual_seed(1))
    middle = out[:, 0, 8, 6:10].int()  # away from the padding, whatever the offset
    flipped = (middle[:, 1:] < middle[:, :-1]).all(1)
    assert ((middle[:, 1:] > middle[:, :-1]).all(1) | flipped).all()
    assert 0.45 < flipped.float().mean() < 0.55
    # Horizontal offset from what lands in column 8 (column 8 shows 9 unshifted, 8 when merely flipped).
    offsets = out[:, 0, 8, 8].int() - torch.where(flipped, 8, 9)
    assert set(offsets.tolist()) == set(range(-PAD, PAD + 1))


def test_digits_are_cropped_but_never_flipped_with_the_same_crops() -> None:
    ramp = torch.arange(1, 17, dtype=torch.uint8).expand(2000, 3, 16, 16)  # pixel value = column + 1
    cropped = augment_batch(ramp, torch.Generator().manual_seed(1), flip=False)
    middle = cropped[:, 0, 8, 6:10].int()
    assert (middle[:, 1:] > middle[:, :-1]).all()  # no sample reversed
    both = augment_batch(ramp, torch.Generator().manual_seed(1))
    unflipped = (both[:, 0, 8, 7] < both[:, 0, 8, 8])
    assert torch.equal(cropped[unflipped], both[unflipped])  # the same draws: only the flips differ
    # "auto" crops SVHN alone and flips the others; a named augmentation is taken as given.
    assert BiaMATConfig(dataset="svhn").augmentation() == "crop"
    assert BiaMATConfig(dataset="cifar10").augmentation() == "crop_flip"
    assert BiaMATConfig(dataset="svhn", augment="crop_flip").augmentation() == "crop_flip"


def test_loader_augments_each_batch() -> None:
    data = toy_set(32)
    batch = next(loader(data, batch_size=32).epoch(0))
    for i in range(32):
        assert find_shift((batch.x[i] * 255).round().to(torch.uint8), data.images[batch.idx[i]]) is not None
    assert not torch.equal(batch.x, data.images[batch.idx].float() / 255)


def test_endless_stream_wraps_with_full_batches() -> None:
    data = toy_set(50)
    stream = EndlessStream(data, 16, device="cpu", augment="none", seed=0)
    batches = [stream.next() for _ in range(10)]  # 160 samples: three passes and a bit
    assert all(len(b.idx) == 16 and len(b.x) == 16 for b in batches)
    idx = torch.cat([b.idx for b in batches])
    passes = [idx[k * 50:(k + 1) * 50] for k in range(3)]
    assert all(sorted(p.tolist()) == list(range(50)) for p in passes)  # each pass is a permutation
    assert not torch.equal(passes[0], passes[1])  # reshuffled every pass
    assert torch.equal(batches[3].y, data.labels[batches[3].idx])
    assert stream.state_dict()["pass"] == 3 and stream.state_dict()["position"] == 10

    big = EndlessStream(data, 120, device="cpu", augment="none", seed=0)  # one batch spans more than two passes
    assert len(big.next().idx) == 120 and big.state_dict()["position"] == 20


def test_endless_stream_resumes_exactly() -> None:
    data = toy_set(50)
    stream = EndlessStream(data, 16, device="cpu", augment="crop_flip", seed=7)
    for _ in range(5):
        stream.next()
    state = stream.state_dict()
    expected = [stream.next() for _ in range(6)]

    resumed = EndlessStream(data, 16, device="cpu", augment="crop_flip", seed=7)
    resumed.load_state_dict(state)
    assert same_batches([resumed.next() for _ in range(6)], expected)

    with pytest.raises(ValueError, match="seed"):
        EndlessStream(data, 16, device="cpu", augment="crop_flip", seed=8).load_state_dict(state)
    with pytest.raises(ValueError, match="samples"):
        EndlessStream(toy_set(40), 16, device="cpu", augment="crop_flip", seed=7).load_state_dict(state)


def test_stream_and_loader_with_one_seed_are_independent() -> None:
    data = toy_set(64)
    epoch_order = torch.cat([b.idx for b in loader(data, batch_size=64, augment="none").epoch(0)])
    stream = EndlessStream(data, 64, device="cpu", augment="none", seed=0)
    assert not torch.equal(stream.next().idx, epoch_order)
