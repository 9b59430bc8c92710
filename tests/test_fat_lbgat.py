"""Properties only correct FAT and LBGAT have (AFS Tables 4 and 5, Fig. 1's comparison methods): early-stopped PGD stops
each point exactly tau steps after it is first misclassified and leaves the others alone; FAT's dynamic tau; LBGAT's
loss against the authors' formula, its gradients into both networks and its teacher in the checkpoint; and each (TLA
too, whose properties are in tests/test_tla.py) trains an epoch through its trainable."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from small_methods import SMALL, UNUSED_STORE, make_method, small_data
from tests_support import train_without_ray
from trainables import attacks
from trainables.config import ConfigError
from trainables.loader import Batch
from trainables.methods import fat, lbgat, tla
from trainables.methods.configs import FATConfig, LBGATConfig
from trainables.methods.fat import early_stopped_pgd
from trainables.methods.lbgat import LBGAT, lbgat_loss

EPS, STEP = 8 / 255, 1 / 255


class MeanThreshold(nn.Module):
    """Two classes: class 1 once an image's mean pixel passes ``threshold``. CE ascent on class 0 raises every pixel
    by the step, so an image starting at mean m is first misclassified after ceil((threshold - m) / step) steps."""

    def __init__(self, threshold: float) -> None:
        super().__init__()
        self.threshold = threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = 100 * (x.flatten(1).mean(1) - self.threshold)
        return torch.stack([torch.zeros_like(score), score], dim=1)


def ce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, y, reduction="none")


@pytest.mark.parametrize("tau", [0, 1, 3])
def test_each_point_stops_tau_steps_after_it_is_first_misclassified(tau):
    # Means 0.5 + k/255 - 0.5/255: first misclassified after 4 - k steps (k = 0..3), one never within 10 steps.
    starts = torch.tensor([0.5 + (k - 0.5) / 255 for k in range(4)] + [0.3])
    x = starts.view(-1, 1, 1, 1).expand(-1, 3, 2, 2).contiguous()
    y = torch.zeros(5, dtype=torch.long)
    model = MeanThreshold(0.5 + 3 / 255)
    x_adv, taken = early_stopped_pgd(model, ce, x, y, eps=EPS, step_size=STEP, steps=10, tau=tau, random_start="none")
    first_wrong = torch.tensor([4, 3, 2, 1])
    # The last one never crosses the threshold (the eps-ball stops it 8/255 up): it takes all 10 steps.
    assert taken.tolist() == [*(first_wrong + tau).tolist(), 10]
    # Each stopped point is where its last step left it: 4 - k + tau steps of 1/255 up (within the ball).
    moved = (x_adv - x).flatten(1).mean(1)
    assert moved[:4].tolist() == pytest.approx(((first_wrong + tau).clamp(max=8) / 255).tolist(), abs=1e-6)


def test_a_point_never_misclassified_takes_every_step_of_plain_pgd():
    torch.manual_seed(0)
    x = torch.rand(6, 3, 4, 4)
    y = torch.zeros(6, dtype=torch.long)
    model = MeanThreshold(2.0)  # unreachable: always class 0
    x_adv, taken = early_stopped_pgd(model, ce, x, y, eps=EPS, step_size=STEP, steps=5, tau=0, random_start="none")
    plain = attacks.pgd(lambda z: ce(model(z), y), x, eps=EPS, step_size=STEP, steps=5, random_start="none")
    assert torch.equal(x_adv, plain) and taken.tolist() == [5.0] * 6


def test_a_point_misclassified_at_its_start_stays_there_with_tau_zero():
    x = torch.full((2, 3, 2, 2), 0.9)
    y = torch.zeros(2, dtype=torch.long)
    x_adv, taken = early_stopped_pgd(MeanThreshold(0.5), ce, x, y, eps=EPS, step_size=STEP, steps=10, tau=0,
                                     random_start="none")
    assert torch.equal(x_adv, x) and taken.tolist() == [0.0, 0.0]


def test_frozen_points_do_not_change_the_others_and_every_point_stays_in_the_ball():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 10))
    x, y = torch.rand(8, 3, 4, 4), torch.randint(0, 10, (8,))
    together, _ = early_stopped_pgd(model, ce, x, y, eps=EPS, step_size=2 / 255, steps=10, tau=1, random_start="none")
    alone = torch.cat([early_stopped_pgd(model, ce, x[i : i + 1], y[i : i + 1], eps=EPS, step_size=2 / 255, steps=10,
                                         tau=1, random_start="none")[0] for i in range(8)])
    assert torch.allclose(together, alone)
    assert (together - x).abs().max() <= EPS + 1e-6 and together.min() >= 0 and together.max() <= 1


def test_dynamic_tau_follows_the_fat_codes_schedules():
    trades = FATConfig(tau_milestones=(31, 51, 71))
    # FAT for TRADES: tau 0 for epochs 1-30, 1 for 31-50, 2 for 51-70, 3 after (1-based epochs).
    assert [trades.tau_at(e) for e in (0, 29, 30, 49, 50, 69, 70, 84)] == [0, 0, 1, 1, 2, 2, 3, 3]
    at = FATConfig(variant="at", tau_milestones=(51, 91))
    assert [at.tau_at(e) for e in (49, 50, 89, 90, 119)] == [0, 1, 1, 2, 2]


@pytest.mark.parametrize(("values", "message"), [
    ({"tau": -1}, "must not be negative"),
    ({"tau_milestones": (51, 31)}, "increasing 1-based epochs"),
    ({"eps": 0.0}, "set eps > 0"),
])
def test_bad_fat_input_is_rejected_with_the_fix(values, message):
    with pytest.raises(ConfigError, match=message):
        FATConfig(**values)


# --- LBGAT -----------------------------------------------------------------------------------------------------------

def test_the_lbgat_loss_is_the_authors_formula():
    """MSE(f_rob(x_adv), f_nat(x)) + CE(f_nat(x), y) + beta * KL(p_rob(x) || p_rob(x_adv)) / N, written as the
    authors' code writes it (nn.MSELoss, nn.CrossEntropyLoss, nn.KLDivLoss summed and divided by the batch)."""
    torch.manual_seed(0)
    adv, clean, teacher = 3 * torch.randn(16, 10), 3 * torch.randn(16, 10), 3 * torch.randn(16, 10)
    y = torch.randint(0, 10, (16,))
    kl = nn.KLDivLoss(reduction="sum")(F.log_softmax(adv, dim=1), F.softmax(clean, dim=1)) / 16
    expected = nn.MSELoss()(adv, teacher) + nn.CrossEntropyLoss()(teacher, y) + 6.0 * kl
    total, logs = lbgat_loss(adv, clean, teacher, y, beta=6.0)
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert logs["robust_loss"].item() == pytest.approx(kl.item(), rel=1e-6)


