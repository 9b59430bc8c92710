"""Extra training data mixed into every batch (UIAT Table 4): the config keys and their checks, the mixed batches
(composition, determinism, resume), the trial data, one-off UIAT's per-sample targets over both sets, and
sweeps/uiat_extra_data.py before Ray (dry run with DDPM files in the published format, refusals) and end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import ray
import torch
from test_loader import same_batches, toy_set

from analysis import uiat_tables
from sweeps import generated_presets, uiat_extra_data, uiat_presets
from trainables.config import ConfigError, RunSettings, TrainConfig
from trainables.datasets import load_dataset
from trainables.image_set import ImageSet
from trainables.loader import MixedLoader
from trainables.methods.configs import UIATConfig
from trainables.methods.uiat import UIAT
from trainables.runtime import Trial
from trainables.trial_data import TrialData

# --- config -----------------------------------------------------------------------------------------------------------


def test_the_training_set_share_of_a_batch_is_rounded_and_defaults_to_all():
    cfg = TrainConfig.from_dict({"batch_size": 1024, "extra_data": "npz:gen.npz", "original_fraction": 0.3})
    assert cfg.original_per_batch == 307  # round(307.2): 717 generated images per batch
    assert TrainConfig.from_dict({"batch_size": 32, "extra_data": "npz:g.npz", "original_fraction": 0.3}) \
        .original_per_batch == 10
    plain = TrainConfig()
    assert (plain.extra_data, plain.original_fraction, plain.original_per_batch) == ("", 1.0, 128)
    assert plain.params()["extra_data"] == "" and plain.params()["original_fraction"] == "1"


@pytest.mark.parametrize("values, message", [
    ({"original_fraction": 0.3}, "original_fraction=0.3 needs extra_data to fill the rest of each batch"),
    ({"extra_data": "npz:g.npz", "original_fraction": 0.0}, "original_fraction=0.0 must be in (0, 1]"),
    ({"extra_data": "npz:g.npz", "original_fraction": 1.5}, "original_fraction=1.5 must be in (0, 1]"),
    ({"extra_data": "npz:g.npz"}, "gives 128 training images per batch"),  # the default 1.0 leaves no room
    ({"extra_data": "npz:g.npz", "original_fraction": 0.01, "batch_size": 32}, "gives 0 training images per batch"),
    ({"extra_data": "ddpm", "original_fraction": 0.3}, "extra_data: unknown dataset 'ddpm'"),
    ({"extra_data": "synthetic", "original_fraction": 0.3}, "is the training set itself"),
    ({"extra_data": "npz:g.npz", "original_fraction": 0.5, "mixed_epoch": "pass"}, "mixed_epoch='pass': expected one of"),
])
def test_bad_extra_data_settings_are_refused_with_the_fix(values, message):
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict(values)
    assert message in str(info.value) and "\n" not in str(info.value)


# --- batches ----------------------------------------------------------------------------------------------------------


def mixed(original: ImageSet, extra: ImageSet, seed: int = 0, batch_size: int = 16, n_original: int = 5):
    return MixedLoader(original, extra, batch_size, n_original, device="cpu", seed=seed)


def extra_set(n: int = 70) -> ImageSet:
    data = toy_set(n)
    return ImageSet(data.images.flip(-1), (data.labels + 3) % 10, 10, "extra")  # told apart from toy_set's


def test_every_batch_holds_the_share_of_each_set_with_disjoint_indices():
    original, extra = toy_set(50), extra_set(70)
    loader = mixed(original, extra)
    batches = list(loader.epoch(0))
    assert len(loader) == len(batches) == 4  # ceil(50 / 16): as many images as an epoch without extra data
    labels = torch.cat([original.labels, extra.labels])  # the index space: the training set, then the extra data
    for batch in batches:
        assert batch.x.shape == (16, 3, 8, 8) and batch.x.dtype == torch.float32
        assert (batch.idx[:5] < 50).all() and (batch.idx[5:] >= 50).all() and (batch.idx < 120).all()
        assert torch.equal(batch.y, labels[batch.idx])
    # Each stream goes through its set without replacement: 3 epochs draw 60 originals, one pass of 50 and 10 more.
    drawn = torch.cat([b.idx[:5] for e in range(3) for b in loader.epoch(e)])
    assert sorted(drawn[:50].tolist()) == list(range(50)) and len(set(drawn[50:].tolist())) == 10


def test_an_epoch_replays_from_the_seed_and_a_fresh_loader_resumes_exactly():
    original, extra = toy_set(50), extra_set(70)
    loader = mixed(original, extra)
    uninterrupted = [list(loader.epoch(e)) for e in range(3)]
    states = [stream.state_dict() for stream in loader.streams]  # where epoch 3 starts
    resumed = mixed(original, extra)  # a restarted trial's loader, asked for epoch 2 first
    assert same_batches(list(resumed.epoch(2)), uninterrupted[2])
    assert [stream.state_dict() for stream in resumed.streams] == states
    # The state round trip: a stream loaded with the uninterrupted one's state draws what it would have drawn next.
    fresh = mixed(original, extra)
    for stream, state in zip(fresh.streams, states, strict=True):
        stream.load_state_dict(state)
    following = mixed(original, extra)
    following.seek(3)
    assert all(same_batches([a.next() for _ in range(5)], [b.next() for _ in range(5)])
               for a, b in zip(fresh.streams, following.streams, strict=True))
    assert not same_batches(uninterrupted[0], uninterrupted[1])
    other_seed = list(mixed(original, extra, seed=1).epoch(0))
    assert not torch.equal(torch.cat([b.idx for b in other_seed]), torch.cat([b.idx for b in uninterrupted[0]]))


def test_the_two_streams_draw_independently():
    """Same-sized sets: with one seed for both streams, the batches would take the same positions of each."""
    loader = mixed(toy_set(48), toy_set(48), batch_size=16, n_original=8)
    batch = next(loader.epoch(0))
    assert not torch.equal(batch.idx[:8], batch.idx[8:] - 48)


# --- trial data ---------------------------------------------------------------------------------------------------------


def write_npz(path: Path, n: int, classes: int, size: int = 32) -> Path:
    """A .npz in the published DDPM files' format: image uint8 (N, H, W, 3), label."""
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, image=rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), label=np.arange(n) % classes)
    return path


