"""HAT: helper-based adversarial training, TRADES plus a loss on helper examples labelled by a standard model.

Paper: Rade & Moosavi-Dezfooli, "Reducing Excessive Margin to Achieve a Better Accuracy vs. Robustness Trade-off"
(ICLR 2022). Per batch, averaged over it:

    CE(f(x), y) + beta * KL(p(x) || p(x_adv)) + gamma * CE(f(x_helper), y_helper),
    x_helper = x + h * (x_adv - x),   y_helper = argmax f_std(x_adv)

with ``x_adv`` from the TRADES attack (PGD on the KL to the clean prediction, in the attack's BatchNorm mode) and
``f_std`` a standard-trained helper model, frozen. Values and choices, with their source (the authors' code,
github.com/imrahulr/hat: ``core/utils/hat.py`` ``hat_loss``, ``core/utils/parser.py``, ``core/utils/train.py``,
README):

- y_helper is the helper's prediction on ``x_adv``, not on ``x_helper`` (``hat_loss``: ``hr_model(x_adv).argmax``),
  in eval mode without gradient.
- ``x_helper`` is not clipped to [0, 1] (``hat_loss`` does not clip it): it lies up to ``h * eps`` from ``x``.
- h = 2: ``parser.py``'s ``--h`` default, the paper's helper ``x + 2r``.
- beta = 2.5, gamma = 0.5: the README's CIFAR-10 ResNet-18 HAT command (no extra data); its command with extra
  generated data uses beta = 3.5, gamma = 0.5. Values for SVHN and Tiny-ImageNet were not in these sources: a sweep
  sets them.
- The attack starts at ``x + 0.001 N(0, 1)`` (``hat_loss``), the default here (``attack_start: normal``); its
  10 steps of 2/255 at eps 8/255 are the shared defaults (``parser.py``). The rest of the reference recipe is the
  sweep's: 50 epochs (README), SGD with Nesterov momentum, cyclic LR peaking at 0.21, weight decay 5e-4 (``parser.py``).
- The helper is the standard run's best-clean-accuracy weights (``train.py`` saves ``weights-best.pt`` by clean test
  accuracy): here the helper trial's MLflow model ``best`` (standard training keeps its best clean epoch,
  methods/baseline.py).

The helper is a finished baseline trial with ``training=standard`` of the sweep ``helper_sweep`` (MLflow experiment
:data:`HELPER_EXPERIMENT`), found through trainables/stage_runs.py like AFS's extractors. Match rule: its ``dataset``,
``model`` and ``seed`` params equal the HAT trial's (each seed of a HAT sweep has its own helper, so seeds stay
independent replicates); among several such trials the newest. It is frozen: eval mode, no gradient, held outside the
model, so neither the optimiser nor the checkpoints see it (a resumed trial loads it again from MLflow). A sweep checks
that every trial has its helper before Ray starts: ``find_helpers(uri, sweep).require(dataset, model, seeds)``.
With gamma = 0 the helper term is not computed and the loss is exactly TRADES's (trainables/trades_loss.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from mlflow.tracking import MlflowClient
from torch import Tensor

from trainables.config import RunSettings
from trainables.loader import Batch
from trainables.methods.configs import HATConfig
from trainables.models import Classifier, create_model
from trainables.runtime import Method, TrialData, run_trial
from trainables.safe_export import load_trained_model
from trainables.stage_runs import finished_trials
from trainables.tracking import has_model
from trainables.trades_loss import trades

HELPER_EXPERIMENT = "baselines"  # the MLflow experiment (sweep family) of sweeps/baselines.py
HELPER_MODEL = "best"  # the helper trial's logged model (runtime.log_models)
HelperKey = tuple[str, str, int]  # (dataset, model, seed)


class MissingHelperError(LookupError):
    """The helper sweep has no finished standard-training trial for a HAT trial (not run, failed, or still running)."""


@dataclass(frozen=True)
class HelperRuns:
    """The finished standard-training trials of one helper sweep: (dataset, model, seed) -> MLflow run id."""

    sweep: str
    tracking_uri: str
    preset: str  # the sweep's preset (its parent run's tag), for the command in error messages
    runs: dict[HelperKey, str]

    def require(self, dataset: str, model: str, seeds: Iterable[int]) -> None:
        """Raise :class:`MissingHelperError` naming the seeds of ``model`` on ``dataset`` that have no helper, and the
        command that trains them."""
        seeds = sorted(set(seeds))
        missing = [seed for seed in seeds if (dataset, model, seed) not in self.runs]
        if not missing:
            return
        have = "; ".join(f"seed {s} {m} on {d}" for d, m, s in sorted(self.runs)) or "none"
        raise MissingHelperError(
            f"helper sweep {self.sweep!r} has no finished standard-training trial of model={model!r} on "
            f"dataset={dataset!r} for seed(s) {', '.join(map(str, missing))} (finished standard trials: {have}). "
            f"Train them with `python sweeps/baselines.py --preset {self.preset} --name {self.sweep} "
            f"--seeds {max(seeds) + 1} --tracking-uri {self.tracking_uri}` (--resume if it was interrupted; a preset "
            "whose trainings include standard), or set helper_sweep to a sweep that has them"
        )

    def run_id(self, dataset: str, model: str, seed: int) -> str:
        self.require(dataset, model, [seed])
        return self.runs[(dataset, model, seed)]


def find_helpers(tracking_uri: str, sweep: str) -> HelperRuns:
    """The finished standard-training trials of ``sweep``; a sweep that does not exist is a :class:`MissingHelperError`
    that says how to run it."""
    found = finished_trials(tracking_uri, HELPER_EXPERIMENT, sweep)
    if found is None:
        raise MissingHelperError(
            f"no helper sweep {sweep!r} in experiment {HELPER_EXPERIMENT!r} of {tracking_uri}: train the helper first "
            f"with `python sweeps/baselines.py --preset <preset> --name {sweep} --tracking-uri {tracking_uri}` "
            "(a preset whose trainings include standard, as smoke's do)"
        )
    runs: dict[HelperKey, str] = {}
    for run in found.runs:  # newest first: the newest trial of a key wins
        params = run.data.params
        if params.get("training") == "standard":
            runs.setdefault((params["dataset"], params["model"], int(params["seed"])), run.info.run_id)
    return HelperRuns(sweep, tracking_uri, found.preset, runs)


def load_helper(cfg: HATConfig, tracking_uri: str, num_classes: int, image_size: int) -> Classifier:
    """The helper of a HAT trial (the match rule of the module docstring) with its logged ``best`` weights, on the
    CPU. Built under a forked RNG: loading it draws nothing from the trial's random stream."""
    run_id = find_helpers(tracking_uri, cfg.helper_sweep).run_id(cfg.dataset, cfg.model, cfg.seed)
    client = MlflowClient(tracking_uri)
    if not has_model(client, run_id, HELPER_MODEL):
        raise MissingHelperError(f"helper run {run_id} of sweep {cfg.helper_sweep!r} logged no model "
                                 f"{HELPER_MODEL!r} (trained before trials logged their models): train the helper "
                                 "again with `python sweeps/baselines.py` under a new --name and set helper_sweep to it")
    with torch.random.fork_rng(devices=[]):
        helper = create_model(cfg.model, num_classes, image_size=image_size)
    helper.load_state_dict(load_trained_model(client, run_id, HELPER_MODEL).state_dict())
    return helper


