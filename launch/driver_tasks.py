"""Work a script hands to Ray as plain tasks rather than as a sweep's trials: one task per piece, on the local Ray or
the cluster at ``--address``, each result handled as it arrives (``sweeps/reevaluate.py``'s re-evaluations,
``sweeps/biamat_robust_dataset.py``'s chunks of robust images)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import ray

from launch.cluster import check_cluster_reachable
from launch.progress import without_token_auth_notice


def progress_note(finished: int, total: int, elapsed_s: float) -> str:
    """``[3/12, 2 min 10 s, about 6 min left]``: what is done, and what is left at the pace so far."""

    def span(seconds: float) -> str:
        minutes, secs = divmod(round(seconds), 60)
        return f"{minutes} min {secs} s" if minutes else f"{secs} s"

    left = elapsed_s / finished * (total - finished)
    return f"[{finished}/{total}, {span(elapsed_s)}" + (f", about {span(left)} left]" if finished < total else "]")


def run_tasks(function: Callable[..., Any], calls: Sequence[tuple[str, tuple]], args: argparse.Namespace,
              on_result: Callable[[str, Any, str], None]) -> int:
    """``function(*arguments)`` as one Ray task per ``(label, arguments)`` of ``calls``, ``--cpus-per-trial`` CPUs and
    ``--gpus-per-trial`` GPUs each (default: one GPU where the cluster has GPUs); ``on_result(label, result,
    progress)`` as each one finishes. A failed task is printed and counted, and the others go on. Returns how many
    failed. A caller that already runs Ray (a notebook, the tests) keeps its session."""
    owns_ray = not ray.is_initialized()
    if owns_ray:
        # No --address: a local Ray of its own, as the sweeps start (launch/tuner.py), not whatever cluster this
        # machine last started (another user's, whose token this process lacks).
        with without_token_auth_notice() if args.address is None else nullcontext():
            ray.init(address=args.address or "local", include_dashboard=False, log_to_driver=False)
    failed = 0
    try:
        check_cluster_reachable(args.tracking_uri)
        gpus = args.gpus_per_trial
        if gpus is None:
            gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0
        task = ray.remote(num_cpus=args.cpus_per_trial, num_gpus=gpus)(function)
        pending = {task.remote(*arguments): label for label, arguments in calls}
        started = time.monotonic()
        while pending:
            (ready,), _ = ray.wait(list(pending))
            label = pending.pop(ready)
            progress = progress_note(len(calls) - len(pending), len(calls), time.monotonic() - started)
            try:
                result = ray.get(ready)
            except ray.exceptions.RayError as exc:
                failed += 1
                print(f"{progress} FAILED {label}: {exc}", flush=True)
                continue
            on_result(label, result, progress)
    finally:
        if owns_ray:
            ray.shutdown()
    return failed
