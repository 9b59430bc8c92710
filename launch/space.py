"""Search spaces as the sweep scripts write them: every configuration a space holds (for validation and the dry
run), values that follow a grid axis, and dataset paths made absolute before Ray runs trials elsewhere."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

from trainables.datasets import absolute_dataset_name


def grid_points(space: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every configuration of a search space for validation: grid values expanded, sampled domains at both ends,
    and values that depend on others (``tune.sample_from``, see :func:`per_value`) resolved last."""
    from ray.tune.search.sample import Categorical, Domain, Function

    axes: dict[str, list[Any]] = {}
    derived: dict[str, Function] = {}
    for key, value in space.items():
        if isinstance(value, dict) and set(value) == {"grid_search"}:
            axes[key] = list(value["grid_search"])
        elif isinstance(value, Function):
            derived[key] = value
        elif isinstance(value, Categorical):
            axes[key] = list(value.categories)
        elif isinstance(value, Domain):
            axes[key] = [value.lower, value.upper]
        else:
            axes[key] = [value]
    for combo in itertools.product(*axes.values()):
        point = dict(zip(axes, combo))
        yield point | {key: function.func(point) for key, function in derived.items()}


def searched_keys(space: Mapping[str, Any]) -> tuple[str, ...]:
    """The keys a search chooses (sampled domains); empty for a grid sweep."""
    from ray.tune.search.sample import Domain, Function

    return tuple(key for key, value in space.items() if isinstance(value, Domain) and not isinstance(value, Function))


def per_value(key: str, table: Mapping[Any, Mapping[str, Any]]) -> dict[str, Any]:
    """Hyperparameters that follow a grid axis, e.g. the model and schedule of each BiaMAT variant.

    Returns one ``tune.sample_from`` entry per field, so every trial's config stays a flat dict of typed values (what
    MLflow logs and the analysis groups by) instead of a nested per-variant dict.
    """
    from ray import tune

    fields = {field for values in table.values() for field in values}
    return {field: tune.sample_from(lambda config, field=field: table[config[key]][field]) for field in sorted(fields)}


DATASET_KEYS = ("dataset", "aux_datasets", "extra_data")


def with_absolute_datasets(space: Mapping[str, Any]) -> dict[str, Any]:
    """The search space with every ``npz:``/``folder:`` path made absolute: Ray runs each trial in another directory,
    where a path relative to the one the sweep started from would name nothing."""

    def absolute(value: Any) -> Any:
        if isinstance(value, str):
            return absolute_dataset_name(value)
        if isinstance(value, list | tuple):
            return type(value)(absolute(v) for v in value)
        if isinstance(value, dict) and set(value) == {"grid_search"}:  # tune.grid_search
            return {"grid_search": [absolute(v) for v in value["grid_search"]]}
        return value

    return {key: absolute(value) if key in DATASET_KEYS else value for key, value in space.items()}
