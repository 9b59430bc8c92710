"""Image classifiers for adversarial training, created by name: ``create_model("wrn-28-10", num_classes=10)``.

Every model is a :class:`Classifier`: normalisation -> body -> pooled penultimate feature -> named linear heads.
Besides the built-in names below, ``timm:NAME`` and ``torchvision:NAME`` take a body from those libraries (no
pretrained weights; see ``trainables/library_models.py``).
Keeping the pieces apart lets BiaMAT add an auxiliary head, AFS stack frozen features and UIAT put a loss on the
features without any model surgery. Inputs are float images in [0, 1], NCHW; mean/std normalisation lives inside the
model (as buffers) so every attack works in one epsilon unit.

Parameter counts for 10 classes (checked in tests/test_models.py):

================  ===========  ===========
name              parameters   feature_dim
================  ===========  ===========
wrn-28-10         36,479,194   640
wrn-34-10         46,160,474   640
preact-resnet18   11,172,170   512
resnet18          11,173,962   512
================  ===========  ===========

``wrn-34-10`` is the plain Zagoruyko & Komodakis layout; the TRADES repository's build registers an extra, unused
``sub_block1`` (48,262,586 parameters) that is not reproduced here. ``preact-resnet18`` keeps the final BN + ReLU
before pooling (11,171,146 parameters without it).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainables.library_models import library_builder
from trainables.model_names import TINY_PATTERN, WRN_PATTERN, check_wrn, split_library_name, validate_model_name

IN_CHANNELS = 3


class Normalize(nn.Module):
    """Per-channel ``(x - mean) / std`` with buffers, so it moves with ``.to()``, is saved in checkpoints and adds no
    parameters (an optimiser never sees it)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if not len(mean) == len(std) == IN_CHANNELS:
            raise ValueError(f"mean and std need {IN_CHANNELS} values each, got {list(mean)} and {list(std)}")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive, got {list(std)}")
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class Classifier(nn.Module):
    """Normalisation, a body producing the penultimate pooled feature vector, and named linear heads.

    ``heads`` always holds ``"main"``; further heads (BiaMAT's auxiliary classifier) read the same features.
    """

    def __init__(
        self,
        body: nn.Module,
        feature_dim: int,
        num_classes: int,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither")
        self.normalize = nn.Identity() if mean is None else Normalize(mean, std)
        self.body = body
        self.feature_dim = feature_dim
        self.heads = nn.ModuleDict()
        self.add_head("main", num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate pooled features, shape (N, feature_dim), of images in [0, 1]."""
        return self.body(self.normalize(x))

    def forward(self, x: Tensor, head: str = "main") -> Tensor:
        return self.heads[head](self.features(x))

    def add_head(self, name: str, num_classes: int) -> None:
        """Add a linear head on the shared features, on the device and dtype of the existing parameters."""
        if name in self.heads:
            raise ValueError(f"head {name!r} already exists")  # silently replacing a trained head loses it
        head = nn.Linear(self.feature_dim, num_classes)
        nn.init.zeros_(head.bias)
        reference = next(self.parameters(), None)  # a parameter-free body leaves nothing to match
        if reference is not None:
            head = head.to(device=reference.device, dtype=reference.dtype)
        self.heads[name] = head


def _pool_and_flatten() -> list[tuple[str, nn.Module]]:
    # Adaptive pooling keeps every model usable at input sizes other than 32.
    return [("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten())]


class PreActBlock(nn.Module):
    """Pre-activation basic block (He et al. 2016, "Identity Mappings"): BN-ReLU-conv, twice.

    Where the shape changes, the 1x1 shortcut conv reads the pre-activated input, as in WRN and PreAct-ResNet.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        needs_projection = stride != 1 or in_channels != out_channels
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False) if needs_projection else None

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class BasicBlock(nn.Module):
    """Post-activation basic block of the original ResNet: conv-BN-ReLU-conv-BN, add, ReLU; 1x1 conv + BN shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


def _stage(
    block: Callable[[int, int, int], nn.Module], in_channels: int, out_channels: int, num_blocks: int, stride: int
) -> nn.Sequential:
    """``num_blocks`` blocks; only the first one changes resolution and width."""
    blocks = [block(in_channels, out_channels, stride)]
    blocks += [block(out_channels, out_channels, 1) for _ in range(num_blocks - 1)]
    return nn.Sequential(*blocks)


def wide_resnet_body(depth: int, width: int) -> tuple[nn.Module, int]:
    """WRN-depth-width (Zagoruyko & Komodakis 2016), CIFAR layout: three stages of (depth - 4) / 6 pre-activation
    blocks at 16k, 32k, 64k channels, then BN-ReLU and global average pooling. No dropout: the adversarial-training
    recipes we reproduce use none."""
    check_wrn(depth, width)
    n = (depth - 4) // 6
    c1, c2, c3 = 16 * width, 32 * width, 64 * width
    layers = [
        ("stem", nn.Conv2d(IN_CHANNELS, 16, 3, 1, 1, bias=False)),
        ("stage1", _stage(PreActBlock, 16, c1, n, stride=1)),
        ("stage2", _stage(PreActBlock, c1, c2, n, stride=2)),
        ("stage3", _stage(PreActBlock, c2, c3, n, stride=2)),
        ("bn", nn.BatchNorm2d(c3)),
        ("relu", nn.ReLU()),
        *_pool_and_flatten(),
    ]
    return nn.Sequential(OrderedDict(layers)), c3


def preact_resnet18_body() -> tuple[nn.Module, int]:
    """PreAct-ResNet-18 for CIFAR: 3x3 stem, four stages of two pre-activation blocks, final BN-ReLU, pooling."""
    layers = [
        ("stem", nn.Conv2d(IN_CHANNELS, 64, 3, 1, 1, bias=False)),
        ("stage1", _stage(PreActBlock, 64, 64, 2, stride=1)),
        ("stage2", _stage(PreActBlock, 64, 128, 2, stride=2)),
        ("stage3", _stage(PreActBlock, 128, 256, 2, stride=2)),
        ("stage4", _stage(PreActBlock, 256, 512, 2, stride=2)),
        # Pre-activation blocks end in an un-normalised sum; this BN-ReLU (as in He et al.) prepares it for pooling.
        ("bn", nn.BatchNorm2d(512)),
        ("relu", nn.ReLU()),
        *_pool_and_flatten(),
    ]
    return nn.Sequential(OrderedDict(layers)), 512


def resnet18_body() -> tuple[nn.Module, int]:
    """ResNet-18, CIFAR variant: a 3x3 stride-1 stem and no max-pool, so 32x32 inputs keep their resolution early."""
    layers = [
        ("stem", nn.Conv2d(IN_CHANNELS, 64, 3, 1, 1, bias=False)),
        ("bn", nn.BatchNorm2d(64)),
        ("relu", nn.ReLU()),
        ("stage1", _stage(BasicBlock, 64, 64, 2, stride=1)),
        ("stage2", _stage(BasicBlock, 64, 128, 2, stride=2)),
        ("stage3", _stage(BasicBlock, 128, 256, 2, stride=2)),
        ("stage4", _stage(BasicBlock, 256, 512, 2, stride=2)),
        *_pool_and_flatten(),
    ]
    return nn.Sequential(OrderedDict(layers)), 512


def tiny_cnn_body(width: int = 1) -> tuple[nn.Module, int]:
    """Three conv-BN-ReLU layers (32-64-128 channels times ``width``, max-pool after the first two): about 95k
    parameters and 10 MMACs per 32x32 image at width 1, so CPU tests and smoke runs can train it for a few epochs.
    ``tiny-cnn-3`` (about 9x both) is the smoke stand-in for AFS Table 6's wide WRN-28-30."""
    layers: list[tuple[str, nn.Module]] = []
    in_channels = IN_CHANNELS
    for i, out_channels in enumerate((32 * width, 64 * width, 128 * width), start=1):
        layers += [
            (f"conv{i}", nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False)),
            (f"bn{i}", nn.BatchNorm2d(out_channels)),
            (f"relu{i}", nn.ReLU()),
        ]
        if i < 3:
            layers.append((f"pool{i}", nn.MaxPool2d(2)))
        in_channels = out_channels
    return nn.Sequential(OrderedDict(layers + _pool_and_flatten())), in_channels


