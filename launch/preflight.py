"""The run settings that fail only once Ray runs, refused before it starts: :func:`check_run_settings`.

Argparse has already refused values out of range (``launch/cli.py``); what is left needs this machine or the network.
Each would otherwise surface late and badly: trials PENDING for ever (more GPUs or CPUs per trial than the local Ray
has), Ray retrying an address for minutes, MLflow retrying a dead server for four minutes, a raw traceback after the
parent MLflow run was created (a storage folder that cannot be written, a tracking URI that is a path or names no
installed driver). Every check answers within a few seconds, in one ``error:`` line that says what to do.

Nothing here writes: the stores are created last (``launch/stores.py``, called by ``launch.tuner.start_sweep`` after
its own refusals), so that a refused sweep leaves nothing behind.
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Collection
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from runstore.uri import absolute_tracking_uri

TIMEOUT_S = 3.0  # to connect to a Ray head, a database or an MLflow server, and for the server to answer
RAY_CLIENT_PORT = 10001  # ray://host without a port
DATABASE_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}
# The databases MLflow keeps runs in: mlflow.store.db.db_types.DATABASE_ENGINES, written out so that these checks
# answer without importing MLflow (tests/test_preflight.py holds the two equal).
MLFLOW_DATABASES = ("postgresql", "mysql", "sqlite", "mssql")
# Where a value came from when the flag was not given: its message names both.
ENVIRONMENT = {"--address": "RAY_ADDRESS", "--storage-path": "ADVSWEEP_STORAGE",
               "--tracking-uri": "MLFLOW_TRACKING_URI", "--optuna-storage": "ADVSWEEP_OPTUNA_STORAGE"}
TRACKING_FORMS = ("sqlite:///path/to/mlflow.db (a file on this machine), postgresql://user@host/db, "
                  "mysql+pymysql://user@host/db, mssql+pyodbc://..., http(s)://host:port (an `mlflow server`)")
OPTUNA_FORMS = "sqlite:///path/to/optuna.db, postgresql://user@host/db or mysql+pymysql://user@host/db"


def check_run_settings(args: argparse.Namespace, *, optuna_study: bool = False) -> None:
    """Refuse (SystemExit with the fix) run settings a sweep would fail on after Ray starts: the local resources, the
    Ray address, the storage folder, the MLflow store and, with ``optuna_study`` (a sweep that searches with Optuna),
    the study's storage. Nothing is written: :func:`create_stores` does that once every refusal has passed."""
    address = getattr(args, "address", None)
    check_storage_path(args.storage_path)
    stores_of(args, optuna_study)
    check_ray_address(address)
    check_local_resources(address, getattr(args, "gpus_per_trial", None), getattr(args, "cpus_per_trial", 1.0))


def stores_of(args: argparse.Namespace, optuna_study: bool) -> list[tuple[str, URL, Callable[[str], object]]]:
    """The databases a sweep writes, checked (:func:`check_tracking_uri`, :func:`check_database`), each with its
    flag and what opens a database of its kind at a URL (creating its tables if they are missing); a server or
    Databricks is no database of this machine's to create."""
    found: list[tuple[str, URL, Callable[[str], object]]] = []
    if (tracking_db := check_tracking_uri(absolute_tracking_uri(args.tracking_uri))) is not None:
        def open_store(uri: str) -> object:
            from mlflow.tracking import MlflowClient  # only once the refusals have passed

            return MlflowClient(uri).search_experiments(max_results=1)

        found.append(("--tracking-uri", tracking_db, open_store))
    storage = getattr(args, "optuna_storage", None)
    if optuna_study and storage:
        def open_study(uri: str) -> object:
            import optuna  # only the searches need it

            return optuna.storages.RDBStorage(uri)

        study_db = check_database("--optuna-storage", absolute_tracking_uri(storage), OPTUNA_FORMS)
        found.append(("--optuna-storage", study_db, open_study))
    return found


