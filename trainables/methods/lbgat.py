"""LBGAT, learnable boundary guided adversarial training, on the shared runtime (LBGAT+TRADES, the form the AFS paper
compares with).

Paper: Cui et al., "Learnable Boundary Guided Adversarial Training" (ICCV 2021); beta 6 is its "LBGAT+TRADES" (the
authors' released "LBGAT6" models), beta 0 plain LBGAT. A natural classifier (the teacher,
``teacher_model``) trains beside the robust one, on clean images only, and the robust model's logits on adversarial
examples are pulled towards the teacher's logits on the clean ones:

    MSE(f_rob(x_adv), f_nat(x)) + CE(f_nat(x), y) + beta * KL(p_rob(x) || p_rob(x_adv))

the MSE the mean over the batch and the classes, the KL TRADES' (batch mean). ``x_adv`` is TRADES' attack on the
robust model: PGD on the KL to its clean prediction, from x + 0.001 N(0, 1), in eval mode (``attack_*`` fields).

As in the authors' code: one SGD optimiser updates both networks with the same learning rate and weight decay; the
MSE's gradient reaches both (f_nat(x) is not detached), and neither the KL's clean side. The teacher is trained, not
evaluated: checkpoint selection, the final protocol and the exported model are the robust network's. Its weights are
in the trial's checkpoints (:meth:`LBGAT.state_dict`), so a resumed trial goes on with it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainables.config import RunSettings
from trainables.loader import Batch
from trainables.losses import kl_divergence
from trainables.methods.configs import LBGATConfig
from trainables.models import Classifier, create_model
from trainables.runtime import Method, run_trial
from trainables.trades_loss import trades_examples


def lbgat_loss(logits_adv: Tensor, logits_clean: Tensor, teacher_clean: Tensor, y: Tensor,
               beta: float) -> tuple[Tensor, dict[str, Tensor]]:
    """The LBGAT+TRADES loss of one batch and its terms (every gradient kept, as the authors' code keeps them)."""
    guide = F.mse_loss(logits_adv, teacher_clean)
    natural = F.cross_entropy(teacher_clean, y)
    robust = kl_divergence(F.softmax(logits_clean, dim=1), logits_adv).mean()
    return guide + natural + beta * robust, {"guide_mse": guide.detach(), "teacher_ce": natural.detach(),
                                             "robust_loss": robust.detach()}


class LBGAT(Method):
    name = "lbgat"
    Config = LBGATConfig
    cfg: LBGATConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        train = self.data.train
        self.teacher: Classifier = create_model(self.cfg.teacher_model, train.num_classes,
                                                image_size=train.image_size).to(self.device)
        if self.cfg.channels_last:  # the fast paths the robust model takes (Method.__init__)
            self.teacher = self.teacher.to(memory_format=torch.channels_last)
        if self.cfg.compile:
            self.teacher.body.compile()

    def parameters(self) -> Iterable[nn.Parameter]:
        return itertools.chain(self.model.parameters(), self.teacher.parameters())

    def on_epoch_start(self, epoch: int) -> None:
        self.teacher.train()  # the runtime switches only the robust model between training and evaluation

    def loss(self, batch: Batch, epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
        cfg, model, x, y = self.cfg, self.model, batch.x, batch.y
        x_adv = trades_examples(cfg, model, x)
        logits_adv, logits_clean, teacher_clean = model(x_adv), model(x), self.teacher(x)
        total, logs = lbgat_loss(logits_adv.float(), logits_clean.float(), teacher_clean.float(), y, cfg.beta)
        return total, {**logs, "acc": (logits_clean.argmax(1) == y).float().mean(),
                       "adv_acc": (logits_adv.argmax(1) == y).float().mean(),
                       "teacher_acc": (teacher_clean.argmax(1) == y).float().mean()}

    def state_dict(self) -> dict[str, Any]:
        return {"teacher": self.teacher.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.teacher.load_state_dict(state["teacher"])


def trainable(config: dict[str, Any], settings: RunSettings) -> None:
    """Ray Tune function trainable; bind ``settings`` with ``tune.with_parameters``."""
    run_trial(config, LBGAT, settings)
