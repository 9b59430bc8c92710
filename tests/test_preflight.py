"""Run settings refused before Ray starts (launch/cli.py's argparse types, launch/preflight.py): each through a real
sweep script in a fresh process, with one ``error:`` line naming the fix, and nothing started or written."""

from __future__ import annotations

import argparse
import http.server
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from launch.cli import run_parser
from launch.preflight import check_mlflow_server, check_ray_address, check_run_settings, check_tracking_uri
from launch.stores import create_stores

ROOT = Path(__file__).resolve().parent.parent
SUPPORT = Path(__file__).with_name("tests_support.py")  # the reduced pi ablation, a whole sweep script
PI_ABLATION = ROOT / "sweeps" / "pi_ablation.py"
SEARCH = ROOT / "sweeps" / "biamat_search.py"


def refused(tmp_path: Path, *flags: str, script: Path = SUPPORT, status: int = 1) -> str:
    """Run ``script`` with a store and a storage folder in ``tmp_path`` (``flags`` may replace them), assert that it
    stopped with ``status`` before Ray started and before anything was written; returns its one-line error."""
    command = [sys.executable, str(script), "--name", "refused", "--storage-path", str(tmp_path / "ray"),
               "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", *flags]
    start = time.monotonic()
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    seconds = time.monotonic() - start
    output = result.stdout + result.stderr
    error = output.strip().splitlines()[-1]
    print(f"{seconds:.1f} s to: {error}")
    assert result.returncode == status, output[-3000:]
    assert "error:" in error and "Traceback" not in output, output[-3000:]
    assert "Started a local Ray instance" not in output
    assert not (tmp_path / "ray").exists(), "Tune's folder was created"
    # No store, so no MLflow parent run; no Optuna study either, and no lock file of either.
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(("mlflow.db", "optuna.db"))]
    return error


@pytest.mark.parametrize(("script", "flags", "expected"), [
    (PI_ABLATION, ["--seeds", "0"], "argument --seeds: must be an integer >= 1, not 0"),
    (PI_ABLATION, ["--seeds", "-1", "--dry-run"], "argument --seeds: must be an integer >= 1, not -1"),
    (PI_ABLATION, ["--cpus-per-trial", "0"], "argument --cpus-per-trial: must be a number > 0, not 0"),
    (PI_ABLATION, ["--cpus-per-trial", "-1"], "argument --cpus-per-trial: must be a number > 0, not -1"),
    (PI_ABLATION, ["--gpus-per-trial", "-1"], "argument --gpus-per-trial: must be a number >= 0, not -1"),
    (PI_ABLATION, ["--concurrency", "-1"], "argument --concurrency: must be an integer >= 0, not -1"),
    (PI_ABLATION, ["--max-failures", "-2"], "argument --max-failures: must be an integer >= -1 (-1: retry without"),
    (SEARCH, ["--num-samples", "0"], "argument --num-samples: must be an integer >= 1, not 0"),
    (SEARCH, ["--num-samples", "-1"], "argument --num-samples: must be an integer >= 1, not -1"),
    (SEARCH, ["--grace-period", "0"], "argument --grace-period: must be an integer >= 1, not 0"),
    (SEARCH, ["--reduction-factor", "1"], "argument --reduction-factor: must be an integer >= 2, not 1"),
], ids=lambda value: value.name if isinstance(value, Path) else " ".join(value) if isinstance(value, list) else "")
def test_a_count_or_resource_out_of_range_is_refused_while_parsing(tmp_path, script, flags, expected):
    assert expected in refused(tmp_path, *flags, script=script, status=2)


@pytest.mark.parametrize(("storage", "fix"), [
    ("s3://no-such-bucket/sweeps", "create the bucket, or give this machine credentials"),
    ("s4://bucket/sweeps", "pass s3://bucket/path, gs://bucket/path or a local folder"),
])
def test_a_bucket_that_cannot_be_written_is_refused(tmp_path, storage, fix):
    # Written once through pyarrow, as Tune writes there: offline the bucket's host does not resolve, online it is
    # not this machine's (or there are no credentials); an unknown scheme names the ones that work. Before the check
    # Ray started, then a raw OSError after 46 s left the parent run RUNNING.
    error = refused(tmp_path, "--storage-path", storage)
    assert error.startswith(f"error: --storage-path {storage}") and fix in error


