"""Clean and robust accuracy under the evaluation protocol, and best-checkpoint selection.

Protocol (the three papers'): clean; PGD-k with step 2/255 at eps 8/255 (``eps / 4`` in general), CE loss, uniform start;
CW-k (CW margin, kappa 50, same steps); AutoAttack ``standard`` (APGD-CE, APGD-T, FAB-T, Square), Linf, through the
``pyautoattack`` package on the first N points given (a trial gives its final points in a random order,
``image_set.evaluation_points``, so these are a random sample).

A point counts as robust under PGD/CW only if both the clean input and the attacked input are classified correctly:
the clean input is itself a point of the eps-ball, and AutoAttack counts the same way, so every robust accuracy is
at most the clean accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal

import torch
from torch import Tensor, nn

from trainables.attack_names import parse_attack
from trainables.attacks import bn_mode, ce, cw_margin, pgd

CW_KAPPA = 50.0


def to_images(x: Tensor, device: torch.device) -> Tensor:
    # Datasets keep uint8 images (4x less memory than float32); convert each batch on the device.
    x = x.to(device, non_blocking=True)
    if x.dtype == torch.uint8:
        return x.float().div_(255)
    if not x.is_floating_point():
        raise ValueError(f"images must be uint8 or float in [0, 1], got dtype {x.dtype}")
    return x


def _model_device(model: nn.Module) -> torch.device:
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return torch.device("cpu") if tensor is None else tensor.device


def accuracy(model: nn.Module, x: Tensor, y: Tensor, *, batch_size: int = 256, head: str = "main") -> float:
    """Fraction of ``x`` (uint8 or float in [0, 1]) that ``head`` classifies as ``y``; eval mode, no gradient.

    Batches go to the device of the model's parameters; the model's modes are restored afterwards.
    """
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need the same, non-zero number of images and labels, got {len(x)} and {len(y)}")
    device = _model_device(model)
    correct = 0
    with bn_mode(model, "eval"), torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb = to_images(x[start : start + batch_size], device)
            yb = y[start : start + batch_size].to(device)
            logits = model(xb) if head == "main" else model(xb, head=head)
            correct += int((logits.argmax(dim=1) == yb).sum())
    return correct / len(x)


def evaluate(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: float,
    attacks: Sequence[str] = ("clean", "pgd20"),
    batch_size: int = 256,
    device: torch.device | str,
    autoattack_n: int | None = None,
    seed: int = 0,
    step_size: float | None = None,
) -> dict[str, float]:
    """Accuracy of the main head under each attack, as fractions in [0, 1]: ``{"clean": ..., "pgd20": ...}``, the
    means of :func:`evaluate_points` (which says how each attack runs)."""
    points = evaluate_points(model, x, y, eps=eps, attacks=attacks, batch_size=batch_size, device=device,
                             autoattack_n=autoattack_n, seed=seed, step_size=step_size)
    return point_means(points)


def point_means(points: Mapping[str, Tensor]) -> dict[str, float]:
    """Each attack's accuracy from :func:`evaluate_points`' per-point results: right points over all points."""
    return {name: int(correct.sum()) / len(correct) for name, correct in points.items()}


def evaluate_points(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    eps: float,
    attacks: Sequence[str] = ("clean", "pgd20"),
    batch_size: int = 256,
    device: torch.device | str,
    autoattack_n: int | None = None,
    seed: int = 0,
    step_size: float | None = None,
) -> dict[str, Tensor]:
    """Which points the main head gets right under each attack: ``{"clean": bool (N,), "pgd20": bool (N,)}`` on the
    CPU, so that two models evaluated on the same points can be compared point by point (a paired test).

    ``x`` is uint8 (as stored by the datasets) or float in [0, 1]; ``model`` must already be on ``device``. The model
    is in eval mode throughout and its modes are restored afterwards. Each PGD/CW attack draws its random starts from
    its own generator seeded with ``seed``, so a result does not depend on which other attacks run or in what order,
    and the global RNG state is left untouched. PGD/CW step ``step_size`` (default ``eps / 4``: 2/255 at 8/255; the
    TRADES repository's evaluation uses 0.003 at 0.031). ``"autoattack"`` runs on the first ``autoattack_n`` points
    given (all if None), so its entry can be shorter than the others.
    """
    parsed = {name: parse_attack(name) for name in attacks}
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need the same, non-zero number of images and labels, got {len(x)} and {len(y)}")
    n_autoattack = len(x) if autoattack_n is None else min(autoattack_n, len(x))
    if n_autoattack <= 0:
        raise ValueError(f"autoattack_n must be positive, got {autoattack_n}")
    device = torch.device(device)
    step_attacks = {name: spec for name, spec in parsed.items() if spec[0] in ("pgd", "cw", "fgsm")}
    results: dict[str, Tensor] = {}

    with bn_mode(model, "eval"):
        if "clean" in parsed or step_attacks:
            correct = _correct_points(
                model, x, y, step_attacks, eps=eps, step_size=eps / 4 if step_size is None else step_size,
                batch_size=batch_size, device=device, seed=seed,
            )
            results.update({name: points for name, points in correct.items() if name in parsed})
        if "autoattack" in parsed:
            results["autoattack"] = _autoattack_points(
                model, x[:n_autoattack], y[:n_autoattack], eps=eps, batch_size=batch_size, device=device, seed=seed
            )
    return {name: results[name] for name in attacks}


def _correct_points(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    step_attacks: Mapping[str, tuple[str, int]],
    *,
    eps: float,
    step_size: float,
    batch_size: int,
    device: torch.device,
    seed: int,
) -> dict[str, Tensor]:
    """Which points "clean" and each FGSM/PGD/CW attack leave correct (bool, on the CPU), in one pass over the data."""
    generators = {name: torch.Generator(device=device).manual_seed(seed) for name in step_attacks}
    correct: dict[str, list[Tensor]] = {name: [] for name in ["clean", *step_attacks]}
    for start in range(0, len(x), batch_size):
        xb = to_images(x[start : start + batch_size], device)
        yb = y[start : start + batch_size].to(device)
        with torch.no_grad():
            clean_ok = model(xb).argmax(dim=1) == yb
        correct["clean"].append(clean_ok.cpu())
        for name, (kind, steps) in step_attacks.items():
            objective = cw_margin(model, yb, kappa=CW_KAPPA) if kind == "cw" else ce(model, yb)
            if kind == "fgsm":  # one signed gradient step of the whole budget from x itself
                x_adv = pgd(objective, xb, eps=eps, step_size=eps, steps=1, random_start="none")
            else:
                x_adv = pgd(objective, xb, eps=eps, step_size=step_size, steps=steps, generator=generators[name])
            with torch.no_grad():
                adv_ok = model(x_adv).argmax(dim=1) == yb
            correct[name].append((clean_ok & adv_ok).cpu())
    return {name: torch.cat(parts) for name, parts in correct.items()}


def logit_change(
    model: nn.Module, x: Tensor, *, eps: float, steps: int = 20, batch_size: int = 256, device: torch.device | str,
    seed: int = 0,
) -> float:
    """Mean over ``x`` of the largest Linf change of the logits within the Linf eps-ball: AFS's Delta_z (Liu & Zhao,
    Eq. 8, ``max ||z(x^) - z(x)||_p`` with p the attack's norm, Linf in all their experiments).

    Each point's maximum is estimated by PGD (step ``eps / 4``, uniform start, as the evaluation's PGD) ascending
    ``max_k |z_k(x_adv) - z_k(x)|``; eval mode, the model's modes restored, seeded like :func:`evaluate`.
    """
    if len(x) == 0:
        raise ValueError("need at least one image")
    device = torch.device(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    total = 0.0
    with bn_mode(model, "eval"):
        for start in range(0, len(x), batch_size):
            xb = to_images(x[start : start + batch_size], device)
            with torch.no_grad():
                clean = model(xb).float()

            def change(x_adv: Tensor, clean: Tensor = clean) -> Tensor:
                return (model(x_adv).float() - clean).abs().amax(dim=1)

            x_adv = pgd(change, xb, eps=eps, step_size=eps / 4, steps=steps, generator=generator)
            with torch.no_grad():
                total += float(change(x_adv).sum())
    return total / len(x)


def _autoattack_points(
    model: nn.Module, x: Tensor, y: Tensor, *, eps: float, batch_size: int, device: torch.device, seed: int
) -> Tensor:
    # Imported here so that training code that never runs AutoAttack does not pay for the import.
    from pyautoattack import AutoAttack

    # pyautoattack's default device is "cpu" whatever the model's, so it is passed explicitly; a fixed seed keeps
    # the evaluation reproducible (its default seeds from the clock).
    adversary = AutoAttack(model, norm="Linf", eps=eps, version="standard", device=device, seed=seed)
    images = torch.cat([to_images(x[i : i + batch_size], device) for i in range(0, len(x), batch_size)])
    labels = y.to(device)
    # Each attack re-seeds the global CPU and CUDA generators; restore them so that a training run's random stream
    # (data order, augmentation) is the same with or without an AutoAttack evaluation.
    with _forked_rng(device):
        # y_adv is the model's prediction on x_adv (on x for points it never attacked, i.e. misclassified ones).
        _, y_adv = adversary.run_standard_evaluation(images, labels, batch_size=batch_size)
    return (y_adv == labels).cpu()


def _forked_rng(device: torch.device) -> AbstractContextManager[None]:
    if device.type == "cpu":
        return torch.random.fork_rng(devices=[])
    index = device.index if device.index is not None else torch.get_device_module(device.type).current_device()
    return torch.random.fork_rng(devices=[index], device_type=device.type)


class BestTracker:
    """Best-checkpoint selection (Rice et al.): the epoch with the best value of ``metric``, plus the last epoch.

    ``update`` returns True when the epoch becomes the selected one: a strict improvement, so ties keep the earlier
    epoch, and a NaN metric (a diverged run) is never best. With ``keep_epoch`` (0-based) the selected epoch is that
    one whatever the scores, as a reference that keeps a fixed epoch does. :meth:`summary` gives the ``best/*`` and
    ``last/*`` metrics to log.
    """

    def __init__(self, metric: str, mode: Literal["max", "min"] = "max", keep_epoch: int | None = None) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        self.metric = metric
        self.mode = mode
        self.keep_epoch = keep_epoch
        self.best_epoch: int | None = None
        self.best_metrics: dict[str, float] = {}
        self.last_epoch: int | None = None
        self.last_metrics: dict[str, float] = {}

    def update(self, epoch: int, metrics: Mapping[str, float]) -> bool:
        if self.metric not in metrics:
            raise KeyError(f"metric {self.metric!r} missing from {sorted(metrics)}")
        self.last_epoch, self.last_metrics = epoch, {k: float(v) for k, v in metrics.items()}
        if self.keep_epoch is not None:
            selected = epoch == self.keep_epoch
        else:
            value = self.last_metrics[self.metric]
            best = self.best_metrics.get(self.metric)
            selected = not math.isnan(value) and (
                best is None or (value > best if self.mode == "max" else value < best))
        if selected:
            self.best_epoch, self.best_metrics = epoch, dict(self.last_metrics)
        return selected

    def summary(self) -> dict[str, float]:
        """``{"best/<name>": ..., "best/epoch": ..., "last/<name>": ..., "last/epoch": ...}`` for logging."""
        out: dict[str, float] = {}
        entries = (("best", self.best_epoch, self.best_metrics), ("last", self.last_epoch, self.last_metrics))
        for prefix, epoch, metrics in entries:
            if epoch is not None:
                out.update({f"{prefix}/{k}": v for k, v in metrics.items()})
                out[f"{prefix}/epoch"] = float(epoch)
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "mode": self.mode,
            "keep_epoch": self.keep_epoch,
            "best_epoch": self.best_epoch,
            "best_metrics": dict(self.best_metrics),
            "last_epoch": self.last_epoch,
            "last_metrics": dict(self.last_metrics),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        # A checkpoint selected by another metric or direction must not resume silently.
        theirs = (state["metric"], state["mode"], state.get("keep_epoch"))
        if theirs != (self.metric, self.mode, self.keep_epoch):
            raise ValueError(f"tracker state is for (metric, mode, keep_epoch) {theirs}, this tracker is "
                             f"{(self.metric, self.mode, self.keep_epoch)}")
        self.best_epoch = state["best_epoch"]
        self.best_metrics = dict(state["best_metrics"])
        self.last_epoch = state["last_epoch"]
        self.last_metrics = dict(state["last_metrics"])
