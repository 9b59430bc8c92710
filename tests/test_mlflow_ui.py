"""The MLflow UI as a user meets it (slow): a real smoke sweep, the real `mlflow ui` on its store, and the links the
sweep printed opened in headless Chromium (Debian's package; .ci/run installs it). Without a click, the table link
shows the trials as rows with the swept values and the final metrics as columns, and the charts link a chart of the
final metric against the swept value, with every trial drawn (a sweep of 12, logged directly, beside the real one)
and the trials grouped by variant."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from ray import tune
from test_pi_ablation import child_runs, sweep_command

from launch.mlflow_view import publish_view, ui_links, view_columns
from trainables.tracking import SWEEP_TAG, TRIAL_TAG, experiment_id

MANY = 12  # more trials than the UI draws by default (its first 10)


def log_many_trials(client: MlflowClient) -> str:
    """A 12-trial sweep's runs (two variants, six values of pi) and view, logged without training (what each trial
    run carries for the view); returns its charts link on port 5000."""
    exp_id = experiment_id(client, "many-trials")
    for i in range(MANY):
        variant, pi = ("at", "trades")[i % 2], 0.45 + i // 2 * 0.05
        run = client.create_run(exp_id, run_name=f"trial {variant} pi={pi:g}",
                                tags={SWEEP_TAG: "many", TRIAL_TAG: str(i)})
        client.log_batch(run.info.run_id, params=[Param("variant", variant), Param("pi", f"{pi:g}")],
                         metrics=[Metric(name, 0.5 + i / 100, 0, 0) for name in ("best/clean", "best/pgd20")])
        client.set_terminated(run.info.run_id)
    view = view_columns(["variant", "pi"], {"variant": tune.grid_search(["at", "trades"]),
                                            "pi": tune.grid_search([0.45 + k * 0.05 for k in range(MANY // 2)]),
                                            "final_attacks": ["clean", "pgd20"]})
    assert view.chart_x == "pi" and view.group_by == ("variant",)
    key = publish_view(client, exp_id, "many", view)
    return ui_links("sqlite:///unused.db", exp_id, key)["charts"]


def plot_points(dom: str) -> list[int]:
    """Points drawn per plotly chart of a rendered page (each chart draws each visible run's point a fixed number of
    times), zero-point containers left out."""
    return [count for part in dom.split("js-plotly-plot")[1:] if (count := part.count('class="point"'))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rendered(chromium: str, url: str) -> str:
    """The page's DOM after its scripts ran (the runs table and charts are drawn by JavaScript; the charts need up to
    a minute of the page's virtual time on 2 busy cores)."""
    done = subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1600,1000",
                           "--virtual-time-budget=90000", "--dump-dom", url],
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_printed_links_show_trials_swept_values_metrics_and_a_chart(tmp_path):
    chromium = shutil.which("chromium")
    assert chromium, "this test needs Chromium: apt-get install chromium (.ci/run installs it)"
    done = subprocess.run(sweep_command(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=900,
                          check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    urls = re.findall(r"http://127\.0\.0\.1:5000/#/experiments/\S+", done.stdout)
    links = {re.search(r"compareRunsMode=(\w+)", url).group(1): url for url in urls}
    assert links.keys() == {"TABLE", "CHART"}, done.stdout[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    trials = child_runs(client)
    run_names = sorted(r.info.run_name for r in trials)
    assert len(run_names) == 4 and {r.data.tags["sweep"] for r in trials} == {"e2e"}
    # The sweep's parent run keeps the table the sweep printed.
    parent = trials[0].data.tags["sweep_run_id"]
    table_md = Path(client.download_artifacts(parent, "table.md", str(tmp_path))).read_text()
    assert "Table 13" in table_md and table_md in done.stdout

    many_link = log_many_trials(client)
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    server = subprocess.Popen([str(mlflow), "ui", "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
                               "--port", str(port), "--workers", "1"], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 180
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except OSError:
                assert time.time() < deadline and server.poll() is None, "mlflow ui did not start"
                time.sleep(2)
        table = rendered(chromium, links["TABLE"].replace(":5000/", f":{port}/"))
        charts = rendered(chromium, links["CHART"].replace(":5000/", f":{port}/"))
        many = rendered(chromium, many_link.replace(":5000/", f":{port}/"))
    finally:
        server.terminate()
        server.wait(timeout=30)

    # Every trial is a row of its own (not folded under the sweep's parent run), and the parent is not a row.
    for name in run_names:
        assert name in table, f"trial {name!r} is not in the rendered runs table"
    assert ">e2e<" not in table
    shown = set(re.findall(r'col-id="((?:params|metrics)\.`[^`]+`)"', table))  # the grid's visible columns
    expected = {"params.`variant`", "params.`pi`", "params.`seed`", "metrics.`best/clean`", "metrics.`best/pgd20`"}
    assert expected <= shown, f"columns shown: {sorted(shown)}"
    # The scatter chart of the final metric against pi, drawn in the chart view.
    assert "pi vs. best/pgd20" in charts, "no chart of best/pgd20 against pi in the rendered chart view"
    # Every one of 12 trials in the charts (the UI's default draws its first 10: 40, 20, ... points, not 48, 24, ...).
    counts = plot_points(many)
    assert counts and all(count % MANY == 0 for count in counts), f"points per chart: {counts}"
    # The trials are grouped by the variant in the runs list; the charts still draw each trial (a group's averaged
    # point would be one point per group: counts of 2, 4, ...).
    assert "Group: at<" in many and "Group: trades<" in many
