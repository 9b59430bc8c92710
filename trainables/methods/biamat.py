"""BiaMAT: biased multi-domain adversarial training with a confidence gate (AT and TRADES variants).

Paper: Lee et al., "Inducing Data Amplification Using Auxiliary Datasets in Adversarial Training" (WACV 2023),
Sec. 2.1 Eq. 1 (``L = l + alpha * l~``), Sec. 2.4 and Algorithm 1 (the confidence-based selection), Appendix E
(schedules, the CIFAR-100 switch for TRADES). Where the paper leaves a detail open, this module follows the
authors' reference code, as each point below says.

One shared body, a primary head ``main`` (K classes) and an auxiliary head ``aux``. Each step takes 128 primary and
128 auxiliary images (an endless, independently shuffled auxiliary stream); BatchNorm sees the concatenated batch.

- Warm-up (``warmup_epochs``): auxiliary images stay in the batch and are attacked, but their loss weight is 0 (the
  reference code; ``alpha_in_warmup`` restores the paper's earlier version). As in the reference, the auxiliary loss
  is multiplied by 0 (``warmup_aux_loss="times_zero"``): the auxiliary head stays in the graph with a zero gradient,
  so weight decay and momentum still shrink it during warm-up (to about 0.68x of its initial weights after BiaMAT-AT's
  5 warm-up epochs). ``"omitted"`` leaves the term out of the graph: the head then keeps its initial weights.
- omega (Algorithm 1 line 8): ``pi * mean max softmax f_pri(x)`` over the clean primary batch of the first step after
  warm-up, eval mode, no gradient. Computed once, kept in the checkpoint.
- Routing, every step: ``max softmax f_pri(x~) < omega`` (clean, eval mode) -> "low": soft CE to the uniform y^ER on
  ``main``; otherwise "high": CE to its own label on ``aux``. Before omega exists no sample is low.
  ``labels="aux"`` routes every sample high (Table 1 row y~), ``labels="uniform"`` every sample low (row y^ER, OAT).
- AT (Madry): one PGD on the whole 256-image batch maximising the unweighted sum of the three terms (low samples are
  pushed away from uniform), BatchNorm on batch statistics without touching running ones; then
  ``CE(f_pri(x_adv), y).mean() + alpha * (sum_low softCE + sum_high CE) / n_aux``.
- TRADES: each sample is attacked on the KL of its own head, eval mode; the loss is
  ``CE(x) + beta KL`` for primary, ``softCE(x~, u) + beta KL`` for low, ``CE_aux(x~) + beta KL_aux`` for high, the
  auxiliary part averaged over all auxiliary samples and scaled by alpha. ``trades_aux_high="adv_ce"`` is the
  CIFAR-100 switch of Appendix E: plain adversarial CE on ``aux`` for high samples (attacked on that CE).

Departures from the reference code: the gate works when all or none of a batch is low (the reference crashes), and any
registered auxiliary dataset (or several, concatenated with disjoint labels, Table 4) can be used.

Several auxiliary sets (appendix Table 4): the paper does not say how it draws from two. ``aux_mix="concatenated"``
(the default) streams their concatenation, so each set fills the batch in proportion to its size (ImageNet32's 1.28M
images would leave Places365 about a third); ``aux_mix="equal"`` streams each set on its own and gives every set an
equal share of every batch (the first sets one image more where 128 does not divide).

Besides n_high/n_aux per epoch (Fig. 3), a gated trial counts per auxiliary class how many samples the gate passed
(:class:`GateCounts`, appendix Table 14) and writes them into its MLflow run as one CSV per epoch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from trainables import attacks
from trainables.config import RunSettings
from trainables.dataset_names import default_augmentation
from trainables.datasets import load_dataset
from trainables.image_set import ImageSet, seeded_subset
from trainables.loader import Batch, EndlessStream
from trainables.losses import kl_divergence, soft_cross_entropy
from trainables.methods.configs import BiaMATConfig
from trainables.models import Classifier, create_model
from trainables.runtime import Method, TrialData, run_trial
from trainables.seeds import derive_seed

GATE_COUNTS_DIR = "gate_counts"  # a run's artifact folder: epoch_<NNNN>.csv per routed epoch (NNNN: the MLflow step)


def auxiliary_parts(names: tuple[str, ...], root: str | None, n: int = 0) -> list[ImageSet]:
    """The auxiliary sets with disjoint label ranges (one auxiliary head over all): each set's labels shifted past the
    classes of the sets before it; the last one's ``num_classes`` is the head's size. With ``n``, a fixed random
    ``n`` images of each set, drawn by the set's name alone so every trial trains on the same ones."""
    parts, offset = [], 0
    for name in names:
        part = load_dataset(name, "train", root=root)
        if n:
            part = seeded_subset(part, n, derive_seed("auxiliary-subset", name))
        parts.append(ImageSet(part.images, part.labels + offset, offset + part.num_classes, part.name))
        offset += part.num_classes
    return parts