def test_trial_data_reads_the_extra_set_and_counts_its_indices_after_the_training_set(tmp_path):
    cfg = TrainConfig.from_dict({"train_n": 300, "extra_data": "synthetic", "original_fraction": 0.5,
                                 "select_on": "holdout", "holdout_n": 100, "eval_n": 50, "final_n": 20})
    data = TrialData.load(cfg, None)
    full = load_dataset("synthetic", "train")
    assert len(data.train) == 200 and len(data.extra) == len(full) - 300  # the images train_n leaves out
    # Training, held-out and extra images are the training set split three ways: each image in exactly one part.
    parts = torch.cat([data.train.images, data.select.images, data.extra.images])
    assert len(parts) == len(full) - 50  # the holdout's other 50 images are held out, unused by eval_n=50
    assert len({bytes(image.numpy()) for image in parts}) == len(parts)
    assert data.index_size == len(full) - 100

    npz = write_npz(tmp_path / "gen.npz", 40, classes=7)  # labels 0..6 of the training set's 10 classes
    data = TrialData.load(TrainConfig.from_dict({"train_n": 64, "extra_data": f"npz:{npz}",
                                                 "original_fraction": 0.5}), None)
    assert len(data.extra) == 40 and data.extra.num_classes == 10 and data.index_size == 104
    assert TrialData.load(TrainConfig.from_dict({"train_n": 64, "batch_size": 32}), None).index_size == 64


@pytest.mark.parametrize("classes, size, message", [(11, 32, "has labels up to 10, but synthetic has 10 classes"),
                                                   (10, 16, "the extra images must be the training set's size")])
def test_extra_data_that_does_not_fit_the_training_set_is_refused(tmp_path, classes, size, message):
    npz = write_npz(tmp_path / "gen.npz", 40, classes, size)
    cfg = TrainConfig.from_dict({"train_n": 64, "extra_data": f"npz:{npz}", "original_fraction": 0.5})
    with pytest.raises(ValueError, match=message):
        TrialData.load(cfg, None)


# --- one-off UIAT ---------------------------------------------------------------------------------------------------------


