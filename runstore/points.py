"""Which test points a run got right, per metric, for paired comparisons between runs (``analysis/significance.py``).

A run's artifact folder ``per_point/`` holds them (``trainables/tracking.py`` writes both kinds):

- ``final.npz``, from the trial's final protocol: ``indices`` (the points' positions in the test split) and one bool
  array per metric (``best/pgd20``; AutoAttack's covers the first entries of ``indices`` only);
- ``<metric>.npz`` for each metric of a later re-evaluation (``per_point/reeval/best/autoattack/eps8_255/n1000.npz``,
  ``sweeps/reevaluate.py``): ``indices`` and ``correct``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

POINTS_FOLDER = "per_point"
FINAL_FILE = "final.npz"  # the names trainables/tracking.py writes (runstore imports no trainables)


@dataclass(frozen=True)
class RunPoints:
    """Per metric (``best/pgd20``, ``reeval/best/pgd50/eps8_255/n1000``): the positions in the test split of the
    points it was evaluated on, and whether each was right."""

    metrics: dict[str, tuple[np.ndarray, np.ndarray]]

    @classmethod
    def sharing(cls, indices: np.ndarray, correct: dict[str, np.ndarray]) -> RunPoints:
        """Metrics evaluated on (a prefix of) the same ``indices``, as the final protocol logs them."""
        return cls({metric: (indices[: len(values)], values.astype(bool)) for metric, values in correct.items()})

    def of(self, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``(indices, correct)`` of ``metric``, or None when the run did not evaluate it per point."""
        return self.metrics.get(metric)


def read_points(folder: Path) -> RunPoints:
    """The per-point results in a downloaded ``per_point/`` folder."""
    metrics: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for path in sorted(folder.rglob("*.npz")):
        with np.load(path) as data:
            arrays = {key: data[key] for key in data.files}
        indices = arrays.pop("indices")
        if path == folder / FINAL_FILE:
            metrics |= RunPoints.sharing(indices, arrays).metrics
        else:
            metrics[path.relative_to(folder).with_suffix("").as_posix()] = (indices, arrays["correct"].astype(bool))
    return RunPoints(metrics)


def load_points(client: MlflowClient, run_id: str) -> RunPoints | None:
    """The run's per-point results, or None for a run that logged none (trained before they were logged)."""
    # A table reads dozens of runs' points: no MLflow progress bar for each download (unless asked for).
    os.environ.setdefault(MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name, "false")
    with tempfile.TemporaryDirectory() as directory:
        try:
            path = client.download_artifacts(run_id, POINTS_FOLDER, directory)
        except (MlflowException, OSError):
            return None
        points = read_points(Path(path))
    return points if points.metrics else None


def paired(row: tuple[np.ndarray, np.ndarray], reference: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The correct bits of ``row`` and ``reference`` (``(indices, correct)`` each) on the points both evaluated,
    aligned point by point (pairing is by test point, not by position)."""
    _, i, j = np.intersect1d(row[0], reference[0], assume_unique=True, return_indices=True)
    return row[1][i], reference[1][j]

