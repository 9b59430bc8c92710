"""deploy/kubernetes/: the RayJob against KubeRay's own RayJob CRD (offline, with jsonschema), and the manifests against
the project's promises: the pinned Ray image, GPU workers whose Ray resources match their limits, nothing exposed
outside the cluster, MLflow reached through its Service, one shared ReadWriteMany volume on every node, and an
entrypoint that resumes an interrupted sweep and hears about an eviction.

The CRDs are test data outside the repository: ``$KUBERAY_CRD_DIR``, else ``<repo>/../shared/schemas/kuberay``; without
them only the schema tests skip.
"""

from __future__ import annotations

import copy
import fnmatch
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from importlib.metadata import requires
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from jsonschema import Draft4Validator, FormatChecker, ValidationError, validators
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "deploy" / "kubernetes"
CRD_DIR_VARIABLE = "KUBERAY_CRD_DIR"
RAYJOB_CRD = "ray.io_rayjobs.yaml"
EXPOSING_SERVICE_TYPES = {"LoadBalancer", "NodePort"}


# --- The CRD's structural schema as JSON Schema ---------------------------------------------------------------------

def structural(schema: dict[str, Any]) -> dict[str, Any]:
    """A CRD's OpenAPI v3 schema in JSON Schema (draft 4, OpenAPI 3.0's base) with the API server's own rules
    spelled out, so that jsonschema refuses what `kubectl apply` would."""
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {name: structural(sub) for name, sub in out["properties"].items()}
        # kubectl's strict field validation rejects a field the schema does not name (the API server would otherwise
        # drop it silently); only x-kubernetes-preserve-unknown-fields keeps an object open.
        if "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = structural(out[key])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in out:
            out[key] = [structural(sub) for sub in out[key]]
    # int-or-string (ports, quantities) is either; the CRDs usually spell that out as anyOf, a bare flag does not.
    if out.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def list_type(validator, kind: str, instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    """x-kubernetes-list-type: a `map` list holds one item per key (container names, env names), a `set` no repeats."""
    if kind not in {"map", "set"} or not validator.is_type(instance, "array"):
        return
    keys = schema.get("x-kubernetes-list-map-keys", [])
    seen = [tuple(item.get(key) for key in keys) if isinstance(item, dict) and kind == "map" else item
            for item in instance]
    repeated = [item for i, item in enumerate(seen) if item in seen[:i]]
    if repeated:
        yield ValidationError(f"list of type {kind} (keys {keys}) repeats {repeated}")


def cel_rules(validator, rules: list[dict[str, Any]], instance: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    """x-kubernetes-validations are CEL, which needs an API server: a manifest that sets such a field is refused here
    instead of passing unchecked."""
    yield ValidationError(f"sets a field whose CEL rules cannot be checked offline: {[r['rule'] for r in rules]}")


def kubernetes_formats() -> FormatChecker:
    checker = FormatChecker(formats=())
    for name, bits in (("int32", 32), ("int64", 64)):
        checker.checks(name)(lambda value, bits=bits: not isinstance(value, int) or
                             -(2 ** (bits - 1)) <= value < 2 ** (bits - 1))
    return checker


KubernetesValidator = validators.extend(
    Draft4Validator, {"x-kubernetes-list-type": list_type, "x-kubernetes-validations": cel_rules})


@pytest.fixture(scope="module")
def rayjob_validator() -> Draft4Validator:
    configured = os.environ.get(CRD_DIR_VARIABLE)
    folder = Path(configured) if configured else ROOT.parent / "shared" / "schemas" / "kuberay"
    crd = folder / RAYJOB_CRD
    if not crd.is_file():
        if configured:
            pytest.fail(f"{CRD_DIR_VARIABLE}={configured} holds no {RAYJOB_CRD}: point it at the folder of KubeRay's "
                        "CRDs (ray-operator/config/crd/bases in the kuberay repository)")
        pytest.skip(f"no KubeRay CRDs at {folder}: set {CRD_DIR_VARIABLE} to the folder holding {RAYJOB_CRD}")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    (version,) = [v for v in yaml.load(crd.read_text(), Loader=loader)["spec"]["versions"] if v["name"] == "v1"]
    schema = structural(version["schema"]["openAPIV3Schema"])
    KubernetesValidator.check_schema(schema)
    return KubernetesValidator(schema, format_checker=kubernetes_formats())


# --- The manifests ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def documents() -> list[dict[str, Any]]:
    files = sorted(MANIFESTS.glob("*.yaml"))
    assert files, f"no manifests in {MANIFESTS}"
    return [doc for path in files for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


@pytest.fixture(scope="module")
def rayjob(documents) -> dict[str, Any]:
    (job,) = of_kind(documents, "RayJob")
    return job


def of_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents if doc["kind"] == kind]


def named(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in of_kind(documents, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} named {name!r} in {MANIFESTS}"
    return found[0]


def ray_groups(job: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    cluster = job["spec"]["rayClusterSpec"]
    return [("head", cluster["headGroupSpec"])] + [(g["groupName"], g) for g in cluster.get("workerGroupSpecs", [])]


def pod_specs(documents: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every pod spec in the manifests, named by where it is: Ray groups, workload templates, bare pods."""
    for doc in documents:
        name = f"{doc['kind']} {doc['metadata']['name']}"
        if doc["kind"] == "RayJob":
            for group, spec in ray_groups(doc):
                yield f"{name} group {group}", spec["template"]["spec"]
        elif doc["kind"] == "Pod":
            yield name, doc["spec"]
        elif "template" in doc.get("spec", {}):
            yield name, doc["spec"]["template"]["spec"]


def all_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return spec.get("initContainers", []) + spec["containers"]


def environment(container: dict[str, Any]) -> dict[str, str]:
    return {var["name"]: var["value"] for var in container.get("env", []) if "value" in var}


def head_container(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]


def claim_holding(spec: dict[str, Any], container: dict[str, Any], path: str) -> tuple[str, str]:
    """The PersistentVolumeClaim and mount path under which ``container`` sees ``path``."""
    mounts = [m for m in container.get("volumeMounts", []) if Path(path).is_relative_to(m["mountPath"])]
    assert mounts, f"{container['name']} mounts nothing that holds {path}"
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    (volume,) = [v for v in spec.get("volumes", []) if v["name"] == mount["name"]]
    assert "persistentVolumeClaim" in volume, f"{path} is on volume {volume['name']}, not on a claim"
    return volume["persistentVolumeClaim"]["claimName"], mount["mountPath"]


def project_requirement(name: str) -> Requirement:
    return next(Requirement(r) for r in requires("advsweep") if Requirement(r).name == name)


def test_every_manifest_is_a_named_kubernetes_object_once(documents):
    for doc in documents:
        assert {"apiVersion", "kind", "metadata"} <= doc.keys() and doc["metadata"].get("name"), doc
    keys = [(doc["kind"], doc["metadata"]["name"]) for doc in documents]
    assert len(keys) == len(set(keys)), keys
    assert [doc["apiVersion"] for doc in of_kind(documents, "RayJob")] == ["ray.io/v1"]


def test_rayjob_passes_kuberays_rayjob_schema(rayjob_validator, rayjob):
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in rayjob_validator.iter_errors(rayjob)]
    assert not errors, "\n".join(errors)


def without_worker_group_name(job: dict[str, Any]) -> None:
    del job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["groupName"]


def with_misspelled_field(job: dict[str, Any]) -> None:
    job["spec"]["shutdownAfterJobFinish"] = job["spec"].pop("shutdownAfterJobFinishes")


def with_numeric_ray_start_param(job: dict[str, Any]) -> None:
    job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["rayStartParams"]["num-gpus"] = 1


def with_malformed_quantity(job: dict[str, Any]) -> None:
    head_container(job)["resources"]["limits"]["memory"] = "16 GB"


def with_repeated_env_name(job: dict[str, Any]) -> None:
    env = head_container(job)["env"]
    env.append(dict(env[0]))


def with_cel_guarded_field(job: dict[str, Any]) -> None:
    job["spec"]["managedBy"] = "ray.io/kuberay-operator"


@pytest.mark.parametrize("breakage", [without_worker_group_name, with_misspelled_field, with_numeric_ray_start_param,
                                      with_malformed_quantity, with_repeated_env_name, with_cel_guarded_field])
def test_schema_refuses_a_broken_rayjob(rayjob_validator, rayjob, breakage):
    broken = copy.deepcopy(rayjob)
    breakage(broken)
    with pytest.raises(ValidationError):
        rayjob_validator.validate(broken)


def test_images_pin_the_projects_ray_and_mlflow(documents, rayjob):
    with (ROOT / "cluster.yaml").open() as file:
        aws_image = yaml.safe_load(file)["docker"]["image"]
    ray_requirement = project_requirement("ray")
    for group, spec in ray_groups(rayjob):
        for container in all_containers(spec["template"]["spec"]):
            assert container["image"] == aws_image, (group, container["name"], container["image"])
    version = aws_image.split(":")[1].split("-")[0]
    assert ray_requirement.specifier.contains(version), (aws_image, str(ray_requirement))
    assert rayjob["spec"]["rayClusterSpec"]["rayVersion"] == version

    (mlflow,) = [c for _, spec in pod_specs(documents) for c in spec["containers"] if c["name"] == "mlflow"]
    repository, tag = mlflow["image"].split(":")
    assert repository == "ghcr.io/mlflow/mlflow" and project_requirement("mlflow").specifier.contains(tag[1:]), tag


def test_gpu_workers_request_and_limit_gpus_and_tell_ray_the_same(rayjob):
    (_, head), *workers = ray_groups(rayjob)
    assert workers, "no worker group"
    assert head["rayStartParams"].get("num-gpus") == "0" and head["rayStartParams"].get("num-cpus") == "0", \
        "the head runs the driver, never a trial"
    assert not any("nvidia.com/gpu" in part for part in head_container(rayjob)["resources"].values())
    for name, group in workers:
        (container,) = group["template"]["spec"]["containers"]
        requests, limits = container["resources"]["requests"], container["resources"]["limits"]
        assert {"cpu", "memory", "nvidia.com/gpu"} <= requests.keys() & limits.keys(), (name, container["resources"])
        gpus = limits["nvidia.com/gpu"]
        assert requests["nvidia.com/gpu"] == gpus and int(gpus) > 0, (name, requests, limits)
        ray_gpus = group.get("resources", {}).get("GPU", group["rayStartParams"].get("num-gpus"))
        assert ray_gpus == str(gpus), f"group {name}: Ray is told {ray_gpus} GPUs, the pod gets {gpus}"


def test_nothing_is_exposed_outside_the_cluster(documents, rayjob):
    assert not of_kind(documents, "Ingress")
    exposing = [doc["metadata"]["name"] for doc in of_kind(documents, "Service")
                if doc["spec"].get("type", "ClusterIP") in EXPOSING_SERVICE_TYPES]
    assert not exposing, f"Services reachable from outside the cluster: {exposing}"
    head = rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]
    assert head.get("serviceType", "ClusterIP") not in EXPOSING_SERVICE_TYPES and not head.get("enableIngress")
    for where, spec in pod_specs(documents):
        assert not spec.get("hostNetwork"), where
        host_ports = [p for c in all_containers(spec) for p in c.get("ports", []) if "hostPort" in p]
        assert not host_ports, (where, host_ports)


def test_the_job_logs_to_the_mlflow_service(documents, rayjob):
    uri = urlparse(environment(head_container(rayjob))["MLFLOW_TRACKING_URI"])
    service = named(documents, "Service", uri.hostname.split(".")[0])
    assert uri.scheme == "http" and service["spec"].get("type") == "ClusterIP", (uri, service["spec"])
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == uri.port]

    selector = service["spec"]["selector"]
    (server,) = [doc for doc in of_kind(documents, "Deployment")
                 if selector.items() <= doc["spec"]["template"]["metadata"]["labels"].items()]
    (container,) = server["spec"]["template"]["spec"]["containers"]
    (listening,) = [p for p in container["ports"] if port["targetPort"] in (p["containerPort"], p.get("name"))]
    assert f"--port={listening['containerPort']}" in container["command"], container["command"]

    allowed = environment(container)["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    for host in (f"{uri.hostname}:{uri.port}", f"localhost:{port['port']}"):  # the trials; kubectl port-forward
        assert any(fnmatch.fnmatchcase(host, pattern) for pattern in allowed), f"MLflow would refuse Host {host}"


def test_every_mounted_volume_and_claim_is_declared(documents):
    claims = {doc["metadata"]["name"] for doc in of_kind(documents, "PersistentVolumeClaim")}
    for where, spec in pod_specs(documents):
        volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
        for container in all_containers(spec):
            missing = {m["name"] for m in container.get("volumeMounts", [])} - volumes.keys()
            assert not missing, f"{where}, container {container['name']}: undeclared volumes {missing}"
        used = {v["persistentVolumeClaim"]["claimName"] for v in volumes.values() if "persistentVolumeClaim" in v}
        assert used <= claims, f"{where} uses claims no manifest creates: {used - claims}"


def test_tune_storage_data_and_optuna_share_one_readwritemany_claim_on_every_node(documents, rayjob):
    env = environment(head_container(rayjob))
    paths = [env["ADVSWEEP_STORAGE"], env["ADVSWEEP_DATA"], env["ADVSWEEP_OPTUNA_STORAGE"].removeprefix("sqlite:///")]
    where = set()
    for group, spec in ray_groups(rayjob):
        pod = spec["template"]["spec"]
        # A trial on any node writes its checkpoints to the driver's storage path and reads the driver's data path.
        where |= {claim_holding(pod, pod["containers"][0], path) for path in paths}
    assert len(where) == 1, f"the shared paths must be one claim at one mount path in every Ray group: {where}"
    ((claim, _),) = where
    assert "ReadWriteMany" in named(documents, "PersistentVolumeClaim", claim)["spec"]["accessModes"]


# --- The entrypoint: start, resume, eviction ----------------------------------------------------------------------------

FAKE_DRIVER = """#!/bin/sh
# Stands in for python: records how the sweep was started and by which process, then exits as a SIGTERMed sweep does.
printf '%s\\n' "$@" > argv
echo $$ > driver.pid
exit 75
"""


def run_entrypoint(job: dict[str, Any], checkout: Path, storage: Path) -> list[str]:
    """Run the RayJob's entrypoint as the head's job supervisor would, with `python` a stand-in; returns its argv."""
    words = shlex.split(job["spec"]["entrypoint"])
    assert words[:2] == ["sh", "-c"] and len(words) == 3, \
        "the entrypoint must be one single-quoted script: KubeRay pastes it into the submitter's shell command"
    bin_dir = checkout.parent / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "python").write_text(FAKE_DRIVER)
    (bin_dir / "python").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "ADVSWEEP_CHECKOUT": str(checkout),
           "ADVSWEEP_STORAGE": str(storage)}
    done = subprocess.run(words, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 75, f"the sweep's exit status must reach Ray's job status: {done}"
    assert (checkout / ".driver.pid").read_text() == (checkout / "driver.pid").read_text(), \
        "the pid file must name the sweep's own process (exec), which the head's preStop hook signals"
    return (checkout / "argv").read_text().splitlines()


def test_the_entrypoint_starts_a_sweep_and_resumes_it_when_its_tune_folder_exists(rayjob, tmp_path):
    checkout, storage = tmp_path / "advsweep", tmp_path / "ray_results"
    checkout.mkdir()
    first = run_entrypoint(rayjob, checkout, storage)
    assert "--resume" not in first and "--name" in first, first
    name = first[first.index("--name") + 1]
    assert name and "/" not in name, f"--name must be a fixed folder name under the Tune storage, not {name!r}"
    # The job supervisor sets RAY_ADDRESS to this cluster for the driver: the sweeps' own default for --address.
    assert "--address" not in first and "RAY_ADDRESS" not in environment(head_container(rayjob)), first
    (storage / name).mkdir(parents=True)
    assert run_entrypoint(rayjob, checkout, storage) == [*first, "--resume"]


def test_the_entrypoints_sweep_script_accepts_its_flags(rayjob, tmp_path):
    checkout = tmp_path / "advsweep"
    checkout.mkdir()
    argv = run_entrypoint(rayjob, checkout, tmp_path / "ray_results")
    assert (ROOT / argv[0]).is_file() and argv[0].startswith("sweeps/"), argv
    env = {**os.environ, **environment(head_container(rayjob)),
           "ADVSWEEP_STORAGE": str(tmp_path / "ray_results"), "ADVSWEEP_DATA": str(tmp_path / "data")}
    done = subprocess.run([sys.executable, *argv, "--dry-run"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0 and "trials:" in done.stdout, done.stdout[-2000:] + done.stderr[-2000:]


DRIVER_SAVING_ON_SIGTERM = """
import pathlib, signal, sys, time

def save_and_exit(*_):
    time.sleep(0.5)  # Tune saving its state
    pathlib.Path(sys.argv[1]).touch()
    sys.exit(75)

signal.signal(signal.SIGTERM, save_and_exit)
print("ready", flush=True)
time.sleep(60)
"""


def test_an_evicted_head_lets_the_sweep_save_and_the_job_is_retried(rayjob, tmp_path):
    assert rayjob["spec"]["backoffLimit"] >= 1, "a sweep that exits 75 must be run again (and resumes)"
    assert rayjob["spec"]["shutdownAfterJobFinishes"], "the GPU workers must go when the sweep ends"
    head_pod = rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    assert head_pod["terminationGracePeriodSeconds"] > 30, "the default 30 s may not be enough to save the sweep"

    saved = tmp_path / "saved"
    driver = subprocess.Popen([sys.executable, "-c", DRIVER_SAVING_ON_SIGTERM, str(saved)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert driver.stdout.readline() == "ready\n"
        (tmp_path / ".driver.pid").write_text(f"{driver.pid}\n")
        # This test is the driver's parent: it reaps the driver, as the job supervisor does, so the hook sees it go.
        reaper = threading.Thread(target=driver.wait, daemon=True)
        reaper.start()
        hook = head_container(rayjob)["lifecycle"]["preStop"]["exec"]["command"]
        done = subprocess.run(hook, env={**os.environ, "ADVSWEEP_CHECKOUT": str(tmp_path)}, capture_output=True,
                              text=True, timeout=30, check=False)
        saved_before_the_hook_returned = saved.exists()
        reaper.join(timeout=60)
    finally:
        driver.kill()
        driver.stdout.close()
    assert done.returncode == 0, done
    assert driver.returncode == 75, "the hook must send the driver SIGTERM"
    assert saved_before_the_hook_returned, "the hook must wait for the driver to finish saving"
