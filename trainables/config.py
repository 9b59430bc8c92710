"""Typed trial configuration.

A search space is a flat dict whose keys are the MLflow/Optuna parameter names. Each method turns it into one frozen
dataclass of defaults (a subclass of :class:`TrainConfig`) that rejects unknown keys, wrong types and out-of-range
values *before* any data loads. Run settings (paths, tracking URI, device) are not hyperparameters and live in
:class:`RunSettings`, so they never pollute MLflow params or Optuna's search space.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

if TYPE_CHECKING:
    import torch


class ConfigError(ValueError):
    """A hyperparameter is unknown, of the wrong type or out of range."""


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the annotation ``hint``; return it normalised (ints widen to float, lists to tuples)."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise ConfigError(f"{name}={value!r}: expected one of {list(typing.get_args(hint))}")
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(name, value, option)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError("; ".join(errors))
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}={value!r}: expected a list of values")
        (item_hint, _ellipsis) = typing.get_args(hint)
        return tuple(_coerce(name, item, item_hint) for item in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}={value!r}: expected true/false")
        return value
    if hint is int:
        # Tune and Optuna hand integers back as numpy/py ints; a float like 3.0 is accepted, 3.5 is not.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ConfigError(f"{name}={value!r}: expected an integer")
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name}={value!r}: expected a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}={value!r}: expected a string")
        return value
    raise TypeError(f"unsupported config annotation {hint!r} for {name}")


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is outside [{low}, {high}]")


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters every method shares. Epsilons are in [0, 1] pixel units (8/255 = 0.0314)."""

    dataset: str = "synthetic"
    # Test on another source's test split (npz:FOLDER's test.npz, an npz:FILE's images, folder:PATH's test/, which
    # may be all PATH holds), checked to fit the training set; "": the dataset's own test split.
    test_data: str = ""
    train_n: int = 0  # train on N of the training images only (0: all), for quick runs on a real dataset
    # Every subset a trial uses (train_n, holdout_n, eval_n, final_n, autoattack_n, train_eval_n) is a random sample
    # drawn with this seed, not the trial's: every trial of a sweep sees the same images (trainables/trial_data.py).
    subset_seed: int = 0
    # Extra training data in every batch (UIAT Table 4 and its references add 1M DDPM-generated images): any dataset
    # name, in practice npz:PATH, its train split read; "" for none. A batch then holds original_per_batch images of
    # the training set and the rest from extra_data, each stream reshuffled per pass (trainables/loader.py
    # MixedLoader, which also says what an epoch is). extra_data equal to dataset adds the training images that
    # train_n leaves out (fresh draws of the same distribution, what the smoke presets use for generated data).
    extra_data: str = ""
    original_fraction: float = 1.0  # the share of each batch from the training set; below 1 only with extra_data
    # What an epoch is when extra_data fills part of each batch: "images", as many images as the training set
    # (ceil(N / batch_size) batches, HAT's and Gowal et al.'s count); "original_pass", one pass over the training set
    # (ceil(N / original_per_batch) batches, Carmon et al.'s robust self-training, whose epochs count labelled data).
    mixed_epoch: Literal["images", "original_pass"] = "images"
    model: str = "tiny-cnn"
    # Starting weights: "RUN_ID" (or "RUN_ID/last") of a finished run of the same MLflow store, whose selected model's
    # tensors initialise the network where names and shapes match (trainables/initial_weights.py: fine-tuning after
    # pre-training, BiaMAT Tables 3, 7 and 8); "" trains from a random initialisation.
    init_from: str = ""
    epochs: int = 10
    batch_size: int = 128
    seed: int = 0
    # Optimiser and schedule.
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: Literal["piecewise", "cyclic", "constant"] = "piecewise"
    # Piecewise decay points: a value m >= 1 is the 1-based epoch that first runs at the decayed rate ([100, 105]
    # trains 99 / 5 / 6 epochs of 110); a value below 1 is a fraction of the training steps (training.decay_steps).
    lr_milestones: tuple[float, ...] = (0.5, 0.75)
    lr_gamma: float = 0.1
    # Training threat model (PGD-10, step 2/255, eps 8/255 by default).
    eps: float = 8 / 255
    attack_step: float = 2 / 255
    attack_steps: int = 10
    # PGD start: "uniform" in the eps-ball (Madry), x + 0.001*N(0, 1) with the first gradient taken there unprojected
    # ("normal": the TRADES, MART and HAT reference loops), or that start projected first ("normal_clamped").
    attack_start: Literal["uniform", "normal", "normal_clamped"] = "uniform"
    # Training-set augmentation: "auto" is random crop (4 px) and horizontal flip, except on digits (SVHN: no paper of
    # the three states its augmentation, and a flipped digit is no digit) where it is the crop alone; or name one:
    # "crop_flip", "crop", "none" (trainables/loader.py). Extra data follows it; BiaMAT's auxiliary sets use their own.
    augment: Literal["auto", "crop_flip", "crop", "none"] = "auto"
    # BatchNorm while crafting: running statistics ("eval"), batch statistics without updating them ("batch"), or
    # train mode, batch statistics that also update the running ones ("train", AFS's reference extractors).
    attack_bn: Literal["eval", "batch", "train"] = "eval"
    # Checkpoint selection: clean + PGD-<attack_steps> accuracy on eval_n fixed points, evaluated at epoch eval_from
    # (1-based; "first_decay": the first epoch run at a decayed LR), then every eval_every epochs, and always at the
    # last epoch and at keep_epoch. The selected ("best/*") weights are those with the best PGD accuracy, or with
    # keep_epoch > 0 the weights after that 1-based epoch whatever their score (a reference that keeps a fixed epoch).
    eval_n: int = 1000
    eval_every: int = 1
    eval_from: int | Literal["first_decay"] = 1
    keep_epoch: int = 0
    # Where the selection points come from: eval_n test points (the papers' protocol), or a held-out split of
    # holdout_n training images, which the trial then does not train on (no test-set leakage).
    select_on: Literal["test", "holdout"] = "test"
    holdout_n: int = 1000
    # A budgeted sweep's rungs (--budget, launch/budget.py): after each of these 1-based epochs the trial also scores
    # its selection metric on the selection points and reports it as rung/score, which the sweep's scheduler ranks
    # to stop the poorer trials. A rung evaluation never changes which checkpoint is selected. Empty: no rungs.
    rung_epochs: tuple[int, ...] = ()
    # Learning curves on training data (UIAT Fig. 2, robust overfitting): with train_eval_n > 0, every epoch that
    # checkpoint selection evaluates also evaluates clean and PGD-<attack_steps> accuracy on train_eval_n of the
    # training images (un-augmented), logged as train_eval/clean and train_eval/pgd<k>; 0: off.
    train_eval_n: int = 0
    # The curves' PGD: with curve_steps > 0, every epoch that selection evaluates also logs PGD-<curve_steps> accuracy
    # on the selection points (select/pgd<k>) and the training subset (train_eval/pgd<k>) beside the selection's own
    # PGD-<attack_steps>, which still chooses the checkpoint (UIAT Fig. 2 plots PGD-20 curves); 0: none.
    curve_steps: int = 0
    # Final protocol on the selected and the last checkpoint.
    final_attacks: tuple[str, ...] = ("clean", "pgd20")
    final_n: int = 10000
    autoattack_n: int = 0  # AutoAttack on N of the final points (0: all of them), when listed in final_attacks
    # PGD/CW step of the final protocol (0: eps / 4, i.e. 2/255 at 8/255); the TRADES repository evaluates with 0.003.
    final_attack_step: float = 0.0
    # Fast paths (results must agree with fp32 eager within tolerance, tests/test_fast_paths.py).
    precision: Literal["fp32", "bf16"] = "fp32"
    channels_last: bool = False
    compile: bool = False  # torch.compile of the model body (minutes of compilation per trial; pays off on a GPU)
    # Linear LR scaling for larger batches (Goyal et al. 2017): lr applies at this batch size and scales with
    # batch_size / lr_base_batch (0: lr is used as given).
    lr_base_batch: int = 0

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Self:
        """Build from a flat search-space dict; unknown keys and bad values raise :class:`ConfigError`."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ConfigError(f"unknown hyperparameters {unknown} for {cls.__name__}; known: {sorted(fields)}")
        hints = typing.get_type_hints(cls)
        return cls(**{name: _coerce(name, value, hints[name]) for name, value in values.items()})

    def augmentation(self) -> Literal["crop_flip", "crop", "none"]:
        """The training set's augmentation: :attr:`augment`, with "auto" resolved for :attr:`dataset`."""
        from trainables.dataset_names import default_augmentation

        return default_augmentation(self.dataset) if self.augment == "auto" else self.augment

    def __post_init__(self) -> None:
        from trainables.attack_names import parse_attack
        from trainables.dataset_names import validate_dataset_name
        from trainables.model_names import validate_model_name

        try:
            validate_dataset_name(self.dataset)  # a registered name, npz:PATH or folder:PATH
            if self.test_data:
                validate_dataset_name(self.test_data)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        try:
            validate_model_name(self.model)
            for attack in self.final_attacks:
                parse_attack(attack)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        _check_range("eps", self.eps, 0.0, 1.0)
        _check_range("attack_step", self.attack_step, 0.0, 1.0)
        _check_range("momentum", self.momentum, 0.0, 1.0)
        _check_range("lr_gamma", self.lr_gamma, 0.0, 1.0)
        _check_range("final_attack_step", self.final_attack_step, 0.0, 1.0)
        for name in ("epochs", "batch_size", "eval_every", "eval_n", "final_n"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)} must be at least 1")
        for name in ("train_n", "attack_steps", "autoattack_n", "holdout_n", "seed", "lr_base_batch", "train_eval_n",
                     "curve_steps",
                     "subset_seed"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)} must not be negative")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ConfigError(f"lr={self.lr} must be positive and weight_decay={self.weight_decay} non-negative")
        if self.select_on == "holdout" and self.holdout_n < 1:
            raise ConfigError("select_on='holdout' needs holdout_n >= 1")
        self._check_training_images()
        if self.init_from and not re.fullmatch(r"[0-9a-f]{32}(/(best|last))?", self.init_from):
            raise ConfigError(f"init_from={self.init_from!r} must be the 32-character id of an MLflow run, optionally "
                              "followed by /best or /last (the runs table shows the id), or '' for random weights")
        for m in self.lr_milestones:
            # A milestone past the last epoch is allowed (never reached), so a shortened run keeps its preset's.
            if not (0 < m < 1 or (m == round(m) and m >= 1)):
                raise ConfigError(f"lr_milestones has {m}: a milestone is a fraction of training in (0, 1) or the "
                                  "1-based epoch that first runs at the decayed rate (a whole number >= 1)")
        # Where each decay starts, in epochs from the start: a fraction of training, or a 1-based epoch.
        starts = [m * self.epochs if m < 1 else m - 1 for m in self.lr_milestones]
        if any(a >= b for a, b in pairwise(starts)):
            raise ConfigError(f"lr_milestones={list(self.lr_milestones)} must increase, e.g. "
                              f"{sorted(set(self.lr_milestones))}: each is where the next decay starts")
        if not self.final_attacks:
            raise ConfigError("final_attacks is empty: the final protocol needs at least one, e.g. ['clean', 'pgd20']")
        if isinstance(self.eval_from, int) and not 1 <= self.eval_from <= self.epochs:
            raise ConfigError(f"eval_from={self.eval_from} must be a 1-based epoch in 1..epochs={self.epochs} "
                              "or 'first_decay'")
        if self.eval_from == "first_decay" and (self.schedule != "piecewise" or not self.lr_milestones):
            raise ConfigError("eval_from='first_decay' needs a piecewise schedule with lr_milestones")
        if list(self.rung_epochs) != sorted(set(self.rung_epochs)) or any(
                not 1 <= e < self.epochs for e in self.rung_epochs):
            raise ConfigError(f"rung_epochs={list(self.rung_epochs)} must be increasing 1-based epochs before the last "
                              f"(1..{self.epochs - 1}): a rung ranks trials that still have epochs to run")
        if not 0 <= self.keep_epoch <= self.epochs:
            raise ConfigError(f"keep_epoch={self.keep_epoch} must be 0 (keep the best) or a 1-based epoch in "
                              f"1..epochs={self.epochs}")
        self._check_extra_data()

    def _check_training_images(self) -> None:
        """With ``train_n`` set, the images left to train on (less the held-out selection images) must fill a batch:
        otherwise the trial would fail on an empty loader after Ray started, and be retried to no purpose."""
        if not self.train_n:
            return  # the whole training set: its size is known only once the data is read
        held = self.holdout_n if self.select_on == "holdout" else 0
        per_batch = round(self.original_fraction * self.batch_size) if self.extra_data else self.batch_size
        if self.train_n - held < per_batch:
            beside = f" beside the holdout_n={held} held out for checkpoint selection" if held else ""
            raise ConfigError(f"train_n={self.train_n} leaves {max(0, self.train_n - held)} images to train on{beside}, "
                              f"fewer than one batch of {per_batch}: set train_n to {held + per_batch} or more"
                              + (", or lower holdout_n" if held else ", or lower batch_size"))

    def _check_extra_data(self) -> None:
        from trainables.dataset_names import validate_dataset_name

        fraction = self.original_fraction
        if not 0 < fraction <= 1:
            raise ConfigError(f"original_fraction={fraction} must be in (0, 1]: the share of each batch drawn from "
                              "the training set (0.3 with 1M generated images, Gowal et al. 2021)")
        if not self.extra_data:
            if fraction != 1:
                raise ConfigError(f"original_fraction={fraction} needs extra_data to fill the rest of each batch: "
                                  "set extra_data (e.g. npz:data/cifar10_ddpm.npz), or original_fraction=1")
            return
        try:
            validate_dataset_name(self.extra_data)
        except ValueError as exc:
            raise ConfigError(f"extra_data: {exc}") from None
        if self.extra_data == self.dataset and self.train_n == 0:
            raise ConfigError(f"extra_data={self.extra_data!r} is the training set itself, which adds only the images "
                              "train_n leaves out: set train_n, or name other data (e.g. npz:data/cifar10_ddpm.npz)")
        if not 1 <= self.original_per_batch < self.batch_size:
            raise ConfigError(f"original_fraction={fraction} of batch_size={self.batch_size} gives "
                              f"{self.original_per_batch} training images per batch: each batch needs at least one "
                              "from each set, so choose original_fraction or batch_size to leave both")

    @property
    def original_per_batch(self) -> int:
        """Training-set images in each batch: ``round(original_fraction * batch_size)``, the rest from extra_data."""
        return round(self.original_fraction * self.batch_size)

    @property
    def scaled_lr(self) -> float:
        """The peak learning rate the optimiser uses: ``lr``, linearly scaled when ``lr_base_batch`` is set."""
        return self.lr * self.batch_size / self.lr_base_batch if self.lr_base_batch else self.lr

    def params(self) -> dict[str, str]:
        """Flat parameters for MLflow, as people read them: floats to 6 significant digits (8/255 shows as 0.0313725,
        not 0.03137254901960784), tuples as comma-joined values. The exact values go in the run's config artifact."""

        def text(value: Any) -> str:
            if isinstance(value, tuple):
                return ",".join(map(text, value))
            return f"{value:.6g}" if isinstance(value, float) else str(value)

        return {k: text(v) for k, v in dataclasses.asdict(self).items()}


