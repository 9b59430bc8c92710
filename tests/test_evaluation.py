"""evaluate(), accuracy() and BestTracker on a tiny model trained in the test; AutoAttack through pyautoattack."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tests_support import fit_test_model
from trainables.attacks import ce, cw_margin, pgd
from trainables.evaluation import BestTracker, accuracy, evaluate, evaluate_points, parse_attack

NUM_CLASSES = 10  # AutoAttack's standard version targets 9 classes, so it needs at least 10
SIZE = 8


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.heads = nn.ModuleDict({"main": nn.Linear(16 * (SIZE // 2) ** 2, NUM_CLASSES)})

    def features(self, x: Tensor) -> Tensor:
        return F.max_pool2d(F.relu(self.bn(self.conv(x))), 2).flatten(1)

    def forward(self, x: Tensor, head: str = "main") -> Tensor:
        return self.heads[head](self.features(x))


@pytest.fixture(scope="module")
def setup() -> tuple[TinyNet, Tensor, Tensor]:
    """A model trained on class templates plus noise, and 96 held-out uint8 images (as an ImageSet stores them)."""
    g = torch.Generator().manual_seed(0)
    templates = torch.randint(0, 2, (NUM_CLASSES, 3, SIZE, SIZE), generator=g) * 2 - 1
    y = torch.randint(0, NUM_CLASSES, (1024 + 96,), generator=g)
    x = (0.5 + 0.1 * templates[y] + 0.15 * torch.randn(len(y), 3, SIZE, SIZE, generator=g)).clamp(0, 1)
    x = (x * 255).round().to(torch.uint8)
    return fit_test_model(TinyNet, x.float() / 255, y), x[1024:], y[1024:]


def test_clean_accuracy_matches_a_manual_computation(setup) -> None:
    model, x, y = setup
    # Flip a few labels so the expected accuracy is not simply 1.
    y = y.clone()
    y[:10] = (y[:10] + 1) % NUM_CLASSES
    with torch.no_grad():
        manual = int((model(x.float() / 255).argmax(dim=1) == y).sum()) / len(y)
    assert 0.5 < manual < 1
    # A batch size that does not divide the 96 points checks the last partial batch.
    assert evaluate(model, x, y, eps=8 / 255, attacks=("clean",), batch_size=7, device="cpu") == {"clean": manual}
    assert evaluate(model, x.float() / 255, y, eps=8 / 255, attacks=("clean",), device="cpu")["clean"] == manual
    assert accuracy(model, x, y, batch_size=7) == manual


def test_robust_accuracies_are_bounded_by_clean_and_ordered_as_requested(setup) -> None:
    model, x, y = setup
    result = evaluate(model, x, y, eps=8 / 255, attacks=("pgd20", "clean", "cw10", "pgd3"), batch_size=32, device="cpu")
    assert list(result) == ["pgd20", "clean", "cw10", "pgd3"]
    assert all(0 <= v <= 1 for v in result.values())
    assert result["pgd20"] < result["clean"]  # the attack does something at 8/255 on this model
    assert result["cw10"] <= result["clean"]
    assert result["pgd20"] <= result["pgd3"]
    assert evaluate(model, x, y, eps=0.0, attacks=("clean", "pgd20"), device="cpu")["pgd20"] == result["clean"]


def test_pgd_and_cw_follow_the_protocol(setup) -> None:
    # pgd<k>: CE, step eps/4 (2/255 at 8/255), uniform start from a generator seeded with `seed`; cw<k>: CW margin
    # with kappa 50. One batch, so the generator stream is the same as in a single manual call.
    model, x, y = setup
    eps, seed = 8 / 255, 3
    images = x.float() / 255
    with torch.no_grad():
        clean_ok = model(images).argmax(dim=1) == y
    expected = {}
    for name, objective, steps in (("pgd5", ce(model, y), 5), ("cw7", cw_margin(model, y, kappa=50.0), 7)):
        x_adv = pgd(
            objective, images, eps=eps, step_size=eps / 4, steps=steps, generator=torch.Generator().manual_seed(seed)
        )
        with torch.no_grad():
            expected[name] = int((clean_ok & (model(x_adv).argmax(dim=1) == y)).sum()) / len(y)
    result = evaluate(model, x, y, eps=eps, attacks=("pgd5", "cw7"), batch_size=len(y), device="cpu", seed=seed)
    assert result == expected


class _RoundingModel(nn.Module):
    """Two classes decided by round(10 * pixel): zero gradient everywhere, so PGD only moves by its random start."""

    def forward(self, x: Tensor) -> Tensor:
        score = torch.round(10 * x.flatten(1).mean(dim=1)) / 10 - 0.45
        return torch.stack([score, -score], dim=1)


def test_a_point_counts_as_robust_only_if_its_clean_input_is_correct() -> None:
    # Every clean input (0.44 -> 0.4) is predicted class 1 against label 0; the uniform start reaches 0.45 and above
    # for about half of the points, which the model then gets right. Those must still count as wrong.
    x = torch.full((64, 1, 1, 1), 0.44)
    y = torch.zeros(64, dtype=torch.long)
    model = _RoundingModel()
    result = evaluate(model, x, y, eps=0.1, attacks=("clean", "pgd1"), device="cpu")
    assert result == {"clean": 0.0, "pgd1": 0.0}
    x_adv = pgd(ce(model, y), x, eps=0.1, step_size=0.025, steps=1, generator=torch.Generator().manual_seed(0))
    assert (model(x_adv).argmax(dim=1) == y).any()  # the situation the rule is for does occur


def test_evaluate_is_seeded_order_independent_and_leaves_the_global_rng_alone(setup) -> None:
    model, x, y = setup
    rng = torch.get_rng_state()
    first = evaluate(model, x, y, eps=8 / 255, attacks=("pgd2", "cw2"), device="cpu", seed=1)
    assert torch.equal(torch.get_rng_state(), rng)
    again = evaluate(model, x, y, eps=8 / 255, attacks=("cw2", "pgd2"), device="cpu", seed=1)
    assert first == again


def test_evaluate_uses_eval_mode_and_restores_modes(setup) -> None:
    model, x, y = setup
    model.train()
    buffers = [b.clone() for b in model.buffers()]
    try:
        evaluate(model, x[:32], y[:32], eps=8 / 255, attacks=("clean", "pgd2"), device="cpu")
        assert model.training and all(m.training for m in model.modules())
        # Running statistics untouched: the forward passes ran in eval mode.
        assert all(torch.equal(a, b) for a, b in zip(buffers, model.buffers(), strict=True))
        assert all(p.grad is None for p in model.parameters())
    finally:
        model.eval()


@pytest.mark.parametrize("name", ["fgsm1", "pgd", "pgd0", "PGD20", "cw-10", "pgd20 ", "auto"])
def test_unknown_attack_names_are_rejected_with_the_valid_forms(setup, name: str) -> None:
    model, x, y = setup
    with pytest.raises(ValueError, match=r"clean, fgsm, pgd<k>, cw<k>, autoattack"):
        evaluate(model, x, y, eps=8 / 255, attacks=("clean", name), device="cpu")


def test_parse_attack() -> None:
    assert parse_attack("pgd20") == ("pgd", 20)
    assert parse_attack("cw100") == ("cw", 100)
    assert parse_attack("clean") == ("clean", 0)
    assert parse_attack("autoattack") == ("autoattack", 0)
    assert parse_attack("fgsm") == ("fgsm", 1)


def test_fgsm_is_one_signed_gradient_step_of_the_whole_budget_from_x(setup) -> None:
    """FGSM (BiaMAT appendix Table 6's attack): x + eps * sign(grad CE), clipped to [0, 1], no random start; a point
    counts when the model is right on x and on that image. It is never stronger than PGD-20 here."""
    model, x, y = setup
    eps = 8 / 255
    images = x.float() / 255
    inputs = images.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(inputs), y, reduction="sum"), inputs)
    x_adv = (images + eps * grad.sign()).clamp(0, 1)
    with torch.no_grad():
        expected = (model(images).argmax(1) == y) & (model(x_adv).argmax(1) == y)
    points = evaluate_points(model, x, y, eps=eps, attacks=("fgsm", "pgd20"), device="cpu")
    assert torch.equal(points["fgsm"], expected.cpu())
    assert int(points["fgsm"].sum()) >= int(points["pgd20"].sum())
    assert evaluate_points(model, x, y, eps=eps, attacks=("fgsm",), device="cpu", seed=5)["fgsm"].equal(expected)


def test_autoattack_on_the_first_n_points_breaks_what_a_large_eps_allows(setup) -> None:
    # At eps = 0.3 APGD-CE breaks every point within its first iterations, so AutoAttack stops early (seconds on a
    # CPU); misclassified points among the first n must count as wrong.
    model, x, y = setup
    y = y.clone()
    y[:4] = (y[:4] + 1) % NUM_CLASSES
    rng = torch.get_rng_state()
    model.train()
    try:
        result = evaluate(model, x, y, eps=0.3, attacks=("clean", "autoattack"), device="cpu", autoattack_n=16)
        assert model.training
    finally:
        model.eval()
    assert result["autoattack"] == 0.0
    # pyautoattack re-seeds the global generators; evaluate must hide that from the training run.
    assert torch.equal(torch.get_rng_state(), rng)
    with pytest.raises(ValueError, match="autoattack_n"):
        evaluate(model, x, y, eps=0.3, attacks=("autoattack",), device="cpu", autoattack_n=0)


@pytest.mark.slow
def test_autoattack_is_at_least_as_strong_as_pgd(setup) -> None:
    # Some points survive, so all four attacks of the standard version run in full: about 10 s on one CPU thread.
    model, x, y = setup
    x, y = x[:32], y[:32]
    eps = 8 / 255
    result = evaluate(model, x, y, eps=eps, attacks=("clean", "pgd20", "autoattack"), device="cpu", autoattack_n=32)
    assert 0 < result["autoattack"] <= result["pgd20"] <= result["clean"]


# --- BestTracker --------------------------------------------------------------------------------------------------


def test_best_tracker_keeps_the_best_and_the_last_epoch() -> None:
    tracker = BestTracker("pgd10")
    history = [0.30, 0.42, 0.42, float("nan"), 0.40]
    flags = [tracker.update(epoch, {"clean": 0.8, "pgd10": v}) for epoch, v in enumerate(history)]
    assert flags == [True, True, False, False, False]  # a tie keeps the earlier epoch; NaN is never best
    assert tracker.best_epoch == 1 and tracker.best_metrics == {"clean": 0.8, "pgd10": 0.42}
    assert tracker.last_epoch == 4 and tracker.last_metrics["pgd10"] == 0.40
    assert tracker.summary() == {
        "best/clean": 0.8,
        "best/pgd10": 0.42,
        "best/epoch": 1.0,
        "last/clean": 0.8,
        "last/pgd10": 0.40,
        "last/epoch": 4.0,
    }


def test_best_tracker_min_mode_and_errors() -> None:
    tracker = BestTracker("loss", mode="min")
    assert tracker.summary() == {}
    assert [tracker.update(e, {"loss": v}) for e, v in enumerate([1.0, 0.5, 0.7])] == [True, True, False]
    assert tracker.best_epoch == 1
    with pytest.raises(KeyError, match="loss"):
        tracker.update(3, {"clean": 0.9})
    with pytest.raises(ValueError, match="mode"):
        BestTracker("loss", mode="maximum")


def test_best_tracker_nan_first_epoch_is_not_best() -> None:
    tracker = BestTracker("pgd10")
    assert not tracker.update(0, {"pgd10": math.nan})
    assert tracker.best_epoch is None
    assert tracker.update(1, {"pgd10": 0.1})


def test_best_tracker_round_trips_through_its_state_dict() -> None:
    tracker = BestTracker("pgd10")
    for epoch, v in enumerate([0.2, 0.5, 0.3]):
        tracker.update(epoch, {"pgd10": v})
    state = tracker.state_dict()
    restored = BestTracker("pgd10")
    restored.load_state_dict(state)
    assert restored.state_dict() == state
    assert (restored.best_epoch, restored.best_metrics) == (1, {"pgd10": 0.5})
    # The restored tracker makes the same decisions as the original from here on.
    for epoch, v in [(3, 0.45), (4, 0.55)]:
        assert restored.update(epoch, {"pgd10": v}) == tracker.update(epoch, {"pgd10": v})
    assert restored.state_dict() == tracker.state_dict()
    with pytest.raises(ValueError, match="pgd10"):
        BestTracker("clean").load_state_dict(state)
    with pytest.raises(ValueError, match="min"):
        BestTracker("pgd10", mode="min").load_state_dict(state)
