"""deploy/slurm/sweep.sbatch on a real single-node Slurm (tests/slurm/setup_localhost.sh): the reduced pi ablation
stopped as a time limit stops it (the batch script requeues itself and resumes), then cancelled with scancel (no
requeue; a new job with --resume finishes it), with no MLflow run left RUNNING or FAILED and one run per trial."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "tests" / "slurm" / "setup_localhost.sh"
BATCH = ROOT / "deploy" / "slurm" / "sweep.sbatch"
SUPPORT = ROOT / "tests" / "tests_support.py"
NAME = "slurm-e2e"
# What the job must not inherit from this process: it would point the sweep somewhere else than the test looks.
CLUSTER_VARIABLES = ("MLFLOW_TRACKING_URI", "RAY_ADDRESS", "ADVSWEEP_STORAGE", "ADVSWEEP_OPTUNA_STORAGE",
                     "ADVSWEEP_SHARED", "ADVSWEEP_HEAD_IP", "RAY_AUTH_TOKEN", "RAY_AUTH_MODE")


@pytest.fixture(scope="module")
def slurm() -> None:
    """Slurm on this machine, installed and started by the setup script; skipped only where it cannot run at all."""
    reason = None
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        reason = "needs root on Linux: tests/slurm/setup_localhost.sh installs and starts munged, slurmctld, slurmd"
    elif not shutil.which("sbatch") and not shutil.which("apt-get"):
        reason = "Slurm is not installed and there is no apt-get to install it (Debian: slurm-wlm, munge)"
    if reason:
        print(f"skipping the Slurm test: {reason}")
        pytest.skip(reason)
    start = time.time()
    done = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, f"{SETUP} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    print(f"\nslurm ready in {time.time() - start:.0f} s: {done.stdout.strip()}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def job_info(job: str) -> dict[str, str]:
    """`scontrol show job`'s fields (JobState, Restarts, ExitCode, ...) of a job still in slurmctld's memory."""
    out = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True, check=True).stdout
    return dict(field.split("=", 1) for field in out.split() if "=" in field)


def wait_until(what: str, ready: Callable[[], bool], log: Path, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not ready():
        if time.time() > deadline:
            tail = log.read_text()[-4000:] if log.exists() else "(no job log)"
            pytest.fail(f"timed out after {timeout:.0f} s waiting until {what}; job log:\n{tail}")
        time.sleep(0.5)


def child_runs(tracking_uri: str) -> list:
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name("biamat-pi-ablation")
    return [r for r in client.search_runs([exp.experiment_id]) if "sweep_run_id" in r.data.tags] if exp else []


def assert_closed(tracking_uri: str, when: str) -> str:
    """No run left RUNNING or FAILED: the trial cut off mid-training closed KILLED as interrupted, or FINISHED when
    its last epoch ended before the sweep stopped it. Returns the statuses, for the test's output."""
    runs = child_runs(tracking_uri)
    left = [(r.info.run_name, r.info.status) for r in runs if r.info.status in {"RUNNING", "FAILED"}]
    assert not left, f"{when}: runs left RUNNING or FAILED: {left}"
    assert {r.data.tags.get("end_reason") for r in runs if r.info.status == "KILLED"} <= {"interrupted"}, when
    return ", ".join(sorted(r.info.status for r in runs))


