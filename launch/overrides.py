"""``--set KEY=VALUE`` (repeatable): a sweep's preset run with some of its constants changed, e.g.
``--set epochs=15 --set model=resnet18``. Any field of the trials' config can be set, not only those the preset
names: the preset only gives defaults (``--set eps=16/255`` on a preset that trains at the config's 8/255).

Each value is parsed as JSON where it can be (``15``, ``0.1``, ``true``, ``[0.5,0.75]``, ``'"15"'``), as a fraction
where it is one (``8/255``, how ``--dry-run`` prints eps and steps), and kept as a string otherwise (``resnet18``).
:func:`with_overrides`, the first step of ``launch.run.prepare_sweeps``, writes the values into the sweep's search
space, so the usual validation checks them before Ray starts, ``--dry-run`` shows them, and every trial gets them;
the tag ``overrides`` (``epochs=15,model=resnet18``) records them on the sweep's parent run and on every trial run.

A radius set alone takes its attack step with it (:data:`STEP_OF`): ``--set eps=16/255`` on a preset that steps 2/255
at 8/255 steps 4/255, the preset's ratio, unless ``attack_step`` is set too; the derived value is printed and shown
by ``--dry-run``.

Only constants can be set. A grid axis is what the trials compare and a searched domain is what the search chooses, so
neither can be fixed to one value. A value that follows a grid axis (``per_value``: each BiaMAT variant's epochs and
model) becomes that one value for every trial.

Nothing here imports Ray at import time: ``launch/cli.py`` imports this module before anything heavy loads.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from launch.sweep import Sweep
    from trainables.config import TrainConfig

OVERRIDES_TAG = "overrides"
_FRACTION = re.compile(r"(\d+(?:\.\d*)?)/(\d+(?:\.\d*)?)")
# radius -> the step of the attack at that radius: a radius set without its step scales the step with it.
STEP_OF = {"eps": "attack_step", "inv_eps": "inv_step"}


class Override(NamedTuple):
    key: str
    value: Any
    text: str  # the value as typed, for the record


def parse_override(text: str) -> Override:
    """The argparse ``type`` of ``--set``: ``KEY=VALUE`` with the value parsed as the module docstring says."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. epochs=15 or model=resnet18), not {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        fraction = _FRACTION.fullmatch(raw.strip())
        if fraction and float(fraction[2]) == 0:
            raise argparse.ArgumentTypeError(f"{text!r}: {raw} divides by zero; a fraction is k/N with N > 0, "
                                             "e.g. 8/255") from None
        value = float(fraction[1]) / float(fraction[2]) if fraction else raw
    return Override(key, value, raw)


def apply_overrides(param_space: Mapping[str, Any], overrides: Sequence[Override],
                    config_cls: type[TrainConfig] | None = None) -> dict[str, Any]:
    """A copy of ``param_space`` with each override's key set to its value, and each radius set without its step
    given the step that keeps the preset's ratio (:data:`STEP_OF`). ``config_cls``, the trials' config, makes every
    one of its fields settable; without it only the keys of the space are. ValueError for a key that is neither (the
    message lists the keys that can be set), a grid axis, a searched domain, or a key given twice."""
    from launch.space import is_grid, is_searched

    def role(value: Any) -> str | None:
        if is_grid(value):
            return f"a grid axis of this sweep ({', '.join(map(str, value['grid_search']))}): the trials differ by it"
        if is_searched(value):
            return "searched by this sweep: the search chooses it per trial"
        return None

    defaults = {f.name: f.default for f in dataclasses.fields(config_cls)} if config_cls else {}
    keys = sorted(key for key in {*param_space, *defaults} if role(param_space.get(key)) is None)
    settable = ", ".join(keys)
    space = dict(param_space)
    seen: set[str] = set()
    for key, value, _ in overrides:
        if key in seen:
            raise ValueError(f"--set {key} is given twice: keep one")
        seen.add(key)
        if key not in space and key not in defaults:
            close = difflib.get_close_matches(key, keys, n=1)
            guess = f" (did you mean {close[0]}?)" if close else ""
            raise ValueError(f"--set {key}: the trials of this sweep have no {key!r}{guess}; the keys --set can "
                             f"change: {settable}")
        fixed = role(space.get(key))
        if fixed is not None:
            hint = " (--seeds sets how many seeds)" if key == "seed" else ""
            raise ValueError(f"--set {key}: {key} is {fixed}, so it cannot be set to one value{hint}; the keys "
                             f"--set can change: {settable}")
        space[key] = value
    for radius, step in STEP_OF.items():
        before = {name: param_space.get(name, defaults.get(name)) for name in (radius, step)}
        if radius in seen and step not in seen and all(_is_number(v) for v in before.values()) and before[radius]:
            space[step] = space[radius] * before[step] / before[radius]
    return space


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def derived(param_space: Mapping[str, Any], overrides: Sequence[Override]) -> list[str]:
    """What :func:`apply_overrides` set beyond the overrides, as ``--set`` would spell it (``attack_step=4/255``)."""
    typed = {o.key for o in overrides}
    return [f"{step}={param_space[step] * 255:.4g}/255" for radius, step in STEP_OF.items()
            if radius in typed and step not in typed and step in param_space and _is_number(param_space[step])]


