"""Model registry tests: every registered name builds, has the documented shape contract, and the big models have the
parameter counts of the papers. Big models are only built and run on a batch of 2, so this stays CPU-friendly."""

import pytest
import torch
from torch import nn

from trainables.models import Classifier, create_model, model_names

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)

# Reference counts for 10 classes, from the original implementations (WRN, PreAct-ResNet, ResNet CIFAR variants).
PARAMETER_COUNTS = {
    "wrn-28-10": 36_479_194,
    "wrn-34-10": 46_160_474,
    "preact-resnet18": 11_172_170,
    "resnet18": 11_173_962,
}
FEATURE_DIMS = {"wrn-28-10": 640, "wrn-34-10": 640, "preact-resnet18": 512, "resnet18": 512}


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_registry_lists_required_models() -> None:
    assert set(model_names()) >= {*PARAMETER_COUNTS, "tiny-cnn"}


@pytest.mark.parametrize("name", list(PARAMETER_COUNTS))
def test_parameter_count(name: str) -> None:
    model = create_model(name, num_classes=10)
    assert count(model) == PARAMETER_COUNTS[name]
    assert model.feature_dim == FEATURE_DIMS[name]


@pytest.mark.parametrize("name", model_names())
def test_shapes_and_head_split(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=10).eval()
    assert isinstance(model, Classifier)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        features = model.features(x)
        logits = model(x)
    assert features.shape == (2, model.feature_dim)
    assert logits.shape == (2, 10)
    torch.testing.assert_close(model.heads["main"](features), logits)


@pytest.mark.parametrize("name", ["tiny-cnn", "preact-resnet18", "wrn-10-1"])
@pytest.mark.parametrize("size", [16, 64])
def test_other_input_sizes(name: str, size: int) -> None:
    model = create_model(name, num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, size, size)).shape == (2, 7)


@pytest.mark.parametrize(
    ("name", "blocks", "feature_dim"), [("wrn-16-4", 2, 256), ("wrn-10-1", 1, 64), ("wrn-40-2", 6, 128)]
)
def test_wrn_names_are_parsed(name: str, blocks: int, feature_dim: int) -> None:
    model = create_model(name, num_classes=10)
    assert model.feature_dim == feature_dim
    assert [len(model.body.get_submodule(f"stage{i}")) for i in (1, 2, 3)] == [blocks] * 3


@pytest.mark.parametrize("name", ["wrn-27-10", "wrn-4-10", "wrn-0-10"])
def test_bad_wrn_depth(name: str) -> None:
    with pytest.raises(ValueError, match="depth must be 6n \\+ 4"):
        create_model(name, num_classes=10)


def test_bad_wrn_width() -> None:
    with pytest.raises(ValueError, match="width"):
        create_model("wrn-16-0", num_classes=10)


def test_unknown_name_lists_registered() -> None:
    with pytest.raises(ValueError, match="unknown model 'vgg16'") as error:
        create_model("vgg16", num_classes=10)
    for name in model_names():
        assert name in str(error.value)


def test_extra_heads_share_features() -> None:
    plain = create_model("tiny-cnn", num_classes=10)
    model = create_model("tiny-cnn", num_classes=10, extra_heads={"aux": 100}).eval()
    aux = model.heads["aux"]
    assert (aux.in_features, aux.out_features) == (model.feature_dim, 100)
    assert count(model.heads["main"]) == count(plain.heads["main"])
    assert count(model) == count(plain) + (model.feature_dim + 1) * 100
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x, head="aux"), aux(model.features(x)))
        assert model(x).shape == (2, 10)


def test_add_head_matches_model_dtype_and_rejects_duplicates() -> None:
    model = create_model("tiny-cnn", num_classes=10).double().eval()
    main_before = count(model.heads["main"])
    model.add_head("aux", 5)
    assert model.heads["aux"].weight.dtype == torch.float64
    assert torch.count_nonzero(model.heads["aux"].bias) == 0
    assert count(model.heads["main"]) == main_before
    with torch.no_grad():
        assert model(torch.rand(2, 3, 32, 32, dtype=torch.float64), head="aux").shape == (2, 5)
    with pytest.raises(ValueError, match="already exists"):
        model.add_head("main", 3)


def test_normalisation_is_a_buffer_inside_the_model() -> None:
    plain = create_model("tiny-cnn", num_classes=10).eval()
    normed = create_model("tiny-cnn", num_classes=10, mean=CIFAR10_MEAN, std=CIFAR10_STD).eval()
    normed.body.load_state_dict(plain.body.state_dict())
    normed.heads.load_state_dict(plain.heads.state_dict())

    assert count(normed) == count(plain)
    buffers = dict(normed.named_buffers())
    assert {"normalize.mean", "normalize.std"} <= buffers.keys()  # saved with checkpoints, never optimised
    assert "normalize.mean" in normed.state_dict()

    x = torch.rand(2, 3, 32, 32)
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(normed.features(x), plain.features((x - mean) / std))
        torch.testing.assert_close(normed(x), plain((x - mean) / std))
        assert not torch.allclose(normed(x), plain(x))


@pytest.mark.parametrize(
    ("mean", "std", "message"),
    [(CIFAR10_MEAN, None, "both"), ((0.5, 0.5), (0.2, 0.2), "3 values"), (CIFAR10_MEAN, (0.2, 0.0, 0.2), "positive")],
)
def test_bad_normalisation(mean: tuple | None, std: tuple | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_model("tiny-cnn", num_classes=10, mean=mean, std=std)


def test_tiny_cnn_learns_a_10_class_problem() -> None:
    """The CPU science tests rely on tiny-cnn actually learning: 10 classes of noisy coloured blobs, 5 short epochs.

    Eval mode is checked on purpose: after only 30 steps (batch 64) the BN running statistics still lag the weights and
    eval accuracy trailed train-mode accuracy badly (0.67 vs 1.00; CPU, torch 2.15, seed 0), so about 50 steps is the
    least a test should train before evaluating.
    """
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(10, 3, 4, 4, generator=generator)
    templates = nn.functional.interpolate(coarse, size=32, mode="bilinear", align_corners=False)

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 10, (n,), generator=generator)
        noise = 0.25 * torch.randn(n, 3, 32, 32, generator=generator)
        return (templates[y] + noise).clamp(0, 1), y

    x_train, y_train = sample(320)
    x_test, y_test = sample(200)
    torch.manual_seed(0)
    model = create_model("tiny-cnn", num_classes=10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(5):
        for xb, yb in zip(x_train.split(32), y_train.split(32)):
            loss = nn.functional.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    assert accuracy > 0.9


def test_the_names_a_config_is_checked_against_are_the_builders_names():
    """Configs check model names in trainables/model_names.py (no torch); every name there builds, and every
    built-in builder is named there."""
    from trainables.model_names import BUILT_IN

    assert tuple(model_names()) == BUILT_IN