def test_oneoff_uiat_stores_targets_for_both_sets_without_collisions_and_reuses_them():
    full = load_dataset("synthetic", "train")
    test = load_dataset("synthetic", "test").subset(torch.arange(32))
    data = TrialData(train=full.subset(torch.arange(40)), select=test, test=test,
                     extra=full.subset(torch.arange(40, 80)))
    cfg = UIATConfig.from_dict({"epochs": 2, "batch_size": 32, "train_n": 40, "attack_steps": 2,
                                "attack_step": 4 / 255, "eval_n": 32, "final_n": 32, "oneoff": True,
                                "components": "uag+fr", "oneoff_epoch": 0, "extra_data": "synthetic",
                                "original_fraction": 0.5})
    torch.manual_seed(0)
    method = UIAT(cfg, data, torch.device("cpu"), RunSettings(tracking_uri="sqlite:///unused.db", experiment="x"))
    trial = Trial(method)
    assert isinstance(trial.loader, MixedLoader) and method.targets.shape == (80, 10)

    seen = []
    target = method.target

    def recording(batch, x_adv, epoch):
        stored = method.has_target[batch.idx].clone()
        p, inverse = target(batch, x_adv, epoch)
        seen.append((epoch, batch, p.clone(), stored, method.predict(batch.x)))
        return p, inverse

    method.target = recording
    # Epoch T': 2 batches of 16 training and 16 extra images (of 40 each), every one's target stored at its index.
    trial.train_epoch(0)
    drawn = torch.cat([batch.idx for _, batch, *_ in seen])
    assert torch.equal(method.has_target.nonzero().flatten(), drawn.sort().values)
    assert int(method.has_target[:40].sum()) == 32 and int(method.has_target[40:].sum()) == 32
    for _, batch, p, *_ in seen:
        assert torch.equal(method.targets[batch.idx], p)  # no other image's target landed on these rows

    # After T': each set's stream runs into its next pass, so a batch mixes images stored in epoch T' (their stored
    # target) with images first drawn now (their clean prediction).
    trial.train_epoch(1)
    later = [(batch, p, stored, clean) for epoch, batch, p, stored, clean in seen if epoch == 1]
    for batch, p, stored, clean in later:
        assert torch.equal(p[stored], method.targets[batch.idx][stored])
        assert torch.allclose(p[~stored], clean[~stored])
    both = torch.cat([stored for _, _, stored, _ in later])
    assert both.any() and not both.all()


# --- the sweep before Ray -------------------------------------------------------------------------------------------


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    for name in ("RAY_ADDRESS", "ADVSWEEP_STORAGE", "MLFLOW_TRACKING_URI", "ADVSWEEP_DATA"):
        monkeypatch.delenv(name, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def ddpm_root(tmp_path: Path) -> Path:
    """Both DDPM files in the published format, 64 images each."""
    for dataset, classes in (("cifar10", 10), ("cifar100", 100)):
        write_npz(tmp_path / "data" / generated_presets.DDPM_FILES[dataset], 64, classes)
    return tmp_path / "data"


def test_paper_dry_run_with_the_ddpm_files_in_place_lists_the_trials(empty_cwd, tmp_path, capsys):
    root = ddpm_root(tmp_path)
    uiat_extra_data.main(["--preset", "paper", "--data-root", str(root), "--dry-run"])
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("trials: ")] == ["trials: 8", "trials: 4",
                                                                                  "trials: 8"]
    assert f"npz:{root.resolve() / 'cifar100_ddpm.npz'}" in out and "original_fraction=0.3" in out
    assert "batch_size=1024" in out and "epochs=400" in out and "GPU estimate: about" in out
    assert "ddpm.npz is missing" not in out and "dataset npz:" not in out  # the DDPM files passed their checks
    assert "until the data is there: error: cifar10 (train) not found" in out  # CIFAR itself is not there: noted in a dry run
    assert list(empty_cwd.iterdir()) == [] and not ray.is_initialized()


def test_a_missing_ddpm_file_is_noted_in_a_dry_run_and_stops_a_run_before_ray(empty_cwd, tmp_path, capsys):
    root = tmp_path / "nothing"
    uiat_extra_data.main(["--preset", "paper", "--data-root", str(root), "--dry-run"])
    out = capsys.readouterr().out
    url = f"{generated_presets.DDPM_URL}cifar100_ddpm.npz"
    assert f"note: {root.resolve() / 'cifar100_ddpm.npz'} is missing" in out and url in out
    with pytest.raises(SystemExit) as info:
        uiat_extra_data.main(["--preset", "paper", "--data-root", str(root)])
    message = str(info.value.code)
    assert message.startswith(f"error: {root.resolve() / 'cifar10_ddpm.npz'} is missing") and "(and 1 more)" in message
    assert f"{generated_presets.DDPM_URL}cifar10_ddpm.npz" in message and "--data-root" in message
    assert list(empty_cwd.iterdir()) == [] and not ray.is_initialized()


