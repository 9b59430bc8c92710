"""Every trial's best and last weights as MLflow models that load on their own, and the re-evaluation of a finished
sweep's models (sweeps/reevaluate.py)."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from ray import tune

from launch.driver_tasks import progress_note
from launch.preflight import check_initial_weights
from runstore.points import load_points
from sweeps import baselines, reevaluate
from tests_support import TINY_TRIAL, merger_over, settings_for
from trainables.config import ConfigError, RunSettings
from trainables.evaluation import evaluate
from trainables.initial_weights import load_initial_weights, source_weights
from trainables.methods import baseline
from trainables.methods.afs import StackedFeatures
from trainables.methods.afs_masks import mask_of
from trainables.methods.configs import BaselineConfig, MergerConfig
from trainables.models import Classifier, create_model
from trainables.runtime import TrialData
from trainables.safe_export import SAFE_FOLDER, classifier_architecture, load_safe_model, save_safe_model
from trainables.tracking import TrialRun, load_model

X = torch.rand(4, 3, 32, 32)


def open_run(uri: str) -> TrialRun:
    return TrialRun.open(uri, "models", run_name="r", params={}, tags={}, trial_id=None, parent_run_id=None)


@pytest.fixture
def runs_uri(tmp_path, monkeypatch):
    """``runs:/`` URIs resolve through MLflow's global tracking URI: set for the test, unset after it."""
    monkeypatch.chdir(tmp_path)  # the SQLite store's artifacts go to ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)


def test_a_trials_best_model_loads_by_its_run_uri_and_scores_what_the_run_logged(ray_local, tmp_path, runs_uri):
    settings = settings_for(tmp_path)
    config = {**TINY_TRIAL, "epochs": 2, "training": "pgd_at"}
    results = tune.Tuner(tune.with_parameters(baseline.trainable, settings=settings), param_space=config,
                         run_config=tune.RunConfig(name="models", storage_path=str(tmp_path))).fit()
    assert not results.errors
    client = MlflowClient(settings.tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name(settings.experiment).experiment_id])

    cfg = BaselineConfig.from_dict(config)
    test = TrialData.load(cfg, None).test
    for checkpoint in ("best", "last"):
        model = mlflow.pytorch.load_model(f"runs:/{run.info.run_id}/{checkpoint}")
        assert isinstance(model, Classifier) and not any(m.training for m in model.modules())
        assert all(p.device.type == "cpu" for p in model.parameters())
        with torch.no_grad():
            assert torch.equal(model(X), model.heads["main"](model.features(X)))  # forward is the primary head
        result = evaluate(model, test.images, test.labels, eps=cfg.eps, attacks=cfg.final_attacks, device="cpu",
                          seed=cfg.seed)
        assert result == {attack: run.data.metrics[f"{checkpoint}/{attack}"] for attack in cfg.final_attacks}
        # The same model from safetensors and its JSON, rebuilt by this project's code with nothing unpickled.
        safe = load_safe_model(client, run.info.run_id, checkpoint)
        with torch.no_grad():
            assert torch.equal(safe(X), model(X)) and not safe.training
    assert sorted(f.path for f in client.list_artifacts(run.info.run_id, SAFE_FOLDER)) == [
        f"{SAFE_FOLDER}/{name}.{kind}" for name in ("best", "last") for kind in ("json", "safetensors")]


def test_a_logged_model_keeps_its_extra_heads(runs_uri, tmp_path):
    torch.manual_seed(0)
    model = create_model("tiny-cnn", 10, extra_heads={"aux": 11}).eval()  # BiaMAT's two heads
    run = open_run(runs_uri)
    run.log_model(model, "best")
    loaded = mlflow.pytorch.load_model(f"runs:/{run.run_id}/best")
    with torch.no_grad():
        assert torch.equal(loaded(X), model(X))
        assert torch.equal(loaded(X, head="aux"), model(X, head="aux"))
    assert loaded.heads["aux"].out_features == 11
    folder = tmp_path / "safe"
    folder.mkdir()
    save_safe_model(model, classifier_architecture(model, "tiny-cnn", 32), {}, folder, "best")
    run.log_artifacts(str(folder), SAFE_FOLDER)
    safe = load_safe_model(MlflowClient(runs_uri), run.run_id, "best")
    with torch.no_grad():
        assert torch.equal(safe(X, head="aux"), model(X, head="aux"))


