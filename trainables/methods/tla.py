"""TLA, triplet loss adversarial training, on the shared runtime.

Paper: Mao et al., "Metric Learning for Adversarial Robustness" (NeurIPS 2019). Adversarial training whose loss adds
triplet losses on the penultimate features: an adversarial example (the anchor) is pulled towards clean images of
its class (the positives) and pushed from the clean image of another class whose features are nearest (the hard
negative). Per step, as the authors' CIFAR-10 configuration trains (``config_cifar.json``,
``train_update_fast_triplet.py``; their values in brackets, the field that sets each here after it):

1. ``x_adv``: PGD on the cross-entropy [7 steps of 2/255 at eps 8/255, uniform start, eval mode] (``attack_*``).
2. The negative of each anchor: of ``negative_pool`` x batch clean training images drawn at random [10 x 50], the one
   of another class whose features are most similar (cosine) to the anchor's, both in eval mode.
3. Two positives: ``x`` with uniform noise of +-``positive_noise`` rounded to the 8-bit grid [8/255], and another
   training image of the same class.
4. ``CE(f(x_adv), y) + triplet_weight * [T(x_adv, x_noisy, neg) + T(x_adv, x_same_class, neg)]`` [weight 2], with

       T(a, p, n) = mean(max(d(a, p) - d(a, n) + margin, 0)) + feature_penalty * mean(a^2 + p^2 + n^2)
       d(u, v) = 1 - |cos(u, v)|                                         [margin 0.03, penalty 1e-3]

   on the pooled penultimate features (the code's layer "x4"), in train mode, each of the four groups of images in a
   forward pass of its own (its own batch statistics, as the code's four encoder calls). No clean cross-entropy
   (the code's ``train_flag_adv_only``).

TLA fine-tunes an adversarially trained network (Madry et al.'s released CIFAR-10 model in the code);
``sweeps/afs_comparison.py`` trains that source first and starts TLA from it (``init_from``).

Where this differs from the code: it draws the same-class image from a cycling per-class stream and the pool from a
cycling stream of its own; here both are uniform draws per step from a generator seeded by the trial's seed and the
epoch, so a trial resumed at an epoch draws what an uninterrupted one draws. The code scores same-class pool images
0 before taking the most similar; here they are excluded. On this runtime's networks (a ReLU before the pooling) the
features and their cosines are non-negative, so both choose the same image; the code's network ends in a leaky ReLU,
whose negative cosines can let a same-class image win there.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from trainables import attacks
from trainables.config import RunSettings
from trainables.loader import Batch, augment_batch
from trainables.methods.configs import TLAConfig
from trainables.runtime import Method, run_trial
from trainables.seeds import derive_seed


def cosine_distance(a: Tensor, b: Tensor) -> Tensor:
    """Per-row ``1 - |cos(a, b)|`` of (N, D) features: the TLA code's "cos" distance (either sign counts as close)."""
    return 1 - (F.normalize(a, dim=1) * F.normalize(b, dim=1)).sum(1).abs()


def triplet_loss(anchor: Tensor, positive: Tensor, negative: Tensor, *, margin: float, penalty: float) -> Tensor:
    """The batch mean of the hinge ``d(a, p) - d(a, n) + margin`` plus ``penalty`` times the mean squared feature of
    the three (the code's norm regulariser)."""
    hinge = (cosine_distance(anchor, positive) - cosine_distance(anchor, negative) + margin).clamp(min=0).mean()
    return hinge + penalty * (anchor.square() + positive.square() + negative.square()).mean()


def hardest_negatives(anchors: Tensor, labels: Tensor, pool: Tensor, pool_labels: Tensor) -> Tensor:
    """For each anchor, the index in ``pool`` of the most cosine-similar features among those of another class."""
    similarity = F.normalize(anchors, dim=1) @ F.normalize(pool, dim=1).T
    return similarity.masked_fill(labels[:, None] == pool_labels[None, :], float("-inf")).argmax(1)


