"""Bodies from timm and torchvision, named ``timm:NAME`` and ``torchvision:NAME`` wherever a model name is accepted
(``--set model=timm:resnet10t``, a preset, ``create_model``).

The library builds its model with its own initialisation and **no pretrained weights** (cluster nodes often have no
internet, and the weights would carry ImageNet's normalisation): timm through ``timm.create_model(NAME,
num_classes=0)``, whose forward is then ``forward_features`` plus its pooling (and pre-logits layers, if any);
torchvision through ``torchvision.models.get_model(NAME, weights=None)`` with its last ``nn.Linear`` (``fc``,
``classifier[-1]``, ``heads.head``, ...) replaced by the identity. That body goes into a
:class:`~trainables.models.Classifier` like the built-in ones, so the dataset normalisation, the heads (BiaMAT's
auxiliary one), the stacked features of AFS and UIAT's feature term work unchanged.

Models are taken as the library defines them, stems included: torchvision's ResNets downsample 4x in their stem
(7x7 stride-2 conv and a max-pool), so a 32x32 image reaches the last stage at 1x1. For the CIFAR layout (3x3 stride-1
stem, no max-pool) use the built-in ``resnet18``. Models built for one input size (timm's with ``fixed_input_size``
such as ViTs and Swin; torchvision's ``vit_*`` and ``maxvit_t``) are built for the run's image size; a model that
cannot run on that size is refused when it is built, with the library's reason.

List the names with ``python -c "import timm; print(timm.list_models())"`` (or a pattern: ``list_models('*resnet*')``)
and ``python -c "import torchvision; print(torchvision.models.list_models(module=torchvision.models))"``.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable

import torch
from torch import nn

LIST_COMMANDS = {
    "timm": "python -c \"import timm; print(timm.list_models())\"",
    "torchvision": "python -c \"import torchvision; print(torchvision.models.list_models(module=torchvision.models))\"",
}
# What the libraries raise for an input size a model cannot take: conv shapes (RuntimeError), size checks written as
# asserts (timm's and torchvision's ViTs) and explicit checks (MaxViT's partitions).
SIZE_ERRORS = (RuntimeError, ValueError, AssertionError)


def _timm_names() -> list[str]:
    import timm

    return timm.list_models()


def _torchvision_names() -> list[str]:
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)  # classification models only


def _is_model(library: str, arch: str) -> bool:
    if library == "timm":
        import timm

        return timm.is_model(arch)  # also accepts a pretrained tag (resnet18.a1_in1k), which only names a config
    return arch in _torchvision_names()


def _unknown(library: str, arch: str) -> ValueError:
    names = _timm_names() if library == "timm" else _torchvision_names()
    close = difflib.get_close_matches(arch, names, n=5, cutoff=0.6)
    matches = ", ".join(f"{library}:{n}" for n in close) if close else "none"
    return ValueError(f"unknown {library} model {arch!r}; close matches: {matches}; list them all with "
                      f"{LIST_COMMANDS[library]}")


def _reason(error: Exception) -> str:
    """The first line of a library's error, so that the message stays one line."""
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def _feature_dim(body: nn.Module, name: str, image_size: int) -> int:
    """The body's output width, from one forward pass on a blank image; a body that fails on ``image_size`` images
    or does not end in a flat feature vector is refused here rather than in the first training step."""
    was_training = body.training
    body.eval()  # batch statistics of one image are undefined; eval mode also leaves the running statistics alone
    try:
        with torch.no_grad():
            out = body(torch.zeros(1, 3, image_size, image_size))
    except SIZE_ERRORS as error:
        raise ValueError(f"{name} does not run on {image_size}x{image_size} images ({_reason(error)}); pick another "
                         "model or resize the data") from None
    finally:
        body.train(was_training)
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{name} gives {shape} instead of pooled features (1, D); use another model")
    return out.shape[1]


def timm_body(arch: str, image_size: int) -> tuple[nn.Module, int]:
    """``timm.create_model(arch, num_classes=0)``: pooled penultimate features; sized for models with one input size."""
    import timm
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch)
    sized = {"img_size": image_size} if cfg is not None and cfg.fixed_input_size else {}
    try:
        body = timm.create_model(arch, pretrained=False, num_classes=0, **sized)
    except SIZE_ERRORS as error:
        raise ValueError(f"timm:{arch} cannot be built for {image_size}x{image_size} images ({_reason(error)}); "
                         "pick another model or resize the data") from None
    return body, _feature_dim(body, f"timm:{arch}", image_size)


def _torchvision_arguments(arch: str, image_size: int) -> dict[str, object]:
    # ViTs and MaxViT fix their input size at construction; GoogLeNet and Inception v3 return auxiliary logits in
    # train mode unless told not to, which no Classifier head reads.
    if arch.startswith("vit_"):
        return {"image_size": image_size}
    if arch == "maxvit_t":
        return {"input_size": (image_size, image_size)}
    if arch in {"googlenet", "inception_v3"}:
        return {"aux_logits": False, "init_weights": True}
    return {}


def torchvision_body(arch: str, image_size: int) -> tuple[nn.Module, int]:
    """``torchvision.models.get_model(arch, weights=None)`` with its last Linear layer replaced by the identity."""
    from torchvision.models import get_model

    name = f"torchvision:{arch}"
    try:
        body = get_model(arch, weights=None, **_torchvision_arguments(arch, image_size))
    except SIZE_ERRORS as error:
        raise ValueError(f"{name} cannot be built for {image_size}x{image_size} images ({_reason(error)}); pick "
                         "another model or resize the data") from None
    linears = [(path, m) for path, m in body.named_modules() if isinstance(m, nn.Linear)]
    if not linears:  # SqueezeNet classifies with a 1x1 convolution: there is no feature vector to take
        raise ValueError(f"{name} has no final Linear layer to replace by the heads; use another model")
    path, classifier = linears[-1]
    body.set_submodule(path, nn.Identity())
    feature_dim = _feature_dim(body, name, image_size)
    # Registration order is not forward order in general: the probe shows whether the Linear removed was the last one.
    if feature_dim != classifier.in_features:
        raise ValueError(f"{name}: {path} is not its final classifier (features of {feature_dim}, not "
                         f"{classifier.in_features}); use another model")
    return body, feature_dim


_BODIES: dict[str, Callable[[str, int], tuple[nn.Module, int]]] = {"timm": timm_body, "torchvision": torchvision_body}


def check_library_model(library: str, arch: str) -> None:
    """ValueError with close matches and how to list every name, unless ``library`` has a model ``arch``."""
    if not _is_model(library, arch):
        raise _unknown(library, arch)


def library_builder(library: str, arch: str, image_size: int) -> Callable[[], tuple[nn.Module, int]]:
    """The body builder of ``library``'s model ``arch`` for ``image_size`` images, without building it; an unknown
    name raises ValueError with close matches and how to list every name."""
    check_library_model(library, arch)
    return functools.partial(_BODIES[library], arch, image_size)
