"""The auxiliary images a classifier trained on the primary set is most confident on, per primary class, written as
an npz set: BiaMAT appendix D's ImageNet-(N x 100)k (``sweeps/biamat_confident_subset.py``) and the pseudo-labelled
sets of Carmon et al.'s rows (``sweeps/biamat_semi_supervised.py``)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from trainables.evaluation import to_images
from trainables.image_set import ImageSet
from trainables.user_data import save_npz_atomic


def confident_subset(probabilities: Tensor, per_class: int) -> Tensor:
    """Per primary class, the indices of the images whose arg-max class it is, the ``per_class`` most confident
    (every one with 0) first; concatenated class by class. ``probabilities``: (N, classes) softmax outputs."""
    confidence, predicted = probabilities.max(dim=1)
    chosen = []
    for c in range(probabilities.shape[1]):
        members = (predicted == c).nonzero().squeeze(1)
        order = torch.argsort(confidence[members], descending=True, stable=True)
        chosen.append(members[order[:per_class] if per_class else order])
    return torch.cat(chosen)


def softmax_outputs(model: nn.Module, images: Tensor, batch_size: int, device: torch.device) -> Tensor:
    """The model's clean softmax on every image (uint8, N x 3 x H x W), in evaluation mode, on the CPU."""
    model.to(device).eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            logits = model(to_images(images[start : start + batch_size], device)).float()
            outputs.append(torch.softmax(logits, dim=1).cpu())
    return torch.cat(outputs)


def write_subset(model: nn.Module, aux: ImageSet, per_class: int, out: Path, labels: str = "aux", batch_size: int = 512) -> str:
    """Rank the ImageSet ``aux`` by ``model``'s confidence, write the kept images to ``out`` (``label`` holds
    ``labels``: the set's own, or the pseudo-labels) and return a line saying what was written."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    probabilities = softmax_outputs(model, aux.images, batch_size, device)
    chosen = confident_subset(probabilities, per_class)
    confidence, predicted = probabilities[chosen].max(dim=1)
    own = aux.labels[chosen].numpy()
    label, other = (own, {"pseudo_label": predicted.numpy()}) if labels == "aux" else (predicted.numpy(),
                                                                                       {"aux_label": own})
    save_npz_atomic(out, image=aux.images[chosen].numpy(), label=label, confidence=confidence.numpy(), **other)
    counts = torch.bincount(predicted, minlength=probabilities.shape[1]).tolist()
    kept = f"the {per_class} most confident per primary class" if per_class else "every image, pseudo-labelled"
    return (f"wrote {out}: {len(chosen)} of {aux.name}'s {len(aux)} images, {kept}, labels {labels}; per class: "
            f"{counts}; confidence {float(confidence.min()):.3f}..{float(confidence.max()):.3f}")