def test_an_afs_merger_model_carries_and_moves_its_stack(runs_uri, tmp_path):
    torch.manual_seed(0)
    extractors = {i: create_model("tiny-cnn", 10) for i in (3, 5)}
    cfg = MergerConfig.from_dict({**TINY_TRIAL, "extractor_sweep": "unused", "mask": mask_of(extractors)})
    data = TrialData.load(cfg, None)
    merger = merger_over(extractors)(cfg, data, torch.device("cpu"), RunSettings(runs_uri, "models"))
    exported = merger.exported_model(merger.model.state_dict()).cpu().eval()
    assert merger.stack.extractors == [extractors[3], extractors[5]], "exporting must not touch the training stack"

    run = open_run(runs_uri)
    run.log_model(exported, "best")
    loaded = load_model(MlflowClient(runs_uri), run.run_id, "best")
    assert isinstance(loaded.body, StackedFeatures) and loaded.body.indices == [3, 5]
    # Registered extractors: .to() and .eval() reach them, as RobustBench's benchmark() needs.
    stack_params = sum(p.numel() for e in extractors.values() for p in e.parameters())
    assert sum(p.numel() for p in loaded.parameters()) == stack_params + sum(p.numel() for p in merger.parameters())
    assert not any(m.training for m in loaded.modules())
    with torch.no_grad():
        assert torch.allclose(loaded(X), merger.model(X))

    # Without unpickling: the merger's architecture names its stack, rebuilt from the extractors' model name.
    folder = tmp_path / "safe"
    folder.mkdir()
    save_safe_model(exported, merger.exported_architecture(), {"mask": cfg.mask}, folder, "best")
    run.log_artifacts(str(folder), SAFE_FOLDER)
    safe = load_safe_model(MlflowClient(runs_uri), run.run_id, "best")
    assert isinstance(safe.body, StackedFeatures) and safe.body.indices == [3, 5]
    with torch.no_grad():
        assert torch.equal(safe(X), loaded(X))


def test_metric_names_say_checkpoint_attack_eps_and_points():
    assert reevaluate.metric_key("best", "autoattack", 8 / 255, 10000) == "reeval/best/autoattack/eps8_255/n10000"
    assert reevaluate.metric_key("last", "clean", 8 / 255, 500) == "reeval/last/clean/n500"
    assert reevaluate.metric_key("best", "pgd50", 0.03, 1000) == "reeval/best/pgd50/eps0.03/n1000"
    assert reevaluate.parse_eps("8/255") == 8 / 255 and reevaluate.parse_eps("0.031") == 0.031


def test_only_the_missing_metrics_are_evaluated():
    logged = {reevaluate.metric_key("best", attack, 8 / 255, 100) for attack in ("clean", "pgd20")}
    groups = reevaluate.missing_groups(logged, "best", ["clean", "pgd20"], [8 / 255, 4 / 255], 100)
    assert groups == ((4 / 255, ("pgd20",)),)  # clean accuracy does not depend on eps: done once
    assert reevaluate.missing_groups(logged, "last", ["clean"], [8 / 255, 4 / 255], 100) == ((8 / 255, ("clean",)),)


