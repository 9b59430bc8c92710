"""Creating the stores a sweep writes (the MLflow store, an Optuna study's storage): the last step before Ray, once
every refusal has passed (``launch/preflight.py`` checks them without writing), so that a refused sweep leaves
nothing behind.

A new SQLite store is where two writers collide: both find no tables, both create them, and one fails (MLflow:
``table span_metrics already exists``; Optuna: ``table studies already exists``). Two sweeps serialise on a lock file
of their own (:func:`exclusive`). Other clients (``mlflow ui`` started beside a first sweep, under another spelling
of the URL, so that MLflow's own lock in the temp folder differs) never take it, so a new store is built beside its
final name and linked into place only when complete: nobody ever opens it half made. When another client is the one
creating it, the sweep waits until that client's schema is complete before it opens the store.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from mlflow.exceptions import MlflowException
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from launch.preflight import flag, shown, stores_of

SCHEMA_WAIT_S = 60.0  # how long another client may take to finish creating a store's schema


def create_stores(args: argparse.Namespace, *, optuna_study: bool = False) -> None:
    """Create the MLflow store's tables (and the Optuna storage's, with ``optuna_study``) where they are new; an
    existing store is opened, which stops an out-of-date schema or a database that refuses the connection here, with
    the store's own message."""
    for name, url, open_store in stores_of(args, optuna_study):
        try:
            if url.get_backend_name() == "sqlite":
                create_sqlite_store(url, open_store)
            else:
                open_store(url.render_as_string(hide_password=False))
        except (MlflowException, SQLAlchemyError, RuntimeError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SystemExit(f"error: {flag(name)} {shown(url)}: {detail}") from None


@contextmanager
def exclusive(database: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<database>.lock`` (the lock file stays: removing it would race another holder).
    A lock file of its own rather than the database, whose locks are SQLite's."""
    with open(f"{database}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def create_sqlite_store(url: URL, open_store: Callable[[str], object]) -> None:
    """Open the SQLite store at ``url`` through ``open_store``; a new one is made complete under a temporary name in
    the same folder and then hard-linked to its name, which fails rather than replace a file another client created
    meanwhile (that store is then opened once its schema is complete)."""
    path = Path(url.database).resolve()
    with exclusive(path):
        if not path.exists():
            aside = path.with_name(f".{path.name}.{os.getpid()}.new")
            try:
                open_store(url.set(database=str(aside)).render_as_string(hide_password=False))
                os.link(aside, path)
            except FileExistsError:
                pass  # another client created it first
            finally:
                aside.unlink(missing_ok=True)
        wait_for_schema(path)
        open_store(url.render_as_string(hide_password=False))


def wait_for_schema(path: Path, limit_s: float = SCHEMA_WAIT_S) -> None:
    """Wait while another client is creating the schema of the store at ``path``: its migrations have not reached
    their last revision yet. A store that stays incomplete past ``limit_s`` is left to the opening, which completes
    it or says what is wrong."""
    deadline = time.monotonic() + limit_s
    while not schema_complete(path) and time.monotonic() < deadline:
        time.sleep(0.2)


def schema_complete(path: Path) -> bool:
    """Whether the database at ``path`` is not being created by another client: a file left empty for a while, or a
    schema stamped with its migrations' last revision, MLflow's or Optuna's (read only: not even an empty file is
    written)."""
    try:
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables:
                return os.path.getsize(path) > 0 or time.time() - path.stat().st_mtime > 2
            if "alembic_version" not in tables:
                return False
            (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone() or (None,)
    except sqlite3.Error:
        return True  # not a database at all: the opening says so
    if "experiments" not in tables:
        return True  # Optuna stamps its alembic revision once its tables are all there
    # MLflow stamps a revision at each migration: complete at the last one, as MLflow's own (private) check has it.
    from mlflow.store.db.utils import _get_latest_schema_revision

    return revision == _get_latest_schema_revision()