def test_resume_of_a_sweep_that_never_ran_creates_no_store(tmp_path):
    # The refusal reads the store only where it exists; the store is created after every refusal (launch/stores.py).
    assert "--resume: there is no sweep 'refused'" in refused(tmp_path, "--resume")


def test_the_special_values_of_the_run_flags_stay_accepted():
    args = run_parser("", ["tiny"]).parse_args(["--max-failures", "-1", "--concurrency", "0", "--gpus-per-trial",
                                                "0.5", "--cpus-per-trial", "0.5", "--seeds", "3"])
    assert (args.max_failures, args.concurrency, args.gpus_per_trial, args.cpus_per_trial, args.seeds) == \
        (-1, 0, 0.5, 0.5, 3)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local port that refuses connections: bound, so that nothing else takes it, but not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_more_gpus_per_trial_than_this_machine_has_is_refused_for_a_local_ray(tmp_path):
    error = refused(tmp_path, "--gpus-per-trial", "1000")
    assert "--gpus-per-trial 1000: the local Ray would have" in error and "--address" in error


def test_more_cpus_per_trial_than_this_machine_has_is_refused_for_a_local_ray(tmp_path):
    error = refused(tmp_path, "--cpus-per-trial", "100000")
    assert "--cpus-per-trial 100000: the local Ray would have" in error and "or less" in error


def test_a_ray_address_where_nothing_answers_is_refused_in_seconds(tmp_path, closed_port):
    error = refused(tmp_path, "--address", f"127.0.0.1:{closed_port}")
    assert "nothing answers" in error and "ray start --head" in error and "ray status" in error


def test_a_ray_address_without_a_port_is_refused():
    with pytest.raises(SystemExit, match="pass HOST:PORT of a Ray head"):
        check_ray_address("headnode")


def test_a_tracking_uri_that_is_a_path_is_refused_with_the_sqlite_form(tmp_path):
    assert "pass sqlite:///mlflow.db" in refused(tmp_path, "--tracking-uri", "mlflow.db")


def test_a_tracking_uri_of_an_unknown_kind_lists_the_accepted_forms(tmp_path):
    error = refused(tmp_path, "--tracking-uri", "postgresql+nosuchdriver://user@host/db")
    assert "sqlite:///path/to/mlflow.db" in error and "postgresql://" in error and "http(s)://" in error


@pytest.mark.parametrize("uri", ["foo://host/db", "oracle://user@host/db"])
def test_a_database_mlflow_does_not_take_lists_the_accepted_forms(uri):
    with pytest.raises(SystemExit, match=r"pass one of sqlite:///path/to/mlflow\.db"):
        check_tracking_uri(uri)


def test_a_tracking_database_without_its_driver_or_server_is_refused_without_its_password(closed_port):
    with pytest.raises(SystemExit) as refusal:
        check_tracking_uri(f"mysql://user:secret@127.0.0.1:{closed_port}/db")
    error = str(refusal.value)
    assert "needs the Python module" in error or "does not answer" in error
    assert "secret" not in error


def test_a_tracking_server_that_does_not_answer_is_refused_in_seconds(tmp_path, closed_port):
    error = refused(tmp_path, "--tracking-uri", f"http://127.0.0.1:{closed_port}")
    assert "does not answer" in error and "mlflow server" in error


def test_a_storage_path_under_a_file_is_refused(tmp_path):
    (tmp_path / "results").write_text("")
    assert "results is a file: pass a folder" in refused(tmp_path, "--storage-path", str(tmp_path / "results" / "x"))


def is_writable(folder: Path) -> bool:
    try:
        (folder / "probe").touch()
    except OSError:
        return False
    (folder / "probe").unlink()
    return True


