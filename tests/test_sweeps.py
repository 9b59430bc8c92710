"""Sweep scripts: bad input stops before Ray starts, with the fix in the message."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from ray import tune

from launch.checks import validate
from launch.space import grid_points, per_value
from sweeps import baselines, pi_ablation
from trainables.methods.configs import BiaMATConfig


def run_main(main, tmp_path: Path, *args: str) -> str:
    argv = ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--storage-path", str(tmp_path / "ray"), *args]
    with pytest.raises(SystemExit) as info:
        main(argv)
    # Nothing was started: no MLflow store, no Tune directory.
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "ray").exists()
    return str(info.value)


def test_paper_preset_with_missing_data_says_where_the_files_go(tmp_path):
    message = run_main(pi_ablation.main, tmp_path, "--preset", "paper", "--data-root", str(tmp_path / "data"))
    assert "cifar-10-batches-py" in message and str(tmp_path / "data") in message
    assert "download=True" in message


def test_missing_auxiliary_data_is_reported_too(tmp_path):
    cifar = tmp_path / "data" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:  # CIFAR-10 in place, one image a file
        (cifar / name).write_bytes(pickle.dumps({"data": np.zeros((1, 3072), dtype=np.uint8), "labels": [0]}))
    message = run_main(pi_ablation.main, tmp_path, "--preset", "paper", "--data-root", str(tmp_path / "data"))
    assert "imagenet32" in message.lower() and "image-net.org" in message


@pytest.mark.parametrize(
    "override, message",
    [
        ({"pi": tune.grid_search([0.5, 0.0])}, "pi=0.0 must be positive"),
        ({"alpha": 1.5}, "alpha=1.5 is outside [0, 1]"),
        ({"aux_datasets": ["synthetic"]}, "equals the primary dataset"),
        ({"dataset": "cifar-10"}, "unknown dataset 'cifar-10'"),
        ({"eps": 8}, "eps=8.0 is outside [0.0, 1.0]"),
    ],
)
def test_bad_hyperparameters_anywhere_in_the_grid_are_rejected(override, message):
    space = {**pi_ablation.search_space("smoke", seeds=1), **override}
    with pytest.raises(SystemExit) as info:
        validate(BiaMATConfig, space, data_root=None, extra_datasets=lambda cfg: cfg.aux_datasets)
    assert message in str(info.value)


def test_per_variant_values_follow_the_variant_axis():
    points = list(grid_points(pi_ablation.search_space("paper", seeds=2)))
    assert len(points) == 6 * 2 * 2
    for point in points:
        assert point["model"] == {"at": "wrn-28-10", "trades": "wrn-34-10"}[point["variant"]]
        assert point["alpha"] == {"at": 1.0, "trades": 0.5}[point["variant"]]
    assert per_value("k", {"a": {"x": 1}})["x"].func({"k": "a"}) == 1


def test_existing_sweep_without_resume_is_refused(tmp_path):
    (tmp_path / "ray" / "baselines-smoke").mkdir(parents=True)
    with pytest.raises(SystemExit) as info:
        baselines.main(["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--storage-path",
                        str(tmp_path / "ray")])
    assert "--resume" in str(info.value)