def flag(name: str) -> str:
    """The flag, and its environment variable where that is set (the value may have come from there)."""
    variable = ENVIRONMENT.get(name)
    return f"{name} (or {variable})" if variable and os.environ.get(variable) else name


def check_local_resources(address: str | None, gpus: float | None, cpus: float) -> None:
    """A trial asking for more than a local Ray has stays PENDING for ever: refuse it while there is no Ray yet."""
    if address not in (None, "local") or (not gpus and cpus <= 1):
        return  # a cluster's nodes can have other resources than this machine; every machine has one CPU
    import ray

    if ray.is_initialized():
        return  # the caller's own Ray (a notebook, the tests), whatever resources it was given
    # Ray's own count (ray 2.60, private): CPUs within a container's cgroup quota, GPUs through NVML and
    # CUDA_VISIBLE_DEVICES without initialising CUDA here. os.cpu_count() would pass a quota's excess CPUs.
    from ray._private.resource_and_label_spec import ResourceAndLabelSpec

    local = ResourceAndLabelSpec().resolve(is_head=True)
    if gpus and gpus > local.num_gpus:
        fix = f"pass --gpus-per-trial {local.num_gpus} or less" if local.num_gpus else "leave out --gpus-per-trial"
        raise SystemExit(f"error: --gpus-per-trial {gpus:g}: the local Ray would have {local.num_gpus} GPU(s) on "
                         f"this machine, so no trial could start: {fix}, or pass --address of a cluster with GPUs")
    if cpus > local.num_cpus:
        raise SystemExit(f"error: --cpus-per-trial {cpus:g}: the local Ray would have {local.num_cpus} CPUs on this "
                         f"machine, so no trial could start: pass --cpus-per-trial {local.num_cpus} or less, or "
                         "--address of a cluster")


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT_S):
            return True
    except OSError:
        return False


def check_ray_address(address: str | None) -> None:
    """A head that is not there makes ``ray.init`` retry for minutes; a TCP connection says so in seconds. ``auto``
    (found from this node's files, failing at once) and ``local`` need no check."""
    if address in (None, "auto", "local"):
        return
    target = urlsplit(address if "://" in address else f"//{address}")
    try:
        port = target.port or (RAY_CLIENT_PORT if target.scheme == "ray" else None)
    except ValueError:
        port = None
    if target.scheme not in ("", "ray") or not target.hostname or port is None:
        raise SystemExit(f"error: {flag('--address')} {address}: pass HOST:PORT of a Ray head (`ray start --head` "
                         "prints it; port 6379 by default), ray://HOST:PORT for Ray Client, auto on a cluster node, "
                         "or leave it out for a local Ray")
    if not answers(target.hostname, port):
        raise SystemExit(f"error: {flag('--address')} {address}: nothing answers at {target.hostname}:{port} within "
                         f"{TIMEOUT_S:g} s: start the head there (`ray start --head`), check it with `ray status "
                         f"--address {target.hostname}:{port}`, or leave out --address for a local Ray")


def writable_folder(folder: Path) -> bool:
    """Whether a file can be created in ``folder``, tried for real (a read-only mount or an immutable folder stops
    root too, which permission bits do not tell); the file leaves nothing behind."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


REMOTE_TIMEOUT_S = 15.0  # for a bucket to take a first write (credential look-up, DNS, the request itself)


def check_storage_path(storage: str) -> None:
    """Tune's storage: a local folder that exists or can be created, and written; or a bucket (``s3://``,
    ``gs://``, any file system pyarrow knows) that takes a write, tried as Tune will write there."""
    if "://" in storage:
        check_remote_storage(storage)
        return
    path = Path(storage).resolve()
    existing = next(folder for folder in (path, *path.parents) if folder.exists())
    if not existing.is_dir():
        raise SystemExit(f"error: {flag('--storage-path')} {storage}: {existing} is a file: pass a folder (Tune keeps "
                         "each sweep's checkpoints in a subfolder of it)")
    if not writable_folder(existing):
        raise SystemExit(f"error: {flag('--storage-path')} {storage}: {existing} cannot be written: pass a folder "
                         "you can write, or s3://... on a cluster")


