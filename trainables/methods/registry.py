"""The one list of training methods: for each, its runtime class, its Ray Tune trainable, its paper and its name in
the speed tables of ``launch/cost.py``. The dry-run cost estimate, ``benchmarks/throughput.py`` and the tests take
their methods from here, and ``tests/test_registry.py`` fails for a method registered without a recipe card, property
tests or a cost entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from trainables.config import RunSettings, TrainConfig
from trainables.methods import afs, baseline, biamat, gradalign, hat, mart, single_step, uiat
from trainables.runtime import Method


@dataclass(frozen=True)
class MethodSpec:
    method: type[Method]  # the runtime Method subclass: its .name tags the runs, its .Config is the config class
    trainable: Callable[[dict[str, Any], RunSettings], None]  # the Ray Tune function trainable
    paper: str  # the paper (authors, title, venue) it implements
    speed_name: Callable[[TrainConfig], str]  # the method's name in launch/cost.py's speed tables for this config

    @property
    def name(self) -> str:
        """The registry key and the MLflow ``method`` tag of every run the method trains."""
        return self.method.name

    @property
    def config(self) -> type[TrainConfig]:
        return self.method.Config


class UnknownMethodError(LookupError):
    """A method name or config type that no registered method has; the message lists the registered ones."""


def _baseline_speed(cfg: baseline.BaselineConfig) -> str:
    # eps 0 trains on clean images only (AFS's extractor 0), whatever ``training`` says: timed as standard training.
    return "standard" if cfg.eps == 0 else cfg.training


def _uiat_speed(cfg: uiat.UIATConfig) -> str:
    variant = "iat" if not cfg.universal else "uiat_oneoff" if cfg.oneoff else "uiat"
    if cfg.training_attack == "pgd":
        return variant
    # On a single-step attack (UIAT Table 5), named like that method's own trials: "n_fgsm_uiat_oneoff".
    attack = _gradalign_speed(cfg.align_lam) if cfg.training_attack == "gradalign" else cfg.training_attack
    return f"{attack}_{variant}"


def _gradalign_speed(lam: float) -> str:
    return "gradalign" if lam > 0 else "fgsm"  # without the regulariser it is plain FGSM training


_SPECS = (
    MethodSpec(baseline.Baseline, baseline.trainable,
               "standard training; PGD-AT: Madry et al., \"Towards Deep Learning Models Resistant to Adversarial "
               "Attacks\" (ICLR 2018); TRADES: Zhang et al., \"Theoretically Principled Trade-off between Robustness "
               "and Accuracy\" (ICML 2019)", _baseline_speed),
    # The paper's venue is not recorded in this project.
    MethodSpec(afs.Extractor, afs.extractor_trainable,
               "AFS stage 1: Liu & Zhao, \"Towards Both Accurate and Robust Neural Networks without Extra Data\"",
               _baseline_speed),
    # The AFS method itself: its stage 2, the merger over the extractors of stage 1.
    MethodSpec(afs.Merger, afs.merger_trainable,
               "AFS stage 2: Liu & Zhao, \"Towards Both Accurate and Robust Neural Networks without Extra Data\"",
               lambda cfg: "afs_merger"),  # the speed tables' name (benchmarks/throughput.py)
    MethodSpec(biamat.BiaMAT, biamat.trainable,
               "Lee et al., \"Inducing Data Amplification Using Auxiliary Datasets in Adversarial Training\" "
               "(WACV 2023)", lambda cfg: f"{cfg.variant}_biamat"),
    MethodSpec(uiat.UIAT, uiat.trainable,
               "Dong et al., \"The Enemy of My Enemy is My Friend: Exploring Inverse Adversaries for Improving "
               "Adversarial Training\" (CVPR 2023)", _uiat_speed),
    MethodSpec(hat.HAT, hat.trainable,
               "Rade & Moosavi-Dezfooli, \"Reducing Excessive Margin to Achieve a Better Accuracy vs. Robustness "
               "Trade-off\" (ICLR 2022)", lambda cfg: "hat"),
    MethodSpec(mart.MART, mart.trainable,
               "Wang et al., \"Improving Adversarial Robustness Requires Revisiting Misclassified Examples\" "
               "(ICLR 2020)", lambda cfg: "mart"),
    MethodSpec(single_step.SingleStep, single_step.trainable,
               "RS-FGSM: Wong, Rice & Kolter, \"Fast is better than free: Revisiting adversarial training\" "
               "(ICLR 2020); N-FGSM: de Jorge et al., \"Make Some Noise: Reliable and Efficient Single-Step "
               "Adversarial Training\" (NeurIPS 2022)", lambda cfg: cfg.variant),
    MethodSpec(gradalign.GradAlign, gradalign.trainable,
               "Andriushchenko & Flammarion, \"Understanding and Improving Fast Adversarial Training\" "
               "(NeurIPS 2020)", lambda cfg: _gradalign_speed(cfg.lam)),
)
METHODS: dict[str, MethodSpec] = {spec.name: spec for spec in _SPECS}


def method(name: str) -> MethodSpec:
    """The registered method ``name``; :class:`UnknownMethodError` lists the registered names."""
    try:
        return METHODS[name]
    except KeyError:
        raise UnknownMethodError(f"unknown method {name!r}; registered: {', '.join(METHODS)}") from None


def method_of_config(cfg: TrainConfig) -> MethodSpec:
    """The method whose config class is exactly ``type(cfg)``: an ExtractorConfig (a BaselineConfig subclass) is
    the AFS extractor's, not the baseline's."""
    spec = next((spec for spec in METHODS.values() if spec.config is type(cfg)), None)
    if spec is None:
        configs = ", ".join(f"{spec.config.__name__} ({name})" for name, spec in METHODS.items())
        raise UnknownMethodError(f"no registered method trains a {type(cfg).__name__}; registered: {configs}")
    return spec
