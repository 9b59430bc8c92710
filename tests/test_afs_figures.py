"""AFS Figs. 4, 5(a), 5(b), 6 and the clean-robust scatter, drawn from an MLflow store laid out as the AFS sweeps
write it: an extractor sweep and a merger sweep whose trials logged their models (``TrialRun.log_model``, as the
runtime does) and re-evaluations under ``sweeps/reevaluate.py``'s metric names. Training them would take minutes, so
the models are small untrained CNNs and the merger's weights are set by hand, which makes every plotted number known.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.colors import to_hex
from mlflow.tracking import MlflowClient
from sklearn.manifold import TSNE

from analysis import afs_tables
from analysis.afs import model_figures as afs_figures
from analysis.afs.figures import scatter
from analysis.reevaluations import reevaluations
from runstore.reader import load_sweep
from sweeps import afs_merger
from sweeps.reevaluate import metric_key
from trainables.datasets import load_dataset
from trainables.image_set import evaluation_points
from trainables.methods.afs import StackedFeatures
from trainables.models import Classifier, create_model
from trainables.tracking import TrialRun

DATASET = "synthetic"
STACK = "000100001"  # networks 3 and 8
ALPHAS = (0.0, 0.5, 1.0)
# The merger's |w| per stacked network (network-3, network-8) for each alpha: importance ratios 1/4, 1/2, 3/4.
HEAD_SCALE = {0.0: (1.0, 3.0), 0.5: (1.0, 1.0), 1.0: (3.0, 1.0)}
N = 64  # re-evaluated test points
BUDGETS = (2, 4, 8)  # 1/255


def accuracy(series: str, seed: int, eps: int) -> float:
    """The seeded re-evaluated accuracy of a series at a budget (eps 0: clean): distinct for every point."""
    base = {"merger": 0.80, "network-1": 0.90, "network-3": 0.85, "network-8": 0.70}[series] + 0.02 * seed
    return round(base - eps * (0.06 if series == "network-1" else 0.03), 4)


def reevaluated(series: str, seed: int) -> dict[str, float]:
    metrics = {metric_key("best", "clean", BUDGETS[0] / 255, N): accuracy(series, seed, 0)}
    metrics |= {metric_key("best", "pgd20", k / 255, N): accuracy(series, seed, k) for k in BUDGETS}
    return metrics


class Store:
    """An MLflow store with the sweeps' layout: parent runs tagged with the sweep, trial runs opened by TrialRun."""

    def __init__(self, root) -> None:
        self.uri = f"sqlite:///{root / 'mlflow.db'}"
        self.client = MlflowClient(self.uri)
        self.root = root

    def sweep(self, experiment: str, name: str) -> str:
        # An explicit artifact root: the store's default, ./mlruns, would land in the directory pytest runs from.
        exp_id = self.client.create_experiment(experiment, artifact_location=str(self.root / experiment))
        parent = self.client.create_run(exp_id, run_name=name, tags={"sweep": name}).info.run_id
        self.client.set_terminated(parent)
        return parent

    def trial(self, experiment: str, parent: str, name: str, params: dict, metrics: dict[str, float],
              model: Classifier | None) -> str:
        run = TrialRun.open(self.uri, experiment, run_name=name, params={"dataset": DATASET, "final_n": N, **params},
                            tags={"method": "afs" if "mask" in params else "afs_extractor"}, trial_id=name,
                            parent_run_id=parent)
        run.log_metrics(metrics, step=0)
        if model is not None:
            run.log_model(model.eval(), "best")
        run.finish()
        return run.run_id