def test_a_ddpm_file_in_another_format_and_a_bad_share_stop_before_ray(empty_cwd, tmp_path):
    root = ddpm_root(tmp_path)
    np.savez(root / "cifar10_ddpm.npz", image=np.zeros((4, 32, 32, 3), np.float32), label=np.zeros(4, np.int64))
    # Even a dry run stops on a file that is there but wrong (the launcher's check of every trial's extra data).
    with pytest.raises(SystemExit, match=r"cifar10_ddpm.npz: 'image' is float32.*expected uint8 images"):
        uiat_extra_data.main(["--preset", "paper", "--data-root", str(root), "--dry-run"])
    with pytest.raises(SystemExit, match=r"error: original_fraction=1.5 must be in \(0, 1\]"):
        uiat_extra_data.main(["--set", "original_fraction=1.5"])
    assert list(empty_cwd.iterdir()) == [] and not ray.is_initialized()


def test_the_launcher_checks_any_methods_extra_data_like_a_dataset(empty_cwd):
    """extra_data is a key of every method's config: the launcher's pre-Ray check reads it whichever method trains."""
    from launch.checks import validate
    from trainables.methods.configs import MARTConfig

    space = {"dataset": "synthetic", "extra_data": "npz:missing.npz", "original_fraction": 0.5}
    with pytest.raises(SystemExit, match=r"missing\.npz"):
        validate(MARTConfig, space, data_root=None)
    notes: list[str] = []
    validate(MARTConfig, space, data_root=None, notes=notes)  # a dry run notes it instead
    assert any("npz:missing.npz" in note for note in notes)


# --- end to end ---------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_smoke_sweep_trains_every_row_with_extra_data_and_prints_table4(ray_local, monkeypatch, tmp_path, capsys):
    """The five trainings in three sweeps on a reduced smoke preset (HAT finding its helper among the first's standard
    trials), Table 4 printed at the end and again by the documented analysis command."""
    for key, value in {"train_n": 128, "epochs": 2, "eval_n": 32, "final_n": 64, "oneoff_epoch": 0}.items():
        monkeypatch.setitem(uiat_presets.EXTRA_DATA_RECIPE["smoke"], key, value)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    uiat_extra_data.main(["--tracking-uri", uri, "--storage-path", str(tmp_path / "ray")])
    printed = capsys.readouterr().out
    names = [f"uiat-extra-data-smoke{suffix}" for suffix in ("-baselines", "-hat", "")]
    uiat_tables.main(["table4", *(arg for name in names for arg in ("--sweep", name)), "--tracking-uri", uri])
    table = capsys.readouterr().out
    print(table)
    assert table.strip() in printed  # the sweep's own report is the same table
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in table.splitlines() if line.startswith("| ")]
    assert rows[0] == ["Dataset", "Architecture", "Method", "Natural", "Robust"]
    assert [row[:3] for row in rows[1:]] == [["synthetic", "tiny-cnn", "Rebuffi et al. (TRADES)"], ["", "", "HAT"],
                                            ["", "", "UIAT"], ["", "", "UIAT (One-off)"]]
    assert all(cell != "-" for row in rows[1:] for cell in row[3:])
    assert "Robust: PGD-20 (best checkpoint); AutoAttack was not measured" in table
    assert "trained with extra data synthetic; training-set share of each batch 0.3" in table


def test_an_epoch_of_one_original_pass_draws_every_training_image_once():
    # Carmon et al.'s robust self-training counts an epoch as one pass over the labelled set: at 5 of 16 per batch,
    # ceil(50 / 5) = 10 batches, each training image once per epoch, where the default epoch (4 batches) draws 20.
    original, extra = toy_set(50), extra_set(70)
    loader = MixedLoader(original, extra, 16, 5, device="cpu", seed=0, epoch="original_pass")
    assert len(loader) == 10
    for e in range(2):
        drawn = torch.cat([b.idx[:5] for b in loader.epoch(e)])
        assert sorted(drawn.tolist()) == list(range(50))