def check_remote_storage(storage: str) -> None:
    """Write and delete one empty object under ``storage`` through pyarrow's file system for its URI, the one Tune
    uses: a bucket that does not exist, credentials that are missing or refused, or no answer within
    :data:`REMOTE_TIMEOUT_S` stop here instead of as a raw traceback once Ray runs."""
    from pyarrow import ArrowException, fs

    def write_probe() -> None:
        filesystem, path = fs.FileSystem.from_uri(storage)
        probe = f"{path.rstrip('/')}/.advsweep-write-check-{os.getpid()}"
        with filesystem.open_output_stream(probe) as out:
            out.write(b"")
        filesystem.delete_file(probe)

    fix = ("create the bucket, or give this machine credentials that may write there (for s3://: AWS_ACCESS_KEY_ID "
           "and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role; for gs://: GOOGLE_APPLICATION_CREDENTIALS), "
           "or pass a local folder")
    # A daemon thread: a probe that never answers must not keep this process from exiting with the refusal.
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            write_probe()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which says what it was
            outcome.append(exc)

    probe = threading.Thread(target=attempt, name="storage-write-check", daemon=True)
    probe.start()
    probe.join(REMOTE_TIMEOUT_S)
    if not outcome:
        raise SystemExit(f"error: {flag('--storage-path')} {storage}: no answer within {REMOTE_TIMEOUT_S:g} s: check "
                         f"the network, or {fix}")
    if isinstance(outcome[0], ArrowException | OSError | ValueError):
        detail = " ".join(str(outcome[0]).split())[:300]
        if "Unrecognized filesystem type" in detail:
            fix = "pass s3://bucket/path, gs://bucket/path or a local folder"
        raise SystemExit(f"error: {flag('--storage-path')} {storage} cannot be written ({detail}): {fix}")
    if outcome[0] is not None:
        raise outcome[0]


def check_tracking_uri(uri: str) -> URL | None:
    """The MLflow store: a database URL (returned, its tables still to be created), a server that answers, or
    ``databricks``; a path is no store in MLflow 3."""
    scheme = urlsplit(uri).scheme
    if uri == "databricks" or scheme == "databricks":
        return None
    if scheme in ("http", "https"):
        check_mlflow_server(uri)
        return None
    if "://" not in uri or scheme == "file":
        path = uri.removeprefix("file://")
        raise SystemExit(f"error: {flag('--tracking-uri')} {uri} is a path: MLflow 3 keeps runs in a database, so "
                         f"pass sqlite:///{path if Path(path).suffix else 'mlflow.db'} for a SQLite file (an old "
                         "./mlruns folder converts with `mlflow migrate-filestore`)")
    return check_database("--tracking-uri", uri, TRACKING_FORMS, MLFLOW_DATABASES)


def check_mlflow_server(uri: str) -> None:
    """MLflow retries a server that does not answer for minutes; its ``/health`` answers at once when it is up."""
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=TIMEOUT_S):
            return
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            return  # a server that answers (behind a login, say): MLflow reports the rest
        problem = "answers, but not as an MLflow server (GET /health: 404)"
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLError):
            return  # it answered; certificates are MLflow's to judge (MLFLOW_TRACKING_INSECURE_TLS and the like)
        problem = f"does not answer within {TIMEOUT_S:g} s ({exc.reason})"
    except OSError as exc:  # connected, then no answer in time
        problem = f"does not answer within {TIMEOUT_S:g} s ({exc})"
    raise SystemExit(f"error: {flag('--tracking-uri')} {uri} {problem}: start the server (`mlflow server --host "
                     "0.0.0.0 --port 5000 --backend-store-uri sqlite:///mlflow.db`) or pass the address of one, or "
                     "--tracking-uri sqlite:///mlflow.db for a file on this machine")


