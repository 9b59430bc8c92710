"""Tune's record of a sweep (its experiment state, its search algorithm's and its callbacks' states) checked before
``--resume`` hands it to Tune: a record cut short on a full disk is set aside so that the sweep starts afresh."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cloudpickle
from ray.tune.callback import CallbackList
from ray.tune.execution.tune_controller import TuneController
from ray.tune.search import BasicVariantGenerator, Searcher, SearchGenerator

# Tune's files that record a sweep, each read back on --resume as Tune reads it: the experiment state (JSON), the
# search algorithm's (a basic variant generator's or a searcher's, cloudpickled whatever the suffix) and the callbacks'.
# Tune restores from the newest of each by name (timestamped), so that is the one that must load.
_TUNE_STATE_FILES = ((TuneController.CKPT_FILE_TMPL, json.loads),
                     *((template, cloudpickle.loads) for template in (
                         BasicVariantGenerator.CKPT_FILE_TMPL, SearchGenerator.CKPT_FILE_TMPL,
                         Searcher.CKPT_FILE_TMPL, CallbackList.CKPT_FILE_TMPL)))


def set_aside_unreadable_state(sweep_dir: str) -> None:
    """If the newest of Tune's files that record the sweep (the experiment state, the search algorithm's and the
    callbacks' states) do not load, as when written on a full disk, set the experiment states aside: the sweep then
    starts afresh rather than Tune failing halfway through restoring it (it restores the experiment state, then fails
    on the searcher's, and goes on with a half-restored controller that runs no trial)."""
    if "://" in sweep_dir:
        return  # a bucket's objects are written whole or not at all
    folder = Path(sweep_dir)
    unreadable = []
    for template, load in _TUNE_STATE_FILES:
        newest = max(folder.glob(template.format("*")), default=None)
        try:
            if newest is not None:
                load(newest.read_bytes())
        except Exception:  # noqa: BLE001 - a cut-off file fails in many ways (EOFError, UnpicklingError, ...)
            unreadable.append(newest.name)
    if unreadable:
        for state in folder.glob(TuneController.CKPT_FILE_TMPL.format("*")):
            state.rename(state.with_suffix(".json.unreadable"))
        print(f"note: Tune's record of this sweep is unreadable ({', '.join(unreadable)}; written on a full disk?): "
              "the sweep starts again from epoch 0; the runs of the first attempt stay in MLflow as they were closed",
              file=sys.stderr)
