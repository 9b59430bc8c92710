"""timm and torchvision models by name (``timm:NAME``, ``torchvision:NAME``): the name check, the Classifier split
(features, heads, normalisation), the fast paths, one epoch of every method on 32x32 data and one on 64x64 data.

The models are the libraries' small ones so that an epoch of 64 images takes seconds on a CPU."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests_support import merger_over, train_without_ray
from trainables.config import ConfigError
from trainables.datasets import load_dataset
from trainables.methods import uiat
from trainables.methods.baseline import Baseline
from trainables.methods.biamat import BiaMAT
from trainables.methods.configs import BaselineConfig
from trainables.methods.uiat import UIAT
from trainables.models import Classifier, Normalize, create_model
from trainables.training import precision

TIMM = "timm:mobilenetv3_small_050"
TORCHVISION = "torchvision:mobilenet_v3_small"
LIBRARY_MODELS = [TIMM, TORCHVISION]
# 64 images, two steps of 32, PGD-2 in training and selection: every pass of a method runs once or twice.
EPOCH = {"dataset": "synthetic", "train_n": 64, "epochs": 1, "batch_size": 32, "lr": 0.05, "attack_steps": 2,
         "attack_step": 4 / 255, "eval_n": 32, "final_n": 32, "final_attacks": ["clean", "pgd2"]}


# --- names -----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "close", "listing"), [
    ("timm:resnt18", "timm:resnet18", "timm.list_models()"),
    ("torchvision:resnet19", "torchvision:resnet18", "torchvision.models.list_models("),
])
def test_an_unknown_name_lists_close_matches_and_how_to_list_all(name, close, listing):
    with pytest.raises(ValueError, match=f"unknown {name.split(':')[0]} model") as error:
        create_model(name, num_classes=10)
    message = str(error.value)
    assert close in message
    assert listing in message
    assert "\n" not in message


def test_configs_check_library_names_before_any_data_loads():
    assert BaselineConfig.from_dict({"model": TIMM}).model == TIMM
    with pytest.raises(ConfigError, match="close matches: torchvision:mobilenet_v3_small"):
        BaselineConfig.from_dict({"model": "torchvision:mobilenet_v3_smal"})


def test_a_model_without_a_final_linear_layer_or_for_another_size_is_refused():
    with pytest.raises(ValueError, match="squeezenet1_0 has no final Linear layer"):
        create_model("torchvision:squeezenet1_0", num_classes=10)
    # MaxViT's attention windows need inputs of 224 (7 x 2^5) or multiples: its own check, as one line.
    with pytest.raises(ValueError, match="maxvit_t cannot be built for 32x32 images .*partition size") as error:
        create_model("torchvision:maxvit_t", num_classes=10)
    assert "\n" not in str(error.value)


# --- the Classifier split --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "feature_dim"), [
    ("timm:resnet10t", 512), (TIMM, 1024),  # timm's MobileNetV3 ends in a 1024-wide conv head after pooling
    ("torchvision:resnet18", 512), (TORCHVISION, 1024),  # torchvision's: classifier[0..2], Linear-Hardswish-Dropout
])
def test_features_and_heads(name, feature_dim):
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, extra_heads={"aux": 7}, mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.2))
    model.eval()
    assert isinstance(model, Classifier)
    assert isinstance(model.normalize, Normalize)  # the dataset normalisation inside, as for the built-in models
    assert model.feature_dim == feature_dim
    assert {k: (h.in_features, h.out_features) for k, h in model.heads.items()} == {
        "main": (feature_dim, 10), "aux": (feature_dim, 7)}
    assert not any(isinstance(m, torch.nn.Linear) and m.out_features == 1000 for m in model.body.modules())
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        features = model.features(x)
        assert features.shape == (3, feature_dim)
        torch.testing.assert_close(model(x), model.heads["main"](features))
        torch.testing.assert_close(model(x, head="aux"), model.heads["aux"](features))


def test_a_model_of_one_input_size_is_built_for_the_given_size():
    model = create_model("timm:vit_tiny_patch16_224", num_classes=10, image_size=64).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 64)).shape == (2, 10)
    with pytest.raises(ValueError, match="vit_b_32 cannot be built for 48x48 images"):  # 48 is not a multiple of 32
        create_model("torchvision:vit_b_32", num_classes=10, image_size=48)


# --- fast paths ------------------------------------------------------------------------------------------------------

def step_gradients(model: Classifier, x: torch.Tensor, y: torch.Tensor, mode: str) -> tuple[float, torch.Tensor]:
    """Loss and input gradient of one forward/backward pass in train mode under ``mode``'s autocast."""
    x = x.clone().requires_grad_(True)
    torch.manual_seed(1)  # the same dropout masks (torchvision's MobileNetV3 keeps its classifier's dropout)
    with precision(mode, x.device):
        loss = F.cross_entropy(model(x).float(), y)
    loss.backward()
    return loss.item(), x.grad


