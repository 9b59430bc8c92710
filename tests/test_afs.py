"""AFS: frozen extractors, the attack through the whole stack, alpha, masks, the MLflow lookup of stage 1 from
stage 2, Delta_z and its selection rule; the science on the synthetic data and both stages from the command line
(slow)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from mlflow.tracking import MlflowClient

import tests_support
from analysis.afs.selection import CONVEX_TOLERANCE, concave_range
from runstore.reader import _numeric, load_sweep
from tests_support import fit_test_model, merger_over, train_without_ray
from trainables import attacks
from trainables.config import ConfigError, RunSettings
from trainables.datasets import load_dataset
from trainables.evaluation import accuracy, evaluate, logit_change
from trainables.methods import afs
from trainables.methods.afs import (
    EXTRACTOR_EXPERIMENT,
    Extractor,
    FrozenStack,
    Merger,
    MissingExtractorError,
    find_extractors,
    load_extractors,
)
from trainables.methods.afs_masks import DEFAULT_MASK, mask_indices, mask_of
from trainables.methods.configs import ExtractorConfig, MergerConfig
from trainables.models import Classifier, count_macs, create_model
from trainables.runtime import Trial
from trainables.tracking import TrialRun
from trainables.training import lr_factor
from trainables.trial_data import TrialData

ROOT = Path(__file__).resolve().parents[1]
TRAIN = {"dataset": "synthetic", "model": "tiny-cnn", "epochs": 1, "batch_size": 16, "attack_steps": 2,
         "attack_step": 4 / 255, "eval_n": 16, "final_n": 16}
SMALL = {**TRAIN, "extractor_sweep": "extractors"}
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data() -> TrialData:
    train = load_dataset("synthetic", "train").subset(torch.arange(512))
    test = load_dataset("synthetic", "test").subset(torch.arange(256))
    return TrialData(train=train, select=test.subset(torch.arange(16)), test=test)


def tiny_extractors(indices, seed: int = 0) -> dict[int, Classifier]:
    extractors = {}
    for i in indices:
        torch.manual_seed(seed + i)
        extractors[i] = create_model("tiny-cnn", 10)
    return extractors


def settings(tracking_uri: str = "sqlite:///unused.db") -> RunSettings:
    return RunSettings(tracking_uri=tracking_uri, experiment="afs-tests")


def in_test_merger(data: TrialData, extractors: dict[int, Classifier], **overrides) -> Merger:
    """A Merger over extractors built in the test instead of fetched from MLflow."""
    torch.manual_seed(0)
    mask = mask_of(extractors, length=10 if max(extractors) == 9 else 9)
    cfg = MergerConfig.from_dict({**SMALL, "mask": mask, **overrides})
    return merger_over(extractors)(cfg, data, CPU, settings())


def test_merger_training_changes_no_extractor_and_gives_none_a_gradient(data):
    extractors = tiny_extractors([0, 8])
    before = {i: copy.deepcopy(m.state_dict()) for i, m in extractors.items()}  # BatchNorm statistics included
    method = in_test_merger(data, extractors, alpha=0.5)
    trial = Trial(method)
    head = method.model.heads["main"].weight.detach().clone()
    trial.train_epoch(0)

    assert not torch.equal(head, method.model.heads["main"].weight), "the merger itself must learn"
    for i, extractor in extractors.items():
        assert not extractor.training, "extractors stay in eval mode while the merger trains"
        assert all(p.grad is None and not p.requires_grad for p in extractor.parameters())
        for key, value in extractor.state_dict().items():
            assert torch.equal(value, before[i][key]), (i, key)
    optimised = {id(p) for group in trial.optimizer.param_groups for p in group["params"]}
    assert optimised == {id(p) for p in method.model.heads.parameters()}
    # Checkpoints and best weights carry the merger only; the runtime's copy of the best model shares the stack.
    assert set(method.model.state_dict()) == {"heads.main.weight", "heads.main.bias"}
    assert copy.deepcopy(method.model).body is method.stack


@pytest.fixture(scope="module")
def trained_extractors(data) -> dict[int, Classifier]:
    """Two differently initialised tiny CNNs fitted on clean synthetic data."""
    x, y = data.train.images.float() / 255, data.train.labels
    models = {}
    for i in (0, 1):
        def make(seed: int = i) -> Classifier:
            torch.manual_seed(seed)
            return create_model("tiny-cnn", 10)

        models[i] = fit_test_model(make, x, y, n_train=512)
    return models


def test_merger_attack_targets_the_whole_stack(data, trained_extractors):
    extractors = {i: copy.deepcopy(m) for i, m in trained_extractors.items()}
    method = in_test_merger(data, extractors, eps=2 / 255, attack_steps=5, attack_step=0.5 / 255)
    x, y = data.train.images.float() / 255, data.train.labels
    with torch.no_grad():
        features = method.stack(x)
    head = method.model.heads["main"]
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(200):
        optimizer.zero_grad()
        F.cross_entropy(head(features), y).backward()
        optimizer.step()

    test = data.test
    xt, yt = test.images.float() / 255, test.labels
    torch.manual_seed(1)
    against_stack = accuracy(method.model, method.adversarial(xt, yt), yt)
    against_single = {}
    for i, extractor in extractors.items():
        torch.manual_seed(1)
        x_adv = attacks.pgd(attacks.ce(extractor, yt), xt, eps=2 / 255, step_size=0.5 / 255, steps=5)
        against_single[i] = accuracy(method.model, x_adv, yt)
    clean = accuracy(method.model, xt, yt)
    print(f"\nstack accuracy: clean {clean:.3f}, examples against the stack {against_stack:.3f}, "
          f"against single extractors {against_single}")
    assert against_stack < min(against_single.values()) < clean


class CountingCraft:
    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(self, cfg, objective, x):
        self.sizes.append(len(x))
        return afs.attacks.pgd(objective, x, eps=cfg.eps, step_size=cfg.attack_step, steps=cfg.attack_steps)


@pytest.mark.parametrize("mode, alpha, attacked, stack_passes", [
    ("mix", 1.0, [], 1),          # the whole batch clean: nothing crafted, one forward pass
    ("mix", 0.5, [8], 2 + 1),     # the second half attacked (2 PGD steps), then one pass over the mixed batch
    ("mix", 0.0, [16], 2 + 1),
    ("weighted", 1.0, [], 1),     # Eq. 5 with alpha 1: the adversarial term is not even computed
    ("weighted", 0.0, [16], 2 + 1),
    ("weighted", 0.5, [16], 1 + 2 + 1),
])
def test_alpha_decides_what_is_attacked(data, monkeypatch, mode, alpha, attacked, stack_passes):
    method = in_test_merger(data, tiny_extractors([3, 8]), alpha=alpha, alpha_mode=mode)
    craft = CountingCraft()
    monkeypatch.setattr(attacks, "craft", craft)
    passes = []
    method.stack.extractors[0].body.register_forward_hook(lambda *_: passes.append(1))
    batch = next(Trial(method).loader.epoch(0))
    loss, _ = method.loss(batch, epoch=0)
    assert craft.sizes == attacked and len(passes) == stack_passes
    assert torch.isfinite(loss)


def test_weighted_alpha_is_equation_5(data, monkeypatch):
    method = in_test_merger(data, tiny_extractors([3, 8]), alpha=0.3, alpha_mode="weighted")
    monkeypatch.setattr(attacks, "craft", lambda cfg, objective, x: (x + 0.02).clamp(0, 1))
    batch = next(Trial(method).loader.epoch(0))
    loss, _ = method.loss(batch, epoch=0)
    model, x, y = method.model, batch.x, batch.y
    expected = 0.3 * F.cross_entropy(model(x), y) + 0.7 * F.cross_entropy(model((x + 0.02).clamp(0, 1)), y)
    torch.testing.assert_close(loss, expected)


def run_epochs(trial: Trial, epochs: range) -> None:
    """What run_trial does per epoch, without Ray: train, then select (evaluation draws random starts too)."""
    for epoch in epochs:
        trial.train_epoch(epoch)
        trial.end_epoch(epoch)


def test_a_resumed_merger_trial_continues_exactly(data, tmp_path):
    extractors = tiny_extractors([3, 8])
    straight = Trial(in_test_merger(data, extractors, epochs=2, alpha=0.5))
    run_epochs(straight, range(2))

    first = Trial(in_test_merger(data, extractors, epochs=2, alpha=0.5))
    run_epochs(first, range(1))
    torch.save(first.state_dict(), tmp_path / "state.pt")
    # A restarted worker: a new merger over freshly loaded extractors, the rest from the checkpoint.
    resumed = Trial(in_test_merger(data, copy.deepcopy(extractors), epochs=2, alpha=0.5))
    state = torch.load(tmp_path / "state.pt", weights_only=False)
    assert set(state["model"]) == {"heads.main.weight", "heads.main.bias"}, "no extractor weights in the checkpoint"
    resumed.load_state_dict(state)
    run_epochs(resumed, range(resumed.next_epoch, 2))
    for key, value in straight.method.model.state_dict().items():
        assert torch.equal(value, resumed.method.model.state_dict()[key]), key
    assert straight.tracker.state_dict() == resumed.tracker.state_dict()


MERGER_PATHS = {"channels_last": {"channels_last": True}, "bf16": {"precision": "bf16"}, "compile": {"compile": True}}


def merger_epoch_loss(data, extractors: dict[int, Classifier], **switches) -> float:
    # A small LR: over fitted extractors an epoch at 0.1 is chaotic, and rounding differences would grow.
    method = in_test_merger(data, copy.deepcopy(extractors), alpha=0.5, lr=1e-3, **switches)
    convs = [m for e in method.stack.extractors for m in e.modules() if isinstance(m, torch.nn.Conv2d)]
    if switches.get("channels_last"):  # the runtime converts the merger; the extractors must follow
        assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    if switches.get("compile"):
        assert all(e._compiled_call_impl is not None for e in method.stack.extractors)
    trial = Trial(method)
    torch.manual_seed(1)
    return trial.train_epoch(0)["train/loss"]


@pytest.mark.parametrize("path", ["channels_last", "bf16", pytest.param("compile", marks=pytest.mark.slow)])
def test_merger_fast_paths_match_fp32_eager(data, trained_extractors, path):
    """The fast paths reach through the frozen stack (channels_last extractors, compiled extractors, bf16 attack and
    update) and keep the merger's training loss within test_fast_paths' tolerances."""
    from test_fast_paths import LOSS_RTOL

    eager = merger_epoch_loss(data, trained_extractors)
    fast = merger_epoch_loss(data, trained_extractors, **MERGER_PATHS[path])
    print(f"\nmerger {path}: train/loss {fast:.5f} vs fp32 eager {eager:.5f}")
    assert fast == pytest.approx(eager, rel=LOSS_RTOL[path])


# --- stage 1 in MLflow, found by stage 2 -----------------------------------------------------------------------------


@pytest.fixture
def registered(tmp_path, monkeypatch) -> tuple[str, dict[int, Classifier]]:
    """An extractor sweep 'extractors' (preset smoke) in a fresh MLflow store with finished extractors eps 0..8,
    registered the way the runtime does it (TrialRun.log_weights), plus a FAILED eps-9 trial."""
    monkeypatch.chdir(tmp_path)  # the SQLite store's artifacts go to ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp_id = client.create_experiment(EXTRACTOR_EXPERIMENT)
    parent = client.create_run(exp_id, tags={"sweep": "extractors", "preset": "smoke"}).info.run_id
    extractors = tiny_extractors(range(10), seed=100)
    for i, model in extractors.items():
        run = TrialRun.open(uri, EXTRACTOR_EXPERIMENT, run_name=f"eps={i}", tags={},
                            params={"eps": i / 255, "model": "tiny-cnn", "dataset": "synthetic"},
                            trial_id=f"t{i}", parent_run_id=parent)
        run.log_weights(model.state_dict())
        run.finish("FAILED" if i == 9 else "FINISHED")
    return uri, extractors


def test_a_mask_selects_exactly_the_extractors_it_names(data, registered):
    uri, logged = registered
    cfg = MergerConfig.from_dict({**SMALL, "mask": "100010001"})
    loaded = load_extractors(cfg, uri, 10, CPU, image_size=32)
    assert sorted(loaded) == mask_indices("100010001") == [0, 4, 8]
    for i, model in loaded.items():
        for key, value in model.state_dict().items():
            assert torch.equal(value, logged[i].state_dict()[key]), (i, key)
    method = Merger(cfg, data, CPU, settings(uri))  # the trainable's own path: MLflow lookup, then the stack
    assert method.stack.indices == [0, 4, 8] and method.stack.feature_dim == 3 * 128


def test_a_missing_extractor_is_a_clear_error_naming_the_eps(data, registered):
    uri, _ = registered
    cfg = MergerConfig.from_dict({**SMALL, "mask": "0000000011"})
    with pytest.raises(MissingExtractorError) as info:
        Merger(cfg, data, CPU, settings(uri))
    message = str(info.value)
    assert "no finished extractor for eps 9/255 " in message and "mask(s) 0000000011" in message
    assert "python sweeps/afs_extractors.py --preset smoke --name extractors --resume" in message
    with pytest.raises(MissingExtractorError, match="no extractor sweep 'other'"):
        find_extractors(uri, "other")


def test_merger_sweep_checks_its_extractors_before_ray_starts(registered, tmp_path):
    import ray

    from sweeps import afs_merger

    uri, _ = registered
    ray_was_running = ray.is_initialized()  # the session's local Ray, if a test before this one started it
    with pytest.raises(SystemExit) as info:
        afs_merger.main(["table2", "--mask", "0000000011", "--extractor-sweep", "extractors",
                         "--tracking-uri", uri, "--storage-path", str(tmp_path / "ray")])
    assert "eps 9/255" in str(info.value)
    assert ray.is_initialized() == ray_was_running and not (tmp_path / "ray").exists()
    # Table 3's masks only need eps 0..8: the check passes and only then would Ray start.
    find_extractors(uri, "extractors").require(afs_merger.TABLE3_MASKS)


@pytest.mark.parametrize("values, message", [
    ({"mask": "00011111"}, "expected 9 or 10 characters"),
    ({"mask": "00011111100"}, "expected 9 or 10 characters"),
    ({"mask": "0001x1111"}, "of 0/1"),
    ({"mask": "000000000"}, "at least one 1"),
    ({"alpha": 1.2}, "alpha=1.2 is outside [0, 1]"),
    ({"extractor_sweep": ""}, "extractor_sweep is empty"),
    ({"attack_bn": "batch"}, "attack_bn='eval'"),
    ({"alpha_mode": "sum"}, "alpha_mode='sum'"),
])
def test_bad_merger_config_is_rejected(values, message):
    with pytest.raises(ConfigError) as info:
        MergerConfig.from_dict({**SMALL, **values})
    assert message in str(info.value)


# --- Delta_z, its selection rule, model size ---------------------------------------------------------------------------


def test_delta_z_is_the_largest_logit_change_in_the_ball(trained_extractors, data):
    model = trained_extractors[0]
    x = data.test.images[:64]
    small, large = (logit_change(model, x, eps=e, steps=5, device="cpu") for e in (1 / 255, 8 / 255))
    assert 0 < small < large
    assert logit_change(model, x, eps=0.0, steps=5, device="cpu") == 0
    constant = copy.deepcopy(model)
    torch.nn.init.zeros_(constant.heads["main"].weight)
    assert logit_change(constant, x, eps=8 / 255, steps=5, device="cpu") == 0
    # Not weaker than the random start alone: PGD ascends the change.
    xf = x.float() / 255
    with torch.no_grad():
        noise = (model((xf + (torch.rand_like(xf) * 2 - 1) * 8 / 255).clamp(0, 1)) - model(xf)).abs().amax(1).mean()
    assert large > float(noise)


@pytest.mark.parametrize("delta_z, expected", [
    ([20, 9, 5, 4, 3.8, 3.5, 3.1, 2.6, 2.0, 1.3], [3, 4, 5, 6, 7, 8, 9]),  # convex drop below 3/255, then concave
    ([10, 9, 8, 7, 6, 5, 4, 3, 2, 1], list(range(10))),                   # a straight line is concave
    ([1, 2, 1, 2, 1, 2, 1, 2, 1, 2], [6, 7, 8]),                           # zigzag: peaks only; ties go right
])
def test_concave_range(delta_z, expected):
    assert concave_range(range(10), delta_z) == expected
    assert concave_range([0.5, 0.1], [1.0, 2.0]) == [0.1, 0.5]
    with pytest.raises(ValueError, match="repeat"):
        concave_range([1, 1, 2], [1, 2, 3])


# Fig. 3's shape: a steep convex fall below 3/255 (the standard network's Delta_z is the largest), then concave.
PAPER_SHAPE = [24, 12, 6, 4.2, 4.0, 3.7, 3.3, 2.8, 2.2, 1.5]


def test_concave_range_picks_3_to_9_on_the_papers_shape_at_any_scale():
    assert concave_range(range(10), PAPER_SHAPE) == list(range(3, 10))
    # Scale-free: another logit scale, eps in pixel units instead of 255ths.
    pixel_eps = [i / 255 for i in range(10)]
    assert concave_range(pixel_eps, [100 * z for z in PAPER_SHAPE]) == pixel_eps[3:]


def test_noise_in_delta_z_below_the_tolerance_does_not_change_the_pick():
    largest_drop = PAPER_SHAPE[0] - PAPER_SHAPE[1]
    amplitude = 0.9 * CONVEX_TOLERANCE * largest_drop / 4  # within the bound the docstring states
    generator = torch.Generator().manual_seed(0)
    picks, picks_without_tolerance = set(), set()
    for _ in range(200):
        noise = (torch.rand(10, generator=generator) * 2 - 1) * amplitude
        noisy = [z + float(n) for z, n in zip(PAPER_SHAPE, noise)]
        picks.add(tuple(concave_range(range(10), noisy)))
        picks_without_tolerance.add(tuple(concave_range(range(10), noisy, tolerance=0.0)))
    assert picks == {tuple(range(3, 10))}
    assert len(picks_without_tolerance) > 1, "the same noise moves the pick of the rule without a tolerance"


def test_a_convex_decaying_delta_z_gives_the_last_two_extractors():
    convex = [(10 - i) ** 2 for i in range(10)]  # every slope rises by 2, 2/19 of the largest |slope|
    assert concave_range(range(10), convex) == [8, 9]


def test_masks_and_codes():
    assert mask_of([3, 4, 5, 6, 7, 8]) == DEFAULT_MASK and mask_of([9], length=10) == "0000000001"
    with pytest.raises(ValueError):
        mask_of([9])
    # MLflow hands masks back as strings; the analysis must not turn "000111111" into the number 111111.
    assert list(_numeric(pd.Series(["000111111", "100010001"]))) == ["000111111", "100010001"]
    assert list(_numeric(pd.Series(["0.5", "1"]))) == [0.5, 1.0]


def test_wrn_28_10_macs_match_table_6():
    model = create_model("wrn-28-10", 10).eval()
    assert count_macs(model, torch.rand(1, 3, 32, 32)) / 1e9 == pytest.approx(5.24, abs=0.01)


def test_stack_parameters_and_features():
    stack = FrozenStack(tiny_extractors([8, 3]))
    assert stack.indices == [3, 8] and stack.feature_dim == 256
    assert stack(torch.rand(2, 3, 32, 32)).shape == (2, 256)
    assert stack.parameter_count() == 2 * sum(p.numel() for p in create_model("tiny-cnn", 10).parameters())


# --- the paper presets follow the reference code's recipe ------------------------------------------------------------


def epoch_lrs(cfg, steps_per_epoch: int = 3) -> list[float]:
    """The LR of each epoch under the config's schedule (every step of an epoch must share it)."""
    lrs = []
    for epoch in range(cfg.epochs):
        steps = {cfg.lr * lr_factor(cfg, epoch * steps_per_epoch + s, steps_per_epoch) for s in range(steps_per_epoch)}
        assert len(steps) == 1, f"epoch index {epoch} changes LR mid-epoch: {steps}"
        lrs.append(steps.pop())
    return lrs


