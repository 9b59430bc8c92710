"""The one list of training methods: for each, its name, its config class, where its training code and Ray Tune
trainable are, its paper and its name in the speed tables of ``launch/cost.py``. The sweeps, the dry-run cost
estimate, ``benchmarks/throughput.py`` and the tests take their methods from here, and ``tests/test_registry.py``
fails for a method registered without a recipe card, property tests or a cost entry.

Importing the registry loads the config classes only (``trainables/methods/configs.py``): a sweep names its method
and validates every trial's config before the training code, torch, Ray and MLflow load.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

from trainables.config import RunSettings, TrainConfig
from trainables.methods import configs

if TYPE_CHECKING:
    from trainables.runtime import Method


@dataclass(frozen=True)
class MethodSpec:
    name: str  # the registry key and the MLflow ``method`` tag of every run: the Method class's ``name``
    config: type[TrainConfig]  # the trials' config class: the Method class's ``Config``
    code: str  # "module:MethodClass:trainable" in trainables/methods/, imported when a trial needs it
    paper: str  # the paper (authors, title, venue) it implements
    speed_name: Callable[[TrainConfig], str]  # the method's name in launch/cost.py's speed tables for this config

    def _code(self, part: int) -> Any:
        module, *names = self.code.split(":")
        return getattr(import_module(f"trainables.methods.{module}"), names[part])

    @property
    def method(self) -> type[Method]:
        """The runtime Method subclass that trains it (imports its training code, torch and the runtime)."""
        return self._code(0)

    @property
    def trainable(self) -> Callable[[dict[str, Any], RunSettings], None]:
        """The Ray Tune function trainable (imports its training code)."""
        return self._code(1)


class UnknownMethodError(LookupError):
    """A method name or config type that no registered method has; the message lists the registered ones."""


def _baseline_speed(cfg: configs.BaselineConfig) -> str:
    # eps 0 trains on clean images only (AFS's extractor 0), whatever ``training`` says: timed as standard training.
    return "standard" if cfg.eps == 0 else cfg.training


def _uiat_speed(cfg: configs.UIATConfig) -> str:
    variant = "iat" if not cfg.universal else "uiat_oneoff" if cfg.oneoff else "uiat"
    if cfg.training_attack == "pgd":
        return variant
    # On a single-step attack (UIAT Table 5), named like that method's own trials: "n_fgsm_uiat_oneoff".
    attack = _gradalign_speed(cfg.align_lam) if cfg.training_attack == "gradalign" else cfg.training_attack
    return f"{attack}_{variant}"


def _gradalign_speed(lam: float) -> str:
    return "gradalign" if lam > 0 else "fgsm"  # without the regulariser it is plain FGSM training


_SPECS = (
    MethodSpec("baseline", configs.BaselineConfig, "baseline:Baseline:trainable",
               "standard training; PGD-AT: Madry et al., \"Towards Deep Learning Models Resistant to Adversarial "
               "Attacks\" (ICLR 2018); TRADES: Zhang et al., \"Theoretically Principled Trade-off between Robustness "
               "and Accuracy\" (ICML 2019)", _baseline_speed),
    # The paper's venue is not recorded in this project.
    MethodSpec("afs_extractor", configs.ExtractorConfig, "afs:Extractor:extractor_trainable",
               "AFS stage 1: Liu & Zhao, \"Towards Both Accurate and Robust Neural Networks without Extra Data\"",
               _baseline_speed),
    # The AFS method itself: its stage 2, the merger over the extractors of stage 1.
    MethodSpec("afs", configs.MergerConfig, "afs:Merger:merger_trainable",
               "AFS stage 2: Liu & Zhao, \"Towards Both Accurate and Robust Neural Networks without Extra Data\"",
               lambda cfg: "afs_merger"),  # the speed tables' name (benchmarks/throughput.py)
    MethodSpec("biamat", configs.BiaMATConfig, "biamat:BiaMAT:trainable",
               "Lee et al., \"Inducing Data Amplification Using Auxiliary Datasets in Adversarial Training\" "
               "(WACV 2023)", lambda cfg: f"{cfg.variant}_biamat"),
    MethodSpec("uiat", configs.UIATConfig, "uiat:UIAT:trainable",
               "Dong et al., \"The Enemy of My Enemy is My Friend: Exploring Inverse Adversaries for Improving "
               "Adversarial Training\" (CVPR 2023)", _uiat_speed),
    MethodSpec("hat", configs.HATConfig, "hat:HAT:trainable",
               "Rade & Moosavi-Dezfooli, \"Reducing Excessive Margin to Achieve a Better Accuracy vs. Robustness "
               "Trade-off\" (ICLR 2022)", lambda cfg: "hat"),
    MethodSpec("mart", configs.MARTConfig, "mart:MART:trainable",
               "Wang et al., \"Improving Adversarial Robustness Requires Revisiting Misclassified Examples\" "
               "(ICLR 2020)", lambda cfg: "mart"),
    MethodSpec("single_step", configs.SingleStepConfig, "single_step:SingleStep:trainable",
               "RS-FGSM: Wong, Rice & Kolter, \"Fast is better than free: Revisiting adversarial training\" "
               "(ICLR 2020); N-FGSM: de Jorge et al., \"Make Some Noise: Reliable and Efficient Single-Step "
               "Adversarial Training\" (NeurIPS 2022)", lambda cfg: cfg.variant),
    MethodSpec("gradalign", configs.GradAlignConfig, "gradalign:GradAlign:trainable",
               "Andriushchenko & Flammarion, \"Understanding and Improving Fast Adversarial Training\" "
               "(NeurIPS 2020)", lambda cfg: _gradalign_speed(cfg.lam)),
    MethodSpec("fat", configs.FATConfig, "fat:FAT:trainable",
               "Zhang et al., \"Attacks Which Do Not Kill Training Make Adversarial Learning Stronger\" (ICML 2020)",
               lambda cfg: f"fat_{cfg.variant}"),
    MethodSpec("lbgat", configs.LBGATConfig, "lbgat:LBGAT:trainable",
               "Cui et al., \"Learnable Boundary Guided Adversarial Training\" (ICCV 2021)", lambda cfg: "lbgat"),
    MethodSpec("tla", configs.TLAConfig, "tla:TLA:trainable",
               "Mao et al., \"Metric Learning for Adversarial Robustness\" (NeurIPS 2019)", lambda cfg: "tla"),
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
