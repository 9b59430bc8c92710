"""BiaMAT appendix Tables 11 and 14 and Fig. 3's layout, from runs seeded the way the sweeps log them, and the gate's
per-class counts from a real (tiny) BiaMAT trial."""

from __future__ import annotations

import csv
import io
import statistics
import tempfile

import numpy as np
import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from mlflow.tracking import MlflowClient
from test_analysis import Store, biamat, final_metrics  # the store layout of tests/test_analysis.py

from analysis import biamat_tables
from analysis.biamat.figures import fig3, fig4
from analysis.biamat.selection import builtin_mapping, gate_counts, table14
from analysis.biamat.training_time import table11
from analysis.render import to_csv, to_latex
from runstore.reader import load_sweep
from sweeps import biamat_gate_pass
from trainables import datasets
from trainables.confident_subset import softmax_outputs
from trainables.config import RunSettings
from trainables.methods.biamat import BiaMAT
from trainables.methods.configs import BiaMATConfig
from trainables.models import create_model
from trainables.runtime import Trial
from trainables.safe_export import SAFE_FOLDER, classifier_architecture, save_safe_model
from trainables.tracking import TrialRun
from trainables.trial_data import TrialData

AT_BASE = {"training": "pgd_at", "dataset": "cifar10", "model": "wrn-28-10", "epochs": 100}
# Table 14's seeded counts, (seen, high) per auxiliary class 0..5 for seeds 0 and 1, at epochs 1 and 2. Class 4 is
# never drawn in epoch 2; the last epoch is the one shown by default.
COUNTS = {2: [[(10, 8), (10, 6), (5, 4), (10, 2), (0, 0), (10, 4)], [(10, 9), (10, 7), (5, 3), (10, 2), (0, 0), (10, 4)]],
          1: [[(10, 10)] * 6, [(10, 10)] * 6]}
MAPPING = "aux_class,primary_class,name\n0,airplane,airliner\n1,airplane,warplane\n2,ship,liner\n4,bird,jay\n"
PIS = (0.45, 0.5, 0.55, 0.6, 0.65, 0.7)


def hours(*values: float) -> dict[str, list[tuple[int, float]]]:
    """An epoch_time_s history, one epoch per value in hours."""
    return {"epoch_time_s": [(epoch, 3600 * h) for epoch, h in enumerate(values)]}


