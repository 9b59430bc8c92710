"""Search spaces as the sweep scripts write them: every configuration a space holds (for validation and the dry
run), values that follow a grid axis, and dataset paths made absolute before Ray runs trials elsewhere."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from trainables.dataset_names import absolute_dataset_name


def grid(values: Iterable[Any]) -> dict[str, list[Any]]:
    """A grid axis: one trial per value. The dict is Tune's own format (what ``tune.grid_search`` returns), built here
    so that a sweep script writes its search space, and the checks read it, without importing Ray."""
    return {"grid_search": list(values)}


def is_grid(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"grid_search"}


@dataclass(frozen=True)
class Derived:
    """A value computed from the other values of the same trial, ``func(config)`` (e.g. a per-variant epoch count):
    ``tune.sample_from`` without importing Ray. :func:`for_tune` hands Tune the equivalent."""

    func: Callable[[Mapping[str, Any]], Any]


def _ray_domain(value: Any) -> bool:
    # A Ray Tune domain (tune.uniform, tune.choice, tune.sample_from) is recognised without importing Ray for a space
    # that holds none: only a search (Optuna) writes them.
    return type(value).__module__.startswith("ray.")


def is_searched(value: Any) -> bool:
    """Whether ``value`` is a domain a search samples (``tune.uniform``, ``tune.choice``, ...)."""
    if not _ray_domain(value):
        return False
    from ray.tune.search.sample import Domain, Function

    return isinstance(value, Domain) and not isinstance(value, Function)


def grid_points(space: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every configuration of a search space for validation: grid values expanded, sampled domains at both ends,
    and values that depend on others (:class:`Derived`, ``tune.sample_from``; see :func:`per_value`) resolved last."""
    axes: dict[str, list[Any]] = {}
    derived: dict[str, Callable[[Mapping[str, Any]], Any]] = {}
    for key, value in space.items():
        if is_grid(value):
            axes[key] = list(value["grid_search"])
        elif isinstance(value, Derived):
            derived[key] = value.func
        elif _ray_domain(value):
            from ray.tune.search.sample import Categorical, Function

            if isinstance(value, Function):
                derived[key] = value.func
            else:
                axes[key] = list(value.categories) if isinstance(value, Categorical) else [value.lower, value.upper]
        else:
            axes[key] = [value]
    for combo in itertools.product(*axes.values()):
        point = dict(zip(axes, combo))
        yield point | {key: func(point) for key, func in derived.items()}


def searched_keys(space: Mapping[str, Any]) -> tuple[str, ...]:
    """The keys a search chooses (sampled domains); empty for a grid sweep."""
    return tuple(key for key, value in space.items() if is_searched(value))


def per_value(key: str, table: Mapping[Any, Mapping[str, Any]]) -> dict[str, Derived]:
    """Hyperparameters that follow a grid axis, e.g. the model and schedule of each BiaMAT variant.

    Returns one :class:`Derived` entry per field, so every trial's config stays a flat dict of typed values (what
    MLflow logs and the analysis groups by) instead of a nested per-variant dict.
    """
    fields = {field for values in table.values() for field in values}
    return {field: Derived(lambda config, field=field: table[config[key]][field]) for field in sorted(fields)}


def for_tune(space: Mapping[str, Any]) -> dict[str, Any]:
    """The search space as Tune takes it: each :class:`Derived` value a ``tune.sample_from``."""
    from ray import tune

    return {key: tune.sample_from(value.func) if isinstance(value, Derived) else value for key, value in space.items()}


DATASET_KEYS = ("dataset", "aux_datasets", "extra_data")


def with_absolute_datasets(space: Mapping[str, Any]) -> dict[str, Any]:
    """The search space with every ``npz:``/``folder:`` path made absolute: Ray runs each trial in another directory,
    where a path relative to the one the sweep started from would name nothing."""

    def absolute(value: Any) -> Any:
        if isinstance(value, str):
            return absolute_dataset_name(value)
        if isinstance(value, list | tuple):
            return type(value)(absolute(v) for v in value)
        if is_grid(value):
            return {"grid_search": [absolute(v) for v in value["grid_search"]]}
        return value

    return {key: absolute(value) if key in DATASET_KEYS else value for key, value in space.items()}