def test_extractor_paper_preset_is_the_reference_recipe():
    from launch.space import grid_points
    from sweeps import afs_extractors

    configs = [ExtractorConfig.from_dict(p) for p in grid_points(afs_extractors.search_space("paper", 1))]
    assert sorted(round(cfg.eps * 255) for cfg in configs) == list(range(10))
    for cfg in configs:
        # 0.1 for epoch indices 0-48, 0.01 for 49-58, 0.001 for 59-64.
        assert epoch_lrs(cfg) == pytest.approx([0.1] * 49 + [0.01] * 10 + [0.001] * 6)
        assert cfg.attack_step == 2 / 255 and cfg.attack_bn == "train"  # at every training eps
        assert cfg.keep_epoch == 64  # epoch index 63 of 65


def test_merger_paper_preset_is_the_reference_recipe():
    from launch.space import grid_points
    from sweeps import afs_merger

    space = afs_merger.search_space("table2", "paper", "extractors", afs_merger.default_stack("paper"), 1)
    configs = [MergerConfig.from_dict(p) for p in grid_points(space)]
    assert len(configs) == len(afs_merger.ALPHAS)
    for cfg in configs:
        assert epoch_lrs(cfg) == pytest.approx([0.1, 0.1, 0.01, 0.01, 0.01, 0.001, 0.001])
        assert (cfg.batch_size, cfg.keep_epoch, cfg.mask) == (100, 5, "000111111")  # keeps epoch index 4