def log_counts(store: Store, run_id: str, counts: dict[int, list[tuple[int, int]]]) -> None:
    for epoch, rows in counts.items():
        text = "aux_class,seen,high\n" + "".join(f"{c},{seen},{high}\n" for c, (seen, high) in enumerate(rows))
        store.client.log_text(run_id, text, f"gate_counts/epoch_{epoch:04d}.csv")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    folder = tmp_path_factory.mktemp("mlflow")
    s = Store(f"sqlite:///{folder / 'mlflow.db'}")
    # The gate counts are artifacts: in the temporary folder, not in ./mlruns where the tests run.
    s.client.create_experiment("biamat-labels", artifact_location=(folder / "artifacts").as_uri())
    baselines = s.sweep("baselines", "t11-baselines")
    s.trial(baselines, "baseline", {**AT_BASE, "seed": 0}, final_metrics(0.48), history=hours(1.0, 1.0))
    s.trial(baselines, "baseline", {**AT_BASE, "seed": 1}, final_metrics(0.48), history=hours(1.0, 1.5))
    s.trial(baselines, "baseline", {**AT_BASE, "model": "resnet18", "seed": 0}, final_metrics(0.47),
            history=hours(0.25, 0.25))
    device = s.trial(baselines, "baseline", {"training": "trades", "dataset": "cifar10", "seed": 0},
                     final_metrics(0.53), history=hours(2.0, 2.0))
    s.client.set_tag(device, "device", "NVIDIA H200")
    s.trial(baselines, "uiat", {"dataset": "cifar10", "seed": 0}, final_metrics(0.5), history=hours(9.0))
    gated = s.sweep("biamat-labels", "t11-biamat")
    # Seed 0 resumed after epoch 1 and logged it twice: the later time counts.
    resumed = {"epoch_time_s": [(0, 7200.0), (1, 99999.0), (1, 7200.0)]}
    s.trial(gated, "biamat", biamat("at", 0.55, 0), final_metrics(0.5), history=resumed)
    s.trial(gated, "biamat", biamat("at", 0.55, 1), final_metrics(0.5), history=hours(2.0, 3.0))
    s.trial(gated, "biamat", biamat("at", 0.55, 0, labels="aux"), final_metrics(0.5), history=hours(1.5, 2.0))
    s.trial(gated, "biamat", biamat("trades", 0.5, 0), final_metrics(0.56), history=hours(3.0, 3.0, 4.0))
    smoke = s.sweep("biamat-labels", "t11-smoke")
    s.trial(smoke, "biamat", biamat("at", 0.55, 0), final_metrics(0.5), history=hours(0.001, 0.002))

    table14_runs = s.sweep("biamat-labels", "t14")
    for seed in range(2):
        run_id = s.trial(table14_runs, "biamat", biamat("at", 0.55, seed), final_metrics(0.5))
        log_counts(s, run_id, {epoch: rows[seed] for epoch, rows in COUNTS.items()})
    svhn = s.trial(table14_runs, "biamat", biamat("at", 0.55, 0, aux="svhn"), final_metrics(0.5))
    log_counts(s, svhn, {1: [(10, 1)] * 10})
    synthetic = s.trial(table14_runs, "biamat", biamat("at", 0.55, 0, aux="synthetic_aux"), final_metrics(0.5))
    log_counts(s, synthetic, {1: [(10, 9 - c) for c in range(10)]})
    old = s.sweep("biamat-labels", "t14-before-counts")
    s.trial(old, "biamat", biamat("at", 0.55, 0), final_metrics(0.5))

    pi_sweep = s.sweep("biamat-pi-ablation", "fig3-pi")
    for v, variant in enumerate(("at", "trades")):
        for i, pi in enumerate(PIS):
            s.trial(pi_sweep, "biamat", biamat(variant, pi, 0), final_metrics(0.5),
                    history={"train/high_fraction": [(e, 0.9 - 0.1 * i - 0.05 * v + 0.01 * e) for e in (5, 6, 7)]})
    return s


def texts(table) -> list[list[str]]:
    return list(csv.reader(io.StringIO(to_csv(table))))


def test_table11_sums_each_runs_epoch_times_per_method(store):
    sweeps = [load_sweep(name, tracking_uri=store.uri) for name in ("t11-baselines", "t11-biamat")]
    table = table11(sweeps)
    assert table.header == ["Primary dataset", "Method", "Training time (h)"]
    # The paper's order (AT family, then TRADES; baseline, naive, gated), one row per recipe where a method has two,
    # mean ± std over seeds; the UIAT run is no row of BiaMAT's table.
    assert texts(table)[1:] == [
        ["CIFAR-10", "AT (resnet18, 100 epochs)", "0.5"],
        ["", "AT (wrn-28-10, 100 epochs)", "2.25 ± 0.354 (n=2)"],
        ["", "AT+BiaMAT (naive, ỹ)", "3.5"],
        ["", "AT+BiaMAT", "4.5 ± 0.707 (n=2)"],
        ["", "TRADES", "4"],
        ["", "TRADES+BiaMAT", "10"],
    ]
    notes = " | ".join(table.all_notes())
    assert "device: NVIDIA H200 (1 run), 7 runs without a device tag; the paper's times: one Tesla V100" in notes
    assert "1 run(s) of other methods left out" in notes and "epoch_time_s summed over its epochs" in notes
    assert "AT+BiaMAT (naive, $\\tilde{y}$)" in to_latex(table)
    # A smoke sweep's seconds are not printed as 0.000833 h.
    smoke = table11([load_sweep("t11-smoke", tracking_uri=store.uri)])
    assert texts(smoke) == [["Primary dataset", "Method", "Training time (s)"], ["CIFAR-10", "AT+BiaMAT", "10.8"]]