def shown(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def check_database(name: str, uri: str, forms: str, backends: Collection[str] = ()) -> URL:
    """A SQLAlchemy URL (of one of ``backends``, if given) whose dialect and driver load here, whose SQLite file
    can be written or whose server answers; returns the parsed URL."""
    if "://" not in uri:
        raise SystemExit(f"error: {flag(name)} {uri} is a path, not a database URL: pass sqlite:///{uri} for a "
                         f"SQLite file, or one of {forms}")
    try:
        url = make_url(uri)
        dialect = url.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError):
        raise SystemExit(f"error: {flag(name)} {uri}: no database of that kind is known here (SQLAlchemy "
                         f"{urlsplit(uri).scheme!r}): pass one of {forms}") from None
    if backends and url.get_backend_name() not in backends:
        raise SystemExit(f"error: {flag(name)} {shown(url)}: {url.get_backend_name()} is not among the databases "
                         f"this store takes ({', '.join(backends)}): pass one of {forms}")
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise SystemExit(f"error: {flag(name)} {shown(url)} needs the Python module {exc.name}, which is not "
                         "installed: install its driver (e.g. psycopg2-binary for postgresql://, pymysql for "
                         "mysql+pymysql://) or pass sqlite:///... for a file on this machine") from None
    if url.get_backend_name() == "sqlite":
        check_sqlite_file(name, url)
    elif url.host and (port := url.port or DATABASE_PORTS.get(url.get_backend_name())) and not answers(url.host, port):
        raise SystemExit(f"error: {flag(name)} {shown(url)}: the database server does not answer within "
                         f"{TIMEOUT_S:g} s: start it, or pass sqlite:///... for a file on this machine")
    return url


def check_sqlite_file(name: str, url: URL) -> None:
    """SQLite creates the file, not its folder, and writes a journal next to it: both must be writable."""
    if url.database in (None, "", ":memory:"):
        raise SystemExit(f"error: {flag(name)} {url}: an in-memory database is not seen by the trials' processes: "
                         "pass sqlite:///path/to/file.db")
    path = Path(url.database).resolve()
    if not path.parent.is_dir():
        raise SystemExit(f"error: {flag(name)} {url}: the folder {path.parent} does not exist: create it "
                         f"(mkdir -p {path.parent}) or pass a file in an existing folder")
    if path.exists() and not path.is_file():
        raise SystemExit(f"error: {flag(name)} {url}: {path} is not a file: pass sqlite:///path/to/file.db")
    if not writable_folder(path.parent) or (path.exists() and not os.access(path, os.W_OK)):
        raise SystemExit(f"error: {flag(name)} {url}: {path} cannot be written (SQLite writes the file and its "
                         f"journal in {path.parent}): pass a file in a folder you can write")


def check_initial_weights(sources: Collection[str], tracking_uri: str | None) -> None:
    """Each ``init_from`` of the trials (``RUN_ID`` or ``RUN_ID/best|last``) names a run of the sweep's MLflow store
    that logged those weights (``safetensors/<name>.safetensors``, trainables/safe_export.py): otherwise every trial
    would fail once Ray had started it."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = absolute_tracking_uri(tracking_uri)
    client = MlflowClient(uri)
    for source in sorted(sources):
        run_id, _, name = source.partition("/")
        try:
            logged = {f.path for f in client.list_artifacts(run_id, "safetensors")}
        except MlflowException as exc:
            raise SystemExit(f"error: init_from={source}: no run {run_id} in {uri} ({exc.message.splitlines()[0]}): "
                             "pass the id of a finished run of this store (the MLflow runs table shows it)") from None
        if f"safetensors/{name or 'best'}.safetensors" not in logged:
            raise SystemExit(f"error: init_from={source}: run {run_id} of {uri} logged no {name or 'best'} weights "
                             "(it has not finished, or it is a sweep's parent run): pass a finished trial's run id")
