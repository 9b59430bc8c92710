"""Shared fixtures: one local Ray for the session (or a multi-node cluster on this machine), small synthetic trial
configs, and MLflow stores in tmp dirs."""

from __future__ import annotations

import os

import pytest
import torch

# Tests run on 2 CPU cores next to Ray workers; one intra-op thread each keeps them from oversubscribing the machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Ray workers inherit the variable; this process has already imported torch, so it is told directly.
torch.set_num_threads(1)


def _ship_test_helpers() -> None:
    """Test helper modules travel to Ray workers by value (workers cannot import the tests folder)."""
    from ray import cloudpickle

    import tests_support

    cloudpickle.register_pickle_by_value(tests_support)


def _start_local_ray() -> None:
    import ray

    _ship_test_helpers()
    # address="local": a new Ray of the tests' own, never a cluster this machine happens to run.
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray with 2 logical CPUs for the session (ray_cluster swaps it out and back)."""
    import ray

    _start_local_ray()
    yield ray
    ray.shutdown()


@pytest.fixture
def ray_cluster():
    """Three Ray nodes on this machine: a head without task resources and two workers with 1 CPU and 1 logical GPU
    each, like cluster.yaml's layout. Not connected: the code under test connects through ``--address``."""
    import ray
    from ray.cluster_utils import Cluster

    had_local_ray = ray.is_initialized()  # the session's ray_local, if a test before started it
    ray.shutdown()
    _ship_test_helpers()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "num_gpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=1, num_gpus=1)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()
    if had_local_ray:
        _start_local_ray()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``-n 2`` schedules each test on its own, except that the tests of one class run on one worker: a class-scoped
    fixture (a model that several tests check) is then built once per run instead of once per worker at the same
    time. xdist's ``--dist loadgroup`` cannot do this here: it renames the grouped items through an attribute that
    pytest 9 no longer reads, so every group is split."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ClassScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path, *names = nodeid.split("::")
            return "::".join([path, names[0]]) if len(names) > 1 else nodeid

    return ClassScheduling(config, log)


# The slow pass's longest tests, about longest first (seconds on CI's 2 cores, from .ci/run's --durations): started
# first, so that the pass does not end with one of them running alone while the other workers idle. A name missing
# here only keeps its collected place.
LONGEST_FIRST = (
    "tests/test_afs.py::test_both_stages_run_from_the_command_line_and_print_the_tables",  # 390
    "tests/test_biamat_main_results.py::test_the_smoke_sweeps_give_table10_with_and_without_generated_data",  # 272
    "tests/test_biamat_main_results.py::test_the_smoke_sweeps_give_tables_2_6_and_9",  # 230
    "tests/test_science.py::test_single_step_methods_come_near_pgd_at_and_rs_fgsm_is_reported_at_16",  # 191
    "tests/test_biamat_labels.py::test_labels_sweep_gives_table1_with_its_baseline_and_fig3_per_auxiliary_set",  # 172
    "tests/test_fast_paths.py::test_fast_paths_reach_the_same_clean_and_robust_accuracy",  # 167
    "tests/test_afs.py::TestMergerOverAStandardAndARobustExtractor",  # 160, its class fixture
    "tests/test_search.py::test_biamat_search_smoke_runs_end_to_end",  # 141
    "tests/test_science.py::test_biamat_gate_passes_related_auxiliary_classes_more_often",  # 136
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next((i for i, name in enumerate(LONGEST_FIRST) if item.nodeid.startswith(name)), len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: every other test keeps its collected order
