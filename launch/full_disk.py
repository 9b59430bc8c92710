"""A full disk ends the sweep at its first sign, with one message, instead of every trial failing its retries.

Left to Tune, a full disk makes each trial fail ``--max-failures`` + 1 times (every retry hits the same wall) and then
crashes the driver reading an error file that could not be written. Here a trial failure on a full disk (the error
says so, or a folder the sweep writes to is nearly full) stops the whole sweep, and the launcher closes its runs as
failed for that reason.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from mlflow.tracking import MlflowClient
from ray import tune

from launch.mlflow_runs import close_running_runs
from trainables.tracking import DISK_FULL, END_REASON_TAG, FULL_DISK_ERRORS, PARENT_TAG

# Below this, a checkpoint of a WRN-34-10 (about 0.5 GB with its optimiser) cannot be written.
MIN_FREE_BYTES = 1 << 30


# Below this, a sweep cannot even start: Ray's session files, Tune's first state files and a new MLflow store take
# tens of MB. Checked before Ray starts; the mid-sweep watch above uses MIN_FREE_BYTES.
START_MIN_FREE_BYTES = 32 << 20


def low_space(folders: Iterable[str | Path], min_free: int = MIN_FREE_BYTES) -> str | None:
    """The first of ``folders`` (or the nearest existing folder above it) with less than ``min_free`` bytes free, said
    in words."""
    for folder in map(Path, folders):
        existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
        if existing is not None and (free := shutil.disk_usage(existing).free) < min_free:
            return f"{existing} has {free / 2**20:.0f} MB free"
    return None


def check_room_to_start(folders: Mapping[str, str]) -> None:
    """Refuse, before Ray starts and before anything is written, a sweep whose folders (each mapped to the flag or
    variable that moves it) are on a disk already full: otherwise Ray starts and the first file Tune writes fails
    with a raw ``No space left on device``."""
    for folder, moved_by in folders.items():
        if (full := low_space([folder], START_MIN_FREE_BYTES)) is not None:
            raise SystemExit(f"error: {full}, less than the {START_MIN_FREE_BYTES >> 20} MB a sweep needs to start "
                             f"(Ray's session files, Tune's state, the MLflow store): free space there (old sweeps' "
                             f"Tune folders, MLflow artifacts), or move it to another disk with {moved_by}")


class FullDiskStop(tune.Callback, tune.stopper.Stopper):
    """Watches trial failures (a Tune callback) and ends the sweep (a Tune stopper) once one came from a full disk:
    a folder of ``folders`` (the local ones the sweep writes to: Tune storage, the SQLite store) is nearly full, or
    the trial's error says so (a remote node's disk)."""

    def __init__(self, folders: Iterable[str | Path]) -> None:
        self.folders = [str(folder) for folder in folders]
        self.full = False

    def _check(self, trial) -> None:
        error_file = trial.error_file  # Tune wrote the failure there, if the driver's disk had room
        text = Path(error_file).read_text(errors="replace") if error_file and Path(error_file).is_file() else ""
        self.full = self.full or low_space(self.folders) is not None or any(t in text for t in FULL_DISK_ERRORS)

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self._check(trial)

    def on_trial_recover(self, iteration: int, trials: list, trial, **info) -> None:
        self._check(trial)

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False  # trials end on their own; only the whole sweep is stopped here

    def stop_all(self) -> bool:
        return self.full

    def __setstate__(self, state: dict) -> None:
        # Tune keeps this stopper in its experiment state, saved after the disk filled: restored as it was, it would
        # end a resumed sweep before any trial ran. A resumed sweep watches its disk afresh.
        self.__dict__.update(state, full=False)


def stopped_by_full_disk(client: MlflowClient, exp_id: str, parent_id: str, written: Sequence[str],
                         failures: bool, since_ms: int) -> bool:
    """Whether the sweep ended on a full disk: a trial's run ended for that reason since ``since_ms`` (this
    invocation), or it had ``failures`` and a folder it writes to is nearly full. If so, its runs still open and its
    parent are closed as failed for that reason."""
    failed_on_it = client.search_runs([exp_id], max_results=1, filter_string=(
        f"tags.`{PARENT_TAG}` = '{parent_id}' AND tags.{END_REASON_TAG} = '{DISK_FULL}' "
        f"AND attributes.end_time >= {since_ms}"))
    if not failed_on_it and not (failures and low_space(written)):
        return False
    close_running_runs(client, exp_id, parent_id, lambda run: ("FAILED", DISK_FULL))
    client.set_tag(parent_id, END_REASON_TAG, DISK_FULL)
    return True


def full_disk_message(written: Sequence[str], name: str) -> str:
    where = low_space(written) or "a trial's node has no space left (its error file says where)"
    return (f"error: the sweep stopped on a full disk: {where}. Free space (old sweeps' Tune folders, MLflow "
            f"artifacts), then continue with the same command plus --resume --name {name}")
