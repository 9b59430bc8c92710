"""The fast paths (bf16 autocast, channels_last, torch.compile, linear LR scaling) change speed, not results: each one
trains to the same losses and accuracies as fp32 eager within the tolerances stated here."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tests_support import SCIENCE, merger_over, robustness, science_pgd_at, train_without_ray
from trainables.methods import registry
from trainables.methods.baseline import Baseline
from trainables.methods.configs import BaselineConfig
from trainables.runtime import Method
from trainables.training import make_optimizer

# One epoch of PGD-AT on 256 images: every pass a fast path touches (attack, update, BatchNorm modes) runs.
SHORT = {"dataset": "synthetic", "train_n": 256, "model": "tiny-cnn", "epochs": 1, "batch_size": 64, "lr": 0.05,
         "attack_steps": 3, "attack_step": 4 / 255, "eval_n": 64, "final_n": 64, "training": "pgd_at"}
# Relative difference of the epoch's mean training loss to fp32 eager. bf16 keeps 8 bits of mantissa, so its
# per-pass error is about 0.4%; channels_last and compile only reorder sums (seen: 5e-5 for channels_last).
LOSS_RTOL = {"channels_last": 1e-3, "bf16": 1e-2, "bf16+channels_last": 1e-2, "compile": 1e-3}
PATHS = {
    "channels_last": {"channels_last": True},
    "bf16": {"precision": "bf16"},
    "bf16+channels_last": {"precision": "bf16", "channels_last": True},
    "compile": {"compile": True},
}


def last_epoch(config: dict) -> dict[str, float]:
    logs: list[dict[str, float]] = []
    train_without_ray(Baseline, config, logs)
    return logs[-1]


@pytest.fixture(scope="module")
def fp32_eager() -> dict[str, float]:
    return last_epoch(SHORT)


@pytest.mark.parametrize("path", [p for p in PATHS if p != "compile"])
def test_fast_path_matches_fp32_eager_training_loss(fp32_eager, path):
    fast = last_epoch({**SHORT, **PATHS[path]})
    print(f"\n{path}: train/loss {fast['train/loss']:.5f} vs fp32 eager {fp32_eager['train/loss']:.5f}")
    assert fast["train/loss"] == pytest.approx(fp32_eager["train/loss"], rel=LOSS_RTOL[path])


@pytest.mark.slow
def test_compiled_model_matches_fp32_eager_training_loss(fp32_eager):
    fast = last_epoch({**SHORT, **PATHS["compile"]})
    print(f"\ncompile: train/loss {fast['train/loss']:.5f} vs fp32 eager {fp32_eager['train/loss']:.5f}")
    assert fast["train/loss"] == pytest.approx(fp32_eager["train/loss"], rel=LOSS_RTOL["compile"])


@pytest.mark.slow
def test_fast_paths_reach_the_same_clean_and_robust_accuracy():
    """PGD-AT trained to the science test's robustness with bf16 + channels_last and with torch.compile; accuracies on
    500 test points within 3 points of fp32 eager (the seed-to-seed spread of this setup is larger), final training
    loss within 3%. bf16 is the one lossy path and is trained here with channels_last, the combination a GPU run
    uses; channels_last alone and bf16 alone only reorder sums or round as the combination does, and each has its
    own loss test above."""
    config = {**SCIENCE, "training": "pgd_at"}
    reference_trial, reference_logs = science_pgd_at()  # fp32 eager, shared with the science tests
    results = {"fp32 eager": {"loss": reference_logs[-1]["train/loss"], **robustness(reference_trial)}}
    for path in ("bf16+channels_last", "compile"):
        logs: list[dict[str, float]] = []
        trial = train_without_ray(Baseline, {**config, **PATHS[path]}, logs)
        results[path] = {"loss": logs[-1]["train/loss"], **robustness(trial)}
    reference = results["fp32 eager"]
    print("\n" + "\n".join(f"{path:20s} loss {r['loss']:.4f} clean {r['clean']:.3f} PGD-20 {r['pgd20']:.3f}"
                           for path, r in results.items()))
    for path, result in results.items():
        assert result["loss"] == pytest.approx(reference["loss"], rel=0.03), path
        assert abs(result["clean"] - reference["clean"]) <= 0.03, path
        assert abs(result["pgd20"] - reference["pgd20"]) <= 0.03, path


def test_linear_lr_scaling_multiplies_the_learning_rate_by_the_batch_ratio():
    plain = BaselineConfig(batch_size=256, lr=0.1)
    scaled = BaselineConfig(batch_size=256, lr=0.1, lr_base_batch=128)
    parameters = [torch.nn.Parameter(torch.zeros(1))]
    assert make_optimizer(parameters, plain).param_groups[0]["lr"] == pytest.approx(0.1)
    assert make_optimizer(parameters, scaled).param_groups[0]["lr"] == pytest.approx(0.2)


# --- no host synchronisation inside the step loop --------------------------------------------------------------------

# Tensor methods that copy a value to the host: on a GPU each one waits for every queued kernel.
HOST_READS = ("item", "tolist", "numpy", "__bool__", "__int__", "__float__", "__index__")
# Loop name -> (the registered method, its config values).
STEP_LOOPS = {
    "pgd_at": ("baseline", {"training": "pgd_at"}),
    # FAT from epoch 1 on with tau 1 (its early stopping counts steps on the device); LBGAT with a tiny teacher.
    "fat_at": ("fat", {"variant": "at", "tau_milestones": [2]}),
    "fat_trades": ("fat", {"attack_bn": "eval", "attack_start": "normal_clamped"}),
    "lbgat": ("lbgat", {"teacher_model": "tiny-cnn", "attack_bn": "eval"}),
    "tla": ("tla", {}),  # its pool, negatives and same-class draws chosen on the device
    "trades": ("baseline", {"training": "trades", "attack_bn": "eval"}),
    "random eps": ("baseline", {"training": "pgd_at", "train_eps_range": [3 / 255, 8 / 255]}),
    "afs extractor": ("afs_extractor", {"eps": 3 / 255}),
    # Epoch 1 of 2 is after BiaMAT's warm-up (omega is set on its first step) and from UIAT's momentum start.
    "at_biamat": ("biamat", {"warmup_epochs": 1, "aux_batch_size": 32}),
    "trades_biamat": ("biamat", {"variant": "trades", "attack_bn": "eval", "warmup_epochs": 1, "aux_batch_size": 32}),
    "uiat": ("uiat", {"momentum_start": 1}),
    "uiat one-off": ("uiat", {"oneoff": True, "oneoff_epoch": 0, "components": "uag+fr"}),  # stored, then reused
    "afs merger": ("afs", {"extractor_sweep": "in-test", "mask": "100000001"}),
    "mart": ("mart", {}),
    "rs_fgsm": ("single_step", {"variant": "rs_fgsm"}),
    "n_fgsm": ("single_step", {"variant": "n_fgsm"}),
    "gradalign": ("gradalign", {}),
    "hat": ("hat", {"helper_sweep": "in-test"}),
    "n_fgsm uiat one-off": ("uiat", {"training_attack": "n_fgsm", "oneoff": True, "oneoff_epoch": 0,
                                     "components": "uag"}),
}


def method_class(name: str) -> type[Method]:
    """The registered method ``name``; the two that load trained models from MLflow on models built here."""
    from trainables.models import create_model

    if name == "afs":
        return merger_over({i: create_model("tiny-cnn", 10) for i in (0, 8)})
    if name == "hat":
        from trainables.methods.hat import HAT

        helper = create_model("tiny-cnn", 10)

        class InTestHAT(HAT):  # a helper built here instead of fetched from MLflow
            def load_helper(self):
                return helper

        return InTestHAT
    return registry.method(name).method


def test_every_registered_method_has_its_step_loop_checked():
    assert {name for name, _ in STEP_LOOPS.values()} == set(registry.METHODS)


def host_reads_in_two_epochs(method_cls, config: dict, steps: int, monkeypatch) -> list[str]:
    from trainables.config import RunSettings
    from trainables.datasets import load_dataset
    from trainables.runtime import Trial
    from trainables.trial_data import TrialData

    cfg = method_cls.Config.from_dict(config)
    # Only the images the epochs use: generating the full synthetic set would take most of the test's time.
    train = load_dataset(cfg.dataset, "train", n=steps * cfg.batch_size)
    test = load_dataset(cfg.dataset, "test", n=cfg.eval_n)
    method = method_cls(cfg, TrialData(train=train, select=test, test=test), torch.device("cpu"),
                        RunSettings(tracking_uri="sqlite:///unused.db", experiment="x"))
    trial = Trial(method)
    reads: list[str] = []

    def counting(name: str):
        original = getattr(torch.Tensor, name)

        def read(self, *args, **kwargs):
            reads.append(name)
            return original(self, *args, **kwargs)
        return read

    with monkeypatch.context() as patch:
        for name in HOST_READS:
            patch.setattr(torch.Tensor, name, counting(name))
        for epoch in range(2):
            trial.train_epoch(epoch)
    return reads


@pytest.mark.parametrize("loop", STEP_LOOPS)
def test_no_host_read_inside_the_step_loop(loop, monkeypatch):
    """Epochs of 6 steps read exactly as many tensor values on the host as epochs of 2 (each epoch's summed
    diagnostics): nothing per step. This sees explicit reads only, not ops whose output shape depends on values."""
    name, switches = STEP_LOOPS[loop]
    config = {**SHORT, "batch_size": 16, "epochs": 2, **switches}
    if "training" not in {field.name for field in dataclasses.fields(registry.method(name).config)}:
        config.pop("training")
    short, long = (host_reads_in_two_epochs(method_class(name), config, steps, monkeypatch) for steps in (2, 6))
    assert sorted(long) == sorted(short), f"per-step host reads: {sorted(long)} vs {sorted(short)}"
