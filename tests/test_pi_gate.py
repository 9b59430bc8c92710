"""The smoke pi ablation routes a pi-dependent share of auxiliary samples: its table's rows differ because of the gate.

In process, without Ray: the smoke preset's AT variant is trained through its warm-up once, then each pi continues from
that state (the resume path) for the first epoch after warm-up, the one in which omega is set and the gate routes.
"""

from __future__ import annotations

import pytest
import torch

from sweeps.pi_ablation import PIS, SHARED, VARIANTS
from trainables.config import RunSettings
from trainables.methods.biamat import BiaMAT
from trainables.methods.configs import BiaMATConfig
from trainables.runtime import Trial
from trainables.training import seed_everything
from trainables.trial_data import TrialData


def smoke_trial(pi: float) -> Trial:
    cfg = BiaMATConfig.from_dict({**SHARED["smoke"], **VARIANTS["smoke"]["at"], "variant": "at", "pi": pi})
    seed_everything(cfg.seed)
    settings = RunSettings(tracking_uri="sqlite:///unused.db", experiment="x")
    return Trial(BiaMAT(cfg, TrialData.load(cfg, settings.data_root), torch.device("cpu"), settings))


@pytest.mark.slow  # 35-40 s: the default pass stays under 10 minutes
def test_smoke_gate_passes_fewer_auxiliary_samples_at_a_larger_pi():
    low_pi, high_pi = PIS[0], PIS[-1]
    warm = smoke_trial(low_pi)
    warmup = warm.cfg.warmup_epochs
    for epoch in range(warmup):
        warm.train_epoch(epoch)
        warm.end_epoch(epoch)
    state = warm.state_dict()

    passed, confidence = {}, {}
    for pi in (low_pi, high_pi):
        trial = smoke_trial(pi)
        trial.load_state_dict(state)
        passed[pi] = trial.train_epoch(warmup)["train/high_fraction"]
        confidence[pi] = trial.method.omega / pi
    print(f"\nmean primary confidence at omega {confidence[low_pi]:.3f}; n_high/n_aux in epoch {warmup}: "
          + ", ".join(f"pi {pi}: {share:.3f}" for pi, share in passed.items()))
    # Both pis start from the same model, so omega differs by pi alone; a model near 1/K confidence would pass all.
    assert confidence[high_pi] == pytest.approx(confidence[low_pi]) and confidence[low_pi] > 0.25
    assert 0 < passed[high_pi] < passed[low_pi] < 1
