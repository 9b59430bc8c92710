"""Properties only correct comparison methods have: MART's boosted CE and its undetached misclassification weight,
where RS-FGSM's and N-FGSM's training points may lie, GradAlign's reduction to FGSM training at lambda 0 and its
double backprop; and each method trains an epoch through the trainable that sweeps run."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from small_methods import SMALL, UNUSED_STORE, make_method, small_data
from tests_support import train_without_ray
from trainables import attacks
from trainables.config import ConfigError
from trainables.loader import Batch, DeviceLoader
from trainables.losses import kl_divergence
from trainables.methods import gradalign, mart, single_step
from trainables.methods.configs import GradAlignConfig, MARTConfig, SingleStepConfig
from trainables.methods.gradalign import GradAlign
from trainables.methods.mart import boosted_cross_entropy, mart_loss
from trainables.methods.single_step import SingleStep
from trainables.runtime import Method
from trainables.single_step_attacks import alignment
from trainables.trial_data import TrialData

EPS = 8 / 255
SETTINGS = UNUSED_STORE
make = make_method


@pytest.fixture(scope="module")
def data() -> TrialData:
    return small_data()


def first_batch(method: Method) -> Batch:
    loader = DeviceLoader(method.data.train, method.cfg.batch_size, device="cpu", augment="none", shuffle=True, seed=0)
    return next(loader.epoch(0))


# --- MART ------------------------------------------------------------------------------------------------------------

def test_boosted_cross_entropy_is_ce_minus_log_one_minus_the_largest_wrong_probability():
    torch.manual_seed(0)
    logits, y = 3 * torch.randn(16, 10), torch.randint(0, 10, (16,))
    p = F.softmax(logits, dim=1)
    expected = []
    for i in range(16):
        largest_wrong = max(p[i, k].item() for k in range(10) if k != y[i])
        expected.append(-math.log(p[i, y[i]].item()) - math.log(1 - largest_wrong))
    assert boosted_cross_entropy(logits, y).tolist() == pytest.approx(expected, rel=1e-5)


def test_mart_on_a_one_hot_confident_clean_prediction_is_the_boosted_ce_alone():
    torch.manual_seed(0)
    y = torch.randint(0, 10, (16,))
    logits_adv = 3 * torch.randn(16, 10)
    confident = 40 * F.one_hot(y, 10).float()  # p_y(x) = 1 - 9e-17: the weight 1 - p_y(x) vanishes
    total, boosted, robust = mart_loss(confident, logits_adv, y, beta=6.0)
    assert robust.item() == pytest.approx(0.0, abs=1e-9)
    assert total.item() == pytest.approx(boosted.item(), rel=1e-6)
    assert boosted.item() == pytest.approx(boosted_cross_entropy(logits_adv, y).mean().item())
    # The same clean logits pointing at a wrong class: the KL term counts, so the test above is not vacuous.
    unsure = 40 * F.one_hot((y + 1) % 10, 10).float()
    assert mart_loss(unsure, logits_adv, y, beta=6.0)[2].item() > 1.0


def test_the_misclassification_weight_passes_its_gradient_to_the_model():
    """The module docstring says 1 - p_y(x) is not detached: the gradient of the KL term is the product rule's sum
    of both factors' gradients, the weight's share is not zero."""
    torch.manual_seed(0)
    w = torch.randn(5, 4, requires_grad=True)  # a tiny linear model x -> x @ w
    x, y = torch.randn(8, 5), torch.randint(0, 4, (8,))
    x_adv = x + 0.3 * torch.randn(8, 5)
    (actual,) = torch.autograd.grad(mart_loss(x @ w, x_adv @ w, y, beta=1.0)[2], w)

    def kl_and_weight():
        p = F.softmax(x @ w, dim=1)
        return kl_divergence(p, x_adv @ w), 1 - p.gather(1, y[:, None]).squeeze(1)

    kl, weight = kl_and_weight()
    (through_kl,) = torch.autograd.grad((kl * weight.detach()).mean(), w)
    kl, weight = kl_and_weight()
    (through_weight,) = torch.autograd.grad((kl.detach() * weight).mean(), w)
    assert through_weight.abs().max() > 1e-3
    torch.testing.assert_close(actual, through_kl + through_weight)
    assert not torch.allclose(actual, through_kl, atol=1e-4)


@pytest.mark.parametrize(("values", "message"), [
    ({"beta": -1.0}, "beta=-1.0 must not be negative"),
    ({"eps": 0.0}, "set eps > 0"),
    ({"attack_steps": 0}, "attack_steps >= 1"),
])
def test_bad_mart_input_is_rejected_with_the_fix(values, message):
    with pytest.raises(ConfigError, match=message):
        MARTConfig.from_dict(values)


# --- RS-FGSM and N-FGSM ----------------------------------------------------------------------------------------------

def linf(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).flatten(1).abs().amax(dim=1)


def test_rs_fgsm_points_stay_in_the_eps_ball_and_the_image_range(data):
    method = make(SingleStep, data, variant="rs_fgsm")
    batch = first_batch(method)
    x_adv = method.craft(batch)
    distance = linf(x_adv, batch.x)
    assert distance.max() <= EPS + 1e-6
    assert distance.max() >= EPS - 1e-6  # the 1.25 eps step reaches the boundary: the projection was active
    assert x_adv.min() >= 0 and x_adv.max() <= 1


def test_n_fgsm_points_reach_beyond_the_eps_ball_but_not_beyond_three_eps(data):
    method = make(SingleStep, data, variant="n_fgsm")
    batch = first_batch(method)
    x_adv = method.craft(batch)
    distance = linf(x_adv, batch.x)
    assert distance.max() <= 3 * EPS + 1e-6
    assert bool((distance > 1.5 * EPS).all())  # no projection onto the eps-ball (a random model, noise 2 eps)
    assert x_adv.min() >= 0 and x_adv.max() <= 1


def test_bad_single_step_input_is_rejected_with_the_fix():
    with pytest.raises(ConfigError, match="set eps > 0"):
        SingleStepConfig.from_dict({"variant": "n_fgsm", "eps": 0.0})
    with pytest.raises(ConfigError, match="expected one of"):
        SingleStepConfig.from_dict({"variant": "fgsm"})


# --- GradAlign -------------------------------------------------------------------------------------------------------

def loss_and_grads(method: Method, batch: Batch, seed: int = 1) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], dict]:
    torch.manual_seed(seed)
    method.model.train()
    loss, logs = method.loss(batch, 0)
    return loss, torch.autograd.grad(loss, list(method.model.parameters())), logs


def test_gradalign_at_lambda_zero_is_fgsm_training(data):
    method = make(GradAlign, data, lam=0.0)
    batch = first_batch(method)
    reference = copy.deepcopy(method.model)
    loss, grads, _ = loss_and_grads(method, batch)

    with attacks.bn_mode(reference, method.cfg.attack_bn):
        x_adv = attacks.fgsm(attacks.ce(reference, batch.y), batch.x, step_size=EPS, eps=EPS)
    reference.train()
    fgsm_loss = F.cross_entropy(reference(x_adv), batch.y)
    fgsm_grads = torch.autograd.grad(fgsm_loss, list(reference.parameters()))
    assert loss.item() == pytest.approx(fgsm_loss.item(), rel=1e-6)
    for actual, expected in zip(grads, fgsm_grads, strict=True):
        torch.testing.assert_close(actual, expected)


def test_gradalign_regulariser_reaches_the_weights_through_both_input_gradients(data):
    """lambda 1 minus lambda 0 is exactly the gradient of 1 - cos with both input gradients differentiable; with the
    gradient at x detached (the authors' train.py) it would differ."""
    aligned = make(GradAlign, data, lam=1.0)
    plain = make(GradAlign, data, lam=0.0)  # the same initial weights (make seeds the model init)
    batch = first_batch(aligned)
    initial = copy.deepcopy(plain.model)  # before the training passes move BatchNorm's running statistics
    _, with_reg, logs = loss_and_grads(aligned, batch)
    _, without, _ = loss_and_grads(plain, batch)
    assert logs["grad_cos"] < 0.99  # the gradients at x and x + eta differ, so the regulariser has a gradient

    torch.manual_seed(1)
    eta = (2 * torch.rand_like(batch.x) - 1) * EPS  # the draw GradAlign.loss made after the same seed
    objective, params = attacks.ce(initial, batch.y), list(initial.parameters())
    with attacks.bn_mode(initial, plain.cfg.attack_bn):
        grad_x = attacks.input_gradient(objective, batch.x, create_graph=True)
        grad_eta = attacks.input_gradient(objective, batch.x + eta, create_graph=True)
    both = torch.autograd.grad(alignment(grad_x, grad_eta)[0], params, retain_graph=True)
    eta_only = torch.autograd.grad(alignment(grad_x.detach(), grad_eta)[0], params)
    differences = [a - b for a, b in zip(with_reg, without, strict=True)]
    assert max(d.abs().max() for d in differences) > 1e-4
    for difference, expected in zip(differences, both, strict=True):
        torch.testing.assert_close(difference, expected, rtol=1e-4, atol=1e-6)
    assert any(not torch.allclose(a, b, atol=1e-6) for a, b in zip(both, eta_only, strict=True))


def test_alignment_averages_one_minus_cosine_over_samples_with_nonzero_gradients():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    b = torch.tensor([[0.0, 2.0], [3.0, 3.0], [1.0, 0.0]])  # orthogonal, parallel, and a zero gradient at x
    misalignment, cos = alignment(a, b)
    assert misalignment.item() == pytest.approx(0.5)  # (1 - 0 + 1 - 1) / 2: the third sample drops out
    assert cos.item() == pytest.approx(0.5)


@pytest.mark.parametrize(("values", "message"), [
    ({"lam": -0.1}, "lam=-0.1 must not be negative"),
    ({"eps": 0.0}, "set eps > 0"),
    ({"compile": True}, "set compile=false"),
])
def test_bad_gradalign_input_is_rejected_with_the_fix(values, message):
    with pytest.raises(ConfigError, match=message):
        GradAlignConfig.from_dict(values)


# --- through the trainable -------------------------------------------------------------------------------------------

TRAINABLES = {
    "mart": (mart, {}, "boosted_ce"),
    "rs_fgsm": (single_step, {"variant": "rs_fgsm"}, "adv_acc"),
    "n_fgsm": (single_step, {"variant": "n_fgsm"}, "adv_acc"),
    "gradalign": (gradalign, {}, "grad_cos"),
}


@pytest.mark.parametrize("name", TRAINABLES)
def test_each_method_trains_an_epoch_through_its_trainable(name, monkeypatch):
    """The sweeps' trainable hands its Method to run_trial; that Method trains an epoch in the runtime's loop (without
    Ray or MLflow) and logs a finite loss and its own diagnostic."""
    module, overrides, diagnostic = TRAINABLES[name]
    config = {**SMALL, **overrides}
    chosen = []
    monkeypatch.setattr(module, "run_trial", lambda cfg, method_cls, settings: chosen.append((cfg, method_cls)))
    module.trainable(config, SETTINGS)
    ((passed, method_cls),) = chosen
    assert passed == config
    logs: list[dict[str, float]] = []
    train_without_ray(method_cls, config, logs)
    (epoch,) = logs
    assert math.isfinite(epoch["train/loss"]) and epoch["train/loss"] > 0
    assert f"train/{diagnostic}" in epoch