def test_table14_averages_each_superclass_over_its_auxiliary_classes(store, tmp_path):
    mapping = tmp_path / "mapping.csv"
    mapping.write_text(MAPPING)
    sweep = load_sweep("t14", tracking_uri=store.uri)
    table = table14(sweep, mapping, aux="imagenet32")
    # Seeds pooled per class: ratios 0.85, 0.65 (airplane), 0.7 (ship), class 4 never drawn, 0.2 and 0.4 unmatched.
    ratios = [0.85, 0.65, 0.7, 0.2, 0.4]
    assert texts(table) == [
        ["CIFAR-10 superclass", "Average higher-than-threshold ratio", "Std over classes", "Auxiliary classes"],
        ["airplane", "0.750", f"{statistics.stdev([0.85, 0.65]):.3f}", "2"],
        ["ship", "0.700", "-", "1"],
        ["bird", "-", "-", "0"],
        ["Others (unmatched)", "0.300", f"{statistics.stdev([0.2, 0.4]):.3f}", "2"],
        ["All", f"{statistics.mean(ratios):.3f}", f"{statistics.stdev(ratios):.3f}", "5"],
    ]
    assert "ImageNet training images per CIFAR-10 superclass (AT+BiaMAT, π = 0.55, epoch 2)" in table.title
    assert any("pooled over 2 run(s)" in note for note in table.notes)
    assert any("1 auxiliary classes the stream never drew" in note for note in table.notes)
    assert [row[1] for row in table14(sweep, mapping, aux="imagenet32", epoch=1).rows] == ["1.000"] * 4 + ["1.000"]

    # The synthetic set needs no mapping: its related classes 0..4 are its own superclasses.
    synthetic = texts(table14(sweep, aux="synthetic_aux"))
    assert [row[:2] for row in synthetic[1:]] == [[f"class {c}", f"{(9 - c) / 10:.3f}"] for c in range(5)] + [
        ["Others (unmatched)", "0.200"], ["All", "0.450"]]


def test_table14_refuses_what_it_cannot_show(store, tmp_path):
    sweep = load_sweep("t14", tracking_uri=store.uri)
    with pytest.raises(ValueError, match=r"aux_datasets \['imagenet32', 'svhn', 'synthetic_aux'\]: pick one with --aux"):
        table14(sweep)
    with pytest.raises(ValueError, match="primary class of ImageNet's classes: pass --mapping a CSV"):
        table14(sweep, aux="imagenet32")
    bad = tmp_path / "bad.csv"
    bad.write_text("class,superclass\n0,airplane\n")
    with pytest.raises(ValueError, match="has no column aux_class, primary_class: it must be a CSV"):
        table14(sweep, bad, aux="imagenet32")
    bad.write_text("aux_class,primary_class\n0,airplane\n99,ship\n")
    with pytest.raises(ValueError, match=r"names auxiliary class\(es\) \[99\], but ImageNet has classes 0..5"):
        table14(sweep, bad, aux="imagenet32")
    bad.write_text("aux_class,primary_class\n0,airplane\n0,ship\n")
    with pytest.raises(ValueError, match="line 3: auxiliary class 0 is mapped twice"):
        table14(sweep, bad, aux="imagenet32")
    with pytest.raises(ValueError, match="cannot read the class mapping"):
        table14(sweep, tmp_path / "missing.csv", aux="imagenet32")
    with pytest.raises(ValueError, match="logged no per-class gate counts"):
        table14(load_sweep("t14-before-counts", tracking_uri=store.uri))
    with pytest.raises(SystemExit, match="error: .*pick one with --aux"):
        biamat_tables.main(["table14", "--sweep", "t14", "--tracking-uri", store.uri])


def test_table14_command_prints_csv(store, tmp_path, capsys):
    mapping = tmp_path / "mapping.csv"
    mapping.write_text(MAPPING)
    biamat_tables.main(["table14", "--sweep", "t14", "--tracking-uri", store.uri, "--aux", "imagenet32",
                        "--mapping", str(mapping), "--format", "csv"])
    captured = capsys.readouterr()
    assert captured.out.splitlines()[1] == "airplane,0.750,0.141,2"
    assert "Table 14." in captured.err


def test_the_analysis_knows_the_synthetic_sets_related_classes():
    # analysis/ repeats what trainables/datasets.py builds (it must not import training code): they must agree.
    assert builtin_mapping("synthetic_aux") == {a: f"class {a}" for a in datasets.synthetic_aux_related()}
    # The unrelated set is the same reader with related_classes=0 (its registry entry).
    unrelated = datasets._READERS["synthetic_aux_unrelated"].read.keywords["related_classes"]
    assert builtin_mapping("synthetic_aux_unrelated") == {a: f"class {a}" for a in range(unrelated)} == {}


