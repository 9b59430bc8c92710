"""AFS: adversarial feature stacking. PGD-AT extractors at eps = 0..9/255, their Delta_z, and a linear merger over the
concatenated penultimate features of a frozen subset of them.

Paper: Liu & Zhao, "Towards Both Accurate and Robust Neural Networks without Extra Data". Sec. 2.2 Eq. 3-4: each
extractor is a PGD-AT model (:class:`Extractor`, the baseline trainable that also registers its selected weights in
MLflow and measures Delta_z). Sec. 2.3 Eq. 1-2: ``z = w^T [g_1(x); ...; g_n(x)] + b`` over frozen extractors
(:class:`FrozenStack`, :class:`Merger`). Eq. 5 weighs clean and adversarial CE by alpha (``alpha_mode="weighted"``);
the reference code instead keeps the first ``int(B * alpha)`` samples of each batch clean and attacks the rest
(``alpha_mode="mix"``, the default: it attacks only part of the batch). Adversarial examples target the whole stack
(Sec. 2.3, "targeting the whole model"). Sec. 2.4 Eq. 8 / Fig. 3: Delta_z under an 8/255 attack
(:func:`trainables.evaluation.logit_change`); the concavity rule that picks extractors from it is
``analysis/afs/selection.py`` (read by the merger sweep and the analysis). Sec. 3.3 Table 3: a ``mask`` of 9 or 10
characters, character i = '1' selecting the extractor trained at eps i/255.

The merger finds its extractors in MLflow by the extractor sweep's name (the parent run tagged ``sweep=<name>`` in
:data:`EXTRACTOR_EXPERIMENT`, its FINISHED children, their ``eps`` param and weight artifact), so it runs wherever the
tracking server and its artifact store are reachable, with no shared local path.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from mlflow.tracking import MlflowClient
from torch import Tensor

from trainables import attacks
from trainables.config import ConfigError, RunSettings
from trainables.evaluation import logit_change
from trainables.loader import Batch
from trainables.methods.afs_masks import (
    eps_index,
    mask_indices,
)
from trainables.methods.baseline import Baseline
from trainables.methods.configs import EXTRACTOR_EXPERIMENT, ExtractorConfig, MergerConfig

# StackedFeatures is imported here too because mergers pickled before it moved to models.py name it as this module's.
from trainables.models import Classifier, StackedFeatures, count_macs, create_model, stack_features
from trainables.runtime import Method, TrialData, run_trial
from trainables.safe_export import classifier_architecture
from trainables.stage_runs import finished_trials
from trainables.tracking import download_weights

# --- stage 1: extractors ---------------------------------------------------------------------------------------------


def model_size(model: Classifier, image: Tensor, frozen_params: int = 0) -> dict[str, float]:
    """Table 6's columns: parameters (the model's own plus ``frozen_params``) and MACs per image."""
    params = sum(p.numel() for p in model.parameters()) + frozen_params
    return {"model/params": float(params), "model/macs": float(count_macs(model, image))}


# The extractor subclasses the baseline on purpose: an AFS extractor is a PGD-AT model with the baseline's loss and
# checkpoint selection. It only adds the threat model its Delta_z and final metrics are measured at, and registers its
# weights for the merger.
class Extractor(Baseline):
    """PGD-AT (eps 0: standard training) that registers its selected weights and logs Delta_z at ``eval_eps``."""

    name = "afs_extractor"
    Config = ExtractorConfig
    cfg: ExtractorConfig
    registers_weights = True

    def final_eps(self) -> float:
        return self.cfg.eval_eps

    def final_metrics(self, models: Mapping[str, Classifier]) -> dict[str, float]:
        test = self.data.test
        metrics = {
            f"{tag}/delta_z": logit_change(model, test.images, eps=self.cfg.eval_eps, steps=self.cfg.delta_z_steps,
                                           device=self.device, seed=self.cfg.seed)
            for tag, model in models.items()
        }
        return metrics | model_size(models["best"], test.images[:1].to(self.device).float() / 255)


def extractor_trainable(config: dict[str, Any], settings: RunSettings) -> None:
    """Ray Tune function trainable of stage 1; bind ``settings`` with ``tune.with_parameters``."""
    run_trial(config, Extractor, settings)


# --- finding the extractors of a sweep -------------------------------------------------------------------------------


class MissingExtractorError(LookupError):
    """A mask names an extractor the extractor sweep does not have (not run, failed, or still running)."""


@dataclass(frozen=True)
class ExtractorRuns:
    """The FINISHED extractor trials of one extractor sweep: extractor number -> MLflow run id (and its params)."""

    sweep: str
    tracking_uri: str
    preset: str  # the sweep's preset (its parent run's tag), for the command in error messages
    runs: dict[int, str]
    params: dict[int, dict[str, str]]

    def trained_otherwise(self, masks: Iterable[str], model: str, dataset: str) -> int | None:
        """The first extractor ``masks`` stack whose run trained another model or dataset than a merger of ``model``
        on ``dataset`` (checked before Ray by the merger sweep and again when a trial loads them), else None."""
        stacked = sorted({i for mask in masks for i in mask_indices(mask)})
        return next((i for i in stacked if (self.params[i]["model"], self.params[i]["dataset"]) != (model, dataset)),
                    None)

    def require(self, masks: Iterable[str]) -> None:
        """Raise :class:`MissingExtractorError` naming every eps that ``masks`` need and the sweep lacks."""
        masks = list(masks)
        missing = sorted({i for mask in masks for i in mask_indices(mask)} - set(self.runs))
        if missing:
            have = ", ".join(f"{i}/255" for i in sorted(self.runs)) or "none"
            raise MissingExtractorError(
                f"extractor sweep {self.sweep!r} has no finished extractor for eps "
                f"{', '.join(f'{i}/255' for i in missing)} (needed by mask(s) {', '.join(masks)}; finished: {have}). "
                f"Finish it with `python sweeps/afs_extractors.py --preset {self.preset} --name {self.sweep} "
                f"--resume --tracking-uri {self.tracking_uri}`"
            )


def find_extractors(tracking_uri: str, sweep: str) -> ExtractorRuns:
    """The finished extractors of ``sweep``; a sweep that does not exist is a :class:`MissingExtractorError` that
    says how to run it."""
    found = finished_trials(tracking_uri, EXTRACTOR_EXPERIMENT, sweep)
    if found is None:
        raise MissingExtractorError(
            f"no extractor sweep {sweep!r} in experiment {EXTRACTOR_EXPERIMENT!r} of {tracking_uri}: run "
            f"`python sweeps/afs_extractors.py --preset <preset> --name {sweep} --tracking-uri {tracking_uri}` first"
        )
    runs: dict[int, str] = {}
    params: dict[int, dict[str, str]] = {}
    for run in found.runs:  # with several seeds per eps, the latest run
        index = eps_index(float(run.data.params["eps"]))
        if index not in runs:
            runs[index], params[index] = run.info.run_id, dict(run.data.params)
    return ExtractorRuns(sweep, tracking_uri, found.preset, runs, params)


def load_extractors(cfg: MergerConfig, tracking_uri: str, num_classes: int, device: torch.device, *,
                    image_size: int) -> dict[int, Classifier]:
    """The extractors ``cfg.mask`` selects, with their registered weights, on ``device``."""
    found = find_extractors(tracking_uri, cfg.extractor_sweep)
    found.require([cfg.mask])
    other = found.trained_otherwise([cfg.mask], cfg.model, cfg.dataset)
    if other is not None:
        params = found.params[other]
        raise ConfigError(f"extractor eps {other}/255 of sweep {cfg.extractor_sweep!r} is a {params['model']} on "
                          f"{params['dataset']}; this merger expects model={cfg.model!r} on {cfg.dataset!r}")
    client = MlflowClient(tracking_uri)
    extractors = {}
    for index in mask_indices(cfg.mask):
        model = create_model(cfg.model, num_classes, image_size=image_size)
        model.load_state_dict(download_weights(client, found.runs[index]))
        extractors[index] = model.to(device)
    return extractors


# --- stage 2: the merger ---------------------------------------------------------------------------------------------


class FrozenStack:
    """``G(x) = [g_1(x); ...; g_n(x)]`` (Eq. 2): the concatenated penultimate features of frozen extractors.

    Deliberately not an ``nn.Module``: the merger's Classifier holds it as its body without registering it, so
    ``model.train()`` leaves the extractors in eval mode, and ``model.parameters()`` (the optimiser) and
    ``state_dict()`` (checkpoints, best weights) hold the linear merger only; a restarted trial reloads the
    extractors from MLflow. Their parameters do not require gradients, so an attack gets input gradients through
    them and no parameter ever gets a ``.grad``.
    """

    def __init__(self, extractors: Mapping[int, Classifier]) -> None:
        self.indices = sorted(extractors)
        self.extractors = [extractors[i].eval().requires_grad_(False) for i in self.indices]
        self.feature_dim = sum(e.feature_dim for e in self.extractors)

    def __call__(self, x: Tensor) -> Tensor:
        return stack_features(self.extractors, x)

    def __deepcopy__(self, memo: dict) -> FrozenStack:
        # Frozen weights can be shared: the runtime's copy of the best merger must not duplicate six WRN-28-10s.
        return self

    def compile(self) -> None:
        """``torch.compile`` every extractor in place: the runtime's ``compile`` fast path calls ``body.compile()``."""
        for extractor in self.extractors:
            extractor.compile()

    def parameter_count(self) -> int:
        return sum(p.numel() for extractor in self.extractors for p in extractor.parameters())

    def as_module(self) -> StackedFeatures:
        """A copy of the stack as a registered module (:class:`StackedFeatures`); the training stack is untouched."""
        return StackedFeatures(self.indices, [copy.deepcopy(extractor) for extractor in self.extractors])