@pytest.fixture(scope="module")
def afs(tmp_path_factory) -> dict:
    """Extractors eps 1, 3 and 8 (seed 0, with models; eps 8 also seed 1, metrics only) and mergers of networks 3
    and 8 at alpha 0, 0.5 and 1 (alpha 0.5 re-evaluated, also under PGD-50, which the single networks lack)."""
    store = Store(tmp_path_factory.mktemp("afs-figures"))
    extractors = {}
    parent = store.sweep("afs-extractors", "ext")
    for i, seed in ((1, 0), (3, 0), (8, 0), (8, 1)):
        torch.manual_seed(i)
        model = create_model("tiny-cnn", 10) if seed == 0 else None
        extractors.setdefault(i, model)
        final = {"best/clean": accuracy(f"network-{i}", seed, 0), "best/pgd20": accuracy(f"network-{i}", seed, 8)}
        store.trial("afs-extractors", parent, f"eps={i} seed={seed}", {"eps": i / 255, "seed": seed},
                    final | reevaluated(f"network-{i}", seed), model)
    mergers = {}
    parent = store.sweep("afs-merger", "mergers")
    for alpha in ALPHAS:
        merger = Classifier(StackedFeatures([3, 8], [extractors[3], extractors[8]]), 256, 10)
        with torch.no_grad():
            for part, scale in zip(merger.heads["main"].weight.split(128, dim=1), HEAD_SCALE[alpha]):
                part.copy_(scale * torch.linspace(-1, 1, part.numel()).reshape(part.shape))
        mergers[alpha] = merger
        final = {"best/clean": 0.8 - 0.1 * alpha, "best/pgd20": 0.3 + 0.1 * alpha}
        if alpha == 0.5:
            final |= reevaluated("merger", 0) | {metric_key("best", "pgd50", 8 / 255, N): 0.1}
        store.trial("afs-merger", parent, f"alpha={alpha}", {"mask": STACK, "alpha": alpha, "seed": 0,
                                                              "extractor_sweep": "ext"}, final, merger)
    return {"uri": store.uri, "extractors": extractors, "mergers": mergers,
            "ext": load_sweep("ext", tracking_uri=store.uri), "merger": load_sweep("mergers", tracking_uri=store.uri)}


def styles_of(ax) -> list[tuple]:
    """(colour, marker) of each series in the legend: its errorbar's data line, or its own line."""
    lines = [bars.lines[0] for bars in ax.containers]
    lines += [line for line in ax.lines if not line.get_label().startswith("_")]
    return [(to_hex(line.get_color()), line.get_marker()) for line in lines]


def test_reeval_keys_read_back_as_sweeps_reevaluate_writes_them():
    import pandas as pd

    keys = {metric_key("best", "pgd20", 8 / 255, 1000): (8.0, "pgd20", 1000),
            metric_key("last", "autoattack", 0.03, 500): (0.03 * 255, "autoattack", 500),
            metric_key("best", "clean", 8 / 255, 1000): (0.0, "clean", 1000)}
    runs = pd.DataFrame([{"run_id": "r", "method": "m", **{f"metrics.{k}": 0.5 for k in keys}, "metrics.x": 1}])
    read = reevaluations(runs).set_index("attack")
    assert len(read) == 3
    for eps, attack, n in keys.values():
        assert read.loc[attack, "eps"] == pytest.approx(eps) and read.loc[attack, "n"] == n


def test_fig4_embeds_each_network_and_their_concatenation(afs):
    panels = afs_figures.embeddings(afs["ext"], (3, 8), n=60)
    assert [p.title for p in panels] == ["network-3 (eps 3/255)", "network-8 (eps 8/255)",
                                         "network-3 + network-8 (concatenated)"]
    test = evaluation_points(load_dataset(DATASET, "test"), 60, seed=0)  # the trials' evaluation points
    images, labels = test.images.float() / 255, test.labels.numpy()
    with torch.no_grad():
        f3, f8 = (afs["extractors"][i].features(images).numpy() for i in (3, 8))
    for panel, values in zip(panels, (f3, f8, np.concatenate([f3, f8], axis=1))):
        np.testing.assert_array_equal(panel.labels, labels)
        expected = TSNE(2, perplexity=59 / 3, init="pca", random_state=0).fit_transform(values)
        np.testing.assert_allclose(panel.points, expected, rtol=1e-5, atol=1e-5)
        assert -1 <= panel.silhouette <= 1

    figure = afs_figures.fig4(panels, DATASET)
    axes = figure.axes
    assert [ax.get_title().split("\n")[0] for ax in axes] == [f"({c}) {p.title}" for c, p in zip("abc", panels)]
    for ax, panel in zip(axes, panels):  # one scatter per class, at exactly that class's embedded points
        assert len(ax.collections) == 10
        for k, dots in enumerate(ax.collections):
            np.testing.assert_allclose(dots.get_offsets(), panel.points[panel.labels == k])
    legend = figure.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == [f"class {k}" for k in range(10)]  # once, not per panel
    assert len({(tuple(h.get_facecolor()[0]), h.get_paths()[0].vertices.tobytes()) for h in legend.legend_handles}) \
        == 10


