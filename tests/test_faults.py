"""Faults a sweep must survive with nothing lost and one clear message: a disk already full when a sweep starts, a
failure while its Tuner is built, a disk that fills up mid-sweep."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

SUPPORT = Path(__file__).with_name("tests_support.py")


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MB file system of its own (tmpfs), so the test can fill it without touching the machine's disk."""
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True,
                          text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {made.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_sweep_on_a_disk_already_full_is_refused_before_ray_with_nothing_written(tmp_path, small_disk):
    # Before the check Ray started, then Tune failed writing tuner.pkl with a raw OSError and the parent run was
    # left RUNNING.
    (small_disk / "filler").write_bytes(b"\0" * (os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize))
    command = [sys.executable, str(SUPPORT), "--name", "full", "--storage-path", str(small_disk / "ray"),
               "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    refused = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    error = refused.stderr.strip().splitlines()[-1]
    assert refused.returncode == 1 and error.startswith(f"error: {small_disk} has 0 MB free"), refused.stderr[-3000:]
    assert "--storage-path" in error and "Traceback" not in refused.stderr
    assert "Started a local Ray" not in refused.stdout + refused.stderr
    assert not (tmp_path / "mlflow.db").exists() and not (small_disk / "ray").exists()


def test_a_failure_while_the_tuner_is_built_closes_the_parent_run(tmp_path, ray_local, monkeypatch):
    import copy
    import errno

    import tests_support
    from launch import tuner
    from sweeps import pi_ablation

    def no_room(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "tuner.pkl")

    monkeypatch.setattr(tuner, "_tuner", no_room)
    # reduced_pi_ablation shrinks the script's module-level grid and presets in place: copies here, for this test only.
    for constant in ("PIS", "SHARED", "VARIANTS"):
        monkeypatch.setattr(pi_ablation, constant, copy.deepcopy(getattr(pi_ablation, constant)))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(OSError, match="No space left"):
        tests_support.reduced_pi_ablation(["--name", "broken", "--storage-path", str(tmp_path / "ray"),
                                           "--tracking-uri", uri])
    client = MlflowClient(uri)
    (parent,) = client.search_runs([client.get_experiment_by_name("biamat-pi-ablation").experiment_id])
    assert parent.info.status == "FAILED"  # was left RUNNING


def test_a_resumed_sweep_is_not_stopped_by_the_full_disk_that_stopped_it(tmp_path):
    # Tune saves the stopper inside its experiment state after the disk filled; restored full, it ended the resumed
    # sweep before any trial ran ("4 trials: 4 not started", then the report found no finished trial).
    import cloudpickle

    from launch.full_disk import FullDiskStop

    stopper = FullDiskStop([tmp_path])
    stopper.full = True
    restored = cloudpickle.loads(cloudpickle.dumps(stopper))
    assert stopper.stop_all() and not restored.stop_all() and restored.folders == [str(tmp_path)]


@pytest.mark.parametrize("cut", ["experiment_state", "basic-variant-state", "searcher-state", "callback-states"])
def test_tunes_record_cut_short_in_any_of_its_files_is_set_aside(tmp_path, cut, capsys):
    # On a full disk the searcher's file was cut short while the experiment state loaded: Tune restored the one,
    # failed on the other and went on half-restored. Any of the newest files that does not load sets the record aside.
    import json

    import cloudpickle

    from launch.tune_record import set_aside_unreadable_state

    experiment_state, other_state = json.dumps({"runner_data": {}}).encode(), cloudpickle.dumps({"state": 1})
    suffix = {"experiment_state": "json", "basic-variant-state": "json", "searcher-state": "pkl",
              "callback-states": "pkl"}
    for stem, ext in suffix.items():
        content = experiment_state if stem == "experiment_state" else other_state
        (tmp_path / f"{stem}-2026-01-01_00-00-00.{ext}").write_bytes(content[: len(content) // 2])  # older: ignored
        (tmp_path / f"{stem}-2026-01-02_00-00-00.{ext}").write_bytes(content[: len(content) // 2] if stem == cut
                                                                       else content)
    set_aside_unreadable_state(str(tmp_path))
    assert not list(tmp_path.glob("experiment_state-*.json"))
    assert len(list(tmp_path.glob("experiment_state-*.json.unreadable"))) == 2
    assert f"{cut}-2026-01-02_00-00-00" in capsys.readouterr().err


def test_tunes_whole_record_is_left_for_tune(tmp_path, capsys):
    import json

    import cloudpickle

    from launch.tune_record import set_aside_unreadable_state

    (tmp_path / "experiment_state-2026-01-02_00-00-00.json").write_text(json.dumps({"runner_data": {}}))
    (tmp_path / "basic-variant-state-2026-01-02_00-00-00.json").write_bytes(cloudpickle.dumps({"state": 1}))
    set_aside_unreadable_state(str(tmp_path))
    assert (tmp_path / "experiment_state-2026-01-02_00-00-00.json").exists() and not capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.serial
def test_full_disk_stops_the_sweep_with_one_message_and_runs_closed_for_that_reason(tmp_path, small_disk):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [sys.executable, str(SUPPORT), "--name", "full", "--concurrency", "2", "--max-failures", "3",
               "--storage-path", str(small_disk / "ray"), "--tracking-uri", uri]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "E2E_EPOCHS": "4"}
    sweep = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    client = MlflowClient(uri)
    filler = small_disk / "filler"
    deadline = time.time() + 300
    while time.time() < deadline and sweep.poll() is None:
        time.sleep(0.5)
        runs = child_runs(client)
        if any("epoch" in r.data.metrics for r in runs):
            # The disk fills up (another job's output, say) while trials are training.
            free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
            try:
                filler.write_bytes(b"\0" * free)
            except OSError as exc:  # the trials wrote in between, so less fitted: the disk is full, as intended
                if exc.errno != errno.ENOSPC:
                    raise
            break
    assert sweep.poll() is None, "the sweep ended before the disk filled"
    output, _ = sweep.communicate(timeout=300)
    print("\n" + output[-1500:])

    assert sweep.returncode == 1, output[-3000:]
    # The trial's own error is in its error file (listed as it happens); the sweep ends on one line that says what
    # to do, not on a crash of the driver.
    last_line = output.strip().splitlines()[-1]
    assert last_line.startswith("error: the sweep stopped on a full disk") and "--resume --name full" in last_line
    assert "EOFError" not in output, output[-3000:]
    runs = child_runs(client)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    failed = [r for r in runs if r.info.status == "FAILED"]
    assert failed and {r.data.tags.get("end_reason") for r in failed} == {"disk_full"}
    for run in runs:  # retries did not log any epoch twice
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "epoch")]
        assert len(steps) == len(set(steps)), (run.info.run_name, steps)
    (parent,) = [r for r in client.search_runs([runs[0].info.experiment_id]) if "trial_id" not in r.data.tags]
    assert parent.info.status == "FAILED" and parent.data.tags["end_reason"] == "disk_full"

    # What the message says to do: free space and resume. Tune's own record may have been cut short on the full
    # disk; then the sweep starts afresh (the README says so) and the failed runs stay as they were closed.
    filler.unlink()
    resumed = subprocess.run([*command, "--resume"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=600, check=False)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    runs = child_runs(client)
    assert not [r for r in runs if r.info.status == "RUNNING"]
    finished = [(r.data.params["variant"], r.data.params["pi"]) for r in runs if r.info.status == "FINISHED"]
    assert sorted(finished) == [(v, p) for v in ("at", "trades") for p in ("0.5", "0.6")], finished
    set_aside = "record of this sweep is unreadable" in resumed.stderr  # launch/tune_record.py's note
    print("resume:", "state set aside" if set_aside else "restored", f"{len(runs)} runs")


def child_runs(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("biamat-pi-ablation")
    runs = client.search_runs([experiment.experiment_id]) if experiment else []
    return [r for r in runs if "trial_id" in r.data.tags]