def test_the_gate_counts_each_auxiliary_class_and_table14_reads_them(store):
    train = datasets.load_dataset("synthetic", "train").subset(torch.arange(128))
    test = datasets.load_dataset("synthetic", "test").subset(torch.arange(32))
    config = {"epochs": 2, "warmup_epochs": 1, "batch_size": 32, "aux_batch_size": 32, "attack_steps": 1,
              "attack_step": 4 / 255, "eval_n": 32, "final_n": 32, "pi": 1.0}
    torch.manual_seed(0)
    method = BiaMAT(BiaMATConfig.from_dict(config), TrialData(train=train, select=test, test=test),
                    torch.device("cpu"), RunSettings(tracking_uri=store.uri, experiment="biamat-labels"))
    sweep_ids = store.sweep("biamat-labels", "gate-trial")
    params = biamat("at", 1.0, 0, aux="synthetic_aux") | {"dataset": "synthetic"}
    run_id = store.trial(sweep_ids, "biamat", params, final_metrics(0.5))
    trial = Trial(method)
    logged = []
    for epoch in range(2):  # what run_trial does with each epoch's artifacts (the slow test runs it under Tune)
        logged.append(trial.train_epoch(epoch))
        for path, text in method.epoch_artifacts(epoch).items():
            TrialRun(store.client, run_id).log_text(text, path)

    # Warm-up routes nothing, so only epoch 1 has counts: every auxiliary sample of its 4 steps, by class, and the
    # passed ones add up to the epoch's n_high / n_aux.
    files = [f.path for f in store.client.list_artifacts(run_id, "gate_counts")]
    assert files == ["gate_counts/epoch_0001.csv"]
    sweep = load_sweep("gate-trial", tracking_uri=store.uri)
    epoch, counts = gate_counts(sweep, run_id)
    assert epoch == 1 and list(counts["aux_class"]) == list(range(10)) and counts["seen"].sum() == 4 * 32
    assert counts["high"].sum() / counts["seen"].sum() == pytest.approx(logged[1]["train/high_fraction"])
    # omega = the mean primary confidence (pi 1) after one epoch: some auxiliary samples above it, some below.
    assert 0 < counts["high"].sum() < counts["seen"].sum()
    ratios = (counts["high"] / counts["seen"])[counts["seen"] > 0]
    table = table14(sweep)
    assert table.rows[-1] == ["All", f"{ratios.mean():.3f}", f"{ratios.std():.3f}", str(len(ratios))]


def test_fig3_gives_each_variant_a_panel_and_each_pi_its_own_colour(store, tmp_path):
    figure = fig3(load_sweep("fig3-pi", tracking_uri=store.uri))
    assert [ax.get_title() for ax in figure.axes] == ["AT+BiaMAT", "TRADES+BiaMAT"]
    for v, ax in enumerate(figure.axes):
        lines = ax.get_lines()
        assert [line.get_label() for line in lines] == [f"π = {pi:.2f}" for pi in PIS]
        for i, line in enumerate(lines):
            assert list(line.get_xdata()) == [6, 7, 8]  # MLflow steps 5-7: the 6th to 8th epochs
            assert list(line.get_ydata()) == pytest.approx([0.9 - 0.1 * i - 0.05 * v + 0.01 * e for e in (5, 6, 7)])
    styles = {(str(line.get_color()), line.get_marker()) for ax in figure.axes for line in ax.get_lines()}
    assert len(styles) == len(PIS)  # one colour and marker per pi, the same in both panels
    assert len({colour for colour, _ in styles}) == len(PIS) and len({m for _, m in styles}) == len(PIS)

    FigureCanvasAgg(figure).draw()
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == [f"π = {pi:.2f}" for pi in PIS]
    right = max(ax.get_window_extent().x1 for ax in figure.axes)
    assert legend.get_window_extent().x0 >= right, "the legend stands beside the panels, not over the curves"
    title = figure.texts[0].get_text() if figure.texts else figure._suptitle.get_text()
    assert "train/high_fraction" not in title and title.startswith("Fig. 3. Share of auxiliary samples")
    assert figure.axes[0].get_xlabel() == "epoch"
    out = tmp_path / "fig3.png"
    figure.savefig(out, dpi=100)
    assert out.stat().st_size > 10_000


