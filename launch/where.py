"""Where one sweep keeps its state: Tune's storage and the sweep's folder in it, and the MLflow store."""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from runstore.uri import SQLITE, absolute_tracking_uri


def absolute_storage_path(path: str) -> str:
    return path if "://" in path else str(Path(path).resolve())


@dataclass(frozen=True)
class Where:
    """Where one sweep invocation keeps its state: Tune's storage and folder, and the MLflow store."""

    name: str
    storage: str
    tracking_uri: str

    @classmethod
    def of(cls, name: str, args: argparse.Namespace) -> Where:
        """The sweep ``name`` as the run flags place it, every path absolute (Ray runs trials elsewhere)."""
        return cls(name, absolute_storage_path(args.storage_path), absolute_tracking_uri(args.tracking_uri))

    @property
    def sweep_dir(self) -> str:
        return f"{self.storage.rstrip('/')}/{self.name}"

    def start_folders(self, local_ray: bool) -> dict[str, str]:
        """The local folders a sweep writes from its start, each with what moves it elsewhere: Tune's storage, the
        SQLite store's folder and, for a Ray this sweep starts, Ray's temp folder."""
        moved_by: dict[str, list[str]] = {}
        if "://" not in self.storage:
            moved_by.setdefault(self.storage, []).append("--storage-path")
        if self.tracking_uri.startswith(SQLITE):
            moved_by.setdefault(str(Path(self.tracking_uri.removeprefix(SQLITE)).parent), []).append("--tracking-uri")
        if local_ray:
            moved_by.setdefault(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir(), []).append("RAY_TMPDIR")
        return {folder: " and ".join(flags) for folder, flags in moved_by.items()}

    def state_saved_since(self, since: float) -> bool:
        """Whether Tune wrote the sweep's experiment state at or after ``since`` (a time.time()); unknown, so False,
        for a bucket."""
        if "://" in self.storage:
            return False
        return any(state.stat().st_mtime >= since for state in Path(self.sweep_dir).glob("experiment_state-*.json"))

    def written_folders(self) -> list[str]:
        """The local folders the sweep writes to, which a full disk stops (a bucket never fills)."""
        written = [self.storage] if "://" not in self.storage else []
        if self.tracking_uri.startswith(SQLITE):
            written.append(str(Path(self.tracking_uri.removeprefix(SQLITE)).parent))
        return written
