"""End to end: the pi-ablation sweep on the smoke preset, interrupted (Ctrl-C, or the driver killed) and resumed;
and the same sweep run twice gives the same numbers."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

SUPPORT = Path(__file__).with_name("tests_support.py")
ANALYSIS = Path(__file__).parents[1] / "analysis" / "biamat_tables.py"


def sweep_command(tmp_path: Path, *extra: str, concurrency: int = 1) -> list[str]:
    return [sys.executable, str(SUPPORT), "--name", "e2e", "--concurrency", str(concurrency),
            "--storage-path", str(tmp_path / "ray"), "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", *extra]


def e2e_env(epochs: int = 2) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", "E2E_EPOCHS": str(epochs)}


# Trials long enough that a signal sent once two have logged their second epoch cuts both short.
STOPPED_EPOCHS = 4


def child_runs(client: MlflowClient) -> list:
    exp = client.get_experiment_by_name("biamat-pi-ablation")
    runs = client.search_runs([exp.experiment_id]) if exp else []
    return [r for r in runs if "sweep_run_id" in r.data.tags]


def start_and_stop_mid_trial(tmp_path: Path, send, stuck_cleanup: bool = False
                             ) -> tuple[MlflowClient, subprocess.CompletedProcess]:
    """Start the reduced sweep with two trials at a time; once both are mid-training (each has logged its second epoch
    and neither has finished), ``send(process)`` a signal; return the MLflow client and what the sweep printed. A
    trial logs an epoch to MLflow before it reports the epoch's checkpoint to Tune, and reports the next only once the
    driver took that one: at its second epoch in MLflow, Tune's record holds its first checkpoint. (Sent at the first,
    a trial could be cut off with no checkpoint Tune knew of, and be resumed from epoch 0.) With
    ``stuck_cleanup``, Tune's clean-up of the stopped fit blocks (tests_support.stuck_cleanup_after_a_stop)."""
    env = {**e2e_env(STOPPED_EPOCHS), **({"E2E_STUCK_CLEANUP": "1"} if stuck_cleanup else {})}
    first = subprocess.Popen(sweep_command(tmp_path, concurrency=2), cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True, env=env)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    deadline = time.time() + 300
    while time.time() < deadline and first.poll() is None:
        time.sleep(0.5)
        if (tmp_path / "mlflow.db").exists() and sum(
                r.info.status == "RUNNING" and r.data.metrics.get("epoch", 0) >= 1 for r in child_runs(client)) >= 2:
            break
    assert first.poll() is None, "the sweep ended before it could be stopped:\n" + first.communicate()[0][-3000:]
    send(first)
    output, _ = first.communicate(timeout=180)
    return client, subprocess.CompletedProcess(first.args, first.returncode, output)


def assert_closed_as_interrupted(client: MlflowClient, stopped: subprocess.CompletedProcess) -> None:
    """No run left RUNNING or FAILED: the cut-off trials KILLED as interrupted, the parent KILLED, exit status 75
    (what a batch script requeues on), and no table printed as if the sweep were done."""
    assert stopped.returncode == 75, stopped.stdout[-3000:]
    assert "--resume --name e2e" in stopped.stdout and "AT+BiaMAT" not in stopped.stdout, stopped.stdout[-3000:]
    assert "Tuner.restore" not in stopped.stdout, "one resume hint: the script's, not Tune's Python API's"
    runs = child_runs(client)
    assert not [r for r in runs if r.info.status in {"RUNNING", "FAILED"}], [(r.info.run_name, r.info.status)
                                                                             for r in runs]
    cut_off = [r for r in runs if r.info.status != "FINISHED"]
    assert len(cut_off) >= 2 and {r.data.tags.get("end_reason") for r in cut_off} == {"interrupted"}
    (parent,) = [r for r in client.search_runs([runs[0].info.experiment_id]) if "trial_id" not in r.data.tags]
    assert parent.info.status == "KILLED"