def test_best_and_last_of_the_same_epoch_are_evaluated_once_and_logged_under_both(monkeypatch):
    import pandas as pd

    from runstore.reader import SweepRuns

    monkeypatch.setattr("trainables.tracking.has_model", lambda client, run_id, checkpoint: True)
    runs = pd.DataFrame([
        {"run_id": "same", "run_name": "a", "params.dataset": "synthetic", "params.seed": 0,
         "metrics.best/epoch": 3.0, "metrics.last/epoch": 3.0},
        {"run_id": "apart", "run_name": "b", "params.dataset": "synthetic", "params.seed": 1,
         "metrics.best/epoch": 2.0, "metrics.last/epoch": 3.0},
    ])
    sweep = SweepRuns("s", "parent", "e", runs, {}, client=None)
    work = reevaluate.plan(sweep, ["best", "last"], ["clean", "pgd20"], [8 / 255], 100)
    assert [(job.run_id, job.checkpoint, job.same_weights) for job in work.jobs] == [
        ("same", "best", ("last",)), ("apart", "best", ()), ("apart", "last", ())]
    assert work.shared() == 1
    metrics = {"reeval/best/clean/n100": 0.9, "reeval/best/pgd20/eps8_255/n100": 0.5}
    assert work.jobs[0].for_every_checkpoint(metrics) == metrics | {
        "reeval/last/clean/n100": 0.9, "reeval/last/pgd20/eps8_255/n100": 0.5}
    assert progress_note(3, 12, 130) == "[3/12, 2 min 10 s, about 6 min 30 s left]"
    assert progress_note(12, 12, 130) == "[12/12, 2 min 10 s]"


@pytest.mark.parametrize(("flags", "message"), [
    (["--attacks", "pgd"], "unknown attack 'pgd'"),
    (["--attacks", "pgd20", "--eps", "8"], "outside (0, 1] (did you mean 8/255?)"),
    (["--attacks", "pgd20", "--eps", "8/0"], "neither k/255 nor a number"),
    (["--attacks", "pgd20", "--checkpoints", "final"], "checkpoints among best, last"),
])
def test_bad_input_stops_before_anything_runs(flags, message, capsys):
    with pytest.raises(SystemExit):
        reevaluate.main(["--sweep", "any", *flags])
    assert message in capsys.readouterr().err


