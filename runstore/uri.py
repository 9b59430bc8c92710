"""Where the MLflow store is: the default URI, the environment's, and the forms of a SQLite file. No heavy import
here: the command lines of the sweeps and the analysis use it before they parse their arguments."""

from __future__ import annotations

import os
from pathlib import Path

SQLITE = "sqlite:///"
DEFAULT_TRACKING_URI = f"{SQLITE}mlflow.db"  # mlflow.db in the directory a sweep or an analysis command runs from


def resolve_tracking_uri(uri: str | None = None) -> str:
    """``uri``, else ``$MLFLOW_TRACKING_URI``, else the default store."""
    return uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def absolute_tracking_uri(uri: str) -> str:
    """Ray runs trials in their own working directories, so a relative SQLite path must be made absolute first."""
    if uri.startswith(SQLITE) and not uri.startswith(SQLITE + "/"):
        return SQLITE + str(Path(uri[len(SQLITE):]).resolve())
    return uri


def missing_sqlite_store(tracking_uri: str) -> bool:
    """Whether ``tracking_uri`` (absolute, :func:`absolute_tracking_uri`) is a SQLite store not created yet: reading
    it would create it."""
    return tracking_uri.startswith(SQLITE) and not Path(tracking_uri[len(SQLITE):]).exists()