@pytest.fixture
def read_only_folder(tmp_path) -> Iterator[Path]:
    """A folder no one can write: permission bits for a user; for root, which ignores them, the immutable flag."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    immutable = False
    try:
        if is_writable(folder):
            immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False).returncode == 0
        if is_writable(folder):
            pytest.skip("no read-only folder here: root ignores permissions and chattr +i is not available")
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def test_a_storage_path_that_cannot_be_written_is_refused(tmp_path, read_only_folder):
    error = refused(tmp_path, "--storage-path", str(read_only_folder / "ray"))
    assert f"{read_only_folder} cannot be written: pass a folder you can write" in error


def test_a_sqlite_store_in_a_folder_that_cannot_be_written_is_refused(tmp_path, read_only_folder):
    error = refused(tmp_path, "--tracking-uri", f"sqlite:///{read_only_folder / 'mlflow.db'}")
    assert "cannot be written" in error and "pass a file in a folder you can write" in error


def test_an_optuna_storage_that_is_a_path_is_refused(tmp_path):
    error = refused(tmp_path, "--optuna-storage", "optuna.db", script=SEARCH)
    assert "pass sqlite:///optuna.db" in error


@pytest.fixture
def server(request) -> Iterator[str]:
    """An HTTP server on a free local port whose every GET answers ``request.param``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(request.param)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("server", [200], indirect=True)
def test_a_tracking_server_that_answers_health_is_accepted(server):
    check_mlflow_server(server)


@pytest.mark.parametrize("server", [404], indirect=True)
def test_a_tracking_server_without_health_is_refused(server):
    with pytest.raises(SystemExit, match="not as an MLflow server"):
        check_mlflow_server(server)


def test_the_checks_write_nothing_and_the_stores_are_created_after_them(tmp_path):
    args = argparse.Namespace(address="auto", storage_path=str(tmp_path / "results" / "ray"),
                              tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                              optuna_storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    check_run_settings(args, optuna_study=True)
    assert not list(tmp_path.iterdir())
    create_stores(args, optuna_study=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mlflow.db", "mlflow.db.lock", "optuna.db",
                                                                 "optuna.db.lock"]
    create_stores(args)  # an existing store: opened, not created again
    assert {"experiments", "span_metrics"} <= tables(tmp_path / "mlflow.db")


def tables(database: Path) -> set[str]:
    with sqlite3.connect(database) as db:
        return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


# Two sweep drivers' checks on the same new stores, released together once both have imported everything.
DRIVER = """
import argparse, sys, time
from pathlib import Path
from launch.stores import create_stores

folder = Path(sys.argv[1])
(folder / f"ready-{sys.argv[2]}").touch()
while len(list(folder.glob("ready-*"))) < 2:
    time.sleep(0.01)
if sys.argv[2] == "mlflow-client":  # another MLflow client (mlflow ui, a notebook): the store's URL spelt otherwise
    from mlflow.tracking import MlflowClient
    MlflowClient(f"sqlite:///{folder}/./mlflow.db").search_experiments()
    sys.exit()
create_stores(argparse.Namespace(address="auto", storage_path=str(folder / "ray"),
                                 tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
                                 optuna_storage=f"sqlite:///{folder / 'optuna.db'}"), optuna_study=True)
"""


def test_two_drivers_on_a_new_sqlite_store_both_find_its_tables(tmp_path):
    # Without the lock one of the two failed in each of 3 tries (table ... already exists), with it none of 3 did.
    drivers = [subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path), str(i)], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outputs = [driver.communicate(timeout=120)[0] for driver in drivers]
    assert [driver.returncode for driver in drivers] == [0, 0], "\n".join(outputs)[-3000:]
    assert {"experiments", "span_metrics", "alembic_version"} <= tables(tmp_path / "mlflow.db")
    assert {"studies", "trials", "version_info"} <= tables(tmp_path / "optuna.db")


def test_a_sweep_and_another_mlflow_client_on_a_new_sqlite_store_both_open_it(tmp_path):
    # MLflow's own lock is keyed by the URL's spelling, so a client that spells it otherwise creates the tables at
    # the same time as the sweep; launch/stores.py builds a new store aside and waits for another client's schema.
    # Creating the store in place, the sweep failed in 4 of 4 tries (table ... already exists); now in none of 3.
    drivers = [subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path), who], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for who in ("sweep", "mlflow-client")]
    outputs = [driver.communicate(timeout=120)[0] for driver in drivers]
    assert [driver.returncode for driver in drivers] == [0, 0], "\n".join(outputs)[-3000:]
    assert {"experiments", "span_metrics", "alembic_version"} <= tables(tmp_path / "mlflow.db")


HEAVY = ("torch", "ray", "mlflow", "optuna", "pandas")


