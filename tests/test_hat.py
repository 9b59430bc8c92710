"""HAT: TRADES at gamma 0, the helper term's labels and points, a frozen helper, and the helper found in MLflow by its
sweep (and a clear error, with the command, where it is missing)."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from mlflow.tracking import MlflowClient
from torch import nn

from small_methods import SMALL, UNUSED_STORE, make_method, small_data
from trainables import attacks
from trainables.config import ConfigError, RunSettings
from trainables.loader import Batch, DeviceLoader
from trainables.methods import hat
from trainables.methods.baseline import Baseline
from trainables.methods.configs import HATConfig
from trainables.methods.hat import HAT, MissingHelperError, find_helpers, helper_examples
from trainables.models import Classifier, create_model
from trainables.runtime import Method, Trial
from trainables.tracking import TrialRun
from trainables.training import seed_everything
from trainables.trial_data import TrialData

CPU = torch.device("cpu")
EPS = 8 / 255
SETTINGS = UNUSED_STORE
make = make_method


@pytest.fixture(scope="module")
def data() -> TrialData:
    return small_data()


def tiny(seed: int) -> Classifier:
    torch.manual_seed(seed)
    return create_model("tiny-cnn", 10)


def with_helper(helper: nn.Module) -> type[HAT]:
    """HAT with a helper built in the test instead of fetched from MLflow."""

    class InTestHAT(HAT):
        def load_helper(self) -> nn.Module:
            return helper

    return InTestHAT




def first_batch(method: Method) -> Batch:
    loader = DeviceLoader(method.data.train, method.cfg.batch_size, device="cpu", augment="none", shuffle=True, seed=0)
    return next(loader.epoch(0))


def loss_and_grads(method: Method, batch: Batch) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], dict]:
    torch.manual_seed(1)
    method.model.train()
    loss, logs = method.loss(batch, 0)
    return loss, torch.autograd.grad(loss, list(method.model.parameters())), logs


class AlwaysZero(nn.Module):
    """A helper that predicts class 0 whatever its input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.one_hot(torch.zeros(len(x), dtype=torch.long), 10).float()


def test_hat_at_gamma_zero_is_trades(data):
    trades = make(Baseline, data, training="trades", beta=2.5, attack_start="normal")
    hat_zero = make(with_helper(tiny(7)), data, helper_sweep="in-test", gamma=0.0)
    batch = first_batch(trades)
    trades_loss, trades_grads, _ = loss_and_grads(trades, batch)
    loss, grads, logs = loss_and_grads(hat_zero, batch)
    assert loss.item() == trades_loss.item()  # exactly: the same passes in the same order
    for actual, expected in zip(grads, trades_grads, strict=True):
        assert torch.equal(actual, expected)
    assert "helper_loss" not in logs
    # gamma > 0 on the same batch and seed adds the helper term: the comparison above is not vacuous.
    hat_half = make(with_helper(tiny(7)), data, helper_sweep="in-test", gamma=0.5)
    assert loss_and_grads(hat_half, batch)[0].item() > loss.item() + 1e-3


def test_the_helper_term_is_ce_towards_the_helpers_labels_on_the_helper_examples(data):
    gamma = 0.5
    method = make(with_helper(AlwaysZero()), data, helper_sweep="in-test", gamma=gamma)
    reference = make(with_helper(AlwaysZero()), data, helper_sweep="in-test", gamma=gamma)  # same weights, untouched
    batch = first_batch(method)
    assert bool((batch.y != 0).any())  # so CE towards 0 is not CE towards y
    loss, _, logs = loss_and_grads(method, batch)

    # By hand: the TRADES attack from the same seed, then x + 2 (x_adv - x) in train mode, CE towards class 0.
    torch.manual_seed(1)
    model, x = reference.model, batch.x
    with attacks.bn_mode(model, "eval"):
        x_adv = attacks.craft(reference.cfg, attacks.kl_to(model, F.softmax(model(x), dim=1)), x)
    model.train()
    logits_clean, logits_adv = model(x), model(x_adv)
    trades = F.cross_entropy(logits_clean, batch.y) + 2.5 * F.kl_div(
        F.log_softmax(logits_adv, dim=1), F.softmax(logits_clean, dim=1), reduction="batchmean")
    towards_zero = -F.log_softmax(model(x + 2 * (x_adv - x)), dim=1)[:, 0].mean()
    assert logs["helper_loss"].item() == pytest.approx(towards_zero.item(), rel=1e-5)
    assert loss.item() == pytest.approx((trades + gamma * towards_zero).item(), rel=1e-5)
    assert logs["helper_relabelled"].item() == pytest.approx((batch.y != 0).float().mean().item())