def test_lbgat_trains_both_networks_and_the_guide_reaches_the_teacher():
    data = small_data()
    method = make_method(LBGAT, data, teacher_model="tiny-cnn", attack_bn="eval", attack_start="normal")
    optimised = {id(p) for p in method.parameters()}
    assert {id(p) for p in method.teacher.parameters()} <= optimised
    assert {id(p) for p in method.model.parameters()} <= optimised
    batch_x, batch_y = data.train.images[:16].float() / 255, data.train.labels[:16]
    method.on_epoch_start(0)
    loss, _ = method.loss(Batch(batch_x, batch_y, torch.arange(16)), 0)
    teacher = [p for p in method.teacher.parameters() if p.requires_grad]
    total = torch.autograd.grad(loss, teacher)
    ce_only = torch.autograd.grad(F.cross_entropy(method.teacher(batch_x), batch_y), teacher)
    # The teacher gets the CE's gradient and the guide's (its clean logits are not detached in the MSE).
    assert any(not torch.allclose(a, b) for a, b in zip(total, ce_only, strict=True))
    assert method.teacher.training


def test_the_teacher_is_in_the_checkpoint_and_comes_back_on_resume():
    data = small_data()
    first = make_method(LBGAT, data, teacher_model="tiny-cnn")
    with torch.no_grad():
        for p in first.teacher.parameters():
            p.add_(1.0)
    second = make_method(LBGAT, data, teacher_model="tiny-cnn")
    second.load_state_dict(first.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(first.teacher.state_dict().values(),
                                                 second.teacher.state_dict().values(), strict=True))


def test_bad_lbgat_input_is_rejected_with_the_fix():
    with pytest.raises(ConfigError, match="teacher_model: unknown model 'resnet19'"):
        LBGATConfig(teacher_model="resnet19")


# --- through the trainable -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("module", "overrides", "diagnostic"), [
    (fat, {"variant": "at", "tau_milestones": [1]}, "attack_steps"),
    (fat, {"attack_bn": "eval", "attack_start": "normal_clamped"}, "robust_loss"),
    (lbgat, {"teacher_model": "tiny-cnn", "attack_bn": "eval", "attack_start": "normal"}, "guide_mse"),
    (tla, {}, "triplet_same_class"),
], ids=["fat", "fat_trades", "lbgat", "tla"])
def test_each_method_trains_an_epoch_through_its_trainable(module, overrides, diagnostic, monkeypatch):
    config = {**SMALL, **overrides}
    chosen = []
    monkeypatch.setattr(module, "run_trial", lambda cfg, method_cls, settings: chosen.append(method_cls))
    module.trainable(config, UNUSED_STORE)
    logs: list[dict[str, float]] = []
    train_without_ray(chosen[0], config, logs)
    (epoch,) = logs
    assert math.isfinite(epoch["train/loss"]) and epoch["train/loss"] > 0 and f"train/{diagnostic}" in epoch