def git_commit(path: str | os.PathLike | None = None) -> str:
    """The commit of the working tree that launched a run ("unknown" outside a git checkout)."""
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()


@dataclass(frozen=True)
class RunSettings:
    """Where a trial reads data and logs, chosen by the sweep, never searched over.

    ``tracking_uri`` must be reachable from every worker: an absolute ``sqlite:////...`` path on one machine, an
    ``http://`` tracking server on a cluster (Ray changes a trial's working directory, so relative paths break).
    """

    tracking_uri: str
    experiment: str
    data_root: str | None = None
    parent_run_id: str | None = None
    # Config keys whose values name the run in the MLflow UI, e.g. ("variant", "pi", "seed") -> "variant=AT pi=0.55 seed=0".
    name_keys: tuple[str, ...] = ()
    git_commit: str = field(default_factory=git_commit)
    tags: Mapping[str, str] = field(default_factory=dict)
    device: str | None = None
    # A trial none of whose checkpoints can be read trains again from epoch 0 in a new run (--restart-unreadable),
    # instead of failing with CorruptCheckpointError.
    restart_unreadable: bool = False

    def resolve_device(self) -> torch.device:
        import torch  # here, not above: configs are validated before a sweep loads torch (launch/checks.py)

        if self.device:
            return torch.device(self.device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