def test_helper_examples_stretch_the_adversarial_perturbation_h_times(data):
    method = make(with_helper(tiny(7)), data, helper_sweep="in-test", h=3.0)
    batch = first_batch(method)
    near_white = batch.x.clone()
    near_white[:, :, :4] = 1 - 2 / 255  # where a perturbation towards 1, stretched 3 times, leaves [0, 1]
    batch = dataclasses.replace(batch, x=near_white)
    seen: list[torch.Tensor] = []
    method.model.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    helper_inputs: list[torch.Tensor] = []
    method.helper.register_forward_pre_hook(lambda module, args: helper_inputs.append(args[0].detach().clone()))
    loss_and_grads(method, batch)
    (x_adv,) = helper_inputs  # the helper labels x_adv, not the helper example
    x_helper = seen[-1]  # the training passes: x, x_adv, then the helper example
    assert torch.equal(seen[-2], x_adv)
    torch.testing.assert_close(x_helper - batch.x, 3.0 * (x_adv - batch.x), rtol=0, atol=1e-6)
    torch.testing.assert_close(helper_examples(batch.x, x_adv, 3.0), x_helper, rtol=0, atol=0)
    distance = (x_helper - batch.x).flatten(1).abs().amax(dim=1)
    assert distance.max() > EPS + 1e-3  # beyond the eps-ball: not projected back
    assert x_helper.max() > 1 + 1e-3  # nor clipped to the image range, as in the reference code
    assert distance.max() <= 3 * EPS + 1e-6


def test_the_helper_is_frozen_outside_the_optimiser_and_the_checkpoint(data):
    helper = tiny(7)
    before = copy.deepcopy(helper.state_dict())
    torch.manual_seed(0)
    cfg = HATConfig.from_dict({**SMALL, "helper_sweep": "in-test"})
    trial = Trial(with_helper(helper)(cfg, data, CPU, SETTINGS))
    model_before = copy.deepcopy(trial.method.model.state_dict())
    trial.train_epoch(0)
    assert not helper.training
    assert all(p.grad is None and not p.requires_grad for p in helper.parameters())
    for key, value in helper.state_dict().items():  # weights and BatchNorm statistics
        assert torch.equal(value, before[key]), key
    optimised = {id(p) for group in trial.optimizer.param_groups for p in group["params"]}
    assert not optimised & {id(p) for p in helper.parameters()}
    assert any(not torch.equal(v, model_before[k]) for k, v in trial.method.model.state_dict().items())
    state = trial.state_dict()
    assert state["method"] == {} and state["model"].keys() == model_before.keys()


@pytest.mark.parametrize(("values", "message"), [
    ({}, "helper_sweep is empty"),
    ({"helper_sweep": "h", "gamma": -1.0}, "must not be negative"),
    ({"helper_sweep": "h", "h": 0.5}, "h=0.5 must be at least 1"),
    ({"helper_sweep": "h", "eps": 0.0}, "set eps > 0"),
    ({"helper_sweep": "h", "attack_start": "gaussian"}, "expected one of"),
])
def test_bad_hat_input_is_rejected_with_the_fix(values, message):
    with pytest.raises(ConfigError, match=message):
        HATConfig.from_dict(values)


# --- the helper in MLflow --------------------------------------------------------------------------------------------


@pytest.fixture
def registered(tmp_path, monkeypatch) -> tuple[str, Classifier]:
    """A baselines sweep 'helpers' (preset smoke) in a fresh MLflow store, logged the way the runtime logs a trial's
    models: a FINISHED standard-training seed-0 tiny-cnn on synthetic data, a FINISHED PGD-AT seed 1 and a FAILED
    standard seed 1 (neither of which is a helper)."""
    monkeypatch.chdir(tmp_path)  # the SQLite store's artifacts go to ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp_id = client.create_experiment(hat.HELPER_EXPERIMENT)
    parent = client.create_run(exp_id, tags={"sweep": "helpers", "preset": "smoke"}).info.run_id
    helper = tiny(100)
    for i, (training, seed, status) in enumerate([("standard", 0, "FINISHED"), ("pgd_at", 1, "FINISHED"),
                                                  ("standard", 1, "FAILED")]):
        run = TrialRun.open(uri, hat.HELPER_EXPERIMENT, run_name=f"{training} seed={seed}", tags={},
                            params={"training": training, "seed": seed, "model": "tiny-cnn", "dataset": "synthetic"},
                            trial_id=f"t{i}", parent_run_id=parent)
        if i == 0:
            run.log_model(copy.deepcopy(helper).eval(), hat.HELPER_MODEL)
        run.finish(status)
    return uri, helper


