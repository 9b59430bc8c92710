"""Trained models that load without unpickling: a safetensors state dict and a JSON that says how to rebuild the
module, beside each run's pickled MLflow models ``best`` and ``last``.

A pickled model runs code when it is loaded, so opening someone else's MLflow store that way means trusting it. The
artifacts here hold tensors and plain JSON only:

    safetensors/best.safetensors   the exported model's state dict (every head, normalisation buffers, an AFS
                                   merger's whole stack)
    safetensors/best.json          {"architecture": ..., "config": the trial's config}

and :func:`load_safe_model` rebuilds the module from the architecture with this project's own model code, then
loads the weights: ``load_safe_model(MlflowClient(uri), run_id, "best")``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient
from safetensors.torch import load_model, save_model
from torch import nn

from trainables.models import IN_CHANNELS, Classifier, Normalize, StackedFeatures, create_model

SAFE_FOLDER = "safetensors"


def classifier_architecture(model: Classifier, name: str, image_size: int) -> dict[str, Any]:
    """What :func:`build` needs to make an empty copy of ``model``, a ``create_model(name, ...)`` classifier."""
    heads = {head: layer.out_features for head, layer in model.heads.items()}
    return {"kind": "classifier", "model": name, "image_size": image_size, "num_classes": heads.pop("main"),
            "extra_heads": heads, "normalize": isinstance(model.normalize, Normalize)}


def build(architecture: Mapping[str, Any]) -> Classifier:
    """An untrained module of ``architecture`` (from :func:`classifier_architecture`, or an AFS merger's: a linear
    merger over a stack of such classifiers), whose state dict has the keys and shapes of the saved one."""
    if architecture["kind"] == "afs-merger":
        stack = StackedFeatures(architecture["indices"], [build(e) for e in architecture["extractors"]])
        return Classifier(stack, stack.feature_dim, architecture["num_classes"])
    # Placeholder statistics: the saved buffers replace them.
    stats = ([0.0] * IN_CHANNELS, [1.0] * IN_CHANNELS) if architecture["normalize"] else (None, None)
    return create_model(architecture["model"], architecture["num_classes"], extra_heads=architecture["extra_heads"],
                        mean=stats[0], std=stats[1], image_size=architecture["image_size"])


def save_safe_model(model: nn.Module, architecture: Mapping[str, Any], config: Mapping[str, Any], folder: Path,
                    name: str) -> None:
    """Write ``<name>.safetensors`` and ``<name>.json`` of ``model`` into ``folder``."""
    save_model(model, str(folder / f"{name}.safetensors"))
    (folder / f"{name}.json").write_text(json.dumps({"architecture": architecture, "config": dict(config)},
                                                    indent=1, default=str))


def load_safe_model(client: MlflowClient, run_id: str, name: str = "best") -> Classifier:
    """The model a run logged as ``safetensors/<name>``, rebuilt and loaded without unpickling anything, on the CPU
    in eval mode: the same module ``mlflow.pytorch.load_model("runs:/<run_id>/<name>")`` returns."""
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(client.download_artifacts(run_id, SAFE_FOLDER, directory))
        record = json.loads((folder / f"{name}.json").read_text())
        model = build(record["architecture"])
        load_model(model, str(folder / f"{name}.safetensors"), strict=True)
    return model.eval()


def load_trained_model(client: MlflowClient, run_id: str, name: str = "best") -> nn.Module:
    """The run's logged model ``name``: from its safetensors where the run has them (:func:`load_safe_model`, nothing
    unpickled), else its pickled MLflow model (runs trained before the safetensors were logged)."""
    if any(f.path == f"{SAFE_FOLDER}/{name}.safetensors" for f in client.list_artifacts(run_id, SAFE_FOLDER)):
        return load_safe_model(client, run_id, name)
    from trainables.tracking import load_model  # the pickled MLflow model

    return load_model(client, run_id, name)
