"""Properties only a correct TLA has (AFS Table 4 and Fig. 1's triplet-loss adversarial training): its triplet loss and
its hard-negative choice equal the authors' formulas (transcribed here from their NumPy/TensorFlow, ``utils.py``), the
positives are what the code feeds, the loss is PGD-AT's plus exactly the weighted triplets, the draws depend only on
the seed and the epoch (a resumed trial draws the same). tests/test_fat_lbgat.py trains an epoch of it through its
trainable."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from small_methods import make_method, small_data
from trainables.config import ConfigError
from trainables.loader import Batch
from trainables.methods.baseline import Baseline
from trainables.methods.configs import TLAConfig
from trainables.methods.tla import TLA, hardest_negatives, noisy_copy, triplet_loss


def authors_triplet(a: np.ndarray, p: np.ndarray, n: np.ndarray, margin: float, regularize: float) -> float:
    """``utils.triplet_loss`` of the TLA code, loss type "cos", in NumPy."""
    def l2_norm(v):
        return v / np.sum(v * v + 1e-20, axis=1, keepdims=True) ** 0.5
    positive = 1 - np.abs(np.sum(l2_norm(a) * l2_norm(p), axis=1))
    negative = 1 - np.abs(np.sum(l2_norm(a) * l2_norm(n), axis=1))
    return float(np.mean(np.maximum(positive - negative + margin, 0.0)) + regularize * np.mean(a * a + p * p + n * n))


def authors_negatives(anchors: np.ndarray, labels: np.ndarray, pool: np.ndarray, pool_labels: np.ndarray) -> np.ndarray:
    """``utils.compute_vector_dist_toall_except_own`` followed by the training loop's argmax."""
    fea = anchors / (np.sum(anchors ** 2, axis=1, keepdims=True) ** 0.5 + 1e-7)
    emb = pool / (np.sum(pool ** 2, axis=1, keepdims=True) ** 0.5 + 1e-7)
    score = fea @ emb.T
    return np.argmax((1 - (labels[:, None] == pool_labels[None, :])) * score, axis=1)


@pytest.mark.parametrize("signs", ["non-negative", "mixed"])
def test_the_triplet_loss_is_the_authors_formula(signs):
    """Mixed-sign features check the absolute cosine: an opposite direction is as close as the same one."""
    torch.manual_seed(0)
    a, p, n = (torch.randn(32, 16) for _ in range(3))
    if signs == "non-negative":
        a, p, n = a.relu(), p.relu(), n.relu()
    for margin, penalty in ((0.03, 1e-3), (0.5, 0.0), (0.0, 1.0)):
        expected = authors_triplet(a.double().numpy(), p.double().numpy(), n.double().numpy(), margin, penalty)
        got = triplet_loss(a.double(), p.double(), n.double(), margin=margin, penalty=penalty).item()
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)
    # |cos|: the anchor's negation is at distance 0, so only the margin is left when it is the positive.
    assert triplet_loss(a, -a, a, margin=0.03, penalty=0.0).item() == pytest.approx(0.03, abs=1e-6)


def test_the_negative_is_the_most_similar_image_of_another_class():
    torch.manual_seed(1)
    anchors, pool = torch.rand(40, 8), torch.rand(500, 8)  # post-ReLU features: non-negative
    labels, pool_labels = torch.randint(0, 10, (40,)), torch.randint(0, 10, (500,))
    pool[:40] = anchors  # each anchor's own features in the pool, under its own label: never chosen
    pool_labels[:40] = labels
    chosen = hardest_negatives(anchors, labels, pool, pool_labels)
    assert (pool_labels[chosen] != labels).all()
    assert chosen.tolist() == authors_negatives(anchors.numpy(), labels.numpy(), pool.numpy(),
                                                pool_labels.numpy()).tolist()
    # And it is the most similar one: no other-class image of the pool is closer.
    similarity = F.cosine_similarity(anchors[:, None], pool[None], dim=2)
    other = similarity.masked_fill(labels[:, None] == pool_labels[None], -2)
    assert torch.equal(other.max(1).values, similarity[torch.arange(40), chosen])


