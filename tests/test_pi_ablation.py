"""End to end: the pi-ablation sweep on the smoke preset, interrupted (Ctrl-C, or the driver killed) and resumed;
and the same sweep run twice gives the same numbers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

SUPPORT = Path(__file__).with_name("tests_support.py")


def sweep_command(tmp_path: Path, *extra: str) -> list[str]:
    return [sys.executable, str(SUPPORT), "--name", "e2e", "--concurrency", "1",
            "--storage-path", str(tmp_path / "ray"), "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", *extra]


def child_runs(client: MlflowClient) -> list:
    exp = client.get_experiment_by_name("biamat-pi-ablation")
    runs = client.search_runs([exp.experiment_id]) if exp else []
    return [r for r in runs if "sweep_run_id" in r.data.tags]


def test_interrupted_sweep_resumes_without_duplicate_or_dangling_runs(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen(sweep_command(tmp_path), cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    deadline = time.time() + 300
    while time.time() < deadline and first.poll() is None:
        time.sleep(2)
        if (tmp_path / "mlflow.db").exists() and any(r.info.status == "FINISHED" for r in child_runs(client)):
            break
    assert first.poll() is None, "the sweep ended before it could be interrupted:\n" + first.communicate()[0][-3000:]
    first.send_signal(signal.SIGINT)  # Ctrl-C: Tune saves its state and stops the running trial
    output, _ = first.communicate(timeout=180)
    assert "--resume" in output, output[-3000:]

    interrupted = child_runs(client)
    assert 1 <= sum(r.info.status == "FINISHED" for r in interrupted) < 4
    assert not [r for r in interrupted if r.info.status == "RUNNING"], "no run may be left RUNNING"

    assert_resume_completes_with_one_run_per_trial(tmp_path, client)


def assert_resume_completes_with_one_run_per_trial(tmp_path: Path, client: MlflowClient) -> None:
    resumed = subprocess.run(sweep_command(tmp_path, "--resume"), check=False, cwd=tmp_path,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"}, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

    runs = child_runs(client)
    trial_ids = [r.data.tags["trial_id"] for r in runs]
    assert len(runs) == 4 and len(set(trial_ids)) == 4, "exactly one MLflow run per trial"
    assert all(r.info.status == "FINISHED" for r in runs)
    parents = [r for r in client.search_runs([runs[0].info.experiment_id]) if "trial_id" not in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert {(r.data.params["variant"], r.data.params["pi"]) for r in runs} == {
        (v, p) for v in ("at", "trades") for p in ("0.5", "0.6")
    }
    # The sweep ends with the Table-13-shaped table rebuilt from MLflow.
    assert "AT+BiaMAT" in resumed.stdout and "TRADES+BiaMAT" in resumed.stdout
    print(resumed.stdout[resumed.stdout.find("Table 13"):][:1500])


@pytest.mark.slow
def test_sweep_whose_driver_was_killed_resumes_without_duplicate_or_dangling_runs(tmp_path):
    first = subprocess.Popen(sweep_command(tmp_path), cwd=tmp_path, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    deadline = time.time() + 300
    while time.time() < deadline and first.poll() is None:
        time.sleep(1)
        # Killed once Tune has saved its experiment state and a trial is mid-training (a run RUNNING with epochs).
        saved = list((tmp_path / "ray" / "e2e").glob("experiment_state-*.json"))
        if saved and (tmp_path / "mlflow.db").exists() and any(
                r.info.status == "RUNNING" and "epoch" in r.data.metrics for r in child_runs(client)):
            break
    assert first.poll() is None, "the sweep ended before it could be killed"
    os.killpg(first.pid, signal.SIGKILL)  # the driver and everything it started: no handler runs
    first.wait()
    assert any(r.info.status == "RUNNING" for r in child_runs(client)), "a killed driver closes nothing"

    assert_resume_completes_with_one_run_per_trial(tmp_path, client)


@pytest.mark.slow
def test_same_seed_and_preset_give_the_same_metrics_in_two_runs(tmp_path):
    metrics = []
    for attempt in ("first", "second"):
        folder = tmp_path / attempt
        folder.mkdir()
        done = subprocess.run(sweep_command(folder), check=False, cwd=folder, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        runs = child_runs(MlflowClient(f"sqlite:///{folder / 'mlflow.db'}"))
        metrics.append({r.info.run_name: r.data.metrics for r in runs})
    first, second = metrics
    assert len(first) == 4 and first.keys() == second.keys()
    for name in first:
        # Timings differ between runs; every learned quantity must not.
        learned = {k for k in first[name] if k not in {"epoch_time_s"}}
        assert {k: first[name][k] for k in learned} == {k: second[name][k] for k in learned}, name
    print("\nreproduced:", {name: round(m["best/pgd20"], 4) for name, m in first.items()})
