"""One-off UIAT on single-step training (UIAT Sec. 4.3, Table 5): the training points are the single-step method's,
the UIAT term is on top of that method's loss, and the default PGD path is the one UIAT always had."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from small_methods import SMALL as SMALL_METHOD
from small_methods import UNUSED_STORE, make_method, small_data
from tests_support import train_without_ray
from trainables import attacks
from trainables.config import ConfigError
from trainables.loader import Batch, DeviceLoader
from trainables.losses import kl_divergence
from trainables.methods import uiat
from trainables.methods.configs import UIATConfig
from trainables.methods.gradalign import GradAlign
from trainables.methods.single_step import SingleStep
from trainables.methods.uiat import UIAT
from trainables.runtime import Method
from trainables.trial_data import TrialData

EPS = 8 / 255
SMALL = {**SMALL_METHOD, "epochs": 3}
# Table 5's variant: one-off UIAT without the feature term; epoch 0 is before T', so p is the clean prediction.
ONE_OFF = {"oneoff": True, "oneoff_epoch": 1, "components": "uag"}
SETTINGS = UNUSED_STORE


@pytest.fixture(scope="module")
def data() -> TrialData:
    return small_data()


def make(method_cls: type[Method], data: TrialData, **overrides) -> Method:
    return make_method(method_cls, data, **{"epochs": 3, **overrides})


def first_batch(method: Method) -> Batch:
    loader = DeviceLoader(method.data.train, method.cfg.batch_size, device="cpu", augment="none", shuffle=True, seed=0)
    return next(loader.epoch(0))


def seeded_loss(method: Method, batch: Batch, epoch: int = 0) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], dict]:
    torch.manual_seed(1)
    method.model.train()
    loss, logs = method.loss(batch, epoch)
    return loss, torch.autograd.grad(loss, list(method.model.parameters())), logs


def linf(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).flatten(1).abs().amax(dim=1)


def test_uiat_on_n_fgsm_trains_on_n_fgsm_points(data):
    method = make(UIAT, data, training_attack="n_fgsm", **ONE_OFF)
    single = make(SingleStep, data, variant="n_fgsm")
    batch = first_batch(method)
    torch.manual_seed(1)
    with attacks.bn_mode(method.model, method.cfg.attack_bn):
        x_adv, misalignment, _ = method.adversarial(batch)
    torch.manual_seed(1)
    assert torch.equal(x_adv, single.craft(batch)) and misalignment is None
    distance = linf(x_adv, batch.x)
    assert distance.max() <= 3 * EPS + 1e-6
    assert bool((distance > EPS + 1e-3).any())  # outside the eps-ball: N-FGSM does not project
    assert x_adv.min() >= 0 and x_adv.max() <= 1


@pytest.mark.parametrize(("attack", "reference", "overrides"), [
    ("n_fgsm", SingleStep, {"variant": "n_fgsm"}),
    ("rs_fgsm", SingleStep, {"variant": "rs_fgsm"}),
    ("gradalign", GradAlign, {"lam": 0.2}),
])
def test_at_lambda_zero_the_loss_is_the_single_step_methods(data, attack, reference, overrides):
    plain = make(reference, data, **overrides)
    batch = first_batch(plain)
    expected, expected_grads, _ = seeded_loss(plain, batch)
    loss, grads, logs = seeded_loss(make(UIAT, data, training_attack=attack, lam=0.0, **ONE_OFF), batch)
    assert loss.item() == expected.item()
    for actual, wanted in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(actual, wanted, rtol=1e-5, atol=1e-7)
    assert logs["kl"] > 1e-4  # the UIAT term is there, weighted 0
    # lambda > 0 on the same batch and seed adds it.
    with_term, _, _ = seeded_loss(make(UIAT, data, training_attack=attack, lam=3.5, **ONE_OFF), batch)
    assert with_term.item() == pytest.approx(expected.item() + 3.5 * logs["kl"].item(), rel=1e-5)


def test_the_default_attack_is_uiats_pgd(data):
    """UIAT with the default training_attack equals the composition UIAT had before the option existed: the shared
    PGD (``attacks.craft``) on CE, then the target, then CE + lambda KL."""
    method = make(UIAT, data, momentum_start=1)  # full UIAT (UAG, FR, IAM)
    assert method.cfg.training_attack == "pgd"
    twin = make(UIAT, data, momentum_start=1)
    batch = first_batch(method)
    loss, _, _ = seeded_loss(method, batch)

    torch.manual_seed(1)
    model = twin.model
    with attacks.bn_mode(model, twin.cfg.attack_bn):
        x_adv = attacks.craft(twin.cfg, attacks.ce(model, batch.y), batch.x)
        target, _ = twin.target(batch, x_adv, 0)
    model.train()
    logits = model(x_adv).float()
    expected = F.cross_entropy(logits, batch.y) + twin.cfg.lam * kl_divergence(target, logits).mean()
    assert loss.item() == expected.item()


@pytest.mark.parametrize(("attack", "diagnostic"), [("n_fgsm", "kl"), ("gradalign", "grad_cos")])
def test_one_off_uiat_on_a_single_step_attack_trains_through_its_trainable(attack, diagnostic, monkeypatch):
    """Epoch 0 stores the targets (T' = 0), epoch 1 reuses them; both through the runtime's loop."""
    config = {**SMALL, "epochs": 2, "training_attack": attack, **ONE_OFF, "oneoff_epoch": 0}
    chosen = []
    monkeypatch.setattr(uiat, "run_trial", lambda cfg, method_cls, settings: chosen.append((cfg, method_cls)))
    uiat.trainable(config, SETTINGS)
    ((passed, method_cls),) = chosen
    assert passed == config and method_cls is UIAT
    logs: list[dict[str, float]] = []
    trial = train_without_ray(method_cls, config, logs)
    assert len(logs) == 2 and all(math.isfinite(epoch["train/loss"]) for epoch in logs)
    assert "train/inverse_acc" in logs[0] and f"train/{diagnostic}" in logs[1]
    assert bool(trial.method.has_target.any())


@pytest.mark.parametrize(("values", "message"), [
    ({"training_attack": "fgsm"}, "expected one of"),
    ({"training_attack": "n_fgsm", "eps": 0.0}, "UIAT on n_fgsm trains on adversarial examples: set eps > 0"),
    ({"align_lam": -0.1}, "align_lam=-0.1 must not be negative"),
    ({"training_attack": "gradalign", "compile": True}, "set compile=false"),
])
def test_bad_training_attack_input_is_rejected_with_the_fix(values, message):
    with pytest.raises(ConfigError, match=message):
        UIATConfig.from_dict(values)


@pytest.mark.parametrize(("values", "name"), [
    ({"training_attack": "n_fgsm", **ONE_OFF}, "n_fgsm_uiat_oneoff"),
    ({"training_attack": "gradalign", **ONE_OFF}, "gradalign_uiat_oneoff"),
    ({"training_attack": "gradalign", "align_lam": 0.0, **ONE_OFF}, "fgsm_uiat_oneoff"),
    (ONE_OFF, "uiat_oneoff"),
])
def test_the_cost_estimate_names_uiat_by_its_training_attack(values, name):
    from trainables.methods.registry import method_of_config

    cfg = UIATConfig.from_dict(values)
    assert method_of_config(cfg).speed_name(cfg) == name
