"""Properties only a correct BiaMAT has: the gate, omega, the averaging of the auxiliary term, the gradient flow."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainables.config import ConfigError, RunSettings
from trainables.datasets import load_dataset
from trainables.loader import DeviceLoader
from trainables.losses import soft_cross_entropy
from trainables.methods.biamat import BiaMAT, primary_confidence
from trainables.methods.configs import BiaMATConfig
from trainables.runtime import Trial
from trainables.trial_data import TrialData

SMALL = {"epochs": 3, "warmup_epochs": 1, "batch_size": 32, "aux_batch_size": 32, "attack_steps": 2,
         "attack_step": 4 / 255, "train_n": 128, "eval_n": 32, "final_n": 32}


@pytest.fixture(scope="module")
def data() -> TrialData:
    train = load_dataset("synthetic", "train").subset(torch.arange(128))
    test = load_dataset("synthetic", "test").subset(torch.arange(32))
    return TrialData(train=train, select=test, test=test)


def make(data: TrialData, **overrides) -> BiaMAT:
    torch.manual_seed(0)
    cfg = BiaMATConfig.from_dict({**SMALL, **overrides})
    return BiaMAT(cfg, data, torch.device("cpu"), RunSettings(tracking_uri="sqlite:///unused.db", experiment="x"))


def batches(method: BiaMAT):
    loader = DeviceLoader(method.data.train, method.cfg.batch_size, device="cpu", augment="none", shuffle=True, seed=0)
    return loader.epoch(0)


def test_gate_routes_exactly_the_samples_below_omega_to_uniform_on_the_primary_head(data):
    method = make(data)
    batch, aux = next(batches(method)), method.stream.next()
    confidence = primary_confidence(method.model, aux.x)
    method.omega = confidence.median().item()
    low = method.low_mask(aux.x)
    assert torch.equal(low, confidence < method.omega)
    assert 0 < int(low.sum()) < len(low)

    method.model.eval()
    _, per_sample = method.at_losses(torch.cat([batch.x, aux.x]), batch.y, aux.y, low, with_aux_head=True)
    features = method.model.features(torch.cat([batch.x, aux.x]))[len(batch.y):]
    main_logits = method.model.heads["main"](features)
    aux_logits = method.model.heads["aux"](features)
    uniform = torch.full_like(main_logits, 1 / main_logits.shape[1])
    expected = torch.where(low, soft_cross_entropy(main_logits, uniform), F.cross_entropy(aux_logits, aux.y, reduction="none"))
    torch.testing.assert_close(per_sample, expected)


@pytest.mark.parametrize("omega, n_low", [(0.0, 0), (2.0, "all")])
@pytest.mark.parametrize("variant", ["at", "trades"])
def test_batches_with_all_or_no_low_samples_train(data, variant, omega, n_low):
    method = make(data, variant=variant, **({"attack_bn": "eval"} if variant == "trades" else {}))
    method.omega = omega
    batch = next(batches(method))
    loss, logs = method.loss(batch, epoch=1)
    loss.backward()
    assert torch.isfinite(loss)
    expected_high = 1.0 if n_low == 0 else 0.0
    assert logs["high_fraction"].item() == expected_high
    assert all(torch.isfinite(p.grad).all() for p in method.model.parameters() if p.grad is not None)


def test_omega_is_set_once_after_warmup_and_survives_a_resume(data):
    method = make(data, pi=0.5)
    trial = Trial(method)
    trial.train_epoch(0)
    assert method.omega is None, "no threshold during warm-up"
    first = next(batches(method))
    expected = 0.5 * primary_confidence(method.model, first.x).mean().item()
    method.maybe_set_omega(first.x, epoch=1)
    assert method.omega == pytest.approx(expected)
    trial.train_epoch(1)  # the model changes; omega must not
    assert method.omega == pytest.approx(expected)

    state = trial.state_dict()
    resumed = Trial(make(data, pi=0.5))
    resumed.load_state_dict(state)
    assert resumed.method.omega == method.omega
    assert resumed.method.stream.state_dict() == method.stream.state_dict()


def test_auxiliary_term_is_averaged_over_all_auxiliary_samples(data):
    method = make(data, eps=0.0)  # x_adv = x: the loss parts can be recomputed exactly
    method.model.eval()
    with torch.no_grad():  # sharpen the untrained heads so per-sample losses differ (all would be ~ln 10)
        for head in method.model.heads.values():
            head.weight.mul_(50)
    batch = next(batches(method))
    state = method.stream.state_dict()
    aux = method.stream.next()
    confidence = primary_confidence(method.model, aux.x)
    method.omega = confidence.median().item()
    method.stream.load_state_dict(state)
    loss, logs = method.loss(batch, epoch=1)
    low = confidence < method.omega
    _, per_sample = method.at_losses(torch.cat([batch.x, aux.x]), batch.y, aux.y, low, with_aux_head=True)
    assert logs["aux_loss"].item() == pytest.approx(per_sample.sum().item() / len(aux.y), rel=1e-5)
    per_group = per_sample[low].mean() + per_sample[~low].mean()
    for wrong in (per_sample[low].mean(), per_sample[~low].mean(), per_group):
        assert logs["aux_loss"].item() != pytest.approx(wrong.item(), rel=1e-2)
    assert loss.item() == pytest.approx(logs["primary_loss"].item() + 1.0 * logs["aux_loss"].item(), rel=1e-5)


@pytest.mark.parametrize("variant", ["at", "trades"])
def test_auxiliary_head_gets_a_zero_gradient_with_alpha_zero_or_during_warmup(data, variant):
    """The reference multiplies the auxiliary loss by 0: the head's gradient is zero, not missing (so weight decay
    applies); ``warmup_aux_loss="omitted"`` leaves the head out of the graph."""
    extra = {"attack_bn": "eval"} if variant == "trades" else {}
    for mode in ("times_zero", "omitted"):
        for alpha, epoch, expect_grad in ((0.0, 1, False), (1.0, 0, False), (1.0, 1, True)):
            method = make(data, variant=variant, alpha=alpha, labels="aux", warmup_aux_loss=mode, **extra)
            loss, _ = method.loss(next(batches(method)), epoch=epoch)
            loss.backward()
            grads = [p.grad for p in method.model.heads["aux"].parameters()]
            if expect_grad:
                assert all(g is not None and g.abs().sum() > 0 for g in grads)
            elif mode == "omitted":
                assert all(g is None for g in grads), (alpha, epoch)
            else:
                assert all(g is not None and not g.any() for g in grads), (alpha, epoch)


@pytest.mark.parametrize("variant", ["at", "trades"])
def test_weight_decay_shrinks_the_auxiliary_head_during_warmup_as_in_the_reference(data, variant):
    """With a zero gradient, SGD (momentum mu, weight decay wd) updates each auxiliary weight by w <- w - lr * b,
    b <- mu * b + wd * w: a known geometric shrink per step. Omitted from the graph, the head does not move."""
    extra = {"attack_bn": "eval"} if variant == "trades" else {}
    heads = {}
    for mode in ("times_zero", "omitted"):
        method = make(data, variant=variant, warmup_aux_loss=mode, weight_decay=0.05, lr=0.1, **extra)
        trial = Trial(method)
        initial = method.model.heads["aux"].weight.detach().clone()
        trial.train_epoch(0)  # warm-up: epoch 0 < warmup_epochs
        heads[mode] = (initial, method.model.heads["aux"].weight.detach().clone(), len(trial.loader))
    initial, after, steps = heads["times_zero"]
    factor, velocity = 1.0, 0.0
    for _ in range(steps):  # the same recursion on a weight of 1.0 (PyTorch SGD: first step b = g)
        velocity = 0.05 * factor if velocity == 0.0 else 0.9 * velocity + 0.05 * factor
        factor -= 0.1 * velocity
    torch.testing.assert_close(after, initial * factor)
    assert factor < 0.99
    initial, after, _ = heads["omitted"]
    torch.testing.assert_close(after, initial)


def test_at_attack_pushes_low_confidence_auxiliary_samples_away_from_uniform(data):
    method = make(data, labels="uniform", attack_steps=5, attack_step=2 / 255)
    batch, aux = next(batches(method)), method.stream.next()
    low = method.low_mask(aux.x)
    assert bool(low.all())
    x_adv = method.craft_at(batch, aux, low)[len(batch.y):]
    method.model.eval()
    with torch.no_grad():
        k = data.train.num_classes
        uniform = torch.full((len(aux.y), k), 1 / k)
        before = soft_cross_entropy(method.model(aux.x), uniform)
        after = soft_cross_entropy(method.model(x_adv), uniform)
    assert (after > before).float().mean() > 0.9, "the attack must move low samples away from the uniform target"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"pi": 0.0}, "pi=0.0 must be positive"),
        ({"pi": -0.5}, "must be positive"),
        ({"alpha": 1.5}, "alpha=1.5 is outside [0, 1]"),
        ({"alpha": -0.1}, "is outside [0, 1]"),
        ({"aux_datasets": ["synthetic"]}, "equals the primary dataset"),
        ({"aux_datasets": ["tinyimages"]}, "auxiliary dataset: unknown dataset 'tinyimages'"),
        ({"variant": "trades"}, "attack_bn='eval'"),
        ({"warmup_epochs": 5, "epochs": 5}, "leaves no BiaMAT epoch"),
        ({"aux_mix": "equal", "aux_batch_size": 1, "aux_datasets": ["synthetic_aux", "synthetic_aux_unrelated"]},
         "aux_mix='equal' needs aux_batch_size >= 2"),
    ],
)
def test_bad_biamat_input_is_rejected(values, message):
    with pytest.raises(ConfigError) as info:
        BiaMATConfig.from_dict(values)
    assert message in str(info.value)


TWO_AUX = ["synthetic_aux", "synthetic_aux_unrelated"]


def aux_set_of(method: BiaMAT, labels: torch.Tensor) -> torch.Tensor:
    """Which auxiliary set each label came from: the second set's labels follow the first's 10 classes."""
    return (labels >= 10).long()


def test_two_auxiliary_sets_share_one_head_over_both_sets_classes(data):
    method = make(data, aux_datasets=TWO_AUX, aux_batch_size=30)
    assert method.model.heads["aux"].out_features == 20 and method.gate_counts.seen.numel() == 20


def test_equal_shares_give_each_auxiliary_set_half_of_every_batch_and_resume_exactly(data):
    method = make(data, aux_datasets=TWO_AUX, aux_batch_size=31, aux_mix="equal")
    for _ in range(5):
        batch = method.stream.next()
        assert aux_set_of(method, batch.y).tolist() == [0] * 16 + [1] * 15  # the extra image to the first set
        # idx points into the sets as if concatenated: the second set's indices start after the first's images.
        assert ((batch.idx >= 10_000) == (batch.y >= 10)).all()
    state = method.stream.state_dict()
    expected = method.stream.next()
    resumed = make(data, aux_datasets=TWO_AUX, aux_batch_size=31, aux_mix="equal")
    resumed.stream.load_state_dict(state)
    again = resumed.stream.next()
    assert torch.equal(again.x, expected.x) and torch.equal(again.y, expected.y)
    with pytest.raises(ValueError, match="equal-share"):
        make(data, aux_datasets=TWO_AUX, aux_mix="equal").stream.load_state_dict(
            make(data, aux_datasets=TWO_AUX).stream.state_dict())


def test_a_concatenated_stream_draws_each_set_in_proportion_to_its_size(data):
    method = make(data, aux_datasets=TWO_AUX, aux_batch_size=100)
    shares = torch.cat([aux_set_of(method, method.stream.next().y) for _ in range(20)]).float().mean()
    assert 0.4 < shares < 0.6  # two sets of 10,000 images: about half each, not exactly half per batch
    per_batch = [aux_set_of(method, method.stream.next().y).sum().item() for _ in range(20)]
    assert len(set(per_batch)) > 1


def test_a_fixed_subset_of_the_auxiliary_set_is_the_same_for_every_trial_seed(data):
    first, other_seed = make(data, aux_n=300), make(data, aux_n=300, seed=7)
    assert first.aux_classes == 10 and len(first.stream.labels) == 300
    # The same 300 images whichever the trial's seed (Table 9's ImageNet-100k is one subset), in file order.
    assert torch.equal(first.stream.images, other_seed.stream.images)
    full = make(data).stream.images
    assert not torch.equal(first.stream.images, full[:300])  # a random draw, not the first 300
    with pytest.raises(ValueError, match="n=20000 must be from 1 to the 10000 images"):
        make(data, aux_n=20_000)
