"""What the MLflow UI shows when a user opens a sweep's printed link: its trials as rows, the swept hyperparameters and
the final metrics as columns, and a chart of the headline metric against the swept value, with no clicks.

The MLflow UI (3.x) keeps a user's column and chart choices in the browser, and starts a new user with none of them.
What it does read from the server is a *shared view*: an experiment tag ``mlflow.sharedViewState.<key>`` holding the
view as JSON (search filter, sort, visible columns, chart cards), opened by the URL parameter ``viewStateShareKey``;
the UI's own "Share" button writes the same tag. Each sweep publishes one such view and prints its links. The runs
table and the charts are two modes of the page (``compareRunsMode=TABLE`` / ``CHART``), so there are two links.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from mlflow.tracking import MlflowClient

from launch.space import grid_points
from runstore.reader import attack_strength
from trainables.tracking import SWEEP_TAG, TRIAL_TAG

VIEW_TAG_PREFIX = "mlflow.sharedViewState."  # the tag prefix the MLflow UI reads shared views from


def view_key(sweep: str) -> str:
    """The share key of a sweep's view (tag keys and URLs take letters, digits, '-', '_' and '.')."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", sweep)


@dataclass(frozen=True)
class SweepView:
    """What a sweep's view shows: ``columns`` (the params that name its trials), ``metrics`` (the last is the
    headline), the chart's x axis ``chart_x`` (a param) and the params whose values group the trials (``group_by``,
    e.g. the variant: AT vs TRADES)."""

    columns: tuple[str, ...]
    metrics: tuple[str, ...]
    chart_x: str
    group_by: tuple[str, ...] = ()


def view_state(sweep: str, view: SweepView) -> dict:
    """The shared view of one sweep: only its trials (not its parent run), newest first, every one of them drawn;
    columns: ``view.columns``, then the metrics; one scatter chart of the headline metric against ``view.chart_x``;
    the runs table grouped by ``view.group_by``."""
    section = f"{view_key(sweep)}-section"
    headline = view.metrics[-1]
    chart = {"uuid": f"{view_key(sweep)}-chart", "type": "SCATTER", "metricSectionId": section, "deleted": False,
             "isGenerated": False, "runsCountToCompare": 100,
             "xaxis": {"key": view.chart_x, "type": "PARAM"}, "yaxis": {"key": headline, "type": "METRIC"}}
    state = {
        "searchFilter": f"tags.{SWEEP_TAG} = '{sweep}' AND tags.{TRIAL_TAG} IS NOT NULL",
        "orderByKey": "attributes.start_time",
        "orderByAsc": False,
        "selectedColumns": [f"params.`{k}`" for k in view.columns] + [f"metrics.`{m}`" for m in view.metrics],
        "compareRunCharts": [chart],
        "compareRunSections": [{"uuid": section, "name": f"{sweep}: {headline} by {view.chart_x}", "display": True,
                                "isReordered": True}],
        "isAccordionReordered": True,  # keep this section above the ones the UI generates per metric prefix
        # Every trial in the charts: the UI's default draws the first 10 runs only (a 12-trial sweep lost two).
        "runsHiddenMode": "SHOW_ALL",
    }
    if view.group_by:
        # The table folds the trials into one group per variant. The charts keep every trial as its own point: with
        # the groups' values, a scatter draws one averaged point per group and loses the swept axis (measured, MLflow
        # 3.x), so a variant's trials are read along x as a series of their own.
        state["groupBy"] = {"aggregateFunction": "average",
                            "groupByKeys": [{"mode": "param", "groupByData": key} for key in view.group_by]}
        state["useGroupedValuesInCharts"] = False
    return state


def view_columns(name_keys: Sequence[str], param_space: Mapping[str, Any]) -> SweepView:
    """What a sweep's view shows: the swept params (the keys that name its runs), the final metrics (clean accuracy
    and the strongest attack of its final protocol, on the selected checkpoint), the chart's x axis (the first
    numeric swept value, e.g. pi, else the first swept key that is not the seed), and the other swept keys that are
    not numbers (the variant) as the groups."""
    points = list(grid_points(param_space))
    attacks = [a for a in points[0].get("final_attacks", ("clean",)) if attack_strength(a) is not None]
    metrics = ["best/clean", *(f"best/{max(attacks, key=attack_strength)}" for _ in attacks[:1])]
    swept = [k for k in name_keys if k != "seed"] or list(name_keys)
    numeric = [k for k in swept if all(isinstance(p.get(k), (int, float)) and not isinstance(p.get(k), bool)
                                       for p in points)]
    chart_x = (numeric or swept)[0]
    groups = [k for k in swept if k != chart_x and k not in numeric]
    return SweepView(tuple(name_keys), tuple(metrics), chart_x, tuple(groups))


def publish_view(client: MlflowClient, exp_id: str, sweep: str, view: SweepView) -> str:
    """Store the sweep's view on its experiment (a resumed sweep overwrites it with the same); returns its key."""
    key = view_key(sweep)
    client.set_experiment_tag(exp_id, VIEW_TAG_PREFIX + key, json.dumps(view_state(sweep, view)))
    return key


def ui_links(tracking_uri: str, exp_id: str, key: str | None = None) -> dict[str, str]:
    """The URLs of a sweep's view, ``{"table": ..., "charts": ...}``, on the tracking server, or on the local
    ``mlflow ui`` (port 5000) for a file store. ``workflowType=machine_learning`` opens the runs page, not the GenAI
    overview a new MLflow 3 user lands on."""
    base = tracking_uri.rstrip("/") if tracking_uri.startswith("http") else "http://127.0.0.1:5000"
    shared = f"&viewStateShareKey={quote(key)}" if key else ""

    def link(mode: str) -> str:
        return f"{base}/#/experiments/{exp_id}/runs?workflowType=machine_learning&compareRunsMode={mode}{shared}"

    return {"table": link("TABLE"), "charts": link("CHART")}
