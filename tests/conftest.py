"""Shared fixtures: one local Ray for the session, small synthetic trial configs, and MLflow stores in tmp dirs."""

from __future__ import annotations

import os

import pytest
import torch

# Tests run on 2 CPU cores next to Ray workers; one intra-op thread each keeps them from oversubscribing the machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Ray workers inherit the variable; this process has already imported torch, so it is told directly.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray with 2 logical CPUs; test helper modules travel to the workers by value."""
    import ray
    from ray import cloudpickle

    import tests_support

    cloudpickle.register_pickle_by_value(tests_support)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()