@pytest.mark.parametrize("name", LIBRARY_MODELS)
def test_channels_last_and_bf16_step_matches_fp32(name):
    torch.manual_seed(0)
    eager = create_model(name, num_classes=10).train()
    fast = copy.deepcopy(eager).to(memory_format=torch.channels_last)
    convs = [m for m in fast.body.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs[0].weight.is_contiguous(memory_format=torch.channels_last)
    x, y = torch.rand(16, 3, 32, 32), torch.arange(16) % 10
    loss, grad = step_gradients(eager, x, y, "fp32")
    fast_loss, fast_grad = step_gradients(fast, x.contiguous(memory_format=torch.channels_last), y, "bf16")
    assert fast_loss == pytest.approx(loss, rel=1e-2)
    # bf16 keeps 8 bits of mantissa: the attack's direction (the input gradient) must survive it (cosine 0.97 for
    # both MobileNets here; a broken path gives about 0).
    assert torch.isfinite(fast_grad).all()
    assert F.cosine_similarity(fast_grad.flatten(), grad.flatten(), dim=0) > 0.9
    for key, p in fast.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), key


# Compiling a MobileNet on 2 CPU cores takes about 3 minutes; these two compile in under one and go through the
# same body wrapper (timm's own test-size ResNet, and torchvision's ResNet-18). Standard training: PGD's sign steps
# turn the compiled kernels' last-digit differences into other adversarial examples (1.6% apart after two steps for
# torchvision's ResNet-18), which says nothing about the model; tests/test_fast_paths.py compiles PGD-AT.
COMPILED = ["timm:test_resnet", "torchvision:resnet18"]


@pytest.mark.slow
@pytest.mark.parametrize("name", COMPILED)
def test_compiled_library_model_trains_like_the_eager_one(name):
    config = {**EPOCH, "model": name, "training": "standard"}
    eager, compiled = [], []
    train_without_ray(Baseline, config, eager)
    train_without_ray(Baseline, {**config, "compile": True}, compiled)
    assert compiled[-1]["train/loss"] == pytest.approx(eager[-1]["train/loss"], rel=1e-3)


# --- one epoch of each method ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", LIBRARY_MODELS)
def test_pgd_at_epoch(name):
    logs: list[dict[str, float]] = []
    trial = train_without_ray(Baseline, {**EPOCH, "model": name, "training": "pgd_at"}, logs)
    assert np.isfinite(logs[0]["train/loss"])
    selected = trial.end_epoch(0)
    assert 0.0 <= selected["select/pgd2"] <= selected["select/clean"] <= 1.0