def test_a_missing_helper_is_a_clear_error_naming_the_command(registered, data):
    uri, _ = registered
    with pytest.raises(MissingHelperError, match="no helper sweep 'other'") as info:
        find_helpers(uri, "other")
    assert "python sweeps/baselines.py --preset <preset> --name other" in str(info.value)

    found = find_helpers(uri, "helpers")
    found.require("synthetic", "tiny-cnn", [0])  # what a sweep checks before Ray starts: seed 0 has its helper
    with pytest.raises(MissingHelperError) as info:
        found.require("synthetic", "tiny-cnn", [0, 1])  # seed 1 only has a PGD-AT and a failed standard trial
    message = str(info.value)
    assert "for seed(s) 1 " in message and "seed 0 tiny-cnn on synthetic" in message
    assert f"python sweeps/baselines.py --preset smoke --name helpers --seeds 2 --tracking-uri {uri}" in message
    cfg = HATConfig.from_dict({**SMALL, "helper_sweep": "helpers", "seed": 1})
    with pytest.raises(MissingHelperError, match="for seed\\(s\\) 1 "):
        HAT(cfg, data, CPU, RunSettings(tracking_uri=uri, experiment="hat"))


def test_a_trial_trains_an_epoch_through_its_trainable_with_the_registered_helper(registered, monkeypatch):
    uri, logged = registered
    config = {**SMALL, "helper_sweep": "helpers"}
    chosen = []
    monkeypatch.setattr(hat, "run_trial", lambda cfg, method_cls, settings: chosen.append((cfg, method_cls)))
    settings = RunSettings(tracking_uri=uri, experiment="hat")
    hat.trainable(config, settings)
    ((passed, method_cls),) = chosen
    assert passed == config and method_cls is HAT

    cfg = HATConfig.from_dict(config)
    seed_everything(cfg.seed)
    trial = Trial(HAT(cfg, TrialData.load(cfg, None), CPU, settings))  # run_trial's construction, without Ray
    for key, value in trial.method.helper.state_dict().items():
        assert torch.equal(value, logged.state_dict()[key]), key
    metrics = trial.train_epoch(0)
    assert math.isfinite(metrics["train/loss"]) and metrics["train/loss"] > 0
    assert 0 <= metrics["train/helper_relabelled"] <= 1 and math.isfinite(metrics["train/helper_loss"])


def test_a_hat_trial_is_named_hat_in_the_cost_estimate():
    from trainables.methods.registry import method_of_config

    cfg = HATConfig.from_dict({"helper_sweep": "baselines-smoke"})
    assert method_of_config(cfg).speed_name(cfg) == "hat"


def test_a_multi_sweep_script_checks_every_hat_trials_helper_as_set_leaves_it(registered):
    """The check uiat_comparison.py and uiat_extra_data.py run between their baselines and HAT: per HAT trial, after
    --set, its (dataset, model, seed) must have a finished helper."""
    import argparse

    from launch.hat_helpers import require_hat_helpers
    from launch.overrides import parse_override, with_overrides_each
    from launch.sweep import Sweep
    from trainables.methods import hat

    uri, _ = registered
    space = {"dataset": "synthetic", "model": "tiny-cnn", "seed": 0, "helper_sweep": "helpers"}
    sweep = Sweep(family="uiat-comparison", trainable=hat.trainable, param_space=space, name_keys=("seed",),
                  config_cls=hat.HATConfig)
    require_hat_helpers(sweep, argparse.Namespace(tracking_uri=uri), "helpers")  # seed 0 has its helper
    applied, args = with_overrides_each({"hat": sweep}, argparse.Namespace(tracking_uri=uri,
                                                                        overrides=[parse_override("seed=1")]))
    seed_1 = applied["hat"]
    with pytest.raises(SystemExit, match=r"error: helper sweep 'helpers' has no finished standard-training trial.*"
                                         r"seed\(s\) 1"):
        require_hat_helpers(seed_1, args, "helpers")
    with pytest.raises(SystemExit, match="no helper sweep 'other'"):
        require_hat_helpers(sweep, argparse.Namespace(tracking_uri=uri), "other")
