"""Optuna search for any method's sweep: seeded multivariate TPE on a named study in an RDB storage, with the trials
a Tune scheduler stopped early recorded as PRUNED.

    search = build_search("select/pgd10", "max", study_name="biamat-at-paper", storage=args.optuna_storage, seed=0)
    Sweep(..., param_space={..., "alpha": tune.uniform(0, 1)}, search_alg=search, metric="select/pgd10", mode="max",
          scheduler=ASHAScheduler(time_attr="training_iteration", max_t=epochs, ...))

The search space stays in the sweep's ``param_space`` (Tune domains; constants pass through to the trainable and
are not Optuna parameters), so the launcher validates it before Ray starts. Several objectives (AFS: clean and robust
accuracy) are a list of metrics and a list of modes; Tune's schedulers still rank trials on one metric.
Open a study with ``optuna-dashboard <storage URL>``.

Why a subclass (ray 2.60, optuna 5.0). When a scheduler stops a trial, ``TuneController._process_trial_result``
(ray/tune/execution/tune_controller.py) marks that result ``done`` and skips ``search_alg.on_trial_result`` for it;
``stop_trial`` then calls ``search_alg.on_trial_complete(trial_id, result=flatten_dict(trial.last_result))``: the
same call, with the same ``done=True``, as for a trial that ran to its last epoch (whose final result arrives as a
``RESULT_DUPLICATE`` turned into ``last_result`` with ``done=True``). ``OptunaSearch.on_trial_complete`` tells Optuna
COMPLETE whenever the metric is in that result, so a trial stopped after 1 of 100 epochs entered the study as a
finished trial with its epoch-1 score, skewing TPE and ``study.best_trial``. The only difference between the two calls
is the result itself: the runtime (trainables/runtime.py) reports the final protocol, ``best/*``, in the last
epoch's result only. A result without it is a trial that stopped early, and it is told PRUNED.

Resuming. ``--resume`` restores the Tune experiment, searcher included: Tune pickles the searcher (its study handle,
the Tune-trial -> Optuna-trial map and the sampler's RNG) with every experiment checkpoint and restores it, so
interrupted trials keep reporting to their own Optuna trial. The study in the database may be ahead of that
checkpoint after a hard kill; :meth:`StudySearch.restore` reconciles the two (see there). A new sweep with the same
study name continues the study: trials are added to it, and the sampler seed is derived from the trial count (see
:func:`sampler_seed`) so the continuation does not repeat the first sweep's start-up points.
"""

from __future__ import annotations

import argparse
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState
from ray.tune.result import TRAINING_ITERATION
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.optuna import OptunaSearch

from launch.sweep import Sweep, no_extra_datasets
from trainables.config import TrainConfig

# The runtime adds the final protocol (best/clean, best/pgd20, ...) to the last epoch's result only. The slash
# matters: ``best_epoch`` is in every result.
FINAL_PREFIX = "best/"
# User attributes on every Optuna trial: which Tune trial it is (the MLflow run's ``trial_id`` tag) and which searcher
# asked for it (to find trials a killed driver asked for but Tune never heard of, see StudySearch.restore).
TUNE_TRIAL_ATTR = "tune_trial_id"
SEARCHER_ATTR = "tune_searcher"


def reached_end(result: Mapping[str, Any]) -> bool:
    return any(key.startswith(FINAL_PREFIX) for key in result)


class StudySearch(OptunaSearch):
    """Ray's OptunaSearch, except that a trial stopped before its last epoch is told PRUNED, not COMPLETE."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._searcher_id = uuid.uuid4().hex

    def suggest(self, trial_id: str) -> dict | None:
        new = trial_id not in self._ot_trials
        config = super().suggest(trial_id)
        if new:
            ot_trial = self._ot_trials[trial_id]
            ot_trial.set_user_attr(TUNE_TRIAL_ATTR, trial_id)
            ot_trial.set_user_attr(SEARCHER_ATTR, self._searcher_id)
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if error or not result or reached_end(result) or trial_id in self._completed_trials:
            super().on_trial_complete(trial_id, result=result, error=error)
            return
        # Stopped early. Tune skipped on_trial_result for this last result, so report it here: Optuna stores the last
        # intermediate value as a PRUNED trial's value, and TPE ranks pruned trials below complete ones by the step
        # they reached. Optuna has no intermediate values for several objectives.
        if isinstance(self.metric, str) and self.metric in result:
            self._ot_trials[trial_id].report(result[self.metric], result[TRAINING_ITERATION])
        super().on_trial_complete(trial_id, result=None)  # no result and no error: Ray's PRUNED branch

    def restore(self, checkpoint_path: str) -> None:
        """Restore Tune's searcher checkpoint, then reconcile it with the study, which may have moved on since.

        After a graceful stop (Ctrl+C once) Tune writes a final checkpoint and nothing needs fixing. After a hard
        kill the checkpoint is the last periodic one: a trial finished since is finished in the study (its re-run
        from its own checkpoint is not told again: Optuna refuses to update a finished trial), and a trial asked for
        since is RUNNING in the study but unknown to Tune, which will never run it. Left RUNNING it would stay in the
        dashboard forever and, with TPE's constant liar, keep steering suggestions away from its point; it is
        marked FAIL.
        """
        super().restore(checkpoint_path)
        frozen = {t.number: t for t in self._ot_study.get_trials(deepcopy=False)}
        known = set()
        for trial_id, ot_trial in self._ot_trials.items():
            known.add(ot_trial.number)
            if frozen[ot_trial.number].state.is_finished():
                self._completed_trials.add(trial_id)
        for number, trial in frozen.items():
            mine = trial.user_attrs.get(SEARCHER_ATTR) == self._searcher_id
            if trial.state == TrialState.RUNNING and mine and number not in known:
                self._ot_study.tell(number, state=TrialState.FAIL)


def sampler_seed(storage: optuna.storages.BaseStorage, study_name: str, seed: int) -> int:
    """The TPE seed: ``seed`` itself for a new study (same seed, same suggestions), one derived from ``seed`` and the
    number of trials for a study that already has some. With the plain seed a continuation would replay the first
    sweep's random start-up points (TPE samples its first 10 trials at random) and train the same configurations."""
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return seed
    n_trials = storage.get_n_trials(study_id)
    return seed if n_trials == 0 else int(np.random.SeedSequence([seed, n_trials]).generate_state(1)[0])


