"""Reading a trial's Tune checkpoints: ``state.pt`` loaded as weights only (no pickled object can run code), and the
newest readable one of those Tune keeps when the latest is cut short."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import torch
from ray import tune

STATE_FILE = "state.pt"  # in each checkpoint folder: the runtime's Trial.state_dict() and the trial's MLflow run id


class CorruptCheckpointError(RuntimeError):
    """No checkpoint of the trial could be read; resuming would silently restart from scratch, so the trial stops
    (``--resume --restart-unreadable`` trains it again from epoch 0, on purpose)."""


def read_state(checkpoint: tune.Checkpoint) -> dict[str, Any]:
    # weights_only: tensors, numbers, strings and containers of them, never an arbitrary object, so that a
    # checkpoint from someone else's storage cannot run code when it is read.
    with checkpoint.as_directory() as directory:
        return torch.load(Path(directory) / STATE_FILE, map_location="cpu", weights_only=True)


def earlier_checkpoints(checkpoint: tune.Checkpoint) -> list[tune.Checkpoint]:
    """The trial's other kept checkpoints older than ``checkpoint``, newest first (Tune names them
    ``checkpoint_000012`` in the trial's folder, locally or in a bucket)."""
    from pyarrow.fs import FileSelector, FileType

    folder, name = checkpoint.path.rstrip("/").rsplit("/", 1)
    siblings = checkpoint.filesystem.get_file_info(FileSelector(folder))
    older = sorted((info.path for info in siblings if info.type == FileType.Directory
                    and info.base_name.startswith("checkpoint_") and info.base_name < name), reverse=True)
    return [tune.Checkpoint(path, filesystem=checkpoint.filesystem) for path in older]


def intact(checkpoint: tune.Checkpoint) -> bool:
    """Whether the checkpoint's state file is a whole ``torch.save`` archive: a zip whose directory, at the file's
    end, opens. A cheap check for the driver (it reads the end of the file, not the weights): a file cut short by a
    full disk or a partial upload fails it; one garbled in the middle passes and fails when the trial reads it."""
    try:
        with checkpoint.filesystem.open_input_file(f"{checkpoint.path.rstrip('/')}/{STATE_FILE}") as stream, \
                zipfile.ZipFile(stream):
            return True
    except (OSError, ValueError, zipfile.BadZipFile):  # pyarrow's ArrowInvalid (a ValueError): shorter than a directory
        return False


def any_intact(checkpoint: tune.Checkpoint) -> bool:
    """Whether Tune's latest checkpoint of a trial or one of the older ones it keeps passes :func:`intact`."""
    return any(intact(candidate) for candidate in (checkpoint, *earlier_checkpoints(checkpoint)))


def load_checkpoint_state(checkpoint: tune.Checkpoint) -> tuple[dict[str, Any], str | None]:
    """The state of the newest readable checkpoint of the trial, starting at Tune's latest; and, when that one was
    unreadable (truncated by a full disk or a partial upload), why, for the run's record. The epochs after the one
    used are trained again from its saved state and RNG."""
    problems = []
    for candidate in (checkpoint, *earlier_checkpoints(checkpoint)):
        try:
            state = read_state(candidate)
        except Exception as exc:  # noqa: BLE001 - torch raises several types for truncated or garbled files
            problems.append(f"{candidate.path} ({type(exc).__name__}: {exc})")
            continue
        return state, (f"resumed from {candidate.path}: unreadable {'; '.join(problems)}" if problems else None)
    raise CorruptCheckpointError(
        f"no checkpoint of this trial is readable: {'; '.join(problems)}. To train it again from epoch 0, keeping "
        "every other trial, continue the sweep with --resume --restart-unreadable."
    )
