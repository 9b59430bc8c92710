"""The trial runtime under Ray Tune: per-epoch reports, MLflow logging, and an exact resume after a killed worker."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from ray import tune

from runstore.points import load_points
from tests_support import TINY_TRIAL, crash_once, epochs_by_process, settings_for, stalling
from trainables.checkpoints import STATE_FILE
from trainables.methods import baseline


def fit(trainable, config: dict, storage: Path, name: str, max_failures: int = 0):
    tuner = tune.Tuner(
        trainable,
        param_space=config,
        run_config=tune.RunConfig(
            name=name, storage_path=str(storage), failure_config=tune.FailureConfig(max_failures=max_failures)
        ),
    )
    return tuner.fit()


def mlflow_runs(settings) -> list:
    client = MlflowClient(settings.tracking_uri)
    exp = client.get_experiment_by_name(settings.experiment)
    return client.search_runs([exp.experiment_id]) if exp else []


def history(settings, run_id: str, key: str) -> dict[int, float]:
    metric_history = MlflowClient(settings.tracking_uri).get_metric_history(run_id, key)
    return {m.step: m.value for m in metric_history}


def test_killed_trial_resumes_at_next_epoch_with_same_run_and_metrics(ray_local, tmp_path):
    config = {**TINY_TRIAL, "epochs": 4, "training": "pgd_at"}
    reference_settings = settings_for(tmp_path / "reference")
    (tmp_path / "reference").mkdir()
    reference = fit(tune.with_parameters(baseline.trainable, settings=reference_settings), config, tmp_path, "ref")
    assert not reference.errors

    crashed_settings = settings_for(tmp_path / "crashed")
    (tmp_path / "crashed").mkdir()
    log = tmp_path / "epochs.log"
    trainable = tune.with_parameters(crash_once, settings=crashed_settings, body=baseline.trainable,
                                     crash_at_epoch=2, log=str(log))
    resumed = fit(trainable, config, tmp_path, "crashed", max_failures=1)
    assert not resumed.errors

    # The first process checkpointed epochs 0 and 1 and died before reporting epoch 2: the restarted process must
    # start at epoch 2 (last checkpoint k = 1 -> k + 1), not at 0.
    processes = epochs_by_process(log)
    assert [epochs for _, _, epochs in processes] == [[0, 1], [2, 3]], processes

    runs = mlflow_runs(crashed_settings)
    assert len(runs) == 1, "the restarted trial must reopen its MLflow run, not open a second one"
    assert runs[0].info.status == "FINISHED"
    (ref_run,) = mlflow_runs(reference_settings)
    for key in ("train/loss", "select/pgd3", "select/clean"):
        assert history(crashed_settings, runs[0].info.run_id, key) == pytest.approx(
            history(reference_settings, ref_run.info.run_id, key), abs=1e-6
        ), key
    for key in ("best/clean", "best/pgd5", "last/pgd5"):
        assert runs[0].data.metrics[key] == pytest.approx(ref_run.data.metrics[key], abs=1e-6)
    print("\nresumed == uninterrupted:", {k: round(v, 4) for k, v in runs[0].data.metrics.items() if "/" in k})


def test_trial_logs_params_tags_and_final_protocol(ray_local, tmp_path):
    settings = settings_for(tmp_path, name_keys=("training", "seed"), git_commit="abc123")
    results = fit(tune.with_parameters(baseline.trainable, settings=settings),
                  {**TINY_TRIAL, "epochs": 2, "training": "trades", "seed": 1}, tmp_path, "one")
    assert not results.errors
    (result,) = results
    assert result.metrics["epoch"] == 1 and result.checkpoint is not None
    (run,) = mlflow_runs(settings)
    assert run.info.run_name == "baseline training=trades seed=1"
    # Params are for people (6 significant digits); the config artifact keeps the exact values.
    assert run.data.params["training"] == "trades" and run.data.params["eps"] == "0.0313725"
    client = MlflowClient(settings.tracking_uri)
    config = json.loads(Path(client.download_artifacts(run.info.run_id, "config.json", str(tmp_path))).read_text())
    assert config["eps"] == 8 / 255 and config["training"] == "trades"
    inputs = [(d.dataset.name, d.tags[0].value) for d in run.inputs.dataset_inputs]
    assert inputs == [("synthetic", "train")]
    assert run.data.tags["method"] == "baseline" and run.data.tags["git_commit"] == "abc123"
    assert run.data.tags["trial_id"] == result.metrics["trial_id"]
    for key in ("best/clean", "best/pgd5", "last/clean", "last/pgd5", "select/clean", "epoch_time_s", "lr"):
        assert key in run.data.metrics, key
    assert 0 <= run.data.metrics["best/pgd5"] <= run.data.metrics["best/clean"] <= 1
    # Which final points each checkpoint got right, in the order the test split's random sample drew them.
    points = load_points(client, run.info.run_id)
    final_n = TINY_TRIAL["final_n"]
    indices, best_clean = points.of("best/clean")
    assert sorted(indices.tolist()) != list(range(final_n)) and len(set(indices.tolist())) == final_n
    for key in ("best/clean", "best/pgd5", "last/clean", "last/pgd5"):
        assert points.of(key)[1].mean() == pytest.approx(run.data.metrics[key]), key
        assert (points.of(key)[0] == indices).all()
    assert not (points.of("best/pgd5")[1] & ~best_clean).any()  # robust only where clean is right


def run_with_tampered_checkpoints(tmp_path: Path, tamper, stall_at_epoch: int, epochs: int):
    """A trial stalls after reporting ``stall_at_epoch``; ``tamper(checkpoint_states)`` (oldest first) damages them
    (a full disk, a partial upload); then the worker dies and Tune retries the trial (up to twice)."""
    settings = settings_for(tmp_path)
    log = tmp_path / "epochs.log"

    def tamper_then_release_the_trial() -> None:
        deadline = time.time() + 120
        while time.time() < deadline and not (log.exists() and f"{stall_at_epoch}\n" in log.read_text()):
            time.sleep(0.2)
        time.sleep(1)  # let the driver register the checkpoint
        tamper(sorted((tmp_path / "corrupt").rglob(f"checkpoint_*/{STATE_FILE}")))
        Path(f"{log}.go").touch()

    thread = threading.Thread(target=tamper_then_release_the_trial, daemon=True)
    thread.start()
    trainable = tune.with_parameters(stalling(baseline.trainable, stall_at_epoch=stall_at_epoch, log=str(log)),
                                     settings=settings)
    results = fit(trainable, {**TINY_TRIAL, "epochs": epochs, "training": "standard"}, tmp_path, "corrupt",
                  max_failures=2)
    thread.join()
    return results, settings, [epochs for _, _, epochs in epochs_by_process(log)]


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def test_trial_whose_latest_checkpoint_is_truncated_resumes_from_the_one_before(ray_local, tmp_path):
    results, settings, processes = run_with_tampered_checkpoints(
        tmp_path, lambda states: truncate(states[-1]), stall_at_epoch=2, epochs=4)
    assert not results.errors
    # Epoch 2's checkpoint is unreadable: the retry continues from epoch 1's and trains epoch 2 again.
    assert processes == [[0, 1, 2], [2, 3]], processes
    (run,) = mlflow_runs(settings)
    assert run.info.status == "FINISHED"
    assert "checkpoint_000002" in run.data.tags["resumed_from_older_checkpoint"], run.data.tags
    assert "checkpoint_000001" in run.data.tags["resumed_from_older_checkpoint"]
    steps = [m.step for m in MlflowClient(settings.tracking_uri).get_metric_history(run.info.run_id, "train/loss")]
    assert steps == [0, 1, 2, 3], "the retrained epoch is not logged twice"


def test_trial_with_no_readable_checkpoint_fails_clearly_instead_of_restarting(ray_local, tmp_path):
    """Every kept checkpoint truncated: the retry must stop with the runtime's error, not train again from epoch 0."""
    results, settings, processes = run_with_tampered_checkpoints(
        tmp_path, lambda states: [truncate(state) for state in states], stall_at_epoch=1, epochs=3)
    (error,) = results.errors
    assert "CorruptCheckpointError" in repr(error) and "no checkpoint of this trial is readable" in str(error), error
    assert "checkpoint_000000" in str(error) and "checkpoint_000001" in str(error)
    assert processes == [[0, 1]], "no attempt may train again from epoch 0"
    (run,) = mlflow_runs(settings)
    assert run.data.metrics["epoch"] == 1
    # Closed as what it is, not left for the sweep to close as interrupted (--resume could not continue it).
    assert run.info.status == "FAILED" and run.data.tags["end_reason"] == "unreadable_checkpoints"