@pytest.mark.slow  # about 75 s with its three sweeps: the default pass stays under 10 minutes (its SIGTERM twin is slow too)
@pytest.mark.serial
def test_interrupted_sweep_resumes_without_duplicate_or_dangling_runs(tmp_path):
    """Ctrl-C reaches the driver and its process group while two trials train; --resume then finishes the sweep.
    In between, every checkpoint of one cut-off trial is truncated (a full disk, a partial upload): the first
    --resume fails that trial once, not --max-failures times, and its last line names the command that trains it
    again from epoch 0, which then finishes the sweep with every other trial kept."""
    client, stopped = start_and_stop_mid_trial(tmp_path, lambda process: os.killpg(process.pid, signal.SIGINT))
    assert_closed_as_interrupted(client, stopped)
    damaged = next(r for r in child_runs(client) if r.info.status == "KILLED" and r.data.metrics.get("epoch", 0) >= 1)
    (folder,) = (tmp_path / "ray" / "e2e").glob(f"*{damaged.data.tags['trial_id']}*")
    states = sorted(folder.glob("checkpoint_*/state.pt"))
    assert states
    for state in states:
        state.write_bytes(state.read_bytes()[:1000])

    failed = subprocess.run(sweep_command(tmp_path, "--resume"), check=False, cwd=tmp_path,
                            env=e2e_env(STOPPED_EPOCHS), capture_output=True, text=True, timeout=600)
    assert failed.returncode == 1, failed.stdout[-3000:] + failed.stderr[-3000:]
    last = failed.stderr.strip().splitlines()[-1]
    assert "1 trial(s) have no readable checkpoint left" in last and \
        "--resume --restart-unreadable --name e2e" in last, failed.stderr[-3000:]
    failures = (folder / "error.txt").read_text()
    assert "Failure # 1 " in failures and "Failure # 2 " not in failures, failures[-3000:]
    (run,) = [r for r in child_runs(client) if r.info.run_id == damaged.info.run_id]
    assert run.info.status == "FAILED" and run.data.tags["end_reason"] == "unreadable_checkpoints"
    assert sum(r.info.status == "FINISHED" for r in child_runs(client)) == 3  # the others finished meanwhile

    assert_resume_completes_with_one_run_per_trial(tmp_path, client, STOPPED_EPOCHS, "--restart-unreadable")
    (restarted,) = [r for r in child_runs(client) if r.data.tags["trial_id"] == damaged.data.tags["trial_id"]]
    assert restarted.info.run_id != damaged.info.run_id and "no checkpoint of this trial is readable" in \
        restarted.data.tags["restarted_from_epoch_0"]
    old = client.get_run(damaged.info.run_id)  # kept, deleted softly, pointing at its replacement
    assert old.info.lifecycle_stage == "deleted" and old.data.tags["replaced_by"] == restarted.info.run_id


@pytest.mark.slow
@pytest.mark.serial
def test_sweep_stopped_by_sigterm_resumes_from_its_checkpoints(tmp_path):
    """SIGTERM (scancel, a time limit, pre-emption, a pod evicted) is handled like Ctrl-C, even when Tune's clean-up
    then blocks (as it does waiting for a local Ray's GCS that the same signal killed: it used to last until Ray
    ended the driver after 60 s with status 1, the runs left RUNNING; launch/stop_signals.py's watchdog); the
    resumed trials continue from their checkpoints: none trains epoch 0 again."""
    start = []

    def terminate(process: subprocess.Popen) -> None:
        start.append(time.monotonic())
        process.send_signal(signal.SIGTERM)

    client, stopped = start_and_stop_mid_trial(tmp_path, terminate, stuck_cleanup=True)
    print(f"exited {time.monotonic() - start[0]:.1f} s after SIGTERM")
    assert "did not return within 5 s" in stopped.stdout, stopped.stdout[-3000:]
    assert_closed_as_interrupted(client, stopped)
    assert "SIGTERM" in stopped.stdout
    assert_resume_completes_with_one_run_per_trial(tmp_path, client, STOPPED_EPOCHS)
    for result_file in (tmp_path / "ray" / "e2e").glob("*/result.json"):
        epochs = [json.loads(line)["epoch"] for line in result_file.read_text().splitlines()]
        assert epochs.count(0) == 1, f"{result_file.parent.name} reported epochs {epochs} across its attempts"


