"""Properties only a correct UIAT has: z_c's ball and per-class updates, the inverse direction, Eq. 8 exactly, the KL's
direction and constant target, no inverse generation after T' in the one-off variant, and a resume that keeps z_c and
the per-sample targets."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F

from tests_support import fit_test_model
from trainables import attacks
from trainables.config import ConfigError, RunSettings
from trainables.datasets import load_dataset
from trainables.loader import Batch, DeviceLoader
from trainables.methods.configs import UIATConfig
from trainables.methods.uiat import UIAT, inverse_objective
from trainables.models import create_model
from trainables.runtime import Trial
from trainables.training import set_rng_state
from trainables.trial_data import TrialData

SMALL = {"epochs": 3, "batch_size": 32, "attack_steps": 2, "attack_step": 4 / 255, "train_n": 128, "eval_n": 32,
         "final_n": 32, "momentum_start": 1, "oneoff_epoch": 1, "iat_steps": 2}


@pytest.fixture(scope="module")
def data() -> TrialData:
    train = load_dataset("synthetic", "train").subset(torch.arange(128))
    test = load_dataset("synthetic", "test").subset(torch.arange(32))
    return TrialData(train=train, select=test, test=test)


@pytest.fixture(scope="module")
def trained_weights() -> dict[str, torch.Tensor]:
    """tiny-cnn fitted to 512 clean synthetic images: confident enough that loss directions mean something."""
    train = load_dataset("synthetic", "train")
    x, y = train.images[:512].float() / 255, train.labels[:512]
    return fit_test_model(lambda: create_model("tiny-cnn", 10), x, y, n_train=512).state_dict()


def make(data: TrialData, **overrides) -> UIAT:
    torch.manual_seed(0)
    cfg = UIATConfig.from_dict({**SMALL, **overrides})
    return UIAT(cfg, data, torch.device("cpu"), RunSettings(tracking_uri="sqlite:///unused.db", experiment="x"))


def first_batch(method: UIAT) -> Batch:
    loader = DeviceLoader(method.data.train, method.cfg.batch_size, device="cpu", augment="none", shuffle=True, seed=0)
    return next(loader.epoch(0))


def adversarial(method: UIAT, batch: Batch) -> torch.Tensor:
    with attacks.bn_mode(method.model, "eval"):
        return attacks.craft(method.cfg, attacks.ce(method.model, batch.y), batch.x)


def test_z_stays_in_the_inverse_ball_and_only_classes_in_the_batch_move(data):
    method = make(data, inv_step=3 / 255)  # large steps: without the projection z would leave the ball at once
    batch = first_batch(method)
    keep = batch.y < 3
    batch = Batch(batch.x[keep], batch.y[keep], batch.idx[keep])
    start = method.z.clone()
    with attacks.bn_mode(method.model, "eval"):
        for _ in range(4):
            method.inverse_examples(batch, adversarial(method, batch))
            assert method.z.abs().max() <= method.cfg.inv_eps
    moved = (method.z != start).flatten(1).any(dim=1)
    assert moved.tolist() == [c < 3 for c in range(10)]
    assert method.z[:3].abs().max() == pytest.approx(method.cfg.inv_eps)  # the projection was active


def class_losses(objective, x, y, z) -> torch.Tensor:
    per_sample = objective((x + z[y]).clamp(0, 1)).detach()
    return torch.zeros(len(z)).index_add_(0, y, per_sample)


def test_one_update_step_lowers_each_present_class_inverse_loss_on_a_trained_model(data, trained_weights):
    method = make(data)
    method.model.load_state_dict(trained_weights)
    model = method.model.eval()
    batch = first_batch(method)
    x_adv = adversarial(method, batch)
    with torch.no_grad():
        objective = inverse_objective(model, batch.y, method.cfg.beta, model.features(batch.x),
                                      model.features(x_adv))
    before = method.z.clone()
    method.update_z(objective, batch.x, batch.y)
    present = torch.bincount(batch.y, minlength=10) > 0
    loss_before = class_losses(objective, batch.x, batch.y, before)[present]
    loss_after = class_losses(objective, batch.x, batch.y, method.z)[present]
    # The same step taken uphill: what an adversarial (ascent) update would have done.
    uphill = (2 * before - method.z).clamp(-method.cfg.inv_eps, method.cfg.inv_eps)
    loss_uphill = class_losses(objective, batch.x, batch.y, uphill)[present]
    print(f"\nper-class inverse loss: before {loss_before.tolist()}\n after {loss_after.tolist()}"
          f"\n uphill {loss_uphill.tolist()}")
    assert (loss_after < loss_before).all()
    assert (loss_uphill > loss_before).all()


def test_momentum_buffer_follows_eq8_exactly_before_and_after_T(data):
    method = make(data, epochs=4, momentum_start=2, gamma=0.9)
    model = method.model
    batch = first_batch(method)
    others = torch.ones(len(data.train), dtype=torch.bool)
    others[batch.idx] = False
    history = []
    for epoch in range(4):
        with attacks.bn_mode(model, "eval"):
            previous = method.targets.clone()
            p, inverse = method.target(batch, adversarial(method, batch), epoch)
            with torch.no_grad():  # f(x_inv) recomputed from the updated z, as Algorithm 1 line 12 reads it
                expected_inverse = F.softmax(model((batch.x + method.z[batch.y]).clamp(0, 1)), dim=1)
        assert torch.equal(inverse, expected_inverse)
        if epoch < 2:
            expected = expected_inverse
        else:
            expected = 0.9 * previous[batch.idx] + (1 - 0.9) * expected_inverse
        assert torch.equal(p, expected), epoch
        assert torch.equal(method.targets[batch.idx], expected), epoch
        assert not method.targets[others].any(), "samples outside the batch keep their (empty) buffer"
        history.append(p)
        with torch.no_grad():  # the model moves between epochs, so f(x_inv) differs from epoch to epoch
            for parameter in model.parameters():
                parameter.add_(0.01 * torch.randn_like(parameter))
    assert not torch.equal(history[2], history[1]) and not torch.equal(history[3], history[2])


@pytest.mark.parametrize("overrides, epoch", [({}, 0), ({}, 2), ({"components": "none"}, 0),
                                              ({"oneoff": True, "components": "uag+fr"}, 0),
                                              ({"oneoff": True, "components": "uag+fr"}, 1)])
def test_kl_is_p_to_adversarial_and_no_gradient_reaches_the_target(data, overrides, epoch):
    method = make(data, **overrides)
    batch = first_batch(method)
    seen = {}
    real_target = method.target

    def spy(batch, x_adv, epoch):
        p, inverse = real_target(batch, x_adv, epoch)
        seen.update(p=p, x_adv=x_adv)
        return p, inverse

    method.target = spy
    if epoch == 2:  # give the momentum a previous p
        method.loss(batch, 1)
    loss, logs = method.loss(batch, epoch)
    p, x_adv = seen["p"], seen["x_adv"]
    assert not p.requires_grad and p.grad_fn is None, "the target must be a constant"
    params = [q for q in method.model.parameters()]
    grads = torch.autograd.grad(loss, params)

    logits = method.model(x_adv)
    log_q = F.log_softmax(logits, dim=1)
    kl_paper = (p * (p.log() - log_q)).sum(1).mean()  # KL(p || f(x_adv))
    kl_reversed = (log_q.exp() * (log_q - p.log())).sum(1).mean()
    expected = F.cross_entropy(logits, batch.y) + method.cfg.lam * kl_paper
    assert logs["kl"].item() == pytest.approx(kl_paper.item(), rel=1e-5)
    assert logs["kl"].item() != pytest.approx(kl_reversed.item(), rel=1e-2)
    torch.testing.assert_close(loss, expected)
    for got, want in zip(grads, torch.autograd.grad(expected, params)):
        torch.testing.assert_close(got, want)


def test_one_off_generates_inverse_examples_only_in_epoch_T_prime(data):
    method = make(data, oneoff=True, components="uag+fr", epochs=3, oneoff_epoch=1)
    trial = Trial(method)
    calls = []
    method.model.body.register_forward_pre_hook(lambda module, args: calls.append(1))
    per_epoch, z_after, stored_after = [], [], []
    for epoch in range(3):
        calls.clear()
        trial.train_epoch(epoch)
        per_epoch.append(len(calls))
        z_after.append(method.z.clone())
        stored_after.append(method.targets.clone())
    steps, batches = method.cfg.attack_steps, len(trial.loader)
    print(f"\nforward passes per epoch: {per_epoch} ({batches} batches, PGD-{steps})")
    # Before T': PGD + the clean target + the training pass. In T': also F(x), F(x_adv), the z step and f(x_inv).
    assert per_epoch == [batches * (steps + 2), batches * (steps + 5), batches * (steps + 1)]
    assert torch.equal(z_after[0], UIAT(method.cfg, data, method.device, RunSettings("sqlite:///u.db", "x")).z)
    assert not torch.equal(z_after[1], z_after[0])
    assert torch.equal(z_after[2], z_after[1]) and torch.equal(stored_after[2], stored_after[1])
    assert bool(method.has_target.all())


def round_trip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


@pytest.mark.parametrize("overrides", [{}, {"oneoff": True, "components": "uag+fr", "oneoff_epoch": 0}])
def test_resumed_trial_continues_with_the_same_z_and_targets(data, overrides):
    first = Trial(make(data, **overrides))
    first.train_epoch(0)
    state = round_trip(first.state_dict())
    first.train_epoch(1)

    resumed = Trial(make(data, **overrides))
    resumed.load_state_dict(state)
    assert torch.equal(resumed.method.z, state["method"]["z"])
    assert torch.equal(resumed.method.targets, state["method"]["targets"])
    set_rng_state(state["rng"])
    resumed.train_epoch(1)
    for name in ("z", "targets", "has_target"):
        assert torch.equal(getattr(resumed.method, name), getattr(first.method, name)), name
    for a, b in zip(resumed.method.model.parameters(), first.method.model.parameters()):
        assert torch.equal(a, b)


def test_state_from_another_training_set_is_refused(data):
    method = make(data)
    state = method.state_dict() | {"targets": torch.zeros(7, 10)}
    with pytest.raises(ValueError, match="targets"):
        method.load_state_dict(state)


@pytest.mark.parametrize("components, universal, fr, iam", [
    ("none", False, False, False), ("uag", True, False, False), ("uag+fr", True, True, False),
    ("uag+iam", True, False, True), ("uag+fr+iam", True, True, True),
])
def test_table6_rows_are_configurations(data, components, universal, fr, iam):
    cfg = UIATConfig.from_dict({**SMALL, "components": components})
    assert (cfg.universal, cfg.feature_regularisation, cfg.inverse_momentum) == (universal, fr, iam)
    method = make(data, components=components)
    loss, _ = method.loss(first_batch(method), epoch=1)
    loss.backward()
    assert torch.isfinite(loss)


def test_paper_defaults():
    cfg = UIATConfig()
    assert (cfg.lam, cfg.inv_eps, cfg.inv_step, cfg.beta, cfg.gamma) == (3.5, 4 / 255, 1 / 255, 1.0, 0.9)
    assert (cfg.epochs, cfg.schedule, cfg.nesterov, cfg.lr, cfg.weight_decay) == (100, "cyclic", True, 0.1, 5e-4)
    assert (cfg.components, cfg.oneoff, cfg.momentum_start, cfg.oneoff_epoch) == ("uag+fr+iam", False, 10, 50)


@pytest.mark.parametrize("values, message", [
    ({"components": "uag+fr+iam", "oneoff": True}, "drop 'iam' from components (e.g. components='uag+fr')"),
    ({"components": "uag+fr", "beta": 0.0}, "set beta > 0, or drop 'fr'"),
    ({"epochs": 3}, "momentum_start=10 must be in [1, epochs=3)"),
    ({"momentum_start": 0}, "needs the previous epoch's p"),
    ({"components": "uag", "oneoff": True, "epochs": 3, "oneoff_epoch": 2}, "set it below epochs - 1"),
    ({"components": "none", "iat_steps": 0}, "iat_steps >= 1"),
    ({"components": "iam+uag"}, "expected one of"),
    ({"eps": 0.0}, "set eps > 0"),
    ({"lam": -1.0}, "must not be negative"),
    ({"inv_eps": 4}, "inv_eps=4.0 is outside [0.0, 1.0]"),
    ({"lambda": 3.5}, "unknown hyperparameters ['lambda']"),
])
def test_bad_uiat_input_is_rejected_with_the_fix(values, message):
    with pytest.raises(ConfigError) as info:
        UIATConfig.from_dict(values)
    assert message in str(info.value)
