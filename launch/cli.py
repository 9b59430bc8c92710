"""The sweep scripts' command lines: the run flags every sweep shares and the flags of every Optuna search.

Nothing here imports Ray, PyTorch, MLflow or Optuna: a script parses its arguments first, so ``--help`` and a
mistyped flag answer at once, then checks its sweeps (``launch/run.py``, still without them), and only then imports
what a sweep needs (``launch/tuner.py`` and the trainables).
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable, Sequence

from launch.overrides import parse_override
from runstore.uri import DEFAULT_TRACKING_URI, absolute_tracking_uri

_SWEEP_NAME = re.compile(r"[A-Za-z0-9._-]+")


def run_parser(description: str, presets: Sequence[str]) -> argparse.ArgumentParser:
    """A sweep script's command line: its docstring as help, and the run flags every sweep shares."""
    parser = argparse.ArgumentParser(description=description, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser, list(presets))
    return parser


def parse_primary_args(description: str, presets: Sequence[str], primaries: Sequence[str],
                       argv: Sequence[str] | None) -> argparse.Namespace:
    """The arguments of a script with :func:`run_parser`'s flags and ``--primary``, the paper preset's primary dataset
    (BiaMAT's per-primary tables): refused with the smoke preset (its data is synthetic), else ``primaries[0]`` by
    default."""
    parser = run_parser(description, presets)
    parser.add_argument("--primary", choices=list(primaries), default=None,
                        help=f"the paper preset's primary dataset (default {primaries[0]}); the smoke preset's is "
                             "synthetic")
    args = parser.parse_args(argv)
    if args.preset == "smoke" and args.primary is not None:
        parser.error("--primary picks the paper preset's primary dataset: add --preset paper (smoke runs on synthetic "
                     "data)")
    args.primary = args.primary or primaries[0]
    return args


