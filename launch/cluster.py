"""Checks once Ray runs, before any trial starts: whether trials on other machines can reach the stores."""

from __future__ import annotations

from urllib.parse import urlparse

import ray


def check_cluster_reachable(tracking_uri: str, storage: str | None = None) -> None:
    """Refuse, before any trial starts, a tracking store that trials on other machines cannot reach (``storage``:
    Tune's, for a sweep; None for work without checkpoints, such as ``sweeps/reevaluate.py``).

    Trials log to MLflow from whichever node runs them. On one machine (also a ``ray.cluster_utils.Cluster``, whose
    nodes share this machine's address) a SQLite file works; once a node has another address it needs the MLflow
    server. A local storage folder works only if it is a shared mount (NFS), which cannot be told from here.
    """
    here = ray.util.get_node_ip_address()
    elsewhere = sorted({node["NodeManagerAddress"] for node in ray.nodes() if node["Alive"]} - {here})
    if not elsewhere:
        return
    server = f"http://{here}:5000"
    if tracking_uri.startswith("sqlite:"):
        raise SystemExit(f"error: --tracking-uri {tracking_uri} is a file on this machine, but trials also run on "
                         f"{', '.join(elsewhere)}: pass the MLflow server's address (cluster.yaml starts one at "
                         f"{server}) or set MLFLOW_TRACKING_URI")
    if urlparse(tracking_uri).hostname in {"localhost", "127.0.0.1", "::1"}:
        raise SystemExit(f"error: --tracking-uri {tracking_uri} names this machine by its loopback address, which "
                         f"other nodes cannot reach: use this machine's address, e.g. {server}")
    if storage is not None and "://" not in storage:
        print(f"note: --storage-path {storage} is a local folder; on a multi-machine cluster it must be a shared "
              "mount, otherwise use s3://... or gs://... (cluster.yaml sets ADVSWEEP_STORAGE to the bucket)")
