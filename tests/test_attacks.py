"""PGD, its objectives and bn_mode, checked against closed forms and invariants on tiny CPU models."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tests_support import fit_test_model
from trainables.attacks import Objective, bn_mode, ce, cw_margin, inverse_pgd, kl_to, pgd, soft_ce

NUM_CLASSES = 10
SIZE = 8


class TwoHeadNet(nn.Module):
    """The project's model interface in miniature: features(), named heads, model(x, head=...)."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Dropout(dropout),
            nn.Flatten(),
        )
        feature_dim = 16 * (SIZE // 2) ** 2
        self.heads = nn.ModuleDict({"main": nn.Linear(feature_dim, NUM_CLASSES), "aux": nn.Linear(feature_dim, 4)})

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor, head: str = "main") -> Tensor:
        return self.heads[head](self.features(x))


def _template_data(n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    # Each class is a fixed +-1 pattern around grey plus noise: learnable in a second, not robust at 8/255.
    templates = torch.randint(0, 2, (NUM_CLASSES, 3, SIZE, SIZE), generator=torch.Generator().manual_seed(1)) * 2 - 1
    y = torch.randint(0, NUM_CLASSES, (n,), generator=generator)
    x = 0.5 + 0.1 * templates[y] + 0.15 * torch.randn(n, 3, SIZE, SIZE, generator=generator)
    return x.clamp(0, 1), y


@pytest.fixture(scope="module")
def trained() -> tuple[TwoHeadNet, Tensor, Tensor]:
    x, y = _template_data(1024 + 64, torch.Generator().manual_seed(0))
    return fit_test_model(TwoHeadNet, x, y), x[1024:], y[1024:]


def _edge_images(n: int = 6) -> Tensor:
    # Many pixels exactly at or next to the box edges, where an unprojected step would leave [0, 1].
    g = torch.Generator().manual_seed(3)
    values = torch.tensor([0.0, 1e-3, 0.01, 0.5, 0.99, 0.999, 1.0])
    return values[torch.randint(0, len(values), (n, 3, SIZE, SIZE), generator=g)]


def _objectives(model: nn.Module, x: Tensor) -> dict[str, Objective]:
    y = torch.arange(len(x)) % NUM_CLASSES
    with torch.no_grad():
        p_nat = F.softmax(model(x), dim=1)
    return {
        "ce": ce(model, y),
        "cw": cw_margin(model, y),
        "kl": kl_to(model, p_nat),
        "soft_ce_uniform": soft_ce(model, torch.full((len(x), NUM_CLASSES), 1 / NUM_CLASSES)),
        "ce_aux_head": ce(model, y % 4, head="aux"),
        "any_callable": lambda x_adv: model.features(x_adv).square().mean(dim=1),
    }


OBJECTIVE_NAMES = ["ce", "cw", "kl", "soft_ce_uniform", "ce_aux_head", "any_callable"]


@pytest.mark.parametrize("name", OBJECTIVE_NAMES)
@pytest.mark.parametrize("random_start", ["uniform", "normal", "normal_clamped", "none"])
@pytest.mark.parametrize("descend", [False, True])
def test_pgd_stays_in_ball_and_box(trained, name: str, random_start: str, descend: bool) -> None:
    model = trained[0]
    x = _edge_images()
    objective = _objectives(model, x)[name]
    for eps, steps in itertools.product((0.0, 2 / 255, 8 / 255, 0.3), (0, 3)):
        # A step larger than eps makes every step hit the projection; steps=0 checks the projected start alone.
        x_adv = pgd(
            objective,
            x,
            eps=eps,
            step_size=max(eps, 0.05),
            steps=steps,
            random_start=random_start,
            normal_std=0.01,
            descend=descend,
        )
        assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and not x_adv.requires_grad
        assert x_adv.min() >= 0 and x_adv.max() <= 1
        assert (x_adv - x).abs().max() <= eps + 1e-6
        if eps == 0:
            assert torch.equal(x_adv, x)
        # Something must move: the uniform start, or the steps (except KL to the clean prediction started at x, where
        # the gradient vanishes).
        elif random_start == "uniform" or (steps > 0 and not (name == "kl" and random_start == "none")):
            assert (x_adv - x).abs().max() > eps / 2


def _mean_ce(model: nn.Module, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return F.cross_entropy(model(x), y).item()


def test_pgd_increases_and_inverse_pgd_decreases_the_loss(trained) -> None:
    model, x, y = trained
    eps = 8 / 255
    clean = _mean_ce(model, x, y)
    noise = _mean_ce(model, (x + eps * (2 * torch.rand_like(x) - 1)).clamp(0, 1), y)
    adv = _mean_ce(model, pgd(ce(model, y), x, eps=eps, step_size=2 / 255, steps=10), y)
    inv = _mean_ce(model, inverse_pgd(ce(model, y), x, eps=eps, step_size=2 / 255, steps=10), y)
    assert adv > 2 * max(clean, noise)
    assert inv < 0.5 * clean


def test_pgd_reaches_the_closed_form_worst_case_of_a_linear_binary_model() -> None:
    # For logits z = Wx + b with two classes, CE depends on x only through the margin m = (w_y - w_o).x + (b_y - b_o)
    # and decreases in it, so the Linf worst case moves each pixel by eps against sign(w_y - w_o), clipped to the
    # box, and lowers the margin by sum_j |w_y - w_o|_j |x*_j - x_j|.
    g = torch.Generator().manual_seed(0)
    dim, n, eps = 48, 16, 0.05
    model = nn.Linear(dim, 2)
    with torch.no_grad():
        model.weight.copy_(torch.randn(2, dim, generator=g))
    x = 0.1 + 0.8 * torch.rand(n, dim, generator=g)
    x[:, :8] = torch.tensor([0.0, 0.01, 0.02, 0.04, 0.96, 0.98, 0.99, 1.0])  # the box binds on some of these
    y = torch.arange(n) % 2
    diff = (model.weight[y] - model.weight[1 - y]).detach()  # w_y - w_o per sample
    expected = (x - eps * diff.sign()).clamp(0, 1)

    def margin(inputs: Tensor) -> Tensor:
        logits = model(inputs).detach()
        return logits.gather(1, y[:, None]).squeeze(1) - logits.gather(1, (1 - y)[:, None]).squeeze(1)

    closed_form = margin(x) - (diff.abs() * (expected - x).abs()).sum(dim=1)
    for random_start in ("uniform", "none"):
        x_adv = pgd(
            ce(model, y),
            x,
            eps=eps,
            step_size=eps / 4,
            steps=10,
            random_start=random_start,
            generator=torch.Generator().manual_seed(1),
        )
        torch.testing.assert_close(x_adv, expected, rtol=0, atol=1e-6)
        torch.testing.assert_close(margin(x_adv), closed_form, rtol=0, atol=1e-4)


def test_pgd_and_inverse_pgd_on_logistic_regression_with_a_custom_objective() -> None:
    # Logistic loss softplus(-s (w.x + b)) with s in {-1, +1}: the worst case is x - eps s sign(w), the best case
    # (descent) x + eps s sign(w); inputs sit away from the box edges.
    g = torch.Generator().manual_seed(2)
    dim, n, eps = 32, 8, 0.03
    w, b = torch.randn(dim, generator=g), torch.tensor(0.1)
    x = 0.2 + 0.6 * torch.rand(n, dim, generator=g)
    s = torch.where(torch.arange(n) % 2 == 0, 1.0, -1.0)

    def logistic(inputs: Tensor) -> Tensor:
        return F.softplus(-s * (inputs @ w + b))

    worst = pgd(logistic, x, eps=eps, step_size=eps / 4, steps=10)
    best = inverse_pgd(logistic, x, eps=eps, step_size=eps / 4, steps=10)
    torch.testing.assert_close(worst, x - eps * s[:, None] * w.sign(), rtol=0, atol=1e-6)
    torch.testing.assert_close(best, x + eps * s[:, None] * w.sign(), rtol=0, atol=1e-6)
    margin = s * (x @ w + b)
    torch.testing.assert_close(s * (worst @ w + b), margin - eps * w.abs().sum(), rtol=0, atol=1e-5)


def test_pgd_leaves_parameter_grads_and_modes_alone(trained) -> None:
    model, x, y = trained
    x, y = x[:8], y[:8]
    model.train()
    model.heads.eval()
    modes = [m.training for m in model.modules()]
    sentinel = {name: torch.full_like(p, 0.5) for name, p in model.named_parameters()}
    try:
        x_adv = pgd(ce(model, y), x, eps=8 / 255, step_size=2 / 255, steps=2)
        assert all(p.grad is None for p in model.parameters())
        assert [m.training for m in model.modules()] == modes
        for name, p in model.named_parameters():
            p.grad = sentinel[name].clone()
        with torch.no_grad():  # evaluation code calls pgd from no_grad blocks
            pgd(ce(model, y), x, eps=8 / 255, step_size=2 / 255, steps=2)
        assert all(torch.equal(p.grad, sentinel[name]) for name, p in model.named_parameters())
        assert not x_adv.requires_grad
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()


def test_pgd_under_autocast(trained) -> None:
    model, x, y = trained
    eps = 8 / 255
    with torch.autocast("cpu", dtype=torch.bfloat16):
        x_adv = pgd(ce(model, y), x, eps=eps, step_size=2 / 255, steps=5)
    assert x_adv.dtype == torch.float32
    assert x_adv.min() >= 0 and x_adv.max() <= 1 and (x_adv - x).abs().max() <= eps + 1e-6
    assert _mean_ce(model, x_adv, y) > 2 * _mean_ce(model, x, y)


def test_generator_makes_the_start_reproducible(trained) -> None:
    model, x, y = trained

    def run(seed: int, start: str) -> Tensor:
        return pgd(
            ce(model, y),
            x,
            eps=8 / 255,
            step_size=2 / 255,
            steps=1,
            random_start=start,
            generator=torch.Generator().manual_seed(seed),
        )

    for start in ("uniform", "normal"):
        assert torch.equal(run(0, start), run(0, start))
        assert not torch.equal(run(0, start), run(1, start))


def test_random_starts_have_the_documented_distributions() -> None:
    x = torch.full((64, 3, SIZE, SIZE), 0.5)
    g = torch.Generator().manual_seed(0)

    def unused(x_adv: Tensor) -> Tensor:
        raise AssertionError("steps=0 must not evaluate the objective")

    delta = pgd(unused, x, eps=0.1, step_size=0.01, steps=0, generator=g) - x
    # Uniform on [-eps, eps]: mean 0, standard deviation eps / sqrt(3), both tails reached.
    assert abs(delta.mean().item()) < 2e-3 and abs(delta.std().item() - 0.1 / 3**0.5) < 2e-3
    assert delta.min() < -0.099 and delta.max() > 0.099
    delta = pgd(unused, x, eps=0.1, step_size=0.01, steps=0, random_start="normal", normal_std=0.01, generator=g) - x
    assert abs(delta.mean().item()) < 1e-3 and abs(delta.std().item() - 0.01) < 1e-3


def test_the_normal_start_takes_its_first_gradient_unprojected_as_the_trades_mart_and_hat_references_do() -> None:
    """On saturated pixels (0 and 1) the references' first gradient is taken at x + 0.001 N(0, 1) itself, outside
    [0, 1]; "normal_clamped" projects the start first. Every returned iterate is in the box either way."""
    x = torch.cat([torch.zeros(2, 3, SIZE, SIZE), torch.ones(2, 3, SIZE, SIZE)])
    seen: dict[str, Tensor] = {}

    def recording(start: str):
        def objective(x_adv: Tensor) -> Tensor:
            seen.setdefault(start, x_adv.detach().clone())
            return x_adv.flatten(1).sum(1)
        return objective

    for start in ("normal", "normal_clamped"):
        x_adv = pgd(recording(start), x, eps=8 / 255, step_size=2 / 255, steps=2, random_start=start,
                    generator=torch.Generator().manual_seed(0))
        assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert seen["normal"].min() < 0 and seen["normal"].max() > 1  # about half the saturated pixels leave [0, 1]
    assert seen["normal_clamped"].min() >= 0 and seen["normal_clamped"].max() <= 1
    # The same draw: projecting the reference start gives the clamped variant's start.
    assert torch.equal(seen["normal"].clamp(0, 1), seen["normal_clamped"])


def test_pgd_rejects_bad_arguments(trained) -> None:
    model, x, y = trained
    with pytest.raises(ValueError, match="random_start"):
        pgd(ce(model, y), x, eps=0.1, step_size=0.1, steps=1, random_start="gaussian")
    with pytest.raises(ValueError, match="non-negative"):
        pgd(ce(model, y), x, eps=-0.1, step_size=0.1, steps=1)


# --- objectives ---------------------------------------------------------------------------------------------------


def test_ce_is_per_sample_cross_entropy(trained) -> None:
    model, x, y = trained
    loss = ce(model, y)(x)
    assert loss.shape == (len(x),)
    torch.testing.assert_close(loss, F.cross_entropy(model(x), y, reduction="none"))


def test_cw_margin_matches_its_formula() -> None:
    g = torch.Generator().manual_seed(0)
    logits = 5 * torch.randn(12, 6, generator=g)
    logits[0] = torch.tensor([100.0, 0, 0, 0, 0, 0])  # margin -100 for y = 0
    logits[1] = torch.tensor([0.0, 100, 0, 0, 0, 0])  # margin +100 for y = 0: clamped at kappa
    y = torch.randint(0, 6, (12,), generator=g)
    y[:2] = 0
    expected = torch.stack(
        [max(float(logits[i, j]) for j in range(6) if j != int(y[i])) - logits[i, y[i]] for i in range(12)]
    ).clamp(max=50.0)
    margin = cw_margin(nn.Identity(), y)(logits)  # the identity "model" returns its input as logits
    torch.testing.assert_close(margin, expected)
    assert margin[0] == -100 and margin[1] == 50
    assert torch.equal(margin > 0, logits.argmax(dim=1) != y)
    torch.testing.assert_close(cw_margin(nn.Identity(), y, kappa=5.0)(logits), expected.clamp(max=5.0))


def test_kl_to_is_zero_at_the_reference_and_positive_elsewhere(trained) -> None:
    model, x, _ = trained
    p_ref = F.softmax(model(x), dim=1).detach().requires_grad_(True)
    objective = kl_to(model, p_ref)
    at_ref = objective(x)
    assert at_ref.shape == (len(x),) and at_ref.abs().max() < 1e-5
    moved = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    away = objective(moved)
    assert (away > 0).all()
    log_q = F.log_softmax(model(moved), dim=1)
    torch.testing.assert_close(away, (p_ref * (p_ref.log() - log_q)).sum(dim=1))
    away.sum().backward()
    assert p_ref.grad is None  # the reference is a constant
    model.zero_grad(set_to_none=True)


def test_kl_to_a_one_hot_reference_is_cross_entropy(trained) -> None:
    model, x, y = trained
    one_hot = F.one_hot(y, NUM_CLASSES).float()
    torch.testing.assert_close(kl_to(model, one_hot)(x), ce(model, y)(x))


def test_soft_ce(trained) -> None:
    model, x, y = trained
    uniform = torch.full((len(x), NUM_CLASSES), 1 / NUM_CLASSES)
    log_p = F.log_softmax(model(x), dim=1)
    torch.testing.assert_close(soft_ce(model, uniform)(x), -log_p.sum(dim=1) / NUM_CLASSES)
    torch.testing.assert_close(soft_ce(model, F.one_hot(y, NUM_CLASSES).float())(x), ce(model, y)(x))


def test_objectives_use_the_requested_head(trained) -> None:
    model, x, _ = trained
    y = torch.arange(len(x)) % 4
    logits = model(x, head="aux")
    q = torch.full((len(x), 4), 0.25)
    torch.testing.assert_close(ce(model, y, head="aux")(x), F.cross_entropy(logits, y, reduction="none"))
    torch.testing.assert_close(soft_ce(model, q, head="aux")(x), -F.log_softmax(logits, dim=1).mean(dim=1))
    assert cw_margin(model, y, head="aux")(x).shape == (len(x),)
    assert kl_to(model, F.softmax(logits, dim=1), head="aux")(x).abs().max() < 1e-5


# --- bn_mode ------------------------------------------------------------------------------------------------------


def _bn_state(model: nn.Module) -> list[Tensor]:
    return [b.clone() for name, b in model.named_buffers() if "running" in name or "num_batches" in name]


def _capture_bn(model: TwoHeadNet) -> tuple[list[Tensor], torch.utils.hooks.RemovableHandle]:
    seen: list[Tensor] = []
    handle = model.body[1].register_forward_hook(lambda _m, inputs, output: seen.extend([inputs[0], output]))
    return seen, handle


def test_bn_mode_batch_uses_batch_statistics_and_leaves_running_stats_bit_identical(trained) -> None:
    model, x, y = trained
    model.train()
    model.heads.eval()
    modes = [m.training for m in model.modules()]
    before = _bn_state(model)
    bn = model.body[1]
    seen, handle = _capture_bn(model)
    try:
        with bn_mode(model, "batch"):
            model(x)
            pgd(ce(model, y), x, eps=8 / 255, step_size=2 / 255, steps=2)
    finally:
        handle.remove()
    inputs, output = seen[0], seen[1]
    mean = inputs.mean(dim=(0, 2, 3), keepdim=True)
    var = inputs.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    manual = (inputs - mean) / torch.sqrt(var + bn.eps) * bn.weight[:, None, None] + bn.bias[:, None, None]
    torch.testing.assert_close(output, manual, rtol=1e-4, atol=1e-4)
    after = _bn_state(model)
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert [m.training for m in model.modules()] == modes
    assert bn.track_running_stats
    model.eval()


def test_bn_mode_batch_turns_dropout_off() -> None:
    model = TwoHeadNet(dropout=0.5).train()
    x = torch.rand(8, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    with bn_mode(model, "batch"), torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_bn_mode_eval_and_train(trained) -> None:
    model, x, _ = trained
    model.train()
    before = _bn_state(model)
    with torch.no_grad():
        with bn_mode(model, "eval"):
            assert not any(m.training for m in model.modules())
            inside = model(x)
        assert all(torch.equal(a, b) for a, b in zip(before, _bn_state(model), strict=True))
        model.eval()
        torch.testing.assert_close(inside, model(x))
        with bn_mode(model, "train"):
            assert all(m.training for m in model.modules())
            model(x)
    assert not model.training and not any(m.training for m in model.modules())
    bn = model.body[1]
    assert bn.num_batches_tracked == before[2] + 1  # plain train mode does update the statistics
    with torch.no_grad():
        for buffer, saved in zip((bn.running_mean, bn.running_var, bn.num_batches_tracked), before, strict=True):
            buffer.copy_(saved)


def test_bn_mode_restores_modes_after_an_exception_and_rejects_unknown_modes(trained) -> None:
    model = trained[0]
    model.eval()
    model.heads.train()
    modes = [m.training for m in model.modules()]
    with pytest.raises(RuntimeError, match="boom"), bn_mode(model, "batch"):
        raise RuntimeError("boom")
    assert [m.training for m in model.modules()] == modes and model.body[1].track_running_stats
    with pytest.raises(ValueError, match="mode"), bn_mode(model, "running"):
        pass
    model.eval()