def helper_examples(x: Tensor, x_adv: Tensor, h: float) -> Tensor:
    """``x + h * (x_adv - x)``: the adversarial perturbation stretched h times, not clipped to [0, 1]."""
    return x + h * (x_adv - x)


class HAT(Method):
    name = "hat"
    Config = HATConfig
    cfg: HATConfig

    def __init__(self, cfg: HATConfig, data: TrialData, device: torch.device, settings: RunSettings) -> None:
        self.tracking_uri = settings.tracking_uri
        super().__init__(cfg, data, device, settings)
        # Not a submodule of self.model: outside the optimiser, the checkpoints and model.train().
        helper = self.load_helper().to(device).eval().requires_grad_(False)
        if cfg.channels_last:
            helper = helper.to(memory_format=torch.channels_last)
        self.helper = helper

    def load_helper(self) -> Classifier:
        return load_helper(self.cfg, self.tracking_uri, self.data.train.num_classes, self.data.train.image_size)

    def loss(self, batch: Batch, epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
        cfg, model, x, y = self.cfg, self.model, batch.x, batch.y
        total, logs, x_adv = trades(cfg, model, x, y, cfg.beta)
        if cfg.gamma == 0:  # TRADES: the helper term of weight 0 is not computed
            return total, logs
        with torch.no_grad():
            y_helper = self.helper(x_adv).argmax(1)
        logits_helper = model(helper_examples(x, x_adv, cfg.h))
        helper_loss = F.cross_entropy(logits_helper, y_helper)
        return total + cfg.gamma * helper_loss, logs | {
            "helper_loss": helper_loss.detach(),
            "helper_acc": (logits_helper.argmax(1) == y_helper).float().mean(),  # agreement with the helper labels
            "helper_relabelled": (y_helper != y).float().mean(),  # share of helper labels that differ from y
        }


def trainable(config: dict[str, Any], settings: RunSettings) -> None:
    """Ray Tune function trainable; bind ``settings`` with ``tune.with_parameters``."""
    run_trial(config, HAT, settings)