_MODELS: dict[str, Callable[[], tuple[nn.Module, int]]] = {
    "wrn-28-10": functools.partial(wide_resnet_body, 28, 10),
    "wrn-34-10": functools.partial(wide_resnet_body, 34, 10),
    "preact-resnet18": preact_resnet18_body,
    "resnet18": resnet18_body,
    "tiny-cnn": tiny_cnn_body,
}


def model_names() -> list[str]:
    """The registered names; any other ``wrn-<depth>-<width>`` and ``tiny-cnn-<width>`` is accepted too."""
    return sorted(_MODELS)


def model_builder(name: str, image_size: int = 32) -> Callable[[], tuple[nn.Module, int]]:
    """The body builder for ``name``, without building it; an unknown name is refused in
    :func:`trainables.model_names.validate_model_name`'s words. ``image_size`` matters only to library models built
    for one input size (ViTs); the built-in ones pool adaptively."""
    validate_model_name(name)
    if library_name := split_library_name(name):
        return library_builder(*library_name, image_size)
    if name in _MODELS:
        return _MODELS[name]
    if match := WRN_PATTERN.fullmatch(name):
        return functools.partial(wide_resnet_body, int(match[1]), int(match[2]))
    return functools.partial(tiny_cnn_body, int(TINY_PATTERN.fullmatch(name)[1]))


