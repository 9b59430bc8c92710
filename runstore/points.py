"""The per-point results a trial logs with its final protocol (``trainables/tracking.py``'s ``POINTS_ARTIFACT``):
which test points each checkpoint got right under each attack, for paired comparisons between runs."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

POINTS_ARTIFACT = "per_point/final.npz"  # the name trainables/tracking.py writes (runstore imports no trainables)


@dataclass(frozen=True)
class RunPoints:
    """``indices``: the points' positions in the test split; ``correct``: per metric (``best/pgd20``), whether each
    point was right (AutoAttack's array covers the first entries of ``indices`` only)."""

    indices: np.ndarray
    correct: dict[str, np.ndarray]

    def of(self, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``(indices, correct)`` of ``metric``, or None when the run did not evaluate it per point."""
        if metric not in self.correct:
            return None
        correct = self.correct[metric]
        return self.indices[: len(correct)], correct


def load_points(client: MlflowClient, run_id: str) -> RunPoints | None:
    """The run's per-point results, or None for a run that logged none (trained before they were logged)."""
    with tempfile.TemporaryDirectory() as directory:
        try:
            path = client.download_artifacts(run_id, POINTS_ARTIFACT, directory)
        except (MlflowException, OSError):
            return None
        with np.load(Path(path)) as data:
            arrays = {key: data[key] for key in data.files}
    indices = arrays.pop("indices")
    return RunPoints(indices, {key: value.astype(bool) for key, value in arrays.items()})