def describe(overrides: Sequence[Override]) -> str:
    """The record of the overrides as typed: ``epochs=15,model=resnet18``."""
    return ",".join(f"{o.key}={o.text}" for o in overrides)


def with_overrides(sweep: Sweep, args: argparse.Namespace) -> Sweep:
    """The sweep with ``--set`` applied to its search space and recorded in its tags (parent and trial runs), or the
    sweep itself when nothing is set; a bad override exits with the reason. Applying the same flags twice gives the
    same sweep, so a script that checks its sweeps before ``run_sweep`` may apply them first too."""
    overrides = getattr(args, "overrides", None)  # absent from a Namespace built by hand (tests)
    if not overrides:
        return sweep
    try:
        space = apply_overrides(sweep.param_space, overrides, sweep.config_cls)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    for value in derived(space, overrides):
        print(f"{value}: the step follows the radius set, at the preset's step-to-radius ratio (--set it to choose "
              "another)")
    return replace(sweep, param_space=space, tags={**sweep.tags, OVERRIDES_TAG: describe(overrides)})


def settable_keys(sweep: Sweep) -> set[str]:
    """The keys of the sweep's search space and the fields of its trials' config."""
    fields = {f.name for f in dataclasses.fields(sweep.config_cls)} if sweep.config_cls else set()
    return set(sweep.param_space) | fields


def with_overrides_each(sweeps: Mapping[str, Sweep], args: argparse.Namespace
                        ) -> tuple[dict[str, Sweep], argparse.Namespace]:
    """A multi-sweep script's sweeps with ``--set`` applied before the first one starts, each key to the sweeps that
    can take it (:func:`settable_keys`: ``uiat_comparison.py --set oneoff_epoch=0`` reaches UIAT's sweep and leaves
    its baselines' alone), and ``args`` without ``--set``, so that ``run_sweep`` does not apply every key to every sweep
    again (a sweep a script builds later gets them back through ``launch.run.args_for_later_sweep``). A key that no
    sweep has, or a value a sweep refuses, exits with the reason."""
    overrides = getattr(args, "overrides", None) or []
    keys = {name: settable_keys(sweep) for name, sweep in sweeps.items()}
    for override in overrides:
        if not any(override.key in own for own in keys.values()):
            raise SystemExit(f"error: --set {override.key}: no sweep of this script has {override.key!r}; their "
                             f"keys: {', '.join(sorted(set().union(*keys.values())))}")
    applied = {name: with_overrides(sweep, argparse.Namespace(
                   overrides=[o for o in overrides if o.key in keys[name]]))
               for name, sweep in sweeps.items()}
    return applied, argparse.Namespace(**{**vars(args), "overrides": None})