@pytest.mark.slow
@pytest.mark.serial
def test_sweep_job_requeued_at_its_time_limit_and_cancelled_resumes_with_one_run_per_trial(slurm, tmp_path):
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if k not in CLUSTER_VARIABLES}
    env |= {"ADVSWEEP_PYTHON": sys.executable, "ADVSWEEP_RAY_PORT": str(free_port()), "OMP_NUM_THREADS": "1"}
    # One trial at a time: each stop below comes while one trial is mid-training and others wait.
    sweep_args = [str(SUPPORT), "--name", NAME, "--concurrency", "1", "--tracking-uri", tracking_uri]
    jobs: list[str] = []

    def submit(*extra: str) -> tuple[str, Path]:
        # Submitted from tmp_path: Tune's storage defaults to the submit directory, the shared file system.
        out = subprocess.run(["sbatch", "--parsable", "--job-name", "advsweep-test", "--output", "job-%j.log",
                              str(BATCH), *sweep_args, *extra], cwd=tmp_path, env=env, capture_output=True,
                             text=True, check=True).stdout
        jobs.append(out.strip().split(";")[0])
        return jobs[-1], tmp_path / f"job-{jobs[-1]}.log"

    def finished() -> int:
        return [r.info.status for r in child_runs(tracking_uri)].count("FINISHED")

    def training_after(done: int) -> Callable[[], bool]:
        """More than ``done`` trials finished, and another one started (its run open; a trial of two short epochs
        could finish before the stop reaches it if the test waited for its first epoch)."""

        def ready() -> bool:
            # Only once a trial has started: before, the sweep may be creating the store, which a reader would race.
            if not any("  started  " in path.read_text() for path in tmp_path.glob("job-*.log")):
                return False
            runs = child_runs(tracking_uri)
            return sum(r.info.status == "FINISHED" for r in runs) > done and any(
                r.info.status == "RUNNING" for r in runs)

        return ready

    start = phase = time.time()

    def lap(label: str) -> None:
        nonlocal phase
        print(f"{time.time() - start:6.1f} s (+{time.time() - phase:5.1f} s) {label}")
        phase = time.time()

    try:
        job, log = submit()
        wait_until("a trial has finished and the next one is training", training_after(0), log)
        assert job_info(job)["JobState"] == "RUNNING", log.read_text()[-3000:]
        lap(f"job {job}: {finished()} trial(s) finished, one training")

        # What the time limit does 5 minutes before the end (#SBATCH --signal=B:TERM@300): SIGTERM to the batch script
        # alone, which passes it to the sweep and requeues the job once the sweep has stopped.
        subprocess.run(["scancel", "--batch", "--signal=TERM", job], check=True)
        wait_until("the job is requeued", lambda: job_info(job).get("Restarts") == "1", log, timeout=120)
        requeued = finished()
        closed = assert_closed(tracking_uri, "after the time-limit signal")
        assert "the sweep exited with status 75" in log.read_text() and "requeueing job" in log.read_text()
        lap(f"requeued: {closed}")
        wait_until("the requeued job finishes another trial and trains the next", training_after(requeued), log)
        assert job_info(job)["JobState"] == "RUNNING"
        assert "--resume --address" in log.read_text(), "a requeued run adds --resume"
        lap(f"restart 1: {finished()} finished, one training")

        # scancel: Slurm sends SIGTERM to every process of the job; the sweep stops, the job is not requeued.
        subprocess.run(["scancel", job], check=True)
        wait_until("the cancelled job ends", lambda: job_info(job)["JobState"] == "CANCELLED", log, timeout=150)
        assert job_info(job)["ExitCode"] == "75:0", log.read_text()[-3000:]
        closed = assert_closed(tracking_uri, "after scancel")
        assert "not requeued by this script" in log.read_text()
        lap(f"cancelled: {closed}")

        job, log = submit("--resume")
        wait_until("the resumed sweep ends", lambda: job_info(job)["JobState"] not in {"PENDING", "RUNNING",
                                                                                      "COMPLETING"}, log)
        assert job_info(job)["JobState"] == "COMPLETED", log.read_text()[-3000:]
        lap(f"job {job} with --resume completed")
    finally:
        for submitted in jobs:
            subprocess.run(["scancel", submitted], capture_output=True, check=False)  # a job left by a failure

    runs = child_runs(tracking_uri)
    assert len(runs) == 4 and len({r.data.tags["trial_id"] for r in runs}) == 4, "exactly one MLflow run per trial"
    assert all(r.info.status == "FINISHED" for r in runs)
    client = MlflowClient(tracking_uri)
    parents = [r for r in client.search_runs([runs[0].info.experiment_id]) if "trial_id" not in r.data.tags]
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert (tmp_path / "ray_results" / NAME).is_dir(), "Tune's storage defaults to the submit directory"
    assert "AT+BiaMAT" in log.read_text()