def _init_weights(module: nn.Module) -> None:
    # He init for ReLU networks (fan_out, as in the WRN and torchvision ResNets); BN starts as the identity.
    if isinstance(module, nn.Conv2d):
        nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def create_model(
    name: str,
    num_classes: int,
    *,
    extra_heads: Mapping[str, int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    image_size: int = 32,
) -> Classifier:
    """Build a registered model (or any ``wrn-<depth>-<width>``, ``timm:NAME``, ``torchvision:NAME``) for
    ``image_size`` x ``image_size`` images, with a ``"main"`` head of ``num_classes`` outputs, one extra head per
    ``extra_heads`` entry, and normalisation by ``mean``/``std`` (none when both are None)."""
    body, feature_dim = model_builder(name, image_size)()
    if split_library_name(name) is None:  # a library model keeps its library's own initialisation
        body.apply(_init_weights)
    model = Classifier(body, feature_dim, num_classes, mean=mean, std=std)
    for head_name, head_classes in (extra_heads or {}).items():
        model.add_head(head_name, head_classes)
    return model


def stack_features(extractors: Iterable[Classifier], x: Tensor) -> Tensor:
    """Eq. 2's concatenation, in extractor order (the order the merger's weights follow)."""
    return torch.cat([extractor.features(x) for extractor in extractors], dim=1)


class StackedFeatures(nn.Module):
    """The frozen stack as a registered module, the body of the AFS merger a trial logs as its MLflow model: ``.to()``,
    ``.eval()`` and ``state_dict()`` then reach the extractors, as a model used on its own (RobustBench, an attack
    library) needs. Training keeps ``trainables.methods.afs.FrozenStack``, which leaves the extractors out of the
    optimiser and the checkpoints. Here rather than in the AFS method so that a merger rebuilds from its
    architecture alone (trainables/safe_export.py)."""

    def __init__(self, indices: Iterable[int], extractors: Iterable[Classifier]) -> None:
        super().__init__()
        self.indices = list(indices)  # extractor i was trained at eps i/255
        self.extractors = nn.ModuleList(extractors)
        self.feature_dim = sum(e.feature_dim for e in self.extractors)

    def forward(self, x: Tensor) -> Tensor:
        return stack_features(self.extractors, x)


def count_macs(model: nn.Module, x: Tensor) -> int:
    """Multiply-accumulates of one forward pass on ``x`` (AFS Table 6 reports them per 32x32 image), counted by
    torch's FLOP counter (convolutions and matrix products; one MAC is two FLOPs). No gradient, modes untouched."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() // 2
