"""One Tune experiment as a sweep script declares it: a registered method (or any trainable), its search space and
how to search it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from trainables.config import TrainConfig
from trainables.methods.registry import method


def no_extra_datasets(cfg: TrainConfig) -> tuple[str, ...]:
    return ()


@dataclass
class Sweep:
    """One Tune experiment: a trainable, its search space, and how to search it."""

    family: str  # MLflow experiment: one per sweep family (e.g. "biamat-pi-ablation")
    # The function each trial runs; None for a registered method's sweep (:meth:`of`), whose training code loads
    # only once the checks have passed (:meth:`trial_function`).
    trainable: Callable[..., None] | None
    param_space: dict[str, Any]
    name_keys: tuple[str, ...]  # config keys that name each trial's run in the MLflow UI
    metric: str | None = None
    mode: str | None = None
    num_samples: int = 1
    # A Tune searcher, or a function that builds it once the checks have passed: opening an Optuna study creates
    # its storage, which a dry run or a refused sweep must not.
    search_alg: Any = None
    scheduler: Any = None
    tags: dict[str, str] = field(default_factory=dict)
    # The trials' config class, validated (with the datasets it names) before Ray starts; None for a sweep whose
    # trainable checks its own config (the tests' ad-hoc trainables).
    config_cls: type[TrainConfig] | None = None
    extra_datasets: Callable[[TrainConfig], Sequence[str]] = no_extra_datasets
    method: str | None = None  # the registered method it trains (trainables/methods/registry.py)
    prepared: bool = False  # --set, --budget and the checks done (launch/run.prepare_sweeps)

    @classmethod
    def of(cls, name: str, *, tags: dict[str, str] | None = None, **fields: Any) -> Sweep:
        """A sweep that trains the registered method ``name`` (trainables/methods/registry.py): its config class for
        the checks before Ray, its name as the runs' ``method`` tag, and its trainable once the sweep runs."""
        spec = method(name)
        return cls(trainable=None, method=spec.name, config_cls=spec.config,
                   tags={"method": spec.name, **(tags or {})}, **fields)

    def trial_function(self) -> Callable[..., None]:
        """What each trial runs: the trainable given, else the registered method's (importing its training code)."""
        return self.trainable if self.trainable is not None else method(self.method).trainable

    def size(self) -> int:
        """How many trials the sweep runs: every grid combination ``num_samples`` times."""
        combos = 1
        for value in self.param_space.values():
            if isinstance(value, dict) and set(value) == {"grid_search"}:
                combos *= len(value["grid_search"])
        return combos * self.num_samples
