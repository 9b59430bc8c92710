"""The trial runtime: the one place that owns the epoch loop, resume, evaluation, checkpoints and MLflow.

A method contributes a :class:`Method` subclass: its config dataclass, its model, its extra state and a ``loss`` for
one batch. :func:`run_trial` is the body of every Ray Tune function trainable:

    def trainable(config, settings):            # tune.with_parameters(trainable, settings=...)
        run_trial(config, MyMethod, settings)

Per epoch it trains, evaluates clean and PGD accuracy on a fixed subset (checkpoint selection, Rice et al.), logs one
MLflow batch, and reports to Tune with a checkpoint that holds the whole state (model, optimiser, scheduler, epoch, RNG,
method state, best weights, MLflow run id), so a restarted trial continues bit-for-bit at the next epoch. After the
last epoch it runs the final protocol (``final_attacks``, AutoAttack included) on the best and on the last weights,
logs both as the run's MLflow models ``best`` and ``last`` (:func:`log_models`), and a method that
``registers_weights`` logs its best weights as an MLflow artifact for a later stage.
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import ray
import torch
from ray import tune
from torch import Tensor, nn

from trainables.attacks import bn_mode
from trainables.checkpoints import STATE_FILE, CorruptCheckpointError, load_checkpoint_state
from trainables.config import RunSettings, TrainConfig
from trainables.datasets import imgnet100_classes
from trainables.evaluation import BestTracker, evaluate, evaluate_points, point_means
from trainables.image_set import ImageSet
from trainables.initial_weights import load_initial_weights, source_weights
from trainables.loader import Batch, DeviceLoader, MixedLoader
from trainables.models import Classifier, create_model
from trainables.safe_export import SAFE_FOLDER, classifier_architecture, save_safe_model
from trainables.tracking import (
    EPOCH_METRIC,
    NODE_TAG,
    RUNG_SCORE,
    TRIAL_TAG,
    TrialRun,
    failure_reason,
    retire_trial_run,
)
from trainables.training import (
    first_decay_epoch,
    make_optimizer,
    make_scheduler,
    precision,
    rng_state,
    set_rng_state,
    start_as_fresh_worker,
)
from trainables.trial_data import TrialData

# On a trial that resumed from an older checkpoint because a newer one was unreadable: which, and why.
RECOVERED_TAG = "resumed_from_older_checkpoint"
RESTARTED_TAG = "restarted_from_epoch_0"  # --restart-unreadable trained the trial again: why (its checkpoints' errors)
IMGNET100_CLASSES_TAG = "imgnet100_classes"
INITIALISED_TAG = "init_from_left_fresh"  # the tensors init_from's weights did not cover (trainables/initial_weights.py)


class Method:
    """What a method adds to the runtime. Subclasses set ``name`` and ``Config`` and override ``loss``."""

    name: ClassVar[str]
    Config: ClassVar[type[TrainConfig]] = TrainConfig
    # Log the selected (best) weights as an MLflow artifact at the end, for a later stage to consume (AFS's merger
    # stacks the extractors' weights). Off by default: most trials' weights are never read again.
    registers_weights: ClassVar[bool] = False

    def __init__(self, cfg: TrainConfig, data: TrialData, device: torch.device, settings: RunSettings) -> None:
        self.cfg = cfg
        self.data = data
        self.device = device
        self.model: Classifier = self.build_model().to(device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if cfg.compile:
            # In place, so state_dict keys (checkpoints, best weights) stay those of the eager model. The body is
            # what every pass goes through (forward, features, attacks); BatchNorm train/eval switches between
            # attack and update are guards, each mode compiled once.
            self.model.body.compile()

    def build_model(self) -> Classifier:
        return create_model(self.cfg.model, self.data.train.num_classes, image_size=self.data.train.image_size)

    def parameters(self) -> Iterable[nn.Parameter]:
        """What the optimiser updates (AFS's merger overrides this to exclude frozen extractors)."""
        return self.model.parameters()

    def datasets(self) -> list[tuple[str, str]]:
        """The datasets the trial reads, as ``(name, role)``, for the MLflow run's inputs."""
        return [(self.cfg.dataset, "train"), *([(self.cfg.extra_data, "extra")] if self.cfg.extra_data else [])]

    def on_epoch_start(self, epoch: int) -> None:
        """Hook for epoch-dependent behaviour (warm-up, momentum from epoch T, ...)."""

    def loss(self, batch: Batch, epoch: int) -> tuple[Tensor, dict[str, Tensor]]:
        """Training loss of one batch and detached per-batch diagnostics (averaged over the epoch by the runtime).

        Called with the model in train mode; attacks pick their own BatchNorm mode through ``attacks.bn_mode``.
        """
        raise NotImplementedError

    def epoch_metrics(self) -> dict[str, float]:
        """Method-specific metrics for the epoch just finished (e.g. BiaMAT's n_high/n_aux)."""
        return {}

    def epoch_artifacts(self, epoch: int) -> dict[str, str]:
        """Text files for the run's artifacts after 0-based ``epoch``, by path: per-epoch records too large to be
        metrics (BiaMAT's per-class gate counts)."""
        return {}

    def selection_metric(self) -> str:
        """The ``select/*`` score whose best epoch checkpoint selection keeps: PGD accuracy at the training threat
        model; a method overrides it where that says nothing (standard training: clean accuracy, methods/baseline.py)."""
        return f"pgd{self.cfg.attack_steps}"

    def final_eps(self) -> float:
        """The threat model of the final protocol: the training eps, unless a method fixes one for every trial (AFS's
        extractors are trained at 0..9/255 and all evaluated at 8/255)."""
        return self.cfg.eps

    def final_metrics(self, models: Mapping[str, Classifier]) -> dict[str, float]:
        """Method-specific metrics of the final protocol, given the ``{"best": ..., "last": ...}`` models in eval mode;
        keys are logged as returned (AFS: ``best/delta_z``, model size)."""
        del models
        return {}

    def exported_model(self, weights: Mapping[str, Tensor]) -> nn.Module:
        """A copy of the model holding ``weights`` that works on its own, for :func:`log_models` (which moves it to the
        CPU and eval mode). AFS's merger overrides it to register its frozen stack."""
        model = copy.deepcopy(self.model)
        model.load_state_dict(weights)
        return model

    def exported_architecture(self) -> dict[str, Any]:
        """What rebuilds :meth:`exported_model` without unpickling (trainables/safe_export.py); AFS's merger
        overrides it with its stack."""
        return classifier_architecture(self.model, self.cfg.model, self.data.train.image_size)

    def state_dict(self) -> dict[str, Any]:
        """Method state beyond the model weights that a resume needs (omega, z_c, per-sample targets, streams)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        del state


class Trial:
    """A method plus its optimiser, schedule, loader and selection state: everything a checkpoint must hold."""

    def __init__(self, method: Method) -> None:
        cfg = method.cfg
        self.method = method
        self.cfg = cfg
        data = method.data
        self.loader: DeviceLoader | MixedLoader
        if data.extra is None:
            self.loader = DeviceLoader(data.train, cfg.batch_size, device=method.device, augment=cfg.augmentation(),
                                       shuffle=True, seed=cfg.seed, drop_last=True)
        else:
            self.loader = MixedLoader(data.train, data.extra, cfg.batch_size, cfg.original_per_batch,
                                      device=method.device, seed=cfg.seed, augment=cfg.augmentation(),
                                      epoch=cfg.mixed_epoch)
        self.optimizer = make_optimizer(method.parameters(), cfg)
        self.scheduler = make_scheduler(self.optimizer, cfg, len(self.loader))
        self.tracker = BestTracker(method.selection_metric(), keep_epoch=cfg.keep_epoch - 1 if cfg.keep_epoch else None)
        self.best_weights: dict[str, Tensor] | None = None
        self.final_points: dict[str, Tensor] = {}
        self.next_epoch = 0

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training set. Diagnostics are summed on the device: no host sync inside the loop."""
        method, model = self.method, self.method.model
        model.train()
        method.on_epoch_start(epoch)
        sums: dict[str, Tensor] = {}
        counts: dict[str, int] = {}
        for batch in self.loader.epoch(epoch):
            with precision(self.cfg.precision, method.device):
                loss, logs = method.loss(batch, epoch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            for key, value in {"loss": loss, **logs}.items():
                value = value.detach().float()
                sums[key] = sums[key] + value if key in sums else value
                counts[key] = counts.get(key, 0) + 1
        # A diagnostic may exist for only part of an epoch (BiaMAT's routing starts on its first step after warm-up).
        metrics = {f"train/{k}": v.item() / counts[k] for k, v in sums.items()}
        metrics.update(method.epoch_metrics())
        return metrics

    def select_metrics(self) -> dict[str, float]:
        """Clean and PGD accuracy on the fixed selection subset, at the training threat model."""
        return self.accuracies(self.method.data.select)

    def train_eval_metrics(self) -> dict[str, float]:
        """The same on ``train_eval_n`` of the training images (TrialData.train_eval_points), un-augmented (none when it is 0): the training-set
        learning curves of UIAT Fig. 2, whose gap to the selection curves shows robust overfitting."""
        if self.cfg.train_eval_n == 0:
            return {}
        points = self.method.data.train_eval_points(self.cfg.train_eval_n, self.cfg.subset_seed)
        return {f"train_eval/{k}": v for k, v in self.accuracies(points).items()}

    def accuracies(self, subset: ImageSet) -> dict[str, float]:
        """Clean and PGD-<attack_steps> accuracy on ``subset`` at the training threat model, seeded, eval mode; and
        PGD-<curve_steps> for the curves when the config asks for it."""
        cfg = self.cfg
        attacks = ["clean", f"pgd{cfg.attack_steps}"]
        if cfg.curve_steps and cfg.curve_steps != cfg.attack_steps:
            attacks.append(f"pgd{cfg.curve_steps}")
        return evaluate(self.method.model, subset.images, subset.labels, eps=cfg.eps, attacks=attacks,
                        device=self.method.device, seed=cfg.seed)

    def evaluates(self, epoch: int) -> bool:
        """Whether checkpoint selection evaluates after 0-based ``epoch``: from ``eval_from`` every ``eval_every``
        epochs, and always after the last epoch and after ``keep_epoch``."""
        cfg, number = self.cfg, epoch + 1  # 1-based, like eval_from, keep_epoch and the milestones
        start = first_decay_epoch(cfg, len(self.loader)) if cfg.eval_from == "first_decay" else cfg.eval_from
        scheduled = number >= start and (number - start) % cfg.eval_every == 0
        return scheduled or number in (cfg.epochs, cfg.keep_epoch)

    def end_epoch(self, epoch: int) -> dict[str, float]:
        """Evaluate when :meth:`evaluates` says so and update the selected weights: the best PGD accuracy so far, or
        the weights of ``keep_epoch`` when the config keeps a fixed epoch."""
        self.next_epoch = epoch + 1
        rung = epoch + 1 in self.cfg.rung_epochs
        if not self.evaluates(epoch):
            # A budgeted sweep's rung between selection epochs: scored the same way, never selected.
            return {RUNG_SCORE: self.select_metrics()[self.tracker.metric]} if rung else {}
        metrics = self.select_metrics()
        if self.tracker.update(epoch, metrics):
            self.best_weights = {k: v.detach().to("cpu", copy=True) for k, v in self.method.model.state_dict().items()}
        selected = {} if self.tracker.best_epoch is None else {"best_epoch": float(self.tracker.best_epoch)}
        scored = {RUNG_SCORE: metrics[self.tracker.metric]} if rung else {}
        return {f"select/{k}": v for k, v in metrics.items()} | selected | scored | self.train_eval_metrics()

    def final_metrics(self) -> dict[str, float]:
        """The paper protocol on the best and the last weights (fp32, eval mode); which points each got right is
        kept in :attr:`final_points` (``{"best/clean": bool (N,), ...}``) for the run's per-point artifact."""
        cfg, method = self.cfg, self.method
        test = method.data.test
        best = copy.deepcopy(method.model)
        best.load_state_dict(self.best_weights)
        models = {"best": best, "last": method.model}
        metrics: dict[str, float] = {}
        for tag, model in models.items():
            points = evaluate_points(
                model, test.images, test.labels, eps=method.final_eps(), attacks=cfg.final_attacks,
                device=method.device, autoattack_n=cfg.autoattack_n or None, seed=cfg.seed,
                step_size=cfg.final_attack_step or None,
            )
            self.final_points.update({f"{tag}/{k}": v for k, v in points.items()})
            metrics.update({f"{tag}/{k}": v for k, v in point_means(points).items()})
        with bn_mode(best, "eval"), bn_mode(method.model, "eval"):
            metrics.update(method.final_metrics(models))
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {
            "next_epoch": self.next_epoch,
            "model": self.method.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "tracker": self.tracker.state_dict(),
            "best_weights": self.best_weights,
            "method": self.method.state_dict(),
            "rng": rng_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.method.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.tracker.load_state_dict(state["tracker"])
        self.best_weights = state["best_weights"]
        self.method.load_state_dict(state["method"])
        set_rng_state(state["rng"])
        self.next_epoch = state["next_epoch"]


def run_name(method: str, config: Mapping[str, Any], keys: Iterable[str]) -> str:
    """A run name that says what differs, e.g. ``pgd_at eps=0.0314 seed=0``."""
    parts = [f"{k}={config[k]:.4g}" if isinstance(config.get(k), float) else f"{k}={config.get(k)}" for k in keys]
    return " ".join([method, *parts])


def log_models(run: TrialRun, trial: Trial) -> None:
    """Log the selected (``best``, whatever the config's selection rule) and the ``last`` weights as the run's MLflow
    models: stand-alone modules on the CPU in eval mode whose ``forward`` gives the main head, normalisation inside,
    that ``mlflow.pytorch.load_model("runs:/<run_id>/best")`` returns, and as safetensors with a JSON of their
    architecture and config (``safetensors/best.*``, which load without unpickling). Unlike Tune's checkpoints (the
    last two kept), they stay with the run for later evaluation."""
    method = trial.method
    for name, weights in (("best", trial.best_weights), ("last", method.model.state_dict())):
        # One at a time: an AFS merger's copy holds its whole stack of extractors.
        model = method.exported_model(weights).cpu().eval()
        run.log_model(model, name)
        # The same weights without pickle, loadable by trainables.safe_export.load_safe_model.
        with tempfile.TemporaryDirectory() as directory:
            save_safe_model(model, method.exported_architecture(), asdict(method.cfg), Path(directory), name)
            run.log_artifacts(directory, SAFE_FOLDER)
        del model


def run_trial(config: Mapping[str, Any], method_cls: type[Method], settings: RunSettings) -> None:
    """Body of every function trainable: validate, build, resume, train with per-epoch reports, final protocol."""
    cfg = method_cls.Config.from_dict(config)  # rejects bad hyperparameters before any data loads
    device = settings.resolve_device()
    start_as_fresh_worker(cfg.seed)  # the worker may have run another trial before (reused workers)
    method = method_cls(cfg, TrialData.load(cfg, settings.data_root), device, settings)
    trial = Trial(method)

    state: dict[str, Any] = {}
    checkpoint = tune.get_checkpoint()
    trial_id = tune.get_context().get_trial_id()
    recovered = unreadable = None
    if checkpoint is not None:
        try:
            state, recovered = load_checkpoint_state(checkpoint)
            trial.load_state_dict(state)
        except CorruptCheckpointError as error:
            if not settings.restart_unreadable:
                retire_trial_run(settings.tracking_uri, settings.experiment, trial_id, settings.parent_run_id)
                raise
            unreadable = str(error)  # --restart-unreadable: from epoch 0, in a new run, on purpose

    fresh = None  # with init_from: the tensors it did not cover (a head over other classes)
    if cfg.init_from and not state:  # a fresh start; a checkpoint holds the fine-tuned weights already
        fresh = load_initial_weights(method.model, source_weights(cfg.init_from, settings.tracking_uri),
                                     f"init_from={cfg.init_from}")
    tags = {"method": method_cls.name, "git_commit": settings.git_commit, **settings.tags}
    run = TrialRun.open(
        settings.tracking_uri, settings.experiment,
        run_name=run_name(method_cls.name, config, settings.name_keys),
        params=cfg.params(), tags=tags, trial_id=None if unreadable else trial_id,
        parent_run_id=settings.parent_run_id, run_id=state.get("mlflow_run_id"), config=asdict(cfg),
        datasets=method.datasets(),
    )
    if unreadable:
        retire_trial_run(settings.tracking_uri, settings.experiment, trial_id, settings.parent_run_id,
                         replaced_by=run.run_id)
        run.set_tag(TRIAL_TAG, trial_id)
        run.set_tag(RESTARTED_TAG, unreadable[:5000])
    # The node that runs this attempt: after a lost node, the UI shows where the retried trial went on.
    run.set_tag(NODE_TAG, ray.get_runtime_context().get_node_id())
    # What trained it: the device analysis names beside the epoch times (BiaMAT Table 11).
    run.set_tag("device", torch.cuda.get_device_name(device) if device.type == "cuda"
                else f"cpu ({torch.get_num_threads()} threads)")
    # ImgNet100 / ImgNet900 are a seeded draw of ImageNet's classes: the run records which 100 (0..999).
    if {"imgnet100", "imgnet900"} & {name for name, _ in method.datasets()}:
        run.set_tag(IMGNET100_CLASSES_TAG, ",".join(map(str, imgnet100_classes())))
    if fresh is not None:
        run.set_tag(INITIALISED_TAG, ",".join(fresh) or "none")
    if recovered:
        run.set_tag(RECOVERED_TAG, recovered[:5000])  # MLflow tag values hold at most 8000 characters
    try:
        for epoch in range(trial.next_epoch, cfg.epochs):
            start = time.perf_counter()
            metrics = trial.train_epoch(epoch)
            metrics["epoch_time_s"] = time.perf_counter() - start
            metrics["lr"] = trial.scheduler.get_last_lr()[0]
            metrics.update(trial.end_epoch(epoch))
            if trial.next_epoch == cfg.epochs:
                metrics.update(trial.final_metrics())
                data = trial.method.data  # a TrialData built by hand (tests) has no indices: its own order
                run.log_points(trial.final_points, torch.arange(len(data.test)) if data.test_indices is None
                               else data.test_indices)
                if method_cls.registers_weights:
                    run.log_weights(trial.best_weights)
                log_models(run, trial)
            metrics[EPOCH_METRIC] = epoch
            run.log_metrics(metrics, step=epoch)
            for path, text in trial.method.epoch_artifacts(epoch).items():
                run.log_text(text, path)
            with tempfile.TemporaryDirectory() as directory:
                torch.save(trial.state_dict() | {"mlflow_run_id": run.run_id}, Path(directory) / STATE_FILE)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
    except SystemExit:
        # Tune stops a trial (a scheduler's decision, also at its max_t) by raising SystemExit inside tune.report.
        if trial.next_epoch == cfg.epochs:
            run.finish("FINISHED")  # the last epoch and the final protocol were already reported
        # Otherwise the run stays RUNNING; the sweep closes it as stopped early or interrupted (launcher).
        raise
    except KeyboardInterrupt:
        # Ctrl-C reached the worker too (it shares the terminal's process group): the sweep is being interrupted, and
        # the launcher closes this run as such, not as failed.
        raise
    except BaseException as error:
        run.finish("FAILED", failure_reason(error))
        raise
    run.finish("FINISHED")