@pytest.mark.slow
def test_a_biamat_trial_under_tune_writes_its_gate_counts_into_its_own_run(ray_local, tmp_path):
    from ray import tune

    from tests_support import TINY_TRIAL, settings_for
    from trainables.methods.biamat import trainable

    settings = settings_for(tmp_path)
    config = {**TINY_TRIAL, "epochs": 2, "warmup_epochs": 1, "aux_batch_size": 32, "pi": 0.3}
    result = tune.Tuner(tune.with_parameters(trainable, settings=settings), param_space=config,
                        run_config=tune.RunConfig(name="gate", storage_path=str(tmp_path))).fit()
    assert not result.errors
    client = MlflowClient(settings.tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name(settings.experiment).experiment_id])
    assert [f.path for f in client.list_artifacts(run.info.run_id, "gate_counts")] == ["gate_counts/epoch_0001.csv"]


def test_the_gate_pass_scores_every_auxiliary_image_for_table14_and_fig4(store, tmp_path, capsys):
    """Appendix F the paper's way: the trained model scores every auxiliary training image once; per class, how many
    are at or above the run's omega is what table14 --pass reads, and fig4 draws a class's extremes."""
    torch.manual_seed(0)
    model = create_model("tiny-cnn", 10, extra_heads={"aux": 10}).eval()
    aux = datasets.load_dataset("synthetic_aux", "train")
    confidence = softmax_outputs(model, aux.images, 512, torch.device("cpu")).amax(dim=1)
    omega = float(confidence.median())  # about half the images above it
    run_id = store.trial(store.sweep("biamat-labels", "t14-pass"), "biamat",
                         biamat("at", 0.55, 0, aux="synthetic_aux"), {**final_metrics(0.5), "omega": omega})
    folder = tmp_path / "safe"
    folder.mkdir()
    save_safe_model(model, classifier_architecture(model, "tiny-cnn", 32), {}, folder, "best")
    store.client.log_artifacts(run_id, str(folder), SAFE_FOLDER)

    logged = biamat_gate_pass.main(["--run", run_id, "--figure-class", "3", "--tracking-uri", store.uri])
    assert f"of synthetic_aux's 10000 training images at or above omega = {omega:.4f}" in capsys.readouterr().out
    counts = gate_counts(load_sweep("t14-pass", tracking_uri=store.uri), run_id, full_pass="best")[1]
    assert counts["seen"].tolist() == torch.bincount(aux.labels, minlength=10).tolist()
    assert counts["high"].tolist() == [int(((aux.labels == c) & (confidence >= omega)).sum()) for c in range(10)]
    assert 0 < counts["high"].sum() < counts["seen"].sum()  # the threshold splits the set

    passed = table14(load_sweep("t14-pass", tracking_uri=store.uri), full_pass="best")
    assert "(AT+BiaMAT, π = 0.55, best model, every training image)" in passed.title
    ratios = counts["high"] / counts["seen"]
    assert texts(passed)[-1][:2] == ["All", f"{ratios.mean():.3f}"]
    with pytest.raises(ValueError, match="run `python sweeps/biamat_gate_pass.py"):
        table14(load_sweep("t14-pass", tracking_uri=store.uri), full_pass="last")

    # Fig. 4: class 3's ten most confident images, then its ten least, with their confidences.
    with tempfile.TemporaryDirectory() as directory:
        arrays = np.load(store.client.download_artifacts(run_id, logged["class 3"], directory))
        mine = confidence[aux.labels == 3].sort(descending=True).values
        assert np.allclose(arrays["highest_confidence"], mine[:10].numpy())
        assert np.allclose(arrays["lowest_confidence"], mine.flip(0)[:10].numpy())
    figure = fig4(store.client, run_id, 3)
    assert len(figure.axes) == 20
    biamat_tables.main(["fig4", "--run", run_id, "--aux-class", "3", "--tracking-uri", store.uri,
                        "--out", str(tmp_path / "fig4.png")])
    assert (tmp_path / "fig4.png").stat().st_size > 10_000
    with pytest.raises(SystemExit, match="is not a gated BiaMAT trial"):
        biamat_gate_pass.main(["--run", store.trial(store.sweep("baselines", "t14-not-biamat"), "baseline",
                                                    {"training": "pgd_at"}, final_metrics(0.5)),
                               "--tracking-uri", store.uri])
