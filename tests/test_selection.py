"""Checkpoint selection as the papers' references do it: which epochs are evaluated (every k from epoch e or from the
first LR decay), and a fixed kept epoch instead of the best one."""

from __future__ import annotations

import random

import pytest
import torch

from tests_support import TINY_TRIAL
from trainables.config import ConfigError, RunSettings
from trainables.evaluation import BestTracker
from trainables.methods.baseline import Baseline
from trainables.methods.configs import BaselineConfig
from trainables.runtime import Trial
from trainables.trial_data import TrialData

SETTINGS = RunSettings(tracking_uri="sqlite:///unused.db", experiment="x")


def trial(**overrides) -> Trial:
    cfg = BaselineConfig.from_dict({**TINY_TRIAL, "train_n": 128, "eval_n": 32, "final_n": 32, "attack_steps": 1,
                                    "training": "pgd_at", **overrides})
    torch.manual_seed(cfg.seed)
    return Trial(Baseline(cfg, TrialData.load(cfg, None), torch.device("cpu"), SETTINGS))


@pytest.mark.parametrize("overrides, evaluated", [
    ({"epochs": 10}, list(range(1, 11))),
    ({"epochs": 10, "eval_every": 3}, [1, 4, 7, 10]),
    ({"epochs": 10, "eval_every": 3, "eval_from": 5}, [5, 8, 10]),
    # The reference's BiaMAT-AT protocol: every 2 epochs from the first decay (60% of 10 epochs: epoch 7).
    ({"epochs": 10, "eval_every": 2, "eval_from": "first_decay", "lr_milestones": [0.6, 0.9]}, [7, 9, 10]),
    ({"epochs": 10, "eval_every": 2, "eval_from": "first_decay", "lr_milestones": [4, 8]}, [4, 6, 8, 10]),
    ({"epochs": 10, "eval_every": 4, "eval_from": 9, "keep_epoch": 3}, [3, 9, 10]),
])
def test_selection_evaluates_the_epochs_the_config_names(overrides, evaluated):
    t = trial(**overrides)
    assert [epoch + 1 for epoch in range(t.cfg.epochs) if t.evaluates(epoch)] == evaluated


@pytest.mark.parametrize("overrides, message", [
    ({"eval_from": "first_decay", "schedule": "cyclic"}, "needs a piecewise schedule"),
    ({"eval_from": 0}, "eval_from=0 must be a 1-based epoch"),
    ({"eval_from": "last"}, "eval_from='last'"),
    ({"keep_epoch": 4}, "keep_epoch=4 must be 0"),
])
def test_bad_selection_settings_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        BaselineConfig.from_dict({**TINY_TRIAL, **overrides})


def test_a_kept_epoch_is_selected_whatever_the_scores():
    tracker = BestTracker("pgd10", keep_epoch=1)
    assert [tracker.update(e, {"pgd10": v}) for e, v in enumerate([0.5, 0.1, 0.9])] == [False, True, False]
    assert tracker.best_epoch == 1 and tracker.summary()["best/pgd10"] == 0.1
    with pytest.raises(ValueError, match="keep_epoch"):
        BestTracker("pgd10").load_state_dict(tracker.state_dict())


def test_trial_keeps_the_weights_of_the_kept_epoch():
    t = trial(epochs=3, keep_epoch=2)
    weights_after = []
    logged = []
    for epoch in range(3):
        t.train_epoch(epoch)
        logged.append(t.end_epoch(epoch))
        weights_after.append({k: v.clone() for k, v in t.method.model.state_dict().items()})
    assert t.tracker.best_epoch == 1 and logged[1]["best_epoch"] == 1.0 and "best_epoch" not in logged[0]
    for key, value in t.best_weights.items():
        torch.testing.assert_close(value, weights_after[1][key])
    assert not all(torch.equal(v, weights_after[2][k]) for k, v in t.best_weights.items())


@pytest.mark.parametrize("training, eps, kept_by", [
    ("standard", 16 / 255, "clean"),  # the case of issue #19: PGD accuracy near 0 at every epoch
    ("pgd_at", 0.0, "clean"),  # eps 0 is standard training too
    ("pgd_at", 8 / 255, "pgd1"),  # adversarial training keeps its best robust epoch, as before
])
def test_standard_training_keeps_its_best_clean_epoch_whatever_the_robust_scores(training, eps, kept_by):
    """Over random score sequences (ties included), the kept epoch and weights are those of the first best
    ``kept_by`` score, also where another epoch has the higher score by the other criterion."""
    method = trial(training=training, eps=eps).method
    first_param = next(iter(dict(method.model.named_parameters())))
    rng = random.Random(0)
    disagreements = 0
    for _ in range(200):
        scores = [{"clean": rng.choice([0.1, 0.4, 0.7, 0.9]), "pgd1": rng.choice([0.0, 0.02, 0.05, 0.3])}
                  for _ in range(rng.randint(1, 6))]
        t = Trial(method)
        t.select_metrics = iter(scores).__next__
        for epoch in range(len(scores)):
            method.model.state_dict()[first_param].fill_(float(epoch))  # marks the weights of this epoch
            t.end_epoch(epoch)
        values = [s[kept_by] for s in scores]
        other = [s["pgd1" if kept_by == "clean" else "clean"] for s in scores]
        best = values.index(max(values))
        assert t.tracker.best_epoch == best, scores
        assert torch.all(t.best_weights[first_param] == best)
        disagreements += other.index(max(other)) != best
    assert disagreements > 50  # the criteria disagreed often enough for the property to say something
