"""UIAT: adversarial training regularised toward class-wise universal inverse adversaries, and its variants.

Paper: Dong et al., "The Enemy of My Enemy is My Friend: Exploring Inverse Adversaries for Improving Adversarial
Training" (CVPR 2023): Eq. 4 (inverse loss), Eq. 6 and Algorithm 1 lines 7-11 (class-wise universal inverse
perturbations), Eq. 7 (training loss), Eq. 8 (inverse-adversary momentum), Sec. 3.3 (one-off variant), Table 6
(ablation of UAG / FR / IAM), Sec. 4.3 / Table 5 (one-off UIAT on single-step training). Where the paper leaves a
choice open, the choice made is stated below.

Each step: ``x_adv`` from the shared training attack (PGD on CE); inverse examples ``x_inv``; the target ``p``
(no gradient); loss ``CE(f(x_adv), y) + lam * KL(p || f(x_adv))`` averaged over the batch.

- Inverse loss (Eq. 4), per sample: ``CE(f(x_inv), y) + beta * [L1(F(x_inv), F(x)) - L1(F(x_inv), F(x_adv))]``,
  F the penultimate feature and L1 the mean absolute difference; F(x) and F(x_adv) are constants.
- UAG on: ``z_c`` (C x 3 x H x W, initialised ``0.001 N(0, 1)``) takes one signed descent step per batch on the sum
  of its class's inverse losses and is projected onto the eps' ball (Algorithm 1 line 10); a class absent from the
  batch has no gradient and does not move. ``x_inv = clip01(x + z_y)`` with the updated ``z``.
  UAG off (instance-wise IAT, Table 6 row 1): ``x_inv`` from ``iat_steps`` steps of inverse PGD on Eq. 4, started
  at ``x`` inside the eps' ball.
- IAM on: per training sample ``p_i = f(x_inv_i)`` for epochs before ``momentum_start`` (T), then
  ``p_i = gamma * p_i + (1 - gamma) * f(x_inv_i)`` (Eq. 8). IAM off: ``p = f(x_inv)`` every step.
- One-off: ``p = f(x)`` (clean prediction, a constant) before ``oneoff_epoch`` (T'); in epoch T' the inverse examples
  are generated and every sample's ``p`` is stored; afterwards the stored ``p`` is reused with no inverse generation.
- FR is the feature term of Eq. 4 (weight ``beta``); without it the inverse loss is plain CE (paper Table 5).
- ``training_attack`` (Table 5): ``pgd`` is the shared PGD above; ``rs_fgsm`` / ``n_fgsm`` replace it by the single-step
  attack of methods/single_step.py (trainables/single_step_attacks.py's :data:`SPECS`, through :func:`attacks.fgsm`;
  N-FGSM's points lie up to 3 eps from ``x``); ``gradalign`` by GradAlign's FGSM and adds its regulariser with weight
  ``align_lam`` (:func:`trainables.single_step_attacks.aligned_fgsm`). Table 5's rows are one-off UIAT without FR
  (``oneoff=true``, ``components=uag``) on each; with ``lam = 0`` the loss is the single-step method's own. On a
  single-step attack ``attack_step``/``attack_start`` do not apply and ``attack_steps`` sets the PGD of checkpoint
  selection only.

Predictions that become targets, ``z`` updates and inverse PGD use the BatchNorm mode of the training attack
(``attack_bn``, running statistics by default) and never update running statistics.

Choices where the paper is silent: ``inv_step`` (alpha') = 1/255; the target is predicted from the
inverse examples of the *updated* ``z`` (Algorithm 1 computes Eq. 8 after line 10); T = 10 and T' = 50 of 100 epochs
(see :class:`UIATConfig`); 5 inverse PGD steps for IAT. A sample that the loader's ``drop_last`` skipped in an epoch
keeps its older ``p`` (IAM) and, without any stored ``p`` (one-off after T'), gets its clean prediction, the target
the one-off variant uses before T'.

With extra data (``extra_data``, UIAT Table 4) the per-sample targets cover the extra images too, indexed after the
training set (loader.MixedLoader), and the rules above apply to them unchanged. An epoch then draws only part of the
extra set (at 1M generated images, batch 1024 and a 0.3 original share: 49 x 717 = 35,133 of them per epoch), so
IAM's momentum runs over the visits each image gets, and one-off UIAT stores ``p`` in epoch T' for the images drawn in
that epoch only; every other extra image keeps its clean prediction as its target after T'. The paper says nothing
of this case. The buffer is (training + extra images) x classes in fp32: 420 MB for CIFAR-100 with 1M extra images,
held on the device and in every checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from trainables import attacks
from trainables.config import RunSettings
from trainables.loader import Batch
from trainables.losses import kl_divergence
from trainables.methods.configs import UIATConfig
from trainables.models import Classifier
from trainables.runtime import Method, TrialData, run_trial
from trainables.seeds import derive_seed
from trainables.single_step_attacks import SPECS, aligned_fgsm


def inverse_objective(model: Classifier, y: Tensor, beta: float, clean_features: Tensor | None = None,
                      adv_features: Tensor | None = None) -> attacks.Objective:
    """Per-sample inverse loss of Eq. 4; without features (FR off) it is the CE term alone."""

    def objective(x_inv: Tensor) -> Tensor:
        features = model.features(x_inv)
        loss = F.cross_entropy(model.heads["main"](features).float(), y, reduction="none")
        if clean_features is None:
            return loss
        features = features.float()
        pull = (features - clean_features).abs().mean(dim=1)
        push = (features - adv_features).abs().mean(dim=1)
        return loss + beta * (pull - push)

    return objective


class UIAT(Method):
    name = "uiat"
    Config = UIATConfig
    cfg: UIATConfig

    def __init__(self, cfg: UIATConfig, data: TrialData, device: torch.device, settings: RunSettings) -> None:
        super().__init__(cfg, data, device, settings)
        # One row per index a batch can carry: with extra data (TrialData.extra) its images follow the training set.
        n, k = data.index_size, data.train.num_classes
        # A generator of its own: z's start depends on the seed only, not on how much RNG the model init drew.
        generator = torch.Generator().manual_seed(derive_seed(cfg.seed, "uiat-z"))
        z = 0.001 * torch.randn((k, *data.train.images.shape[1:]), generator=generator)
        self.z = z.clamp(-cfg.inv_eps, cfg.inv_eps).to(device)
        # Per-sample targets p_i (momentum buffer or one-off store) in fp32: half precision would round each
        # gamma-weighted update (relative error ~1e-3 per step, compounding over epochs); CIFAR-10 needs 2 MB.
        self.targets = torch.zeros(n, k, device=device)
        self.has_target = torch.zeros(n, dtype=torch.bool, device=device)
        self.all_stored = False

    def on_epoch_start(self, epoch: int) -> None:
        cfg = self.cfg
        if cfg.oneoff and epoch > cfg.oneoff_epoch:
            self.all_stored = bool(self.has_target.all())  # one host sync per epoch

    # --- targets --------------------------------------------------------------------------------------------------
    def predict(self, x: Tensor) -> Tensor:
        """Softmax prediction used as a target: a constant (no gradient)."""
        with torch.no_grad():
            return F.softmax(self.model(x).float(), dim=1)

    def update_z(self, objective: attacks.Objective, x: Tensor, y: Tensor) -> None:
        """Algorithm 1 lines 8-11: one signed descent step of each present class's summed inverse loss, projected
        onto the eps' ball. Absent classes have zero gradient; the mask keeps them exactly where they were."""
        cfg = self.cfg
        z = self.z.clone().requires_grad_(True)
        with torch.enable_grad():
            loss = objective((x + z[y]).clamp(0.0, 1.0)).sum()
        (grad,) = torch.autograd.grad(loss, z)
        present = torch.bincount(y, minlength=len(z)) > 0
        step = cfg.inv_step * grad.sign() * present.view(-1, 1, 1, 1)
        self.z = (self.z - step).clamp(-cfg.inv_eps, cfg.inv_eps)

    def inverse_examples(self, batch: Batch, x_adv: Tensor) -> Tensor:
        """Eq. 4 minimised class-wise (UAG: one step on z_c) or per sample (IAT: inverse PGD)."""
        cfg, model, x, y = self.cfg, self.model, batch.x, batch.y
        clean_features = adv_features = None
        if cfg.feature_regularisation:
            with torch.no_grad():
                clean_features, adv_features = model.features(x).float(), model.features(x_adv).float()
        objective = inverse_objective(model, y, cfg.beta, clean_features, adv_features)
        if cfg.universal:
            self.update_z(objective, x, y)
            return (x + self.z[y]).clamp(0.0, 1.0)
        return attacks.inverse_pgd(objective, x, eps=cfg.inv_eps, step_size=cfg.inv_step, steps=cfg.iat_steps,
                                   random_start="none")

    def target(self, batch: Batch, x_adv: Tensor, epoch: int) -> tuple[Tensor, Tensor | None]:
        """The target p of Eq. 7 for this batch, and the inverse examples' prediction if any were generated.
        Call it in the attack's BatchNorm mode."""
        cfg, idx = self.cfg, batch.idx
        if cfg.oneoff and epoch < cfg.oneoff_epoch:
            return self.predict(batch.x), None
        if cfg.oneoff and epoch > cfg.oneoff_epoch:
            return self.stored_targets(batch), None
        inverse = self.predict(self.inverse_examples(batch, x_adv))
        p = inverse
        if cfg.inverse_momentum and epoch >= cfg.momentum_start:
            previous = self.targets[idx]
            p = torch.where(self.has_target[idx, None], cfg.gamma * previous + (1 - cfg.gamma) * inverse, inverse)
        self.targets[idx] = p
        self.has_target[idx] = True
        return p, inverse

    def stored_targets(self, batch: Batch) -> Tensor:
        """One-off after T': the p stored in epoch T'; samples with none (skipped by drop_last) get f(x)."""
        stored = self.targets[batch.idx]
        if self.all_stored:
            return stored
        missing = ~self.has_target[batch.idx]
        if not bool(missing.any()):
            return stored
        return torch.where(missing[:, None], self.predict(batch.x), stored)

    # --- loss -----------------------------------------------------------------------------------------------------
    def adversarial(self, batch: Batch) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """``x_adv`` from the configured training attack, and GradAlign's regulariser and mean cosine when that is the
        attack (else ``None``). Call it in the attack's BatchNorm mode."""
        cfg, model, x, y = self.cfg, self.model, batch.x, batch.y
        if cfg.training_attack == "pgd":
            return attacks.craft(cfg, attacks.ce(model, y), x), None, None
        if cfg.training_attack == "gradalign":
            return aligned_fgsm(model, x, y, eps=cfg.eps, lam=cfg.align_lam, attack_bn=cfg.attack_bn)
        return SPECS[cfg.training_attack].craft(attacks.ce(model, y), x, cfg.eps), None, None

    def loss(self, batch: Batch, epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
        cfg, model, y = self.cfg, self.model, batch.y
        with attacks.bn_mode(model, cfg.attack_bn):
            x_adv, misalignment, cos = self.adversarial(batch)
            target, inverse = self.target(batch, x_adv, epoch)
        logits = model(x_adv).float()
        adv_ce = F.cross_entropy(logits, y)
        kl = kl_divergence(target, logits).mean()  # KL(p || f(x_adv)); p carries no gradient
        logs = {"adv_ce": adv_ce.detach(), "kl": kl.detach(), "adv_acc": (logits.argmax(1) == y).float().mean()}
        if inverse is not None:
            logs["inverse_acc"] = (inverse.argmax(1) == y).float().mean()
        loss = adv_ce + cfg.lam * kl
        if misalignment is None:
            return loss, logs
        return loss + cfg.align_lam * misalignment, logs | {"grad_cos": cos.detach()}

    # --- state ----------------------------------------------------------------------------------------------------
    def epoch_metrics(self) -> dict[str, float]:
        return {"z_linf": self.z.abs().max().item()} if self.cfg.universal else {}

    def state_dict(self) -> dict[str, Any]:
        return {"z": self.z, "targets": self.targets, "has_target": self.has_target}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        # A state from another data set would index the wrong samples without any error.
        for name in ("z", "targets", "has_target"):
            if state[name].shape != getattr(self, name).shape:
                raise ValueError(f"UIAT state {name!r} has shape {tuple(state[name].shape)}, this trial needs "
                                 f"{tuple(getattr(self, name).shape)}")
            setattr(self, name, state[name].to(self.device))


def trainable(config: dict[str, Any], settings: RunSettings) -> None:
    """Ray Tune function trainable; bind ``settings`` with ``tune.with_parameters``."""
    run_trial(config, UIAT, settings)