def test_fig5a_plots_the_default_merger_and_its_networks_by_budget(afs):
    curves, attack, n = afs_figures.budget_curves(afs["merger"], afs["ext"], alpha=0.5)
    assert (attack, n) == ("pgd20", N)  # PGD-50 is stronger, but the single networks were not re-evaluated with it
    label = "AFS 000100001 alpha=0.5"
    assert list(dict.fromkeys(curves["series"])) == [label, "network-3 (eps 3/255)", "network-8 (eps 8/255)"]
    for series, key in ((label, "merger"), ("network-3 (eps 3/255)", "network-3")):
        part = curves[curves["series"] == series]
        assert list(part["eps"]) == [0, *BUDGETS]
        assert list(part["mean"]) == pytest.approx([accuracy(key, 0, k) for k in (0, *BUDGETS)])
        assert part["std"].isna().all()
    eight = curves[curves["series"] == "network-8 (eps 8/255)"]  # two seeds: their mean and sample std
    assert list(eight["mean"]) == pytest.approx([(accuracy("network-8", 0, k) + accuracy("network-8", 1, k)) / 2
                                                 for k in (0, *BUDGETS)])
    assert list(eight["std"]) == pytest.approx([0.02 / np.sqrt(2)] * 4)

    ax = afs_figures.fig5a(curves, attack, n).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(dict.fromkeys(curves["series"]))
    plotted = {bars.get_label(): bars.lines[0].get_ydata() for bars in ax.containers}  # errorbar: data line first
    assert list(plotted[label]) == pytest.approx([100 * accuracy("merger", 0, k) for k in (0, *BUDGETS)])
    assert len(set(styles_of(ax))) == 3 and len({c for c, _ in styles_of(ax)}) == 3
    assert "PGD-20" in ax.get_ylabel() and "/255" in ax.get_xlabel()

    with pytest.raises(ValueError, match=r"sweeps/reevaluate.py --sweep mergers --attacks clean,pgd20 --eps 2/255,"):
        afs_figures.budget_curves(afs["merger"], afs["ext"], alpha=0.0)  # not re-evaluated


def test_fig5b_plots_each_networks_share_of_the_merger_weights_by_alpha(afs):
    ratios, mask = afs_figures.importance_ratios(afs["merger"])
    assert mask == STACK
    got = {(row.alpha, row.network): row.ratio for row in ratios.itertuples()}
    assert got == pytest.approx({(0.0, 3): 0.25, (0.0, 8): 0.75, (0.5, 3): 0.5, (0.5, 8): 0.5,
                                 (1.0, 3): 0.75, (1.0, 8): 0.25})

    ax = afs_figures.fig5b(ratios, mask).axes[0]
    lines = {bars.get_label(): bars.lines[0] for bars in ax.containers}  # errorbar: the data line first
    lines |= {line.get_label(): line for line in ax.lines if not line.get_label().startswith("_")}
    assert list(lines) == ["alpha = 0", "alpha = 0.5", "alpha = 1", "equal share (1/2)"]
    assert list(lines["alpha = 0"].get_xdata()) == [3, 8]
    assert list(lines["alpha = 0"].get_ydata()) == pytest.approx([25, 75])
    assert list(lines["equal share (1/2)"].get_ydata()) == pytest.approx([50, 50])
    assert len(set(styles_of(ax)[1:])) == 3