def build_search(metric: str | list[str], mode: str | list[str], *, study_name: str, storage: str, seed: int,
                 space: dict[str, Any] | None = None) -> StudySearch:
    """The Tune search algorithm of an Optuna sweep. ``storage`` is an RDB URL (a SQLite path must be absolute, as
    ``--optuna-storage`` makes it, so a resume from another directory finds the same study). ``space`` (Optuna
    distributions, or a define-by-run function for conditional parameters) is only needed when the Tune
    ``param_space`` cannot express the space."""
    rdb = optuna.storages.RDBStorage(storage)
    # Joint (multivariate) TPE over groups of parameters that occur together: without group=True, Optuna 5.0 samples
    # a method's own parameters independently. Constant liar (the 5.0 default) keeps concurrent trials apart.
    with warnings.catch_warnings():
        # group=True is the point (above), so Optuna's note that the argument is experimental says nothing new.
        warnings.filterwarnings("ignore", message=r"Argument ``group`` is an experimental feature",
                                category=optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=sampler_seed(rdb, study_name, seed), multivariate=True, group=True)
    return StudySearch(space=space, metric=metric, mode=mode, sampler=sampler, study_name=study_name, storage=rdb)


def search_sweep(method: str, *, study: str, space: dict[str, Any], name_keys: tuple[str, ...], metric: str,
                 epochs: int, args: argparse.Namespace, defaults: Mapping[str, int],
                 extra_datasets: Callable[[TrainConfig], Sequence[str]] = no_extra_datasets) -> Sweep:
    """A one-objective sweep of the registered ``method``, searched by :func:`build_search` (maximising ``metric``) and, with ``--asha``, stopped
    early by ASHA on epochs; ``defaults`` gives ``num_samples``, ``grace_period`` and ``reduction_factor`` where the
    flags (:func:`launch.cli.add_search_arguments`) leave them unset. The study's name is also its MLflow experiment."""
    scheduler = None
    if args.asha:
        # One report per epoch, so ASHA's time unit (training_iteration) is the epoch.
        scheduler = ASHAScheduler(time_attr=TRAINING_ITERATION, max_t=epochs,
                                  grace_period=args.grace_period or defaults["grace_period"],
                                  reduction_factor=args.reduction_factor or defaults["reduction_factor"])
    return Sweep.of(method, family=study, param_space=space, name_keys=name_keys, metric=metric, mode="max",
                    num_samples=args.num_samples or defaults["num_samples"],
                    search_alg=lambda: build_search(metric, "max", study_name=study, storage=args.optuna_storage, seed=args.sampler_seed),
                    scheduler=scheduler, tags={"study": study}, extra_datasets=extra_datasets)


def describe_study(study_name: str, storage: str, metrics: list[str]) -> str:
    """Where the study is, its trials by state, its best trial(s) (the Pareto front for several objectives)."""
    study = optuna.load_study(study_name=study_name, storage=storage)
    states = Counter(t.state.name for t in study.trials)
    lines = [f"Optuna study {study_name!r} in {storage}: "
             + ", ".join(f"{count} {state}" for state, count in sorted(states.items()))]
    best: list[optuna.trial.FrozenTrial] = []
    if states[TrialState.COMPLETE.name]:  # one best trial (the first of a tie), or the Pareto front of several
        best = study.best_trials if len(study.directions) > 1 else [study.best_trial]
    else:
        lines.append("  no COMPLETE trial yet")
    for trial in best:
        params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
        scores = " ".join(f"{m}={v:.4f}" for m, v in zip(metrics, trial.values))
        tune_id = trial.user_attrs.get(TUNE_TRIAL_ATTR)
        lines.append(f"  best trial #{trial.number} (Tune {tune_id}): {params} -> {scores}")
    lines.append(f"Dashboard: optuna-dashboard {storage}")
    return "\n".join(lines)