def loaded_on_refusal(tmp_path: Path, script: str, flags: list[str]) -> str:
    """Run sweeps/``script``.py with ``flags`` in a fresh process whose storage is ``tmp_path``/ray; its output, then
    ``exit: <the refusal>`` and ``loaded: [...]``, the heavy libraries it had imported by then."""
    (tmp_path / "ray" / "taken").mkdir(parents=True, exist_ok=True)
    (tmp_path / "a-file").write_text("")
    code = ("import runpy, sys\n"
            f"sys.argv = [{str(ROOT / 'sweeps' / f'{script}.py')!r}, '--storage-path', 'ray', *{flags!r}]\n"
            "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
            "except SystemExit as exc:\n    print('exit:', exc)\n"
            f"print('loaded:', sorted(m for m in {HEAVY!r} if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            check=False)
    return result.stdout + result.stderr[-3000:]


@pytest.mark.parametrize(("script", "flags", "expected"), [
    ("pi_ablation", ["--set", "lr_milestones=[0.9,0.5]"], "lr_milestones=[0.9, 0.5] must increase"),
    ("pi_ablation", ["--set", "final_attacks=[]"], "final_attacks is empty"),
    ("pi_ablation", ["--set", "model=resnet19"], "unknown model 'resnet19'"),
    ("pi_ablation", ["--set", "dataset=cifar11"], "unknown dataset 'cifar11'"),
    ("pi_ablation", ["--name", "taken"], "exists: pass --resume to continue that sweep"),
    ("pi_ablation", ["--storage-path", "a-file/ray"], "--storage-path"),
    ("baselines", ["--tracking-uri", "bogus://x"], "no database of that kind is known here"),
    ("uiat_eps", ["--set", "inv_eps=2"], "inv_eps=2.0 is outside [0.0, 1.0]"),
    ("uiat_comparison", ["--set", "lam=-1"], "must not be negative"),
    ("afs_extractors", ["--set", "delta_z_steps=0"], "delta_z_steps=0 >= 1"),
    ("uiat_ablation", ["--set", "lam=-1"], "must not be negative"),
    ("biamat_semi_supervised", ["--set", "mixed_epoch=pass"], "mixed_epoch='pass': expected one of"),
    ("biamat_pretraining", ["--set", "train_n=-1"], "train_n=-1 must not be negative"),
    ("biamat_robust_dataset", ["--set", "model=resnet19"], "unknown model 'resnet19'"),
    ("afs_comparison", ["--set", "tau=-1"], "tau=-1 must not be negative"),
    ("afs_comparison", ["--set", "teacher_model=resnet19"], "teacher_model: unknown model 'resnet19'"),
    ("afs_comparison", ["--set", "negative_pool=0"], "negative_pool=0 must be at least 1"),
])
def test_a_refused_flag_or_value_loads_no_heavy_library(tmp_path, script, flags, expected):
    """Cheap checks first: a bad value, dataset name, model name, run folder or store is refused before torch, Ray,
    MLflow, Optuna or pandas is imported (each takes a second or more to import), so the refusal comes within a
    fraction of a second of argparse; the times it takes are in docs/running-sweeps.md, not asserted here."""
    output = loaded_on_refusal(tmp_path, script, flags)
    assert expected in output and "loaded: []" in output, output


def test_resume_of_a_sweep_that_never_ran_is_refused_reading_the_store_only(tmp_path):
    """The refusal reads the MLflow store, so MLflow loads; the trials' code, torch and Ray do not."""
    output = loaded_on_refusal(tmp_path, "pi_ablation", ["--resume", "--name", "nope"])
    assert "there is no sweep 'nope'" in output and "loaded: ['mlflow', 'pandas']" in output, output


def test_the_databases_the_checks_accept_are_mlflows():
    from mlflow.store.db.db_types import DATABASE_ENGINES

    from launch.preflight import MLFLOW_DATABASES

    assert sorted(MLFLOW_DATABASES) == sorted(DATABASE_ENGINES)


def test_the_two_parent_run_filters_agree():
    """trainables (which may not import runstore) keeps its own copy of the filter that finds a sweep's parent run."""
    from runstore.reader import parent_filter
    from trainables.tracking import sweep_parent_filter

    for sweep in (None, "pi-ablation-smoke"):
        assert parent_filter(sweep) == sweep_parent_filter(sweep)
