"""HAT's helper models checked before its sweep starts: a multi-sweep script (UIAT Tables 1, 2 and 4) trains the
standard-training helpers in its first sweep, and each HAT trial needs the helper of its own dataset, model and seed."""

from __future__ import annotations

from argparse import Namespace

from launch.checks import trial_configs
from launch.sweep import Sweep
from runstore.uri import absolute_tracking_uri
from trainables.methods.configs import HATConfig


def require_hat_helpers(hat_sweep: Sweep, args: Namespace, helper_sweep: str) -> None:
    """SystemExit naming the missing helpers (and the command that trains them) unless ``helper_sweep`` holds a
    finished standard-training trial for every trial's (dataset, model, seed) of ``hat_sweep``, the HAT sweep as it
    will run (``--set`` applied: ``launch.run.prepare_sweeps``)."""
    from trainables.methods import hat  # its training code: imported once the sweeps are checked

    try:
        helpers = hat.find_helpers(absolute_tracking_uri(args.tracking_uri), helper_sweep)
        for cfg in trial_configs(HATConfig, hat_sweep.param_space):
            helpers.require(cfg.dataset, cfg.model, [cfg.seed])
    except hat.MissingHelperError as exc:
        raise SystemExit(f"error: {exc}") from None