def test_truncated_checkpoint_is_a_clear_error_not_a_silent_restart(tmp_path):
    import torch

    from trainables.checkpoints import CorruptCheckpointError, load_checkpoint_state

    folder = tmp_path / "checkpoint_000003"
    folder.mkdir()
    torch.save({"next_epoch": 3, "weights": torch.zeros(1000)}, folder / STATE_FILE)
    truncate(folder / STATE_FILE)
    with pytest.raises(CorruptCheckpointError) as info:
        load_checkpoint_state(tune.Checkpoint.from_directory(str(folder)))
    assert "no checkpoint of this trial is readable" in str(info.value) and "checkpoint_000003" in str(info.value)


def test_a_dataset_insert_lost_to_a_concurrent_trial_is_retried_and_other_errors_are_not():
    from mlflow.exceptions import MlflowException

    from trainables.tracking import dataset_input, log_datasets

    class Client:
        def __init__(self, errors: list[str]) -> None:
            self.errors, self.calls = errors, 0

        def log_inputs(self, run_id: str, datasets: list) -> None:
            self.calls += 1
            if self.errors:
                raise MlflowException(self.errors.pop(0))

    inputs = [dataset_input("cifar10", "train")]
    race = "(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, datasets.name, datasets.digest"
    lost_once = Client([race])
    log_datasets(lost_once, "run", inputs)
    assert lost_once.calls == 2
    with pytest.raises(MlflowException, match="UNIQUE"):
        log_datasets(Client([race] * 3), "run", inputs)
    other = Client(["database is locked"])
    with pytest.raises(MlflowException, match="locked"):
        log_datasets(other, "run", inputs)
    assert other.calls == 1


