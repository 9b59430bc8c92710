"""Re-evaluate a finished sweep's trained models later, under attacks and threat models of your choice.

    python sweeps/reevaluate.py --sweep pi-ablation-paper --attacks autoattack,pgd50 --eps 8/255,4/255
    python sweeps/reevaluate.py --sweep baselines-smoke --attacks clean,pgd20 --n 1000 --checkpoints best,last
    python sweeps/reevaluate.py --sweep uiat-figures-paper-baselines --attacks clean,pgd20 --ce-halves \\
        --eps=-8/255,-4/255,4/255,8/255 --n 10000           # UIAT Fig. 1: inverse attacks, halves by clean CE

Every FINISHED trial of the sweep logged its selected and last weights as the MLflow models ``best`` and ``last``
(``trainables/runtime.py``). One Ray task per run and checkpoint loads that model, evaluates it with
``trainables.evaluation.evaluate`` on ``--n`` test points of the run's own test data (all of them if the test set is
smaller; AutoAttack on all N too), drawn as the trial drew its evaluation points (``image_set.evaluation_points``
with the run's ``subset_seed``: ``--n`` equal to the run's ``final_n`` re-evaluates its final points), seeded with the run's seed, PGD/CW with step eps/4, and the driver logs the
accuracies into the same run as ``reeval/<checkpoint>/<attack>/eps<k>_255/n<N>`` (``reeval/best/clean/n<N>`` for
clean accuracy, which no eps changes; an eps that is no k/255 is written as a decimal: ``eps0.03``). Those names
cannot collide with the training metrics, and ``analysis/`` reads them like any other metric. Which points each
metric got right goes beside it, as the artifact ``per_point/<metric>.npz`` (``runstore/points.py``), so the
analysis's ``--stats`` compares re-evaluated runs point by point too.

A negative eps is the inverse attack (PGD-k *descending* the loss within |eps|, ``trainables/signed_eval.py``),
``eps-8_255`` in the key; ``--ce-halves`` adds the accuracy on each half of the points ranked by clean cross-entropy,
``.../low_ce`` and ``.../high_ce`` after the key (``reeval/best/clean/n10000/low_ce``): UIAT Fig. 1 and Fig. 4.
Both take clean and pgd<k> attacks only; argparse needs ``--eps=-8/255,...`` (with ``=``) for a leading minus.

A second call with the same settings evaluates nothing again: a run checkpoint that already has every requested
metric is skipped, and one that misses some is evaluated for those only. Runs trained before trials logged their
models are skipped and counted. Bad input (an unknown attack, an eps outside (0, 1], no such sweep) stops before Ray
starts. Ray is local unless ``--address`` names a cluster; each task takes ``--gpus-per-trial`` GPUs (default: one if
the cluster has GPUs).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from analysis.cli import add_source_arguments
from runstore.uri import absolute_tracking_uri

if TYPE_CHECKING:  # the heavy modules load after the arguments are parsed, so --help answers at once
    import torch
    from mlflow.tracking import MlflowClient

    from runstore.reader import SweepRuns
    from trainables.tracking import TrialRun

CHECKPOINTS = ("best", "last")
PREFIX = "reeval"


def parse_eps(text: str) -> float:
    """``"8/255"`` or ``"0.031"`` -> the eps in [0, 1] pixel units, ``"-8/255"`` the inverse attack's; anything else,
    or outside (0, 1] and [-1, 0), is an error."""
    try:
        value = float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"eps {text!r} is neither k/255 nor a number") from None
    if not 0 < abs(value) <= 1:
        hint = f" (did you mean {text}/255?)" if 1 < abs(value) <= 255 else ""
        raise ValueError(f"eps {text} is outside (0, 1]{hint}; a negative eps in [-1, 0) is the inverse attack")
    return value


def eps_label(eps: float) -> str:
    """``8/255`` -> ``"8_255"``, ``0.03`` -> ``"0.03"``: a ``/`` would add a level to the metric name, and MLflow keys
    allow no ``=`` or ``@``."""
    k = round(eps * 255)
    return f"{k}_255" if abs(eps * 255 - k) < 1e-6 else f"{eps:g}"


def metric_key(checkpoint: str, attack: str, eps: float, n: int, half: str = "") -> str:
    """``reeval/best/autoattack/eps8_255/n10000``; clean accuracy has no eps: ``reeval/best/clean/n10000``; the
    inverse attack's eps is negative, ``reeval/best/pgd20/eps-8_255/n10000``; a half by clean CE (``half``) ends
    it: ``reeval/best/pgd20/eps8_255/n10000/low_ce``."""
    threat = "" if attack == "clean" else f"/eps{eps_label(eps)}"
    return f"{PREFIX}/{checkpoint}/{attack}{threat}/n{n}" + (f"/{half}" if half else "")


@dataclass(frozen=True)
class Job:
    """One run checkpoint to evaluate, with the (eps, attacks) groups whose metrics it does not have yet."""

    run_id: str
    run_name: str
    checkpoint: str
    dataset: str
    seed: int
    n: int
    groups: tuple[tuple[float, tuple[str, ...]], ...]
    halves: bool = False  # also per half by clean cross-entropy (--ce-halves)
    test_data: str = ""  # the run's test source, when it was not the dataset's own test split
    subset_seed: int = 0  # the seed of the run's evaluation points
    # Other checkpoints of the run that hold the same weights (best and last from the same epoch): their metrics are
    # this job's, logged under their names, without evaluating the same weights twice.
    same_weights: tuple[str, ...] = ()

    def for_every_checkpoint(self, results: Mapping[str, Any]) -> dict[str, Any]:
        """``results`` keyed by metric (logged under this job's checkpoint: accuracies, or per-point results) and the
        same values under each of ``same_weights``."""
        own = f"{PREFIX}/{self.checkpoint}/"
        return {**results, **{f"{PREFIX}/{other}/{key.removeprefix(own)}": value
                              for other in self.same_weights for key, value in results.items()}}


@dataclass
class Plan:
    jobs: list[Job]
    done: int  # run checkpoints that already have every requested metric
    without_model: int  # run checkpoints of runs that logged no model

    def shared(self) -> int:
        """Run checkpoints evaluated with another one of the same run, whose weights they are."""
        return sum(len(job.same_weights) for job in self.jobs)


def missing_groups(logged: set[str], checkpoint: str, attacks: Sequence[str], eps_values: Sequence[float],
                   n: int, halves: bool = False) -> tuple[tuple[float, tuple[str, ...]], ...]:
    """The (eps, attacks) to evaluate for metrics not in ``logged``; clean accuracy goes with the first eps."""
    from trainables.signed_eval import HALVES

    parts = ("", *HALVES) if halves else ("",)
    groups = []
    for i, eps in enumerate(eps_values):
        todo = tuple(a for a in attacks if (i == 0 or a != "clean")
                     and any(metric_key(checkpoint, a, eps, n, part) not in logged for part in parts))
        if todo:
            groups.append((eps, todo))
    return tuple(groups)


def plan(sweep: SweepRuns, checkpoints: Sequence[str], attacks: Sequence[str], eps_values: Sequence[float],
         n: int, halves: bool = False) -> Plan:
    import pandas as pd

    from trainables.tracking import has_model

    jobs, done, without_model = [], 0, 0
    for _, run in sweep.runs.iterrows():
        logged = {c.removeprefix("metrics.") for c in sweep.runs.columns
                  if c.startswith("metrics.") and pd.notna(run[c])}
        by_epoch: dict[tuple, int] = {}  # (epoch of the weights, groups) -> index of the job that evaluates them
        for checkpoint in checkpoints:
            groups = missing_groups(logged, checkpoint, attacks, eps_values, n, halves)
            if not groups:
                done += 1
                continue
            # The runtime logs which epoch each checkpoint's weights are from (best/epoch, last/epoch).
            epoch = run.get(f"metrics.{checkpoint}/epoch")
            same = by_epoch.get((epoch, groups)) if epoch is not None and pd.notna(epoch) else None
            if same is not None:
                jobs[same] = replace(jobs[same], same_weights=(*jobs[same].same_weights, checkpoint))
            elif not has_model(sweep.client, run["run_id"], checkpoint):
                without_model += 1
            else:
                by_epoch[(epoch, groups)] = len(jobs)
                jobs.append(Job(run["run_id"], run["run_name"], checkpoint, str(run["params.dataset"]),
                                param_int(run, "seed"), n, groups, halves,
                                test_data=str(run.get("params.test_data") or ""),
                                subset_seed=param_int(run, "subset_seed")))
    return Plan(jobs, done, without_model)


def param_int(run: Mapping[str, Any], name: str) -> int:
    """An integer param of the run (a row of the sweep's runs), 0 where the run has none (runs logged before the
    param existed)."""
    value = run.get(f"params.{name}")
    return int(value) if isinstance(value, str) and value else 0  # MLflow params are strings; NaN where absent


Points = dict[str, tuple["torch.Tensor", "torch.Tensor"]]  # metric key -> (positions in the test split, correct)


def evaluate_job(job: Job, tracking_uri: str, data_root: str | None, batch_size: int) -> Points:
    """Body of one Ray task: the run's model on ``job.n`` of its test points, every group; per metric key, which
    points (positions in the test split) it got right."""
    import torch
    from mlflow.tracking import MlflowClient

    from trainables.dataset_names import test_split_of
    from trainables.datasets import load_dataset
    from trainables.evaluation import evaluate_points
    from trainables.image_set import evaluation_indices
    from trainables.safe_export import load_trained_model
    from trainables.signed_eval import signed_points

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = load_trained_model(MlflowClient(tracking_uri), job.run_id, job.checkpoint).to(device)
    source = job.test_data or job.dataset
    split = load_dataset(source, test_split_of(source), root=data_root)
    indices = evaluation_indices(len(split), job.n, job.subset_seed)  # image_set.evaluation_points' draw
    test = split.subset(indices)
    points: Points = {}
    for eps, attacks in job.groups:
        if eps < 0 or job.halves:
            result = signed_points(model, test.images, test.labels, eps=eps, attacks=attacks, halves=job.halves,
                                   batch_size=batch_size, device=device, seed=job.seed)
        else:
            correct = evaluate_points(model, test.images, test.labels, eps=eps, attacks=attacks,
                                      batch_size=batch_size, device=device, seed=job.seed)
            result = {name: (torch.arange(len(right)), right) for name, right in correct.items()}
        for name, (positions, right) in result.items():
            attack, _, half = name.partition("/")  # signed_points names a half's results "pgd20/low_ce"
            points[metric_key(job.checkpoint, attack, eps, job.n, half)] = (indices[positions], right)
    return points


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_arguments(parser, output=False)
    parser.add_argument("--attacks", required=True,
                        help="comma-separated: clean, fgsm, pgd<k>, cw<k>, autoattack (e.g. autoattack,pgd50)")
    parser.add_argument("--eps", default="8/255",
                        help="comma-separated threat models, k/255 or a number in (0, 1]; negative: the inverse attack "
                             "(write --eps=-8/255,... with '=')")
    parser.add_argument("--n", type=int, default=10000, help="N test points, drawn as the trials drew theirs (default: 10000)")
    parser.add_argument("--checkpoints", default="best", help="best, last or best,last (default: best)")
    parser.add_argument("--ce-halves", action="store_true",
                        help="also the accuracy on each half of the points by clean cross-entropy (UIAT Fig. 1/4)")
    parser.add_argument("--batch-size", type=int, default=256)
    # The run flags of the sweeps (launch/cli.py), with the same environment defaults.
    parser.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                        help="Ray cluster address ('auto' on a cluster node); default: start a local Ray")
    parser.add_argument("--data-root", default=os.environ.get("ADVSWEEP_DATA"), help="dataset folder (default ./data)")
    parser.add_argument("--gpus-per-trial", type=float, default=None,
                        help="GPUs per task, fractions allowed (default: 1 if the cluster has GPUs, else 0)")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0)
    args = parser.parse_args(argv)
    from trainables.evaluation import parse_attack

    try:
        args.attacks = list(dict.fromkeys(a.strip() for a in args.attacks.split(",") if a.strip()))
        for attack in args.attacks:
            parse_attack(attack)
        args.eps = list(dict.fromkeys(parse_eps(e) for e in args.eps.split(",") if e.strip()))
    except ValueError as exc:
        parser.exit(2, f"error: {exc}\n")
    args.checkpoints = list(dict.fromkeys(c.strip() for c in args.checkpoints.split(",")))
    if not args.attacks or not args.eps or set(args.checkpoints) - set(CHECKPOINTS):
        parser.exit(2, f"error: need at least one attack and one eps, and checkpoints among {', '.join(CHECKPOINTS)}\n")
    if args.n < 1 or args.batch_size < 1:
        parser.exit(2, f"error: --n {args.n} and --batch-size {args.batch_size} must be at least 1\n")
    other = [a for a in args.attacks if parse_attack(a)[0] not in ("clean", "pgd")]
    if other and (args.ce_halves or min(args.eps) < 0):
        parser.exit(2, f"error: a negative eps (the inverse attack) and --ce-halves take clean and pgd<k> attacks "
                       f"only, not {', '.join(other)}: evaluate those in a separate call\n")
    return args


def main(argv: list[str] | None = None) -> Plan:
    """Evaluate what the sweep's runs lack and log it; returns the plan (what was evaluated and skipped)."""
    args = parse_args(argv)
    from analysis.runs import load_from_args
    from runstore.uri import missing_sqlite_store, resolve_tracking_uri

    args.tracking_uri = absolute_tracking_uri(resolve_tracking_uri(args.tracking_uri))
    if missing_sqlite_store(args.tracking_uri):
        raise SystemExit(f"error: no MLflow store at {args.tracking_uri}: pass --tracking-uri")
    sweep = load_from_args(args)  # no such sweep: exits listing the sweeps there are
    work = plan(sweep, args.checkpoints, args.attacks, args.eps, args.n, args.ce_halves)
    print(f"{sweep.summary()}\n{len(work.jobs)} run checkpoint(s) to evaluate; skipped {work.done} that already have "
          f"these metrics and {work.without_model} of runs that logged no model (trained before models were logged)")
    if work.shared():
        print(f"{work.shared()} more hold the same weights as one evaluated (best and last from the same epoch): "
              "they get its metrics")
    if work.jobs:
        failed = run_jobs(work.jobs, args, sweep.client)
        if failed:
            raise SystemExit(f"error: {failed} evaluation(s) failed (above); run the same command again to retry them")
    return work


def log_results(run: TrialRun, job: Job, points: Points) -> dict[str, float]:
    """Log each metric's per-point results (``per_point/<key>.npz``), then its accuracy, into the run, and return
    the accuracies. Points first: a metric logged means its points are there too, so the plan's skipping of logged
    metrics never leaves a metric without them."""
    from trainables.evaluation import point_means

    for key, (indices, right) in job.for_every_checkpoint(points).items():
        run.log_metric_points(key, indices, right)
    metrics = point_means({key: right for key, (_, right) in points.items()})
    run.log_metrics(job.for_every_checkpoint(metrics), step=0)
    return metrics


def run_jobs(jobs: Sequence[Job], args: argparse.Namespace, client: MlflowClient) -> int:
    """One Ray task per job (``launch/driver_tasks.py``); each result is logged into its run as it arrives. Returns
    how many failed."""
    from launch.driver_tasks import run_tasks
    from trainables.tracking import TrialRun

    by_label = {f"{job.run_name} ({job.run_id}) {'/'.join((job.checkpoint, *job.same_weights))}": job for job in jobs}

    def logged(label: str, points: Any, progress: str) -> None:
        job = by_label[label]
        metrics = log_results(TrialRun(client, job.run_id), job, points)
        shown = ", ".join(f"{key.split('/', 2)[2]} {value:.4f}" for key, value in sorted(metrics.items()))
        print(f"{progress} {label}: {shown}", flush=True)

    calls = [(label, (job, args.tracking_uri, args.data_root, args.batch_size)) for label, job in by_label.items()]
    return run_tasks(evaluate_job, calls, args, logged)


if __name__ == "__main__":
    main()