class Stop(Exception):
    """Ends a sweep's main() once it has built its search space (no data, no Ray)."""


def test_paper_merger_stacks_eps_3_to_8_unless_told_otherwise(registered, monkeypatch):
    from sweeps import afs_merger

    uri, _ = registered
    masks = []

    def record(table: str, preset: str, extractor_sweep: str, mask: str, seeds: int) -> dict:
        masks.append(mask)
        raise Stop

    monkeypatch.setattr(afs_merger, "search_space", record)
    flags = ["table2", "--preset", "paper", "--extractor-sweep", "extractors", "--tracking-uri", uri]
    for extra in ([], ["--mask", "100010001"]):
        with pytest.raises(Stop):
            afs_merger.main([*flags, *extra])
    assert masks == ["000111111", "100010001"]


# --- Table 6's single-network ablations ------------------------------------------------------------------------------


def test_wrn_28_30_is_table_6s_large_model():
    with torch.device("meta"):  # counted without allocating 328 M parameters
        model = create_model("wrn-28-30", 10).eval()
        macs = count_macs(model, torch.rand(1, 3, 32, 32))
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(328, abs=0.5)
    assert macs / 1e9 == pytest.approx(47.04, abs=0.05)
    small, wide = (create_model(name, 10) for name in ("tiny-cnn", "tiny-cnn-3"))  # the smoke preset's pair
    assert 8 < sum(p.numel() for p in wide.parameters()) / sum(p.numel() for p in small.parameters()) < 10