# Two different trials (training, training images, seed), one after the other: in one reused worker, or each in a
# new one. Both read the synthetic set, which a reused worker keeps loaded (trainables.datasets): a trial that wrote
# into it would change the second trial's numbers.
TWO_TRIALS = {"seed": 0, "epochs": 2, "train_n": 512, "training": "pgd_at"}, \
    {"seed": 1, "epochs": 2, "train_n": 384, "training": "trades"}


def two_trials_in_sequence(tmp_path: Path, reuse: bool) -> tuple[list, object]:
    name = "reused" if reuse else "fresh"
    settings = settings_for(tmp_path / name)
    (tmp_path / name).mkdir()
    by_seed = {trial["seed"]: trial for trial in TWO_TRIALS}
    space = {**TINY_TRIAL, "seed": tune.grid_search(list(by_seed)),
             **{key: tune.sample_from(lambda config, key=key: by_seed[config["seed"]][key])
                for key in ("epochs", "train_n", "training")}}
    tuner = tune.Tuner(tune.with_parameters(baseline.trainable, settings=settings), param_space=space,
                       tune_config=tune.TuneConfig(reuse_actors=reuse, max_concurrent_trials=1),
                       run_config=tune.RunConfig(name=name, storage_path=str(tmp_path)))
    results = tuner.fit()
    assert not results.errors
    return sorted(results, key=lambda r: r.config["seed"]), settings