@pytest.mark.parametrize("name", LIBRARY_MODELS)
def test_biamat_epoch_trains_the_auxiliary_head(name):
    logs: list[dict[str, float]] = []
    # No warm-up: the gate and the auxiliary loss act from the first step, so the second head gets gradients.
    trial = train_without_ray(BiaMAT, {**EPOCH, "model": name, "warmup_epochs": 0, "aux_batch_size": 32}, logs)
    model = trial.method.model
    assert model.heads["aux"].in_features == model.feature_dim
    assert np.isfinite(logs[0]["train/aux_loss"]) and 0.0 <= logs[0]["train/high_fraction"] <= 1.0
    assert trial.method.gate_counts.seen.sum() == 2 * 32  # two steps of 32 auxiliary images went through the gate
    assert model.heads["aux"].bias.abs().sum() > 0, "the auxiliary head learned nothing"  # its bias starts at zero


@pytest.mark.parametrize("name", LIBRARY_MODELS)
def test_uiat_epoch_puts_its_feature_term_on_the_library_features(name, monkeypatch):
    seen: list[tuple[int, ...]] = []
    objective = uiat.inverse_objective

    def recording(model, y, beta, clean_features=None, adv_features=None):
        seen.append(tuple(clean_features.shape))
        return objective(model, y, beta, clean_features, adv_features)

    monkeypatch.setattr(uiat, "inverse_objective", recording)
    logs: list[dict[str, float]] = []
    # Universal inverse adversaries with the feature term (FR); the momentum (IAM) needs a second epoch.
    trial = train_without_ray(UIAT, {**EPOCH, "model": name, "components": "uag+fr"}, logs)
    assert trial.method.cfg.feature_regularisation
    assert seen == [(32, trial.method.model.feature_dim)] * 2
    assert np.isfinite(logs[0]["train/loss"])
    assert bool(trial.method.has_target.all())


@pytest.mark.parametrize("name", LIBRARY_MODELS)
def test_afs_merger_over_a_stack_of_two_library_extractors(name):
    extractors = {}
    for i in (0, 8):
        torch.manual_seed(i)
        extractors[i] = create_model(name, 10)
    before = {i: copy.deepcopy(e.state_dict()) for i, e in extractors.items()}
    logs: list[dict[str, float]] = []
    config = {**EPOCH, "model": name, "extractor_sweep": "in-test", "mask": "100000001", "attack_bn": "eval"}
    trial = train_without_ray(merger_over(extractors), config, logs)
    merger = trial.method.model.heads["main"]
    assert merger.in_features == 2 * extractors[0].feature_dim
    assert merger.bias.abs().sum() > 0, "the merger learned nothing"  # its bias starts at zero
    assert np.isfinite(logs[0]["train/loss"])
    for i, extractor in extractors.items():  # frozen: BatchNorm statistics included
        assert all(torch.equal(v, before[i][k]) for k, v in extractor.state_dict().items()), i


# --- other image sizes -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def images_64(tmp_path_factory) -> str:
    """An ``npz:`` dataset of 64x64 synthetic images (128 train, 64 test)."""
    folder = tmp_path_factory.mktemp("images64")
    for split, n in (("train", 128), ("test", 64)):
        data = load_dataset("synthetic", split, size=64, n=n)
        np.savez(folder / f"{split}.npz", image=data.images.numpy(), label=data.labels.numpy())
    return f"npz:{folder}"


# The ViT is built for one input size: the trial must build it for its data's 64x64, not the default 32x32.
@pytest.mark.parametrize("name", [TIMM, "tiny-cnn", "timm:vit_tiny_patch16_224"])
def test_pgd_at_on_64x64_images_end_to_end(images_64, name):
    config = {**EPOCH, "dataset": images_64, "model": name, "training": "pgd_at"}
    logs: list[dict[str, float]] = []
    trial = train_without_ray(Baseline, config, logs)
    batch = next(trial.loader.epoch(0))
    assert batch.x.shape == (32, 3, 64, 64)  # the crop-and-flip keeps the data's size
    assert np.isfinite(logs[0]["train/loss"])
    selected = trial.end_epoch(0)
    final = trial.final_metrics()
    assert 0.0 <= selected["select/pgd2"] <= selected["select/clean"] <= 1.0
    assert 0.0 <= final["best/pgd2"] <= final["best/clean"] <= 1.0