def test_the_noisy_positive_is_the_image_plus_rounded_uniform_noise_on_the_8_bit_grid():
    x = torch.randint(0, 256, (64, 3, 8, 8)).float() / 255
    g = torch.Generator().manual_seed(0)
    noisy = noisy_copy(x, 8 / 255, g)
    steps = noisy * 255
    assert torch.allclose(steps, steps.round(), atol=1e-4)  # on the 8-bit grid
    change = (steps - x * 255).round()
    assert change.abs().max() == 8 and change.min() == -8  # +-8 levels, both ends reached (rint of U(-8, 8))
    assert noisy.min() >= 0 and noisy.max() <= 1
    # Uniform: each of the 15 inner levels -7..7 about equally often away from the clip (the two ends half as often).
    inner = change[(x * 255 > 8) & (x * 255 < 247)]
    counts = torch.bincount((inner + 8).long(), minlength=17).float() / len(inner)
    assert torch.allclose(counts[1:16], torch.full((15,), 1 / 16), atol=0.01)


def test_the_same_class_image_has_the_anchors_label_and_any_image_of_that_class_can_come():
    method = make_method(TLA, small_data())
    g = torch.Generator().manual_seed(0)
    y = method.labels.repeat(20)
    idx = method.same_class(y, g)
    assert torch.equal(method.labels[idx], y)
    for label in y.unique():
        assert set(idx[y == label].tolist()) == set((method.labels == label).nonzero().flatten().tolist())


def test_the_loss_is_pgd_at_plus_the_weighted_triplets_and_the_draws_depend_on_the_epoch_only():
    data = small_data()
    batch = Batch(data.train.images[:16].float() / 255, data.train.labels[:16], torch.arange(16))
    pgd_at = make_method(Baseline, data, training="pgd_at")
    torch.manual_seed(5)
    expected_ce = pgd_at.loss(batch, 0)[0]

    def loss_of(epoch: int, **values) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        method = make_method(TLA, data, **values)  # the same initial weights as pgd_at's
        torch.manual_seed(5)  # the same PGD start
        return method.loss(batch, epoch)

    # Without the triplets TLA is PGD-AT on the same batch.
    assert loss_of(0, triplet_weight=0.0)[0].item() == pytest.approx(expected_ce.item(), rel=1e-6)
    total, logs = loss_of(3, triplet_weight=2.0)
    triplets = logs["triplet_noisy"] + logs["triplet_same_class"]
    assert total.item() == pytest.approx(expected_ce.item() + 2.0 * triplets.item(), rel=1e-6)
    assert triplets.item() > 0 and logs["negative_is_other_class"].item() == 1.0
    # A trial resumed at epoch 3 draws what one that trained epoch 2 before it draws; another epoch draws anew.
    trained, resumed = make_method(TLA, data), make_method(TLA, data)
    trained.loss(batch, 2)
    assert torch.equal(trained.generator(3).get_state(), resumed.generator(3).get_state())
    assert not torch.equal(resumed.generator(3).get_state(), resumed.generator(4).get_state())


def test_the_triplets_train_the_features_and_leave_the_head_to_the_cross_entropy():
    """The triplet terms act on the penultimate features: with them the body's gradient changes and the head's does
    not (its gradient is the adversarial cross-entropy's alone)."""
    data = small_data()
    batch = Batch(data.train.images[:16].float() / 255, data.train.labels[:16], torch.arange(16))

    def gradients(weight: float) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        method = make_method(TLA, data, triplet_weight=weight)
        torch.manual_seed(5)
        loss, _ = method.loss(batch, 0)
        body, head = list(method.model.body.parameters()), list(method.model.heads.parameters())
        grads = torch.autograd.grad(loss, body + head)
        assert method.model.training  # the mining's eval mode is restored
        return list(grads[:len(body)]), list(grads[len(body):])

    (body0, head0), (body2, head2) = gradients(0.0), gradients(2.0)
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(head0, head2, strict=True))
    assert any(not torch.allclose(a, b, atol=1e-7) for a, b in zip(body0, body2, strict=True))


@pytest.mark.parametrize(("values", "message"), [
    ({"margin": -0.1}, "margin=-0.1 must not be negative"),
    ({"negative_pool": 0}, "negative_pool=0 must be at least 1"),
    ({"eps": 0.0}, "set eps > 0"),
])
def test_bad_tla_input_is_rejected_with_the_fix(values, message):
    with pytest.raises(ConfigError, match=message):
        TLAConfig(**values)