@pytest.mark.slow
def test_a_reused_worker_runs_a_trial_exactly_as_a_new_worker_does(ray_local, tmp_path):
    """Tune reuses a worker for the next trial (launch/tuner.py). The second trial in a reused worker logs the same
    metrics, bit for bit, and ends with the same weights as in a worker of its own; and nothing of the first trial
    (its MLflow run, its training images, its model) reaches it."""
    import torch

    reused, reused_settings = two_trials_in_sequence(tmp_path, reuse=True)
    fresh, fresh_settings = two_trials_in_sequence(tmp_path, reuse=False)
    # The premise: one process ran both reused trials, two processes the fresh ones.
    assert reused[0].metrics["pid"] == reused[1].metrics["pid"]
    assert fresh[0].metrics["pid"] != fresh[1].metrics["pid"]

    runs = {name: {int(run.data.params["seed"]): run for run in mlflow_runs(settings)}
            for name, settings in (("reused", reused_settings), ("fresh", fresh_settings))}
    client = {"reused": MlflowClient(reused_settings.tracking_uri), "fresh": MlflowClient(fresh_settings.tracking_uri)}
    for seed, trial in enumerate(TWO_TRIALS):
        reused_run, fresh_run = runs["reused"][seed], runs["fresh"][seed]
        assert reused_run.data.params == fresh_run.data.params
        for key in fresh_run.data.metrics:
            if key == "epoch_time_s":
                continue
            histories = [[(m.step, m.value) for m in client[name].get_metric_history(run.info.run_id, key)]
                         for name, run in (("reused", reused_run), ("fresh", fresh_run))]
            assert histories[0] == histories[1], (seed, key)
        weights = [torch.load(Path(result.checkpoint.path) / STATE_FILE, weights_only=False)["model"]
                   for result in (reused[seed], fresh[seed])]
        assert weights[0].keys() == weights[1].keys()
        assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0]), seed
        # Only its own training images, its own run, its own trial id.
        assert reused_run.data.params["train_n"] == str(trial["train_n"])
        assert [d.dataset.name for d in reused_run.inputs.dataset_inputs] == ["synthetic"]
        assert reused_run.data.tags["trial_id"] == reused[seed].metrics["trial_id"]
    assert runs["reused"][0].info.run_id != runs["reused"][1].info.run_id


class _RunsCode:
    """A pickle that runs a command when it is read (what a checkpoint from someone else's storage could hold)."""

    def __reduce__(self):
        import os

        return os.system, ("touch /tmp/advsweep-checkpoint-ran-code",)


def test_a_checkpoint_is_read_as_weights_only_and_one_that_would_run_code_is_refused(tmp_path):
    import pickle

    import numpy as np
    import torch

    from small_methods import make_method, small_data
    from trainables.checkpoints import read_state
    from trainables.runtime import Trial

    trial = Trial(make_method(baseline.Baseline, small_data()))
    trial.train_epoch(0)
    np.random.rand(3)  # numpy's generator away from its seeded start, so the round trip below means something
    state = trial.state_dict()
    (tmp_path / "good").mkdir()
    torch.save(state, tmp_path / "good" / STATE_FILE)
    read = read_state(tune.Checkpoint(str(tmp_path / "good")))
    assert read["next_epoch"] == state["next_epoch"] and read["model"].keys() == state["model"].keys()
    assert all(torch.equal(read["model"][key], value) for key, value in state["model"].items())
    expected = np.random.rand(3)
    trial.load_state_dict(read)  # the RNGs as saved, numpy's included
    assert np.array_equal(np.random.rand(3), expected)

    (tmp_path / "evil").mkdir()
    torch.save({"model": _RunsCode()}, tmp_path / "evil" / STATE_FILE, pickle_module=pickle)
    Path("/tmp/advsweep-checkpoint-ran-code").unlink(missing_ok=True)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        read_state(tune.Checkpoint(str(tmp_path / "evil")))
    assert not Path("/tmp/advsweep-checkpoint-ran-code").exists()
