"""A trial's starting weights from another run (``init_from``): fine-tuning after pre-training, as Hendrycks et al.
(2019) adversarially pre-train on an auxiliary set and then adversarially fine-tune on the primary one (BiaMAT
Tables 3, 7 and 8, ``sweeps/biamat_pretraining.py``).

The source is a finished run's selected (or last) model as it logged it in safetensors (``trainables/safe_export.py``):
tensors only, nothing unpickled. Every tensor whose name and shape the new network has is copied, the input
normalisation's included, so the network computes what it pre-trained as from the same pixels. A head over another
number of classes (ImageNet's 1,000 against CIFAR-10's 10) keeps its fresh initialisation, as in Hendrycks et al.'s
fine-tuning; any other layer that differs refuses, since the architectures then do not match.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping

from torch import Tensor, nn

HEADS = "heads."  # trainables.models.Classifier's output layers: the only ones a fine-tuned network may re-initialise


def source_weights(init_from: str, tracking_uri: str) -> dict[str, Tensor]:
    """The tensors ``init_from`` (``RUN_ID`` or ``RUN_ID/best|last``) names in the store at ``tracking_uri``."""
    from mlflow.tracking import MlflowClient
    from safetensors.torch import load_file

    from trainables.safe_export import SAFE_FOLDER

    run_id, _, name = init_from.partition("/")
    with tempfile.TemporaryDirectory() as directory:
        path = MlflowClient(tracking_uri).download_artifacts(run_id, f"{SAFE_FOLDER}/{name or 'best'}.safetensors",
                                                             directory)
        return load_file(path)


def load_initial_weights(model: nn.Module, weights: Mapping[str, Tensor], source: str = "init_from") -> list[str]:
    """Copy into ``model`` every tensor of ``weights`` whose name and shape it has; return the names of the model's
    tensors left as initialised (heads of another class count). ValueError when a tensor outside the heads is
    missing on either side or has another shape: then the source is another architecture."""
    own = model.state_dict()
    copied = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    left = sorted(k for k in own if k not in copied)
    unmatched = [k for k in left if not k.startswith(HEADS)]
    unmatched += [k for k in weights if k not in own and not k.startswith(HEADS)]
    if unmatched:
        shapes = [f"{k} {tuple(weights[k].shape) if k in weights else 'absent'} vs "
                  f"{tuple(own[k].shape) if k in own else 'absent'}" for k in unmatched[:3]]
        raise ValueError(f"{source}: its network is not this trial's ({len(unmatched)} tensors outside the heads "
                         f"differ, e.g. {'; '.join(shapes)}): train both stages with the same model")
    model.load_state_dict(copied, strict=False)
    return left
