"""docs/own-data.md's walk-through, run as written: write digits as npz files, train the baselines at two radii, read
the tables, load a model and evaluate it. Only the epochs are cut (8 -> 2) to fit the CI budget."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from sweeps import baselines

ROOT = Path(__file__).resolve().parents[1]
SECTION = "### Walk-through: from your own images to a loaded model"


def walkthrough_blocks() -> list[tuple[str, str]]:
    """The (language, code) blocks of the walk-through section, in order."""
    text = (ROOT / "docs" / "own-data.md").read_text()
    section = text[text.index(SECTION):]
    section = section[:section.index("\n## ")]
    return re.findall(r"```(\w+)\n(.*?)```", section, flags=re.DOTALL)


@pytest.mark.slow  # two sweeps of three 2-epoch trials: about a minute
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
        baselines.main([arg.replace("epochs=8", "epochs=2") for arg in argv])
        outputs.append(capsys.readouterr().out)
    eps8, eps16 = outputs
    assert "attack_step=6/255: the step follows the radius set" in eps16 and "attack_step" not in eps8
    for name, out in (("digits-eps8", eps8), ("digits-eps16", eps16)):
        assert f"**Baselines of sweep '{name}' (tiny-cnn): accuracy (%)**" in out
        assert all(f"| {row} |" in out for row in ("Natural Training", "PGD-AT", "TRADES")), out
        assert "3 finished trials; checkpoint selection: PGD-5 on 256 random test points" in out

    result = subprocess.run([sys.executable, "-c", load], cwd=tmp_path, env=env, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    clean, logged = re.search(r"clean (\S+), logged best/clean (\S+)", result.stdout).groups()
    assert clean == logged  # all 397 test images, the run's own final points
    assert re.search(r"\{'clean': [\d.]+, 'pgd20': [\d.]+\}", result.stdout)