def add_run_arguments(parser: argparse.ArgumentParser, presets: Sequence[str]) -> None:
    """Flags shared by every sweep. Environment variables give cluster-wide defaults (see README)."""
    parser.add_argument("--preset", choices=presets, default=presets[0], help="data/model/schedule preset")
    parser.add_argument("--seeds", type=at_least(1), default=1, help="number of seeds per configuration (0, 1, ...)")
    parser.add_argument("--name", type=sweep_name, default=None,
                        help="sweep name (Tune directory and MLflow parent run): letters, digits, '-', '_' and '.'")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted sweep of this --name")
    parser.add_argument("--allow-code-change", action="store_true",
                        help="with --resume: continue a sweep started at another commit with this checkout's code "
                             "(refused otherwise; the preset, --seeds and --set must match in any case)")
    parser.add_argument("--restart-unreadable", action="store_true",
                        help="with --resume: train again from epoch 0, in a new MLflow run, each trial none of whose "
                             "checkpoints can be read (the sweep's last line says when); every other trial is kept")
    parser.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                        help="Ray cluster address ('auto' on a cluster node); default: start a local Ray")
    parser.add_argument("--storage-path", default=os.environ.get("ADVSWEEP_STORAGE", "ray_results"),
                        help="Tune storage: a local folder, or s3://... / gs://... shared by all nodes")
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI),
                        help="MLflow tracking URI (SQLite file locally, http://... server on a cluster)")
    parser.add_argument("--data-root", default=os.environ.get("ADVSWEEP_DATA"), help="dataset folder (default ./data)")
    # An autoscaling cluster has no GPU node yet when the sweep starts, so its set-up names the GPUs per trial
    # (ADVSWEEP_GPUS_PER_TRIAL) rather than leaving it to what the cluster holds at launch.
    parser.add_argument("--gpus-per-trial", type=at_least(0, float), default=os.environ.get("ADVSWEEP_GPUS_PER_TRIAL"),
                        help="GPUs per trial, fractions allowed (default: ADVSWEEP_GPUS_PER_TRIAL, else 1 if the "
                             "cluster has GPUs at launch, else 0)")
    parser.add_argument("--cpus-per-trial", type=at_least(0, float, strictly=True), default=1.0)
    parser.add_argument("--concurrency", type=at_least(0), default=0,
                        help="max concurrent trials (0: as resources allow)")
    parser.add_argument("--fresh-workers", action="store_true",
                        help="start a new worker process for every trial (default: a finished trial's worker runs the "
                             "next one, reset to a new worker's state, which saves seconds per trial)")
    parser.add_argument("--max-failures", type=at_least(-1, note="-1: retry without limit"), default=3,
                        help="retries of a failed trial from its checkpoint")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate every trial and print the trials, their shared values and a GPU-hours estimate; "
                             "start nothing and write nothing")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--budget", type=fraction, metavar="F",
                        help="train about F (0 < F <= 1) of the full sweep's trial-epochs: successive halving stops "
                             "the poorer trials of each group a table compares at rungs, the rest train to the end "
                             "(launch/budget.py; --dry-run prints the plan and both costs)")
    budget.add_argument("--budget-hours", type=at_least(0, float, strictly=True), metavar="H",
                        help="the same budget in GPU-hours at the dry run's reference speeds")
    parser.add_argument("--rungs", choices=["schedule", "epochs"], default="schedule",
                        help="with a budget: one rung right after the first LR decay (schedule), or ASHA's rungs at "
                             "g, 3g, 9g, ... epochs (epochs)")
    parser.add_argument("--agreement-from", metavar="SWEEP",
                        help="with --dry-run: size the table's resolution from how the rows of this finished sweep "
                             "disagreed point by point (default: an earlier sweep of the same name, if any)")
    parser.add_argument("--verbose", action="store_true",
                        help="Tune's own output: every trial's config and results, and a status table every 30 s "
                             "(default: one line per trial event)")
    parser.add_argument("--set", dest="overrides", action="append", type=parse_override, metavar="KEY=VALUE",
                        help="change a constant of the preset's search space, e.g. --set epochs=15 --set "
                             "model=resnet18 (repeatable; JSON values, else strings; launch/overrides.py)")


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of every Optuna sweep (None: the preset's value); a cluster sets ADVSWEEP_OPTUNA_STORAGE to its
    PostgreSQL URL."""
    parser.add_argument("--num-samples", type=at_least(1), default=None, help="trials this invocation adds")
    parser.add_argument("--study-name", default=None, help="Optuna study to create or continue (default: per preset)")
    parser.add_argument("--optuna-storage", type=absolute_tracking_uri,
                        default=os.environ.get("ADVSWEEP_OPTUNA_STORAGE", "sqlite:///optuna.db"),
                        help="Optuna RDB storage URL (SQLite file locally, postgresql://... on a cluster)")
    parser.add_argument("--sampler-seed", type=int, default=0, help="TPE seed (same seed, same suggestions)")
    parser.add_argument("--asha", action="store_true", help="stop poor trials early (ASHA on epochs)")
    parser.add_argument("--grace-period", type=at_least(1), default=None,
                        help="ASHA: epochs before a trial can be stopped")
    parser.add_argument("--reduction-factor", type=at_least(2), default=None, help="ASHA: keep 1/factor at each rung")


def fraction(text: str) -> float:
    """An argparse ``type`` for a share of a whole: a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1], e.g. 0.25, not {text}")
    return value


def sweep_name(text: str) -> str:
    """An argparse ``type`` for ``--name``: it names a folder under the Tune storage and the MLflow parent run, so a
    '/' (a nested folder), a space or another character a shell or a bucket treats specially is refused."""
    if not _SWEEP_NAME.fullmatch(text) or text in (".", ".."):
        raise argparse.ArgumentTypeError(f"{text!r}: use letters, digits, '-', '_' and '.' only, e.g. "
                                         f"{re.sub(r'[^A-Za-z0-9._-]+', '-', text).strip('-.') or 'my-sweep'}")
    return text


def at_least(minimum: float, kind: type[int | float] = int, *, strictly: bool = False,
             note: str = "") -> Callable[[str], float]:
    """An argparse ``type`` for a count or a resource: a value below ``minimum`` (or equal to it, ``strictly``) is
    refused while parsing, so that Tune never sees it (a seed count of 0 fails deep inside Tune; a negative CPU count
    inside Ray) and ``--dry-run`` refuses it too. ``note`` says what a special value means."""
    word = "an integer" if kind is int else "a number"
    bound = f"{'>' if strictly else '>='} {minimum:g}" + (f" ({note})" if note else "")

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < minimum or (strictly and value == minimum):
            raise argparse.ArgumentTypeError(f"must be {word} {bound}, not {text}")
        return value

    return parse