def concatenated(parts: list[ImageSet]) -> ImageSet:
    """One set of all the parts' images, for a stream that draws from each in proportion to its size."""
    if len(parts) == 1:
        return parts[0]
    return ImageSet(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]), parts[-1].num_classes,
                    "+".join(p.name for p in parts))


def equal_shares(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` shares differing by at most one, the larger ones first."""
    return [total // parts + (i < total % parts) for i in range(parts)]


class EqualShareStream:
    """Every batch takes an equal share from each of several auxiliary sets (``aux_mix="equal"``), each set streamed
    on its own (:class:`EndlessStream`, seeded per set); ``idx`` indexes the sets as if concatenated."""

    def __init__(self, parts: list[ImageSet], batch_size: int, *, device: torch.device, seed: int) -> None:
        self.starts = [0, *torch.tensor([len(p.labels) for p in parts]).cumsum(0).tolist()[:-1]]
        self.streams = [
            EndlessStream(part, share, device=device, augment=default_augmentation(part.name),
                          seed=derive_seed(seed, "aux-set", i))
            for i, (part, share) in enumerate(zip(parts, equal_shares(batch_size, len(parts))))
        ]

    def next(self) -> Batch:
        parts = [stream.next() for stream in self.streams]
        return Batch(torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts]),
                     torch.cat([p.idx + start for p, start in zip(parts, self.starts)]))

    def state_dict(self) -> dict:
        return {"sets": [stream.state_dict() for stream in self.streams]}

    def load_state_dict(self, state: dict) -> None:
        if len(state.get("sets", ())) != len(self.streams):
            raise ValueError(f"stream state is not for {len(self.streams)} equal-share auxiliary sets")
        for stream, part in zip(self.streams, state["sets"]):
            stream.load_state_dict(part)


class GateCounts:
    """Per auxiliary class, how many samples the stream drew in the current epoch (``seen``) and how many of them the
    gate passed to their own label (``high``), summed on the device with ``index_add_`` into fixed-size tensors, so
    the step loop reads nothing on the host (``bincount`` would read the largest label every step).

    They go to MLflow as a CSV artifact per epoch, not as metrics: ImageNet has 1000 classes, and 2000 metric keys per
    run would add 2000 columns to every run listing (``search_runs`` returns each run's latest metrics), 200,000
    points per 100-epoch run to the metrics table and 2000 charts to the run's page in the UI, for numbers that only
    appendix Table 14 reads, one epoch at a time. A CSV is one 12 KB file per epoch that the UI previews and that
    nothing else loads."""

    def __init__(self, num_classes: int, device: torch.device) -> None:
        self.seen = torch.zeros(num_classes, dtype=torch.int64, device=device)
        self.high = torch.zeros_like(self.seen)
        self.counted = False

    def reset(self) -> None:
        self.seen.zero_()
        self.high.zero_()
        self.counted = False

    def add(self, labels: Tensor, low: Tensor) -> None:
        self.seen.index_add_(0, labels, torch.ones_like(labels))
        self.high.index_add_(0, labels, (~low).long())
        self.counted = True

    def csv(self) -> str:
        """``aux_class,seen,high``, one line per class: the epoch's one host read."""
        rows = torch.stack([self.seen, self.high], dim=1).tolist()
        return "aux_class,seen,high\n" + "".join(f"{c},{seen},{high}\n" for c, (seen, high) in enumerate(rows))


def primary_confidence(model: Classifier, x: Tensor) -> Tensor:
    """``max softmax f_pri(x)`` on clean inputs, eval mode (running BN statistics), no gradient."""
    with attacks.bn_mode(model, "eval"), torch.no_grad():
        return F.softmax(model(x).float(), dim=1).amax(dim=1)


class BiaMAT(Method):
    name = "biamat"
    Config = BiaMATConfig
    cfg: BiaMATConfig

    def __init__(self, cfg: BiaMATConfig, data: TrialData, device: torch.device, settings: RunSettings) -> None:
        parts = auxiliary_parts(cfg.aux_datasets, settings.data_root, cfg.aux_n)
        self.aux_classes = parts[-1].num_classes
        super().__init__(cfg, data, device, settings)
        if cfg.aux_mix == "equal" and len(parts) > 1:
            self.stream = EqualShareStream(parts, cfg.aux_batch_size, device=device, seed=cfg.seed + 1)
        else:
            aux = concatenated(parts)
            self.stream = EndlessStream(aux, cfg.aux_batch_size, device=device, augment=default_augmentation(aux.name),
                                        seed=cfg.seed + 1)
        k = data.train.num_classes
        self.uniform = torch.full((k,), 1.0 / k, device=device)
        self.omega: float | None = None
        self.gate_counts = GateCounts(self.aux_classes, device)

    def build_model(self) -> Classifier:
        return create_model(self.cfg.model, self.data.train.num_classes, extra_heads={"aux": self.aux_classes},
                            image_size=self.data.train.image_size)

    def datasets(self) -> list[tuple[str, str]]:
        return [*super().datasets(), *((name, "auxiliary") for name in self.cfg.aux_datasets)]

    def on_epoch_start(self, epoch: int) -> None:
        self.gate_counts.reset()

    # --- the gate -------------------------------------------------------------------------------------------------
    def maybe_set_omega(self, x_primary: Tensor, epoch: int) -> None:
        """Algorithm 1 line 8, once: on the first step after warm-up, from that step's clean primary batch."""
        if self.omega is None and epoch >= self.cfg.warmup_epochs and self.cfg.labels == "gated":
            self.omega = self.cfg.pi * primary_confidence(self.model, x_primary).mean().item()  # one sync per trial

    def low_mask(self, x_aux: Tensor) -> Tensor:
        """Which auxiliary samples get y^ER on the primary head (the rest keep their label on the auxiliary head)."""
        n = len(x_aux)
        if self.cfg.labels == "uniform":
            return torch.ones(n, dtype=torch.bool, device=x_aux.device)
        if self.cfg.labels == "aux" or self.omega is None:
            return torch.zeros(n, dtype=torch.bool, device=x_aux.device)
        return primary_confidence(self.model, x_aux) < self.omega

    # --- losses ---------------------------------------------------------------------------------------------------
    def aux_weight(self, epoch: int) -> float:
        return self.cfg.alpha if epoch >= self.cfg.warmup_epochs or self.cfg.alpha_in_warmup else 0.0

    def loss(self, batch: Batch, epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
        aux = self.stream.next()
        self.maybe_set_omega(batch.x, epoch)
        low = self.low_mask(aux.x)
        weight = self.aux_weight(epoch)
        step = self.loss_at if self.cfg.variant == "at" else self.loss_trades
        # "omitted": with weight 0 the auxiliary term is left out of the graph, so the auxiliary head gets no gradient
        # at all and SGD skips it; "times_zero" keeps it with a zero gradient, so weight decay still applies.
        in_graph = weight > 0 or self.cfg.warmup_aux_loss == "times_zero"
        primary, aux_term = step(batch, aux, low, with_aux_head=in_graph)
        total = primary + weight * aux_term if in_graph else primary
        logs = {"primary_loss": primary.detach(), "aux_loss": aux_term.detach()}
        if self.omega is not None or self.cfg.labels != "gated":
            logs["high_fraction"] = 1.0 - low.float().mean()
        if self.omega is not None:  # only the gate routes by class; labels=aux/uniform route every sample one way
            self.gate_counts.add(aux.y, low)
        return total, logs

    def at_losses(self, x: Tensor, y: Tensor, y_aux: Tensor, low: Tensor, with_aux_head: bool) -> tuple[Tensor, Tensor]:
        """Per-sample AT losses on the concatenated batch (BatchNorm sees all of it): primary CE, and for auxiliary
        samples soft CE to uniform on ``main`` if low, CE to their label on ``aux`` if high."""
        n = len(y)
        features = self.model.features(x)
        logits = self.model.heads["main"](features).float()
        primary = F.cross_entropy(logits[:n], y, reduction="none")
        aux_loss = soft_cross_entropy(logits[n:], self.uniform.expand(len(y_aux), -1))
        if with_aux_head:
            high = F.cross_entropy(self.model.heads["aux"](features[n:]).float(), y_aux, reduction="none")
            aux_loss = torch.where(low, aux_loss, high)
        return primary, aux_loss

    def craft_at(self, batch: Batch, aux: Batch, low: Tensor) -> Tensor:
        """One PGD on the concatenated batch maximising the unweighted sum of the three terms, so low samples are
        pushed away from uniform and high ones away from their auxiliary label."""

        def objective(x_adv: Tensor) -> Tensor:
            return torch.cat(self.at_losses(x_adv, batch.y, aux.y, low, with_aux_head=True))

        with attacks.bn_mode(self.model, self.cfg.attack_bn):
            return attacks.craft(self.cfg, objective, torch.cat([batch.x, aux.x]))

    def loss_at(self, batch: Batch, aux: Batch, low: Tensor, with_aux_head: bool) -> tuple[Tensor, Tensor]:
        """Mean primary adversarial CE and the auxiliary term averaged over ALL auxiliary samples."""
        x_adv = self.craft_at(batch, aux, low)
        primary, aux_loss = self.at_losses(x_adv, batch.y, aux.y, low, with_aux_head)
        return primary.mean(), aux_loss.mean()

    def loss_trades(self, batch: Batch, aux: Batch, low: Tensor, with_aux_head: bool) -> tuple[Tensor, Tensor]:
        """TRADES on every sample's own head; the auxiliary term averaged over all auxiliary samples."""
        cfg, model, n = self.cfg, self.model, len(batch.y)
        x = torch.cat([batch.x, aux.x])
        on_aux = torch.cat([torch.zeros(n, dtype=torch.bool, device=x.device), ~low])  # high samples use "aux"
        # Labels for the CIFAR-100 switch; the primary rows are placeholders that torch.where discards.
        y_aux = torch.cat([torch.zeros_like(batch.y), aux.y])

        def logits(inputs: Tensor) -> tuple[Tensor, Tensor]:
            features = model.features(inputs)
            return model.heads["main"](features).float(), model.heads["aux"](features).float()

        with attacks.bn_mode(model, "eval"), torch.no_grad():
            p_main, p_aux = (F.softmax(z, dim=1) for z in logits(x))

        def objective(x_adv: Tensor) -> Tensor:
            z_main, z_aux = logits(x_adv)
            if cfg.trades_aux_high == "adv_ce":
                aux_part = F.cross_entropy(z_aux, y_aux, reduction="none")
            else:
                aux_part = kl_divergence(p_aux, z_aux)
            return torch.where(on_aux, aux_part, kl_divergence(p_main, z_main))

        with attacks.bn_mode(model, "eval"):
            x_adv = attacks.craft(cfg, objective, x)

        # Clean and adversarial passes are separate forwards, as in TRADES (each with its own batch statistics).
        clean_main, clean_aux = logits(x)
        adv_main, adv_aux = logits(x_adv)
        kl_main = kl_divergence(F.softmax(clean_main, dim=1), adv_main)
        primary = F.cross_entropy(clean_main[:n], batch.y) + cfg.beta * kl_main[:n].mean()
        aux_loss = soft_cross_entropy(clean_main[n:], self.uniform.expand(len(aux.y), -1)) + cfg.beta * kl_main[n:]
        if with_aux_head:
            if cfg.trades_aux_high == "adv_ce":
                high = F.cross_entropy(adv_aux[n:], aux.y, reduction="none")
            else:
                kl_aux = kl_divergence(F.softmax(clean_aux[n:], dim=1), adv_aux[n:])
                high = F.cross_entropy(clean_aux[n:], aux.y, reduction="none") + cfg.beta * kl_aux
            aux_loss = torch.where(low, aux_loss, high)
        return primary, aux_loss.mean()

    # --- state ----------------------------------------------------------------------------------------------------
    def epoch_metrics(self) -> dict[str, float]:
        """omega, once set."""
        return {} if self.omega is None else {"omega": self.omega}

    def epoch_artifacts(self, epoch: int) -> dict[str, str]:
        """The gate's per-class counts of an epoch that routed by class (an epoch trained again after a resume writes
        the same file again)."""
        if not self.gate_counts.counted:
            return {}
        return {f"{GATE_COUNTS_DIR}/epoch_{epoch:04d}.csv": self.gate_counts.csv()}

    def state_dict(self) -> dict[str, Any]:
        return {"omega": self.omega, "stream": self.stream.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.omega = state["omega"]
        self.stream.load_state_dict(state["stream"])


def trainable(config: dict[str, Any], settings: RunSettings) -> None:
    """Ray Tune function trainable; bind ``settings`` with ``tune.with_parameters``."""
    run_trial(config, BiaMAT, settings)