class Merger(Method):
    """A linear layer on the frozen extractors' concatenated features, adversarially trained through the stack."""

    name = "afs"
    Config = MergerConfig
    cfg: MergerConfig

    def __init__(self, cfg: MergerConfig, data: TrialData, device: torch.device, settings: RunSettings) -> None:
        self.tracking_uri = settings.tracking_uri
        super().__init__(cfg, data, device, settings)

    def load_extractors(self) -> dict[int, Classifier]:
        return load_extractors(self.cfg, self.tracking_uri, self.data.train.num_classes, self.device,
                               image_size=self.data.train.image_size)

    def build_model(self) -> Classifier:
        extractors = self.load_extractors()
        if self.cfg.channels_last:  # the runtime converts the model, which does not hold the extractors
            extractors = {i: e.to(memory_format=torch.channels_last) for i, e in extractors.items()}
        stack = FrozenStack(extractors)
        # No normalisation: each extractor normalises its own input. The stack is the (unregistered) body.
        return Classifier(stack, stack.feature_dim, self.data.train.num_classes)  # type: ignore[arg-type]

    @property
    def stack(self) -> FrozenStack:
        return self.model.body

    def adversarial(self, x: Tensor, y: Tensor) -> Tensor:
        """PGD at the training threat model against the whole stack (extractors and merger)."""
        return attacks.craft(self.cfg, attacks.ce(self.model, y), x)

    def loss(self, batch: Batch, epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
        cfg, model, x, y = self.cfg, self.model, batch.x, batch.y
        if cfg.alpha_mode == "mix":
            n_clean = int(len(y) * cfg.alpha)  # the reference's split: only the rest is attacked
            if n_clean < len(y):
                x = torch.cat([x[:n_clean], self.adversarial(x[n_clean:], y[n_clean:])])
            logits = model(x)
            return F.cross_entropy(logits, y), {"acc": (logits.argmax(1) == y).float().mean()}
        # Eq. 5: alpha * CE(clean) + (1 - alpha) * CE(adversarial); a term of weight 0 is not computed at all.
        logs: dict[str, Tensor] = {}
        total = x.new_zeros(())
        if cfg.alpha > 0:
            clean = F.cross_entropy(model(x), y)
            total = total + cfg.alpha * clean
            logs["clean_loss"] = clean.detach()
        if cfg.alpha < 1:
            adversarial = F.cross_entropy(model(self.adversarial(x, y)), y)
            total = total + (1 - cfg.alpha) * adversarial
            logs["adv_loss"] = adversarial.detach()
        return total, logs

    def exported_model(self, weights: Mapping[str, Tensor]) -> Classifier:
        """The merger with its stack registered, so the logged model carries (and moves) its extractors: an MLflow
        model the size of the whole stack, e.g. about 0.9 GB for six WRN-28-10."""
        model = super().exported_model(weights)  # a copy that shares the training stack (FrozenStack.__deepcopy__)
        model.body = self.stack.as_module()
        return model

    def exported_architecture(self) -> dict[str, Any]:
        """The merger's head over its stack, each extractor a classifier of the merger's model."""
        size = self.data.train.image_size
        return {"kind": "afs-merger", "num_classes": self.data.train.num_classes, "indices": self.stack.indices,
                "extractors": [classifier_architecture(e, self.cfg.model, size) for e in self.stack.extractors]}

    def final_metrics(self, models: Mapping[str, Classifier]) -> dict[str, float]:
        image = self.data.test.images[:1].to(self.device).float() / 255
        return model_size(models["best"], image, frozen_params=self.stack.parameter_count())


def merger_trainable(config: dict[str, Any], settings: RunSettings) -> None:
    """Ray Tune function trainable of stage 2; bind ``settings`` with ``tune.with_parameters``."""
    run_trial(config, Merger, settings)
