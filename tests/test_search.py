"""Optuna under Tune: trials ASHA stopped are PRUNED in the study, finished ones COMPLETE with their final score, the
sampler is seeded, a second sweep continues the study, and a restored searcher agrees with the study.

The trainable is the real baseline on the shared runtime, so the test relies on the runtime's actual reports (``best/*``
on the last epoch only). BiaMAT's alpha and pi barely move a 3-epoch tiny CNN off chance (every trial ties, and ASHA
never stops a tie); the learning rate over three decades does, so ASHA has something to stop.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from launch.optuna_search import TUNE_TRIAL_ATTR, build_search
from sweeps import biamat_search
from tests_support import TINY_TRIAL, settings_for
from trainables.methods import baseline
from trainables.tracking import PARENT_TAG, experiment_id

METRIC = "select/pgd3"  # the per-epoch selection score at the training attack (TINY_TRIAL: PGD-3)
SPACE = {**TINY_TRIAL, "train_n": 256, "eval_n": 64, "final_n": 64, "final_attacks": ["clean"], "training": "pgd_at",
         "lr": tune.loguniform(1e-4, 0.5)}
EPOCHS = SPACE["epochs"]
STUDY = "search-test"


def storage_url(tmp: Path) -> str:
    return f"sqlite:///{tmp / 'optuna.db'}"


def run_search(tmp: Path, name: str, num_samples: int, seed: int = 0) -> tune.ResultGrid:
    settings = settings_for(tmp)
    experiment_id(MlflowClient(settings.tracking_uri), settings.experiment)  # as the launcher does, before any trial
    search = build_search(METRIC, "max", study_name=STUDY, storage=storage_url(tmp), seed=seed)
    tuner = tune.Tuner(
        tune.with_parameters(baseline.trainable, settings=settings),
        param_space=SPACE,
        tune_config=tune.TuneConfig(
            metric=METRIC, mode="max", num_samples=num_samples, search_alg=search,
            scheduler=ASHAScheduler(time_attr="training_iteration", max_t=EPOCHS, grace_period=1, reduction_factor=2),
            # One trial at a time: ASHA's decisions then depend only on the (seeded) scores, not on which of two
            # concurrent trials reaches a rung first, so the same trials are stopped on every run.
            max_concurrent_trials=1,
            # Each new trial actor re-imports torch and MLflow, about half the test's time on 2 cores; a reused actor
            # reaches the searcher through the same stop_trial -> on_trial_complete path.
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(name=name, storage_path=str(tmp / "ray"), verbose=0),
    )
    results = tuner.fit()
    assert not results.errors
    return results


def optuna_trials(tmp: Path) -> dict[str, optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=STUDY, storage=storage_url(tmp))
    return {t.user_attrs[TUNE_TRIAL_ATTR]: t for t in study.trials}


@pytest.fixture(scope="module")
def first_sweep(ray_local, tmp_path_factory) -> tuple[Path, tune.ResultGrid]:
    tmp = tmp_path_factory.mktemp("search")
    return tmp, run_search(tmp, "first", num_samples=4)


def test_stopped_trials_are_pruned_and_finished_ones_complete_with_their_final_score(first_sweep):
    tmp, results = first_sweep
    trials = optuna_trials(tmp)
    assert len(trials) == 4
    stopped = [r for r in results if r.metrics["epoch"] < EPOCHS - 1]
    finished = [r for r in results if r.metrics["epoch"] == EPOCHS - 1]
    assert stopped and finished, "ASHA should stop some of 4 trials spread over 3 decades of learning rate"
    for result in stopped:
        trial = trials[result.metrics["trial_id"]]
        assert trial.state == TrialState.PRUNED, result.metrics["trial_id"]
        # Every epoch it trained is an intermediate value, the one it was stopped at included; that is its value.
        iterations = result.metrics["training_iteration"]
        assert sorted(trial.intermediate_values) == list(range(1, iterations + 1))
        assert trial.value == pytest.approx(result.metrics[METRIC])
    for result in finished:
        trial = trials[result.metrics["trial_id"]]
        assert trial.state == TrialState.COMPLETE
        assert trial.value == pytest.approx(result.metrics[METRIC])
        assert "best/clean" in result.metrics
    for result in results:
        assert trials[result.metrics["trial_id"]].params["lr"] == pytest.approx(result.config["lr"])


def test_same_seed_gives_the_same_first_suggestion(first_sweep, tmp_path):
    tmp, _ = first_sweep
    first = min(optuna_trials(tmp).values(), key=lambda t: t.number)

    def first_suggestion(seed: int) -> dict:
        search = build_search(METRIC, "max", study_name=f"fresh-{seed}", storage=storage_url(tmp_path), seed=seed)
        search.set_search_properties(None, None, SPACE)
        return search.suggest("trial-0")

    assert first_suggestion(0)["lr"] == pytest.approx(first.params["lr"])
    assert first_suggestion(1)["lr"] != pytest.approx(first.params["lr"])


def test_a_second_sweep_with_the_same_study_continues_it_without_repeating_points(first_sweep):
    tmp, _ = first_sweep
    before = optuna_trials(tmp)
    run_search(tmp, "second", num_samples=1)  # same seed, same study name
    after = optuna_trials(tmp)
    assert len(after) == 5 and before.keys() < after.keys()
    assert sorted(t.number for t in after.values()) == list(range(5))
    (new,) = [t for key, t in after.items() if key not in before]
    assert new.state == TrialState.COMPLETE
    assert all(new.params["lr"] != pytest.approx(t.params["lr"]) for t in before.values()), \
        "the continuation replayed the first sweep's start-up points"


def test_restored_searcher_reconciles_with_a_study_that_moved_on(tmp_path):
    """What a hard-killed driver leaves: the searcher checkpoint Tune restores from predates the last tell and ask."""
    search = build_search(METRIC, "max", study_name=STUDY, storage=storage_url(tmp_path), seed=0)
    search.set_search_properties(None, None, SPACE)
    search.suggest("a")
    search.suggest("b")
    checkpoint = str(tmp_path / "searcher.pkl")
    search.save(checkpoint)
    final = {METRIC: 0.5, "best/clean": 0.6, "training_iteration": EPOCHS}
    search.on_trial_complete("a", result=final)  # finished after the checkpoint
    search.suggest("c")  # asked after the checkpoint: Tune will never run it

    restored = build_search(METRIC, "max", study_name=STUDY, storage=storage_url(tmp_path), seed=0)
    restored.restore(checkpoint)
    restored.on_trial_complete("a", result={**final, METRIC: 0.1})  # the re-run of "a" must not be told again
    restored.on_trial_result("b", {METRIC: 0.2, "training_iteration": 1})
    restored.on_trial_complete("b", result={METRIC: 0.3, "training_iteration": 2})

    trials = optuna_trials(tmp_path)
    assert (trials["a"].state, trials["a"].value) == (TrialState.COMPLETE, 0.5)
    assert (trials["b"].state, trials["b"].value) == (TrialState.PRUNED, 0.3)
    assert trials["c"].state == TrialState.FAIL


def test_several_objectives_complete_with_every_value_and_prune_without_one(tmp_path):
    """AFS will search clean and robust accuracy together; Optuna keeps no intermediate values for several."""
    metrics = ["select/clean", METRIC]
    search = build_search(metrics, ["max", "max"], study_name=STUDY, storage=storage_url(tmp_path), seed=0)
    search.set_search_properties(None, None, SPACE)
    search.suggest("stopped")
    search.suggest("finished")
    search.on_trial_result("stopped", {"select/clean": 0.4, METRIC: 0.2, "training_iteration": 1})
    search.on_trial_complete("stopped", result={"select/clean": 0.5, METRIC: 0.3, "training_iteration": 2})
    search.on_trial_complete("finished", result={"select/clean": 0.7, METRIC: 0.4, "best/clean": 0.7,
                                                 "training_iteration": EPOCHS})
    trials = optuna_trials(tmp_path)
    assert (trials["stopped"].state, trials["stopped"].values) == (TrialState.PRUNED, None)
    assert (trials["finished"].state, trials["finished"].values) == (TrialState.COMPLETE, [0.7, 0.4])


@pytest.mark.slow
def test_biamat_search_smoke_runs_end_to_end(ray_local, tmp_path, capsys):
    """The sweep script as a user runs it (smoke preset, ASHA): 3-4 minutes on 2 CPU cores shared with other jobs."""
    storage = storage_url(tmp_path)
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # A quarter of the final test points: ASHA ranks trials on the held-out selection images, not on these.
    biamat_search.main(["--preset", "smoke", "--asha", "--storage-path", str(tmp_path / "ray"),
                        "--tracking-uri", tracking, "--optuna-storage", storage, "--set", "final_n=64"])
    # The study is named after its Table 12 setting: variant, primary and auxiliary datasets, preset.
    study = optuna.load_study(study_name="biamat-at-synthetic-synthetic_aux-smoke", storage=storage)
    assert len(study.trials) == 4
    assert {t.state for t in study.trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert all(0 <= t.params["alpha"] <= 1 and 0.25 <= t.params["pi"] <= 0.75 for t in study.trials)

    assert any(t.state == TrialState.PRUNED for t in study.trials), "ASHA's rung no longer separates smoke trials"

    # One MLflow experiment per study, one run per Optuna trial, linked by the Tune trial id.
    client = MlflowClient(tracking)
    exp = client.get_experiment_by_name("biamat-at-synthetic-synthetic_aux-smoke")
    runs = [r for r in client.search_runs([exp.experiment_id]) if PARENT_TAG in r.data.tags]
    assert {r.data.tags["trial_id"] for r in runs} == {t.user_attrs[TUNE_TRIAL_ATTR] for t in study.trials}
    # The search selected on held-out training images, never on the test set.
    assert {r.data.params["select_on"] for r in runs} == {"holdout"}

    out = capsys.readouterr().out
    assert f"best trial #{study.best_trial.number}" in out and f"optuna-dashboard {storage}" in out
