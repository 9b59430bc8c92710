"""The cluster: cluster.yaml against Ray's own validation and the project's promises; sweeps on a multi-node Ray
(``ray.cluster_utils.Cluster`` on this machine) through the same entry points with ``--address``; a lost node."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import threading
import time
from importlib.metadata import requires
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient
from packaging.requirements import Requirement

from launch.cli import run_parser
from launch.run import run_sweep
from launch.sweep import Sweep
from tests_support import TINY_TRIAL, epochs_by_process, stalling
from trainables.methods import baseline

ROOT = Path(__file__).resolve().parents[1]
SUPPORT = Path(__file__).with_name("tests_support.py")
PRIVATE_PORTS = {5000: "MLflow", 8265: "Ray dashboard", 8080: "optuna-dashboard", 6379: "Ray GCS"}


@pytest.fixture(scope="module")
def cluster_config() -> dict:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def test_cluster_yaml_passes_ray_offline_validation(cluster_config):
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(cluster_config))
    validate_config(prepared)
    assert prepared["head_node_type"] == "head"


def test_cluster_yaml_pins_the_projects_ray_and_keeps_the_head_free_of_trials(cluster_config):
    image = cluster_config["docker"]["image"]
    repository, tag = image.split(":")
    assert repository == "rayproject/ray" and tag.endswith("-gpu"), image
    ray_requirement = next(Requirement(r) for r in requires("advsweep") if r.startswith("ray"))
    assert ray_requirement.specifier.contains(tag.split("-")[0]), (image, str(ray_requirement))

    nodes = cluster_config["available_node_types"]
    head = nodes[cluster_config["head_node_type"]]
    assert head["resources"] == {"CPU": 0, "GPU": 0}
    assert "InstanceMarketOptions" not in head["node_config"], "the head (driver, MLflow, Optuna) must be on-demand"
    assert any("--num-cpus=0" in command for command in cluster_config["head_start_ray_commands"])
    workers = [node for name, node in nodes.items() if name != cluster_config["head_node_type"]]
    assert {node["resources"]["GPU"] for node in workers} == {1, 8}
    assert all(node["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot" for node in workers)


def test_cluster_yaml_opens_no_service_port_to_the_world(cluster_config):
    for rule in cluster_config["provider"].get("security_group", {}).get("IpPermissions", []):
        world = any(r.get("CidrIp") == "0.0.0.0/0" for r in rule.get("IpRanges", [])) or any(
            r.get("CidrIpv6") == "::/0" for r in rule.get("Ipv6Ranges", []))
        opened = {port for port in PRIVATE_PORTS if rule.get("FromPort", 0) <= port <= rule.get("ToPort", 65535)}
        assert not (world and opened), f"rule {rule} opens {[PRIVATE_PORTS[p] for p in opened]} to the internet"
    start = " ".join(cluster_config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in start, "the dashboard is reached through `ray dashboard` (an SSH tunnel)"


def test_cluster_yaml_needs_only_the_region_and_bucket_edited_at_the_top():
    text = (ROOT / "cluster.yaml").read_text().splitlines()
    edits = [i for i, line in enumerate(text) if "# EDIT" in line]
    assert len(edits) == 2 and max(edits) < 40, edits
    assert sum("CHANGE-ME" in line for line in text) == 1, "the bucket is named once; everything else derives from it"


def child_runs(tracking_uri: str, experiment: str) -> list:
    client = MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id]) if exp else []
    return [r for r in runs if "sweep_run_id" in r.data.tags]


@pytest.mark.slow
@pytest.mark.serial
def test_pi_ablation_spreads_over_cluster_nodes_through_address(ray_cluster, tmp_path):
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [sys.executable, str(SUPPORT), "--name", "multi", "--address", ray_cluster.address,
               "--storage-path", str(tmp_path / "ray"), "--tracking-uri", tracking_uri]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    runs = child_runs(tracking_uri, "biamat-pi-ablation")
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    worker_nodes = {node.node_id for node in ray_cluster.worker_nodes}
    used = {r.data.tags["ray_node_id"] for r in runs}
    assert used == worker_nodes, "trials must land on both worker nodes (logical GPUs) and never on the head"
    assert "AT+BiaMAT" in done.stdout


@pytest.mark.slow
@pytest.mark.serial
def test_trial_on_a_removed_node_resumes_from_its_checkpoint_on_another(ray_cluster, tmp_path):
    log = tmp_path / "epochs.log"
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    removed: list[str] = []

    def remove_the_trials_node() -> None:
        try:
            deadline = time.time() + 300
            while time.time() < deadline and not (log.exists() and log.read_text().endswith(" 1\n")):
                time.sleep(0.2)
            time.sleep(2)  # the driver registers the epoch-1 checkpoint; the trial is stalled mid-training meanwhile
            (node_id,) = {node for _, node, _ in epochs_by_process(log)}
            (node,) = [n for n in ray_cluster.worker_nodes if n.node_id == node_id]
            ray_cluster.remove_node(node)
            removed.append(node_id)
        finally:
            Path(f"{log}.go").touch()  # if the node could not be removed, end the stall instead of waiting it out

    remover = threading.Thread(target=remove_the_trials_node, daemon=True)
    remover.start()
    sweep = Sweep(family="node-loss", trainable=stalling(baseline.trainable, stall_at_epoch=1, log=str(log)),
                  param_space={**TINY_TRIAL, "epochs": 4, "training": "pgd_at"}, name_keys=("training",))
    args = run_parser("", ["tiny"]).parse_args(
        ["--address", ray_cluster.address, "--storage-path", str(tmp_path / "ray"), "--tracking-uri", tracking_uri,
         "--max-failures", "2"])
    results = run_sweep(sweep, args, "node-loss")
    remover.join()

    assert removed, "the trial's node was never removed"
    assert not results.errors
    (first, second) = epochs_by_process(log)
    assert first[1] == removed[0]
    assert first[2] == [0, 1] and second[2] == [2, 3], "the retry must start after the last checkpoint, not at 0"
    assert first[1] != second[1], "the retry runs on the surviving node"
    (run,) = child_runs(tracking_uri, "node-loss")
    assert run.info.status == "FINISHED" and run.data.tags["ray_node_id"] == second[1]