def noisy_copy(x: Tensor, noise: float, generator: torch.Generator) -> Tensor:
    """``x`` (on the 8-bit grid, in [0, 1]) plus uniform noise in +-``noise``, rounded back to the grid and clipped:
    the code's ``clip(rint(x + U(-8, 8)), 0, 255)`` on 0..255 pixels."""
    u = (2 * torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) - 1) * (noise * 255)
    return (x * 255 + u).round().clamp(0, 255) / 255


class TLA(Method):
    name = "tla"
    Config = TLAConfig
    cfg: TLAConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        train = self.data.train
        # The training set on the device (uint8), for the pool and the same-class positives; indices by class.
        self.images, self.labels = train.images.to(self.device), train.labels.to(self.device)
        self.by_class = torch.argsort(self.labels, stable=True)
        self.class_counts = torch.bincount(self.labels, minlength=train.num_classes)
        self.class_starts = self.class_counts.cumsum(0) - self.class_counts
        self.augment = self.cfg.augmentation()  # resolved once, not per draw in the step loop
        self._generator: tuple[int, torch.Generator] | None = None

    def generator(self, epoch: int) -> torch.Generator:
        """The draws' generator, seeded afresh at each epoch from the trial's seed."""
        if self._generator is None or self._generator[0] != epoch:
            seed = derive_seed(self.cfg.seed, "tla-draws", epoch)
            self._generator = (epoch, torch.Generator(device=self.device).manual_seed(seed))
        return self._generator[1]

    def training_images(self, idx: Tensor, generator: torch.Generator) -> Tensor:
        """Training images ``idx``, augmented as the training set is, as float in [0, 1]."""
        x = self.images[idx]
        if self.augment != "none":
            x = augment_batch(x, generator, flip=self.augment == "crop_flip")
        return x.float().div_(255)

    def same_class(self, y: Tensor, generator: torch.Generator) -> Tensor:
        """The index of one training image of each label in ``y``, drawn uniformly within its class."""
        counts = self.class_counts[y]
        offsets = (torch.rand(len(y), generator=generator, device=y.device) * counts).long().clamp(max=counts - 1)
        return self.by_class[self.class_starts[y] + offsets]

    def loss(self, batch: Batch, epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
        cfg, model, x, y = self.cfg, self.model, batch.x, batch.y
        g = self.generator(epoch)
        with attacks.bn_mode(model, cfg.attack_bn):
            x_adv = attacks.craft(cfg, attacks.ce(model, y), x)
        pool_idx = torch.randint(len(self.labels), (cfg.negative_pool * len(x),), generator=g, device=self.device)
        pool, pool_labels = self.training_images(pool_idx, g), self.labels[pool_idx]
        with torch.no_grad(), attacks.bn_mode(model, "eval"):  # the code mines with the network in eval mode
            chosen = hardest_negatives(model.features(x_adv).float(), y, model.features(pool).float(), pool_labels)
        negatives, positives = pool[chosen], noisy_copy(x, cfg.positive_noise, g)
        same = self.training_images(self.same_class(y, g), g)
        features_adv = model.features(x_adv)
        logits_adv = model.heads["main"](features_adv)
        anchor, negative = features_adv.float(), model.features(negatives).float()
        terms = [triplet_loss(anchor, model.features(p).float(), negative, margin=cfg.margin,
                              penalty=cfg.feature_penalty) for p in (positives, same)]
        total = F.cross_entropy(logits_adv.float(), y) + cfg.triplet_weight * (terms[0] + terms[1])
        return total, {"adv_acc": (logits_adv.argmax(1) == y).float().mean(), "triplet_noisy": terms[0].detach(),
                       "triplet_same_class": terms[1].detach(),
                       "negative_is_other_class": (pool_labels[chosen] != y).float().mean()}


def trainable(config: dict[str, Any], settings: RunSettings) -> None:
    """Ray Tune function trainable; bind ``settings`` with ``tune.with_parameters``."""
    run_trial(config, TLA, settings)
