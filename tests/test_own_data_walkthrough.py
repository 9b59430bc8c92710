"""docs/own-data.md's walk-through, run as written: write digits as npz files, train the baselines at two radii, read
the tables, load a model and evaluate it. Only the epochs are cut (8 -> 1) to fit the CI budget. The same sweeps
check what ``--set`` records (the overrides tag on the parent and every trial run)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from launch.overrides import OVERRIDES_TAG
from sweeps import baselines

ROOT = Path(__file__).resolve().parents[1]
SECTION = "### Walk-through: from your own images to a loaded model"


def walkthrough_blocks() -> list[tuple[str, str]]:
    """The (language, code) blocks of the walk-through section, in order."""
    text = (ROOT / "docs" / "own-data.md").read_text()
    section = text[text.index(SECTION):]
    section = section[:section.index("\n## ")]
    return re.findall(r"```(\w+)\n(.*?)```", section, flags=re.DOTALL)


@pytest.mark.slow  # two sweeps of three 1-epoch trials: about a minute
def test_the_own_data_walkthrough_runs_as_written(ray_local, tmp_path, monkeypatch, capsys):
    (_, write), (_, sweeps), (_, load) = walkthrough_blocks()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    subprocess.run(["bash", "-c", write], cwd=tmp_path, env=env, check=True)
    assert sorted(p.name for p in (tmp_path / "data" / "digits").iterdir()) == ["test.npz", "train.npz"]

    monkeypatch.chdir(tmp_path)
    outputs = []
    for line in sweeps.strip().splitlines():
        python, script, *argv = shlex.split(line)
        assert (python, script) == ("python", "sweeps/baselines.py")
        baselines.main([arg.replace("epochs=8", "epochs=1") for arg in argv])
        outputs.append(capsys.readouterr().out)
    eps8, eps16 = outputs
    assert "attack_step=6/255: the step follows the radius set" in eps16 and "attack_step" not in eps8
    for name, out in (("digits-eps8", eps8), ("digits-eps16", eps16)):
        assert f"**Baselines of sweep '{name}' (tiny-cnn): accuracy (%)**" in out
        assert all(f"| {row} |" in out for row in ("Natural Training", "PGD-AT", "TRADES")), out
        assert "3 finished trials; checkpoint selection: PGD-5 on 256 random test points" in out
    # What --set records: the values as typed on the parent and every trial run, the derived step in the params.
    client = MlflowClient("sqlite:///mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("baselines").experiment_id],
                              "tags.sweep = 'digits-eps16'")
    assert len(runs) == 4  # the parent and the three trainings
    assert {run.data.tags.get(OVERRIDES_TAG) for run in runs} == {("dataset=npz:data/digits,train_n=0,epochs=1,"
                                                                  "eps=16/255")}
    trials = [run for run in runs if "trial_id" in run.data.tags]
    assert {(run.data.params["train_n"], run.data.params["eps"], run.data.params["attack_step"])
            for run in trials} == {("0", "0.0627451", "0.0235294")}  # 16/255 and 6/255
    assert all(run.info.status == "FINISHED" and "best/pgd20" in run.data.metrics for run in trials)
    assert not any(tmp_path.glob("**/error.txt"))

    result = subprocess.run([sys.executable, "-c", load], cwd=tmp_path, env=env, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    clean, logged = re.search(r"clean (\S+), logged best/clean (\S+)", result.stdout).groups()
    assert clean == logged  # all 397 test images, the run's own final points
    assert re.search(r"\{'clean': [\d.]+, 'pgd20': [\d.]+\}", result.stdout)