def test_an_unknown_sweep_stops_before_ray_and_lists_the_sweeps(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    client.create_run(client.create_experiment("baselines"), tags={"sweep": "baselines-smoke"})
    monkeypatch.setattr(reevaluate, "run_jobs", lambda *args: pytest.fail("Ray must not start"))
    with pytest.raises(SystemExit, match=r"no sweep named 'nope'.*sweeps: baselines-smoke \(experiment baselines\)"):
        reevaluate.main(["--sweep", "nope", "--attacks", "clean", "--tracking-uri", uri])
    with pytest.raises(SystemExit, match="no MLflow store at"):
        reevaluate.main(["--sweep", "nope", "--attacks", "clean", "--tracking-uri", f"sqlite:///{tmp_path / 'x.db'}"])


@pytest.mark.slow  # a sweep and two re-evaluations: 20-40 s
def test_reevaluation_adds_its_metrics_to_the_sweeps_runs_once(ray_local, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    recipe = {**TINY_TRIAL, "epochs": 2, "train_n": 256, "final_n": 32, "final_attacks": ["clean", "pgd5"]}
    monkeypatch.setitem(baselines.PRESETS, "smoke", (recipe, ["standard"]))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    baselines.main(["--name", "tiny", "--storage-path", str(tmp_path / "ray"), "--tracking-uri", uri])

    command = ["--sweep", "tiny", "--tracking-uri", uri, "--attacks", "clean,pgd5,pgd3", "--eps", "8/255,4/255",
               "--n", "48", "--checkpoints", "best,last"]
    first = reevaluate.main(command)
    # best and last from the same epoch are one evaluation, logged under both names.
    assert len(first.jobs) + first.shared() == 2 and first.done == 0 and first.without_model == 0
    client = MlflowClient(uri)
    keys = {f"reeval/{c}/clean/n48" for c in ("best", "last")} | {
        f"reeval/{c}/{a}/eps{e}/n48" for c in ("best", "last") for a in ("pgd5", "pgd3") for e in ("8_255", "4_255")}
    (run,) = client.search_runs([client.get_experiment_by_name("baselines").experiment_id],
                                filter_string="tags.trial_id LIKE '%'")
    assert keys <= set(run.data.metrics), sorted(run.data.metrics)
    assert 0 <= run.data.metrics["reeval/best/pgd5/eps8_255/n48"] <= run.data.metrics["reeval/best/clean/n48"] <= 1
    assert "best/pgd5" in run.data.metrics  # the training protocol's own metrics stay
    # Every re-evaluated metric logged which points it got right: the run's final points first (a prefix of one
    # seeded order), and the same answers on them for the same weights where no attack draws noise (clean).
    points = load_points(client, run.info.run_id)
    final_indices, final_clean = points.of("best/clean")
    for key in keys:
        indices, correct = points.of(key)
        assert len(indices) == 48 and correct.mean() == pytest.approx(run.data.metrics[key]), key
        assert (indices[:32] == final_indices).all(), key
    assert (points.of("reeval/best/clean/n48")[1][:32] == final_clean).all()

    monkeypatch.setattr(reevaluate, "run_jobs", lambda *args: pytest.fail("nothing may be evaluated again"))
    second = reevaluate.main(command)
    assert second.jobs == [] and second.done == 2
    assert "skipped 2 that already have these metrics" in capsys.readouterr().out


def test_the_confident_subset_keeps_each_primary_classs_most_confident_auxiliary_images(runs_uri, tmp_path, capsys):
    """BiaMAT appendix D's ImageNet-(N x 100)k, on the synthetic auxiliary set: each image goes to its arg-max
    primary class, and per class the most confident ones are kept, written as an npz a sweep reads."""
    from sweeps import biamat_confident_subset
    from trainables.datasets import load_dataset

    torch.manual_seed(0)
    model = create_model("tiny-cnn", 10)
    run = open_run(runs_uri)
    run.log_model(model.eval(), "best")
    whole = load_dataset("synthetic_aux", "train")  # 800 of its images as an npz: an auxiliary set of one's own
    np.savez(tmp_path / "aux.npz", image=whole.images[:800].numpy(), label=whole.labels[:800].numpy())
    out = biamat_confident_subset.main(["--run", run.run_id, "--aux", f"npz:{tmp_path / 'aux.npz'}", "--per-class",
                                        "40", "--out", str(tmp_path / "top.npz"), "--tracking-uri", runs_uri])
    assert "to train on it: --set aux_datasets=" in capsys.readouterr().out
    aux = load_dataset(f"npz:{tmp_path / 'aux.npz'}", "train")
    with torch.no_grad():
        probabilities = torch.softmax(model(aux.images.float() / 255), dim=1)
    confidence, predicted = probabilities.max(dim=1)
    arrays = np.load(out)
    kept = load_dataset(f"npz:{out}", "train")
    assert len(kept) == len(arrays["label"]) == sum(min(40, int((predicted == c).sum())) for c in range(10))
    for c in range(10):
        mine = arrays["pseudo_label"] == c
        shown = torch.from_numpy(arrays["confidence"][mine])
        assert torch.equal(shown, shown.sort(descending=True).values)  # most confident first
        # Nothing left out of class c is more confident than what was kept of it.
        left = confidence[predicted == c].sort(descending=True).values[int(mine.sum()):]
        assert len(shown) == 0 or len(left) == 0 or left.max() <= shown.min() + 1e-6
    # Each kept image is an auxiliary image with its own label and the model's prediction on it.
    first = kept.images[0]
    (where,) = (aux.images == first).flatten(1).all(1).nonzero()[:1].T
    assert int(kept.labels[0]) == int(aux.labels[where]) and int(arrays["pseudo_label"][0]) == int(predicted[where])

    # Carmon et al.'s files (Tables 3 and 7): every image, its label the model's prediction, its own kept beside.
    every = biamat_confident_subset.main(["--run", run.run_id, "--aux", f"npz:{tmp_path / 'aux.npz'}", "--per-class",
                                          "0", "--labels", "pseudo", "--out", str(tmp_path / "all.npz"),
                                          "--tracking-uri", runs_uri])
    assert "--set extra_data=npz:" in capsys.readouterr().out
    pseudo = np.load(every)
    assert len(pseudo["label"]) == 800 and "pseudo_label" not in pseudo
    assert sorted(map(tuple, np.stack([pseudo["label"], pseudo["aux_label"]], 1))) == sorted(
        zip(predicted.tolist(), aux.labels.tolist(), strict=True))
    with pytest.raises(SystemExit):
        biamat_confident_subset.main(["--run", run.run_id, "--per-class", "1", "--out", str(tmp_path / "top.txt")])
    assert "must end in .npz" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="no best model in run nope"):
        biamat_confident_subset.main(["--run", "nope", "--per-class", "1", "--out", str(tmp_path / "x.npz"),
                                      "--tracking-uri", runs_uri])


def logged_safetensors(uri: str, model: Classifier, tmp_path) -> str:
    """A run of the store at ``uri`` holding ``model`` as its best safetensors (what every finished trial logs)."""
    run = open_run(uri)
    folder = tmp_path / "safe"
    folder.mkdir(exist_ok=True)
    save_safe_model(model, classifier_architecture(model, "tiny-cnn", 32), {}, folder, "best")
    run.log_artifacts(str(folder), SAFE_FOLDER)
    return run.run_id


def test_init_from_copies_a_pretrained_network_and_leaves_a_head_of_other_classes_fresh(runs_uri, tmp_path):
    """Hendrycks et al.'s fine-tuning (BiaMAT Tables 3, 7, 8): every layer of the network pre-trained on 100 classes
    starts the 10-class one, the head excepted; a network of another architecture is refused."""
    torch.manual_seed(0)
    pretrained = create_model("tiny-cnn", 100).eval()
    run_id = logged_safetensors(runs_uri, pretrained, tmp_path)
    torch.manual_seed(1)
    fresh = create_model("tiny-cnn", 10)
    head = {k: v.clone() for k, v in fresh.heads.state_dict().items()}
    left = load_initial_weights(fresh, source_weights(run_id, runs_uri))
    assert left == ["heads.main.bias", "heads.main.weight"]
    for key, value in pretrained.body.state_dict().items():
        assert torch.equal(fresh.body.state_dict()[key], value), key
    assert all(torch.equal(fresh.heads.state_dict()[k], v) for k, v in head.items())  # untouched
    with torch.no_grad():  # the same features: the pre-trained network's, up to the head
        assert torch.equal(fresh.eval().body(X), pretrained.body(X))
    with pytest.raises(ValueError, match="its network is not this trial's"):
        load_initial_weights(create_model("resnet18", 10), source_weights(run_id, runs_uri))


def test_init_from_is_checked_before_ray_starts(runs_uri, tmp_path):
    """A malformed id is a config error; a run the store does not hold, or one without weights, stops the sweep in its
    checks, naming the fix."""
    with pytest.raises(ConfigError, match="must be the 32-character id of an MLflow run"):
        BaselineConfig.from_dict({"init_from": "runs:/abc/best"})
    assert BaselineConfig.from_dict({"init_from": "0" * 32 + "/last"}).init_from.endswith("/last")
    empty = open_run(runs_uri).run_id  # a run that logged no weights
    with pytest.raises(SystemExit, match="no run 0{32} in"):
        check_initial_weights({"0" * 32}, runs_uri)
    with pytest.raises(SystemExit, match="logged no best weights"):
        check_initial_weights({empty}, runs_uri)
    torch.manual_seed(0)
    check_initial_weights({logged_safetensors(runs_uri, create_model("tiny-cnn", 10), tmp_path)}, runs_uri)