def assert_resume_completes_with_one_run_per_trial(tmp_path: Path, client: MlflowClient, epochs: int = 2,
                                                   *flags: str) -> None:
    resumed = subprocess.run(sweep_command(tmp_path, "--resume", *flags), check=False, cwd=tmp_path,
                             env=e2e_env(epochs),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "Traceback" not in resumed.stderr, resumed.stderr[-3000:]  # no Tune noise about trials that went on

    runs = child_runs(client)
    trial_ids = [r.data.tags["trial_id"] for r in runs]
    assert len(runs) == 4 and len(set(trial_ids)) == 4, "exactly one MLflow run per trial"
    assert all(r.info.status == "FINISHED" for r in runs)
    assert not [r.info.run_name for r in runs if "end_reason" in r.data.tags], "a finished run keeps no stale reason"
    for run in runs:
        for key in ("epoch", "train/loss", "select/clean"):
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert sorted(steps) == list(range(epochs)), f"{run.info.run_name} {key}: one point per epoch, got steps {steps}"
    parents = [r for r in client.search_runs([runs[0].info.experiment_id]) if "trial_id" not in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert {(r.data.params["variant"], r.data.params["pi"]) for r in runs} == {
        (v, p) for v in ("at", "trades") for p in ("0.5", "0.6")
    }
    # The sweep ends with the Table-13-shaped table rebuilt from MLflow.
    assert "AT+BiaMAT" in resumed.stdout and "TRADES+BiaMAT" in resumed.stdout
    print(resumed.stdout[resumed.stdout.find("Table 13"):][:1500])


@pytest.mark.slow
@pytest.mark.serial
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
    # The two sweeps run at the same time, two trials at a time each: the metrics must not depend on which trial ran
    # beside which, nor on how loaded the machine was.
    sweeps = []
    for attempt in ("first", "second"):
        folder = tmp_path / attempt
        folder.mkdir()
        sweeps.append((folder, subprocess.Popen(sweep_command(folder, concurrency=2), cwd=folder, text=True,
                                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
    metrics = []
    for folder, sweep in sweeps:
        output, _ = sweep.communicate(timeout=600)
        assert sweep.returncode == 0, output[-3000:]
        runs = child_runs(MlflowClient(f"sqlite:///{folder / 'mlflow.db'}"))
        metrics.append({r.info.run_name: r.data.metrics for r in runs})
    first, second = metrics
    assert len(first) == 4 and first.keys() == second.keys()
    for name in first:
        # Timings differ between runs; every learned quantity must not.
        learned = {k for k in first[name] if k not in {"epoch_time_s"}}
        assert {k: first[name][k] for k in learned} == {k: second[name][k] for k in learned}, name
    print("\nreproduced:", {name: round(m["best/pgd20"], 4) for name, m in first.items()})
    # The per-point results of both sweeps' trials are the same too, and --stats reads them: each cell gets its
    # interval over its 64 test points, and one seed of 4 short trials resolves no difference between rows.
    table = subprocess.run([sys.executable, str(ANALYSIS), "table13", "--sweep", "e2e", "--stats", "--tracking-uri",
                            f"sqlite:///{sweeps[0][0] / 'mlflow.db'}"], capture_output=True, text=True, check=True)
    rows = [line for line in table.stdout.splitlines() if line.startswith("| 0.")]
    assert len(rows) == 2 and all(re.search(r"\d \[\d+\.\d\d, \d+\.\d\d\] \|", row) for row in rows), table.stdout
    assert "†" not in "".join(rows) and "differs from the row '0.50'" in table.stdout


@pytest.mark.slow
def test_a_budgeted_sweep_stops_rows_at_its_rung_and_its_table_marks_them(tmp_path):
    """The reduced grid (2 variants x 2 pi, 3 epochs, 1 warm-up epoch) at --budget 0.85: one rung after epoch 2 in each
    variant keeps the better pi, which trains on after waiting for the other (paused, then resumed from its
    checkpoint in the same MLflow run); the other stops there and the table shows its rung score, marked."""
    sweep = subprocess.run(sweep_command(tmp_path, "--budget", "0.85", concurrency=2), cwd=tmp_path, text=True,
                           capture_output=True, env=e2e_env(3), timeout=600, check=False)
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    assert len(re.findall(r"^ +\d+:\d\d  rung +variant=", sweep.stdout, re.MULTILINE)) == 4, sweep.stdout
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = child_runs(client)
    assert sorted(r.info.status for r in runs) == ["FINISHED", "FINISHED", "KILLED", "KILLED"]
    for variant in ("at", "trades"):
        mine = [r for r in runs if r.data.params["variant"] == variant]
        (kept,) = [r for r in mine if r.info.status == "FINISHED"]
        (cut,) = [r for r in mine if r.info.status == "KILLED"]
        assert cut.data.tags["end_reason"] == "stopped_early" and cut.data.metrics["epoch"] == 1
        assert kept.data.metrics["rung/score"] >= cut.data.metrics["rung/score"]
        # The kept trial's run: every epoch once (no duplicate from its pause), its rung score its selection score.
        epochs = [m.step for m in client.get_metric_history(kept.info.run_id, "epoch")]
        assert sorted(epochs) == [0, 1, 2], epochs
        (rung,) = client.get_metric_history(kept.info.run_id, "rung/score")
        assert rung.step == 1 and rung.value == next(m.value for m in client.get_metric_history(
            kept.info.run_id, "select/pgd1") if m.step == 1)
    (parent,) = [r for r in client.search_runs([runs[0].info.experiment_id]) if "trial_id" not in r.data.tags]
    assert parent.data.tags["budget"] == "0.85 schedule" and parent.info.status == "FINISHED"
    rows = [line for line in sweep.stdout.splitlines() if line.startswith("| 0.")]
    assert len(rows) == 2 and sum(line.count("* (epoch 2)") for line in rows) == 2, sweep.stdout[-3000:]
    assert "stopped at a rung by the sweep's budget" in sweep.stdout


@pytest.mark.parametrize(("recorded", "flags", "named"), [
    ({"overrides": "train_n=512"}, ["--set", "train_n=256"],
     "it was started with --set train_n=512, this command gives --set train_n=256"),
    ({"seeds": "2", "trials": "8"}, [],
     "it was started with --seeds 2, this command gives --seeds 1; it was started with 8 trials, this command gives 4"),
    ({"git_commit": "0" * 40}, [], "started at commit 000000000000, this checkout is at"),
], ids=["set", "seeds", "code"])
def test_resume_with_other_settings_than_the_sweep_started_with_is_refused(tmp_path, recorded, flags, named):
    # The reduced pi ablation's parent run as the sweep records it (launch/resume.py recorded_settings), then a
    # --resume that differs: refused before Ray, naming the setting, with nothing written.
    from trainables.config import git_commit
    from trainables.tracking import SWEEP_TAG, experiment_id

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    tags = {SWEEP_TAG: "e2e", "preset": "smoke", "seeds": "1", "trials": "4", "git_commit": git_commit(), **recorded}
    parent = client.create_run(experiment_id(client, "biamat-pi-ablation"), tags=tags)
    refused = subprocess.run(sweep_command(tmp_path, "--resume", *flags), cwd=tmp_path, capture_output=True,
                             text=True, timeout=120, check=False)
    assert refused.returncode != 0 and named in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr and "Started a local Ray" not in refused.stdout + refused.stderr
    assert client.get_run(parent.info.run_id).info.status == "RUNNING"  # as created here: not reopened, not closed
    assert not (tmp_path / "ray").exists()
    if "git_commit" in recorded:
        assert "--allow-code-change" in refused.stderr


def test_resume_of_a_sweep_that_does_not_exist_lists_the_ones_that_do(tmp_path):
    from trainables.tracking import SWEEP_TAG, experiment_id

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client.create_run(experiment_id(client, "biamat-pi-ablation"), tags={SWEEP_TAG: "in-mlflow"})
    (tmp_path / "ray" / "in-storage").mkdir(parents=True)
    start = time.perf_counter()
    refused = subprocess.run(sweep_command(tmp_path, "--resume", "--name", "typo"), cwd=tmp_path,
                             capture_output=True, text=True, timeout=120, check=False)
    print(f"\nrefused in {time.perf_counter() - start:.1f} s: {refused.stderr.strip()}")
    assert refused.returncode != 0
    assert "no sweep 'typo'" in refused.stderr and "in-mlflow, in-storage" in refused.stderr, refused.stderr
    assert "Started a local Ray" not in refused.stdout + refused.stderr
    assert not (tmp_path / "ray" / "typo").exists()
    assert len(client.search_runs([client.get_experiment_by_name("biamat-pi-ablation").experiment_id])) == 1