class RecordingPgd:
    def __init__(self) -> None:
        self.radii: list[tuple[float, float]] = []

    def __call__(self, objective, x, *, eps, step_size, **kwargs):
        self.radii.append((eps, step_size))
        return x


def test_random_eps_training_draws_a_radius_per_batch_in_the_range(data, monkeypatch):
    from trainables.methods import baseline

    recorder = RecordingPgd()
    monkeypatch.setattr(baseline.attacks, "pgd", recorder)
    cfg = {**TRAIN, "training": "pgd_at", "eps": 8 / 255, "attack_step": 2 / 255, "train_eps_range": [3 / 255, 8 / 255]}
    method = Extractor(ExtractorConfig.from_dict(cfg), data, CPU, settings())
    batch = next(Trial(method).loader.epoch(0))
    for epoch in (0, 1, 0):
        method.on_epoch_start(epoch)
        for _ in range(50):
            method.loss(batch, epoch)
    first, second, again = (recorder.radii[i:i + 50] for i in (0, 50, 100))
    assert first == again != second, "drawn per batch, the same sequence for the same epoch (resume)"
    radii = [eps for eps, _ in recorder.radii]
    assert 3 / 255 <= min(radii) < 4 / 255 and 7 / 255 < max(radii) <= 8 / 255
    assert all(step / eps == pytest.approx(1 / 4) for eps, step in recorder.radii), "step scaled with the radius"

    recorder.radii.clear()
    fixed = Extractor(ExtractorConfig.from_dict({**cfg, "train_eps_range": []}), data, CPU, settings())
    fixed.loss(batch, 0)
    assert recorder.radii == [(8 / 255, 2 / 255)]


