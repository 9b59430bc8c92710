"""Flat search-space dicts become typed configs, and bad input fails before any data loads."""

import pytest

from trainables.config import ConfigError, TrainConfig
from trainables.methods.configs import BaselineConfig
from trainables.training import decay_steps, first_decay_epoch, lr_factor


def test_from_dict_coerces_types():
    cfg = BaselineConfig.from_dict({"epochs": 3.0, "lr": 1, "lr_milestones": [0.5, 80], "training": "trades"})
    assert cfg.epochs == 3 and isinstance(cfg.epochs, int)
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.lr_milestones == (0.5, 80.0)
    assert cfg.params()["lr_milestones"] == "0.5,80"


@pytest.mark.parametrize(
    "values, message",
    [
        ({"learning_rate": 0.1}, "unknown hyperparameters ['learning_rate']"),
        ({"dataset": "cifar11"}, "unknown dataset 'cifar11'"),
        ({"model": "resnet-9000"}, "unknown model 'resnet-9000'"),
        ({"eps": 8.0}, "eps=8.0 is outside [0.0, 1.0]"),
        ({"eps": -0.1}, "eps=-0.1 is outside"),
        ({"epochs": 2.5}, "expected an integer"),
        ({"nesterov": "yes"}, "expected true/false"),
        ({"training": "fgsm"}, "expected one of ['standard', 'pgd_at', 'trades']"),
        ({"beta": -1.0}, "beta=-1.0 must not be negative"),
        ({"epochs": 0}, "epochs=0 must be at least 1"),
        ({"lr_milestones": [0.9, 0.5]}, "lr_milestones=[0.9, 0.5] must increase, e.g. [0.5, 0.9]"),
        ({"epochs": 110, "lr_milestones": [105, 100]}, "must increase"),
        ({"epochs": 100, "lr_milestones": [0.9, 50]}, "must increase"),  # 0.9 of 100 epochs is after epoch 50
        ({"final_attacks": []}, "final_attacks is empty"),
        ({"train_n": 128, "select_on": "holdout", "holdout_n": 128, "batch_size": 32},
         ("train_n=128 leaves 0 images to train on beside the holdout_n=128 held out for checkpoint selection, fewer "
         "than one batch of 32: set train_n to 160 or more, or lower holdout_n")),
        ({"train_n": 16, "batch_size": 32}, "train_n=16 leaves 16 images to train on, fewer than one batch of 32"),
    ],
)
def test_bad_input_is_rejected_with_the_reason(values, message):
    with pytest.raises(ConfigError, match=None) as info:
        BaselineConfig.from_dict(values)
    assert message in str(info.value)


def test_unknown_dataset_error_lists_registered_names():
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict({"dataset": "imagenet"})
    assert "cifar10" in str(info.value) and "synthetic" in str(info.value)


def test_piecewise_schedule_decays_at_fractions_and_epochs():
    cfg = TrainConfig.from_dict({"epochs": 100, "lr_milestones": [0.6, 0.9]})
    steps = 10
    # Fractions count steps: 60% of 1000 steps is step 600, the first step of epoch index 60 (1-based epoch 61).
    assert decay_steps(cfg.lr_milestones, 100, steps) == [600, 900]
    assert lr_factor(cfg, 59 * steps + 9, steps) == 1.0
    assert lr_factor(cfg, 60 * steps, steps) == pytest.approx(0.1)
    assert lr_factor(cfg, 90 * steps, steps) == pytest.approx(0.01)
    assert first_decay_epoch(cfg, steps) == 61
    # Epoch milestones are 1-based first decayed epochs: TRADES [100, 105] trains 99 / 5 / 6 epochs.
    trades = TrainConfig.from_dict({"epochs": 110, "lr_milestones": [100, 105]})
    per_epoch = [lr_factor(trades, epoch * steps, steps) for epoch in range(110)]
    assert per_epoch[98] == 1.0 and per_epoch[99] == pytest.approx(0.1)
    assert per_epoch[103] == pytest.approx(0.1) and per_epoch[104] == pytest.approx(0.01)
    assert first_decay_epoch(trades, steps) == 100
    # A fraction that does not fall on an epoch boundary decays mid-epoch, at the step the fraction names.
    odd = TrainConfig.from_dict({"epochs": 3, "lr_milestones": [0.5]})
    assert decay_steps(odd.lr_milestones, 3, 3) == [5] and first_decay_epoch(odd, 3) == 2


@pytest.mark.parametrize("milestones", [[0.0], [0], [2.5], [-1]])
def test_milestones_outside_the_convention_are_refused(milestones):
    with pytest.raises(ConfigError, match="1-based epoch"):
        TrainConfig.from_dict({"epochs": 110, "lr_milestones": milestones})


def test_cyclic_schedule_is_one_triangle():
    cfg = TrainConfig.from_dict({"epochs": 10, "schedule": "cyclic"})
    factors = [lr_factor(cfg, step, 10) for step in range(101)]
    assert factors[0] == 0.0 and factors[50] == 1.0 and factors[100] == 0.0
    assert factors[:51] == sorted(factors[:51]) and factors[50:] == sorted(factors[50:], reverse=True)