def test_fig6_histograms_the_classifier_weights_of_two_networks_and_the_merger(afs):
    panels = afs_figures.classifier_weights(afs["merger"], afs["ext"], (1, 8), alpha=0.5)
    assert list(panels) == ["network-1 (eps 1/255)", "network-8 (eps 8/255)",
                            "AFS merger (stack 000100001, alpha 0.5)"]
    models = [afs["extractors"][1], afs["extractors"][8], afs["mergers"][0.5]]
    for weights, model in zip(panels.values(), models):
        np.testing.assert_array_equal(weights, model.heads["main"].weight.detach().flatten().numpy())

    figure = afs_figures.fig6(panels)
    for ax, (title, weights) in zip(figure.axes, panels.items()):
        assert title in ax.get_title() and f"{len(weights):,} weights" in ax.get_title()
        heights = [patch.get_height() for patch in ax.patches]
        assert sum(heights) == pytest.approx(100)  # shares of that classifier's weights
    assert len({tuple(ax.patches[0].get_facecolor()) for ax in figure.axes}) == 3


def test_scatter_draws_singles_as_eps_digits_and_names_each_merger_in_a_legend(afs):
    ax = scatter(afs["merger"], afs["ext"]).axes[0]
    assert not ax.texts  # no point labels left to overlap
    digits = {line.get_marker(): (line.get_xdata()[0], line.get_ydata()[0]) for line in ax.lines
              if line.get_marker().startswith("$")}
    assert set(digits) == {"$1$", "$3$", "$8$"}
    # PGD-20 against clean, the two seeds of network-8 averaged.
    assert digits["$8$"] == pytest.approx((100 * (accuracy("network-8", 0, 8) + accuracy("network-8", 1, 8)) / 2,
                                          100 * (accuracy("network-8", 0, 0) + accuracy("network-8", 1, 0)) / 2))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["single networks (digit = training eps, /255)",
                      *(f"AFS 000100001 alpha={a:g}" for a in ALPHAS)]
    styles = styles_of(ax)
    assert len({colour for colour, _ in styles}) == 4 and len(set(styles[1:])) == 3
    legend_box = ax.get_legend().get_window_extent()
    assert legend_box.x0 >= ax.get_window_extent().x1  # outside the data


def test_every_figure_command_writes_its_png(afs, tmp_path):
    source = ["--tracking-uri", afs["uri"]]
    commands = {"fig4": ["--sweep", "ext", "--n", "40"], "fig5a": ["--sweep", "mergers", "--alpha", "0.5"],
                "fig5b": ["--sweep", "mergers"], "fig6": ["--sweep", "mergers", "--alpha", "0.5"],
                "scatter": ["--sweep", "mergers"]}
    for command, flags in commands.items():
        out = tmp_path / f"{command}.png"
        afs_tables.main([command, *flags, *source, "--out", str(out)])
        assert out.read_bytes().startswith(b"\x89PNG"), command
    with pytest.raises(SystemExit, match="no finished network-5 .*it has networks 1, 3, 8: pass --networks"):
        afs_tables.main(["fig6", "--sweep", "mergers", "--alpha", "0.5", "--networks", "1,5", *source,
                         "--out", str(tmp_path / "x.png")])
    with pytest.raises(SystemExit, match="--n 5: a t-SNE of classes needs at least 20 test points"):
        afs_tables.main(["fig4", "--sweep", "ext", "--n", "5", *source, "--out", str(tmp_path / "x.png")])
    with pytest.raises(SystemExit, match="expected runs with one alpha"):
        afs_tables.main(["fig6", "--sweep", "mergers", *source, "--out", str(tmp_path / "x.png")])


def test_default_merger_sweep_is_alpha_half_on_the_table2_stack():
    space = afs_merger.search_space("default", "paper", "afs-extractors-paper", "000111111", seeds=2)
    assert space["alpha"] == 0.5 and space["mask"] == "000111111"
    assert space["seed"] == {"grid_search": [0, 1]}