@pytest.mark.parametrize("values, message", [
    ({"train_eps_range": [8 / 255, 3 / 255]}, "0 <= low < high <= 1"),
    ({"train_eps_range": [3 / 255]}, "0 <= low < high <= 1"),
    ({"train_eps_range": [3 / 255, 8 / 255], "training": "standard"}, "needs adversarial training"),
    ({"train_eps_range": [3 / 255, 8 / 255], "eps": 0.0}, "needs adversarial training"),
])
def test_bad_random_eps_config_is_rejected(values, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        ExtractorConfig.from_dict({**TRAIN, **values})


def test_ablation_sweep_trains_the_random_eps_and_the_large_network():
    from launch.checks import validate
    from launch.space import grid_points
    from sweeps import afs_ablation, afs_extractors

    for preset, (base, large) in {"smoke": ("tiny-cnn", "tiny-cnn-3"), "paper": ("wrn-28-10", "wrn-28-30")}.items():
        space = afs_ablation.search_space(preset, seeds=1)
        points = {p["model"]: p for p in grid_points(space)}
        assert set(points) == {base, large}
        assert points[base]["train_eps_range"] == [3 / 255, 8 / 255] and points[large]["train_eps_range"] == []
        assert all(p["eps"] == 8 / 255 and p["training"] == "pgd_at" for p in points.values())
    validate(ExtractorConfig, afs_ablation.search_space("smoke", seeds=1), None)
    # Both networks train on the recipe of the eps-8/255 extractor (paper: step 2/255, train mode, epoch 64 kept).
    for preset in ("smoke", "paper"):
        extractor = next(p for p in grid_points(afs_extractors.search_space(preset, 1)) if p["eps"] == 8 / 255)
        for point in grid_points(afs_ablation.search_space(preset, seeds=1)):
            recipe = ("epochs", "batch_size", "lr", "lr_milestones", "attack_step", "attack_bn", "keep_epoch")
            assert {k: point.get(k) for k in recipe} == {k: extractor.get(k) for k in recipe}, (preset, point)


def test_table6_rows_baseline_ablations_and_mergers():
    from analysis.afs.tables import table6
    from runstore.reader import SweepRuns

    def sweep(rows: list[dict]) -> SweepRuns:
        return SweepRuns("s", "parent", "exp", pd.DataFrame(rows), {}, client=None)

    def single(model: str, eps: int, drawn: str = "", params: float = 36.47e6) -> dict:
        return {"tags.method": "afs_extractor", "params.model": model, "params.eps": str(eps / 255),
                "params.train_eps_range": drawn, "metrics.model/params": params, "metrics.model/macs": 5.24e9,
                "metrics.best/clean": 0.85, "metrics.best/pgd20": 0.54}

    extractors = sweep([single("wrn-28-10", i) for i in range(10)])
    ablation = sweep([single("wrn-28-10", 8, f"{3 / 255},{8 / 255}"), single("wrn-28-30", 8, params=328e6)])
    mergers = sweep([{"tags.method": "afs", "params.mask": "000111111", "params.alpha": 0.5,
                      "metrics.model/params": 218.82e6, "metrics.model/macs": 31.44e9, "metrics.best/clean": 0.91,
                      "metrics.best/pgd20": 0.54}])
    table = table6(extractors, mergers, ablation)
    assert [row[0] for row in table.rows] == ["Baseline wrn-28-10 eps 8/255", "wrn-28-10 eps U[3, 8]/255",
                                              "wrn-28-30 eps 8/255", "AFS 000111111 alpha=0.5"]
    assert [row[1] for row in table.rows] == ["36.47", "36.47", "328.00", "218.82"]
    without = table6(extractors, mergers)
    assert len(without.rows) == 2 and any("sweeps/afs_ablation.py" in note for note in without.notes)


# --- slow: the science and both stages end to end --------------------------------------------------------------------

# tests/test_science.py's recipe (about 4 x 31 SGD steps with a one-cycle LR, PGD-5 of 3/255 steps at 8/255) on
# synthetic_absent: a quarter of the images carry no robust pattern, only the texture. On the default data they carry
# another class's robust pattern instead, no classifier can tell them apart, and every bit of weight on the eps-0
# features costs more PGD-20 than it buys clean accuracy: there the merger lands below the segment (measured: eps 0
# 0.990 / 0.000, eps 8 0.690 / 0.516, merger 0.716 / 0.102). Where the robust features say nothing, the merger can
# read the texture and keep the robust features elsewhere, which is the trade AFS makes on CIFAR-10.
SCIENCE = {**tests_support.SCIENCE, "dataset": "synthetic_absent"}
MERGER_EPOCHS = 4  # with 2, alpha 0.3 still lands below the segment: the linear layer has not converged


@pytest.fixture(scope="module")
def standard_robust_and_merger() -> dict[str, dict[str, float]]:
    """Clean and PGD-20 (8/255) accuracy of an eps-0 and an eps-8/255 extractor and of an alpha-0.5 merger over both
    (the numbers are printed)."""
    start = time.perf_counter()
    extractors = {}
    for i in (0, 8):
        trial = train_without_ray(Extractor, {**SCIENCE, "training": "pgd_at", "eps": i / 255,
                                              "attack_step": 3 / 255 * i / 8})
        extractors[i] = trial.method.model
    test = trial.method.data.test
    merger = train_without_ray(merger_over(extractors), {**SCIENCE, "epochs": MERGER_EPOCHS, "attack_step": 3 / 255,
                                                         "extractor_sweep": "in-test", "mask": "100000001"}).method.model
    results = {name: evaluate(model, test.images, test.labels, eps=8 / 255, attacks=("clean", "pgd20"), device="cpu")
               for name, model in (("eps 0", extractors[0]), ("eps 8", extractors[8]), ("merger", merger))}
    print("\n" + "\n".join(f"{name:>7}: clean {r['clean']:.3f} PGD-20 {r['pgd20']:.3f}" for name, r in results.items())
          + f"\nthe segment's PGD-20 at the merger's clean accuracy: {segment_at(results):.3f}; "
          f"{time.perf_counter() - start:.0f} s")
    return results


def segment_at(results: dict[str, dict[str, float]]) -> float:
    """PGD-20 accuracy of the line through the two single extractors (clean, PGD-20) at the merger's clean accuracy."""
    standard, robust, merger = results["eps 0"], results["eps 8"], results["merger"]
    slope = (robust["pgd20"] - standard["pgd20"]) / (robust["clean"] - standard["clean"])
    return standard["pgd20"] + slope * (merger["clean"] - standard["clean"])


@pytest.mark.slow
class TestMergerOverAStandardAndARobustExtractor:
    """The two checks of one trained pair of extractors and merger: one class, so that `-n 2` runs both on one
    worker and the fixture (about 150 s) is built once (tests/conftest.py's scheduler)."""

    def test_merger_is_as_accurate_as_the_robust_and_as_robust_as_the_standard_extractor(
            self, standard_robust_and_merger):
        standard, robust, merger = (standard_robust_and_merger[k] for k in ("eps 0", "eps 8", "merger"))
        assert merger["clean"] >= robust["clean"], "at least as accurate as the robust extractor"
        assert merger["pgd20"] >= standard["pgd20"], "at least as robust as the standard extractor"

    def test_merger_point_lies_above_the_segment_between_the_two_extractors(self, standard_robust_and_merger):
        merger = standard_robust_and_merger["merger"]
        assert merger["pgd20"] > segment_at(standard_robust_and_merger), "a better trade-off than mixing the two"


def run_cli(*args: str, cwd: Path, timeout: int = 1200) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    result = subprocess.run([sys.executable, *args], check=False, cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_both_stages_run_from_the_command_line_and_print_the_tables(tmp_path, ray_local, capsys):
    # A quarter of the smoke preset's training images (128 left to train on beside the search's 128 held out), half
    # its final test points and one epoch per network: this test checks the commands and their tables, not the
    # science (test_merger_is_as_accurate_... does), and a merger's final PGD through its whole stack costs more than
    # its training. Table 2 stacks two networks; the search keeps the delta-z stack. Stage 1 runs as a user types
    # it; the later sweeps run their scripts' main() on the session's Ray, which saves a Ray start and the imports
    # per script (the same main a command line calls; tests/test_cli.py holds every script's command line).
    from sweeps import afs_ablation, afs_comparison, afs_merger

    # The final protocol without PGD-10: the tables report clean and the strongest attack, PGD-20.
    flags = ["--preset", "smoke", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
             "--storage-path", str(tmp_path / "ray"), "--set", "train_n=256", "--set", "final_n=64",
             "--set", "epochs=1", "--set", 'final_attacks=["clean","pgd20"]']

    def printed(main, *args: str) -> str:
        main([*args, *flags])
        return capsys.readouterr().out

    start = time.perf_counter()
    stage1 = run_cli(str(ROOT / "sweeps/afs_extractors.py"), *flags, cwd=tmp_path)
    middle = time.perf_counter()
    stage2 = printed(afs_merger.main, "table3")
    alphas = printed(afs_merger.main, "table2", "--mask", "100000001")
    search = printed(afs_merger.main, "search", "--num-samples", "2", "--optuna-storage",
                     f"sqlite:///{tmp_path / 'optuna.db'}")
    middle2 = time.perf_counter()
    ablation = printed(afs_ablation.main)
    comparison = printed(afs_comparison.main)  # FAT for TRADES, LBGAT+TRADES and TLA: Tables 4 and 5's other rows
    end = time.perf_counter()
    print(stage1[stage1.find("**Table 1"):], stage2[stage2.find("**Table 3"):], alphas[alphas.find("**Table 2"):],
          ablation[ablation.find("**Table 6"):], search[search.find("Optuna study"):], f"stage 1 {middle - start:.0f} s, stage 2 (tables 3 and 2) "
          f"{middle2 - middle:.0f} s, ablation and comparison {end - middle2:.0f} s", sep="\n")
    assert "Table 1." in stage1 and "0/255" in stage1 and "9/255" in stage1 and "concave over eps" in stage1
    assert "Table 3." in stage2 and "111111111" in stage2 and "Trade-off" in stage2
    assert "Table 2." in alphas and all(f" {alpha:g} |" in alphas for alpha in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0))
    assert "Optuna study 'afs-alpha-smoke'" in search and "2 COMPLETE" in search
    front = [line for line in search.splitlines() if line.startswith("  best trial #")]  # the Pareto front
    assert front and all("alpha=" in line and "select/clean=" in line and "select/pgd3=" in line for line in front)
    assert "Baseline tiny-cnn eps 8/255" in ablation and "tiny-cnn eps U[3, 8]/255" in ablation
    assert "tiny-cnn-3 eps 8/255" in ablation

    source = ["--sweep", "afs-table3-smoke", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    table6 = run_cli(str(ROOT / "analysis/afs_tables.py"), "table6", *source, "--ablation-sweep",
                     "afs-ablation-smoke", cwd=tmp_path)
    for row in ("Baseline tiny-cnn eps 8/255", "tiny-cnn eps U[3, 8]/255", "tiny-cnn-3 eps 8/255", "AFS 111111111"):
        assert f"| {row}" in table6, row
    assert all(f"| {row} |" in comparison for row in ("FAT for TRADES [20]", "LBGAT+TRADES [4]", "TLA [11]"))
    # TLA fine-tuned the network its source sweep trained (PGD-AT), the one of its seed.
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tla_runs = load_sweep("afs-comparison-smoke-tla", tracking_uri=uri).runs
    source_runs = load_sweep("afs-comparison-smoke-tla-source", tracking_uri=uri).runs
    assert len(source_runs) == 1 and tla_runs["params.init_from"].tolist() == source_runs["run_id"].tolist()
    others = [arg for method in ("fat", "lbgat", "tla") for arg in ("--other-sweep", f"afs-comparison-smoke-{method}")]
    table4 = run_cli(str(ROOT / "analysis/afs_tables.py"), "tradeoff", *source, *others, cwd=tmp_path)
    rows = [line.split("|")[1].strip() for line in table4.splitlines() if line.startswith("| ")][1:]  # no header
    assert rows[:3] == ["FAT for TRADES [20]", "LBGAT+TRADES [4]", "TLA [11]"], table4
    assert any(row.startswith("AFS 111111111") for row in rows), table4
    run_cli(str(ROOT / "analysis/afs_tables.py"), "scatter", *source, *others, "--out", str(tmp_path / "fig1.png"),
            cwd=tmp_path)
    delta = run_cli(str(ROOT / "analysis/afs_tables.py"), "delta-z", "--sweep", "afs-extractors-smoke",
                    "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--out", str(tmp_path / "fig3.png"),
                    cwd=tmp_path)
    assert (tmp_path / "fig1.png").stat().st_size > 0 and (tmp_path / "fig3.png").stat().st_size > 0
    print(table6, delta)
