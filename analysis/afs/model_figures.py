"""AFS Figs. 4, 5(a), 5(b) and 6 (Liu & Zhao, Sec. 3.1-3.6), drawn by ``analysis/afs_tables.py figN`` from MLflow.

    python analysis/afs_tables.py fig4 --sweep afs-extractors-smoke --out fig4.png   # t-SNE, networks 3, 8, both
    python analysis/afs_tables.py fig5a --sweep afs-default-smoke --out fig5a.png    # after sweeps/reevaluate.py
    python analysis/afs_tables.py fig5b --sweep afs-table2-smoke --out fig5b.png     # importance ratio by alpha
    python analysis/afs_tables.py fig6 --sweep afs-default-smoke --out fig6.png      # classifier weight histograms

Fig. 5(a) reads the accuracies ``sweeps/reevaluate.py`` logged into the runs of the default model (``sweeps/
afs_merger.py default``: alpha 0.5 on table2's stack) and of the single networks (the extractor sweep), clean accuracy
being budget 0. Figs. 4, 5(b) and 6 read the weights the trials logged as MLflow models (``best`` by default): Fig. 4
embeds the penultimate features of network-3, network-8 and their concatenation on the evaluation test points of the
runs' dataset with t-SNE (scikit-learn, seeded), Fig. 5(b) splits each merger's weight matrix into one sub-matrix per
stacked network, and Fig. 6 is the histogram of the linear classifier weights of network-1, network-8 and the
default merger. Nothing is trained again. Where a sweep has several seeds, Figs. 4 and 6 show the lowest seed's model
and Figs. 5(a)/(b) the mean and sample std over seeds (error bars).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from string import ascii_lowercase

import mlflow.pytorch
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR
from scipy.stats import kurtosis
from torch import nn

from analysis.afs.runs import extractor_runs, merger_label, merger_runs
from analysis.figure_style import distinct_styles, legend_outside
from analysis.reevaluations import choose_n, reevaluations
from analysis.runs import metric_label, only_value
from runstore.reader import SweepRuns, attack_strength

FIG5A_EPS = tuple(range(2, 17, 2))  # Fig. 5(a)'s budgets, 1/255 units: 0 (clean) to about 16/255
MERGER_COLOURS = ("tab:red", "black", "tab:orange", "tab:pink", "tab:brown", "tab:gray")  # none on viridis
TSNE_SEED = 0
MIN_TSNE_POINTS = 20


def reevaluation(sweep: str, n: int) -> str:
    """The re-evaluation Fig. 5(a) needs of ``sweep`` on ``n`` test points: the script and its arguments
    (``sweeps/afs_merger.py default`` prints it as a next step)."""
    eps = ",".join(f"{k}/255" for k in FIG5A_EPS)
    return f"sweeps/reevaluate.py --sweep {sweep} --attacks clean,pgd20 --eps {eps} --n {n}"


def reevaluate_command(sweep: SweepRuns) -> str:
    """:func:`reevaluation` of ``sweep`` as a command, on as many test points as its final protocol used."""
    n = int(sweep.runs["params.final_n"].max()) if "params.final_n" in sweep.runs else 10000
    return f"`python {reevaluation(sweep.name, n)}`"


def error_bars(std: pd.Series) -> pd.Series | None:
    """Sample std over seeds in percent, or None (no bars) where every point has a single seed."""
    return None if std.isna().all() else 100 * std.fillna(0)


def network_name(index: int) -> str:
    return f"network-{index} (eps {index}/255)"


def stacked(mask: str) -> list[int]:
    """The networks a stacking mask selects: ``"000100001"`` -> ``[3, 8]``."""
    return [i for i, char in enumerate(mask) if char == "1"]


def lowest_seed(runs: pd.DataFrame) -> pd.Series:
    return runs.sort_values("params.seed").iloc[0] if "params.seed" in runs else runs.iloc[0]


def network_run(singles: pd.DataFrame, sweep: SweepRuns, index: int) -> pd.Series:
    """The lowest-seed run of network-``index``; a network the sweep lacks is an error naming those it has."""
    runs = singles[singles["extractor"] == index]
    if runs.empty:
        have = ", ".join(str(i) for i in sorted(singles["extractor"].unique()))
        raise ValueError(f"extractor sweep {sweep.name!r} has no finished network-{index} (eps {index}/255); it has "
                         f"networks {have}: pass --networks")
    return lowest_seed(runs)


def logged_model(sweep: SweepRuns, run_id: str, checkpoint: str) -> nn.Module:
    """The model a run logged, ``mlflow.pytorch.load_model("runs:/<run_id>/<checkpoint>")`` read through the sweep's
    store, on the CPU in eval mode. Unpickling it needs this project installed, as any use of a logged model does."""
    if not any(f.path == f"{checkpoint}/MLmodel" for f in sweep.client.list_artifacts(run_id, checkpoint)):
        raise ValueError(f"run {run_id} of sweep {sweep.name!r} logged no model {checkpoint!r} (trained before trials "
                         "logged their models): train it again in a new sweep")
    with tempfile.TemporaryDirectory() as directory, quiet_downloads():
        return mlflow.pytorch.load_model(sweep.client.download_artifacts(run_id, checkpoint, directory),
                                         map_location="cpu").eval()


@contextlib.contextmanager
def quiet_downloads() -> Iterator[None]:
    """Without MLflow's progress bar per download: a figure loads several models, and the bars buried its output."""
    name = MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name
    before = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if before is None:
            del os.environ[name]
        else:
            os.environ[name] = before


# --- Fig. 4: t-SNE of the features -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Embedding:
    """One panel of Fig. 4: the 2-D t-SNE points of one feature set, the points' classes, and how well the classes
    separate there (silhouette score, -1 to 1)."""

    title: str
    points: np.ndarray  # (n, 2)
    labels: np.ndarray  # (n,)
    silhouette: float


def test_points(dataset: str, n: int, data_root: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` test images (floats in [0, 1]) and labels of ``dataset``: the evaluation points a trial and a
    re-evaluation use (``image_set.evaluation_points``, subset seed 0), never the first n of a class-sorted set."""
    # The dataset registry is the one part of trainables/ analysis reads: Fig. 4 needs the test images themselves
    # (the logged models it embeds them with need this project to unpickle anyway).
    from trainables.datasets import load_dataset
    from trainables.image_set import evaluation_points

    test = evaluation_points(load_dataset(dataset, "test", root=data_root), n, seed=0)
    return test.images.float() / 255, test.labels


@torch.no_grad()
def features(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Penultimate features (``Classifier.features``) of ``images``, on the GPU where there is one (a WRN-28-10
    takes minutes for 1000 images on a CPU)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(device)
    return torch.cat([model.features(images[i : i + batch_size].to(device)).cpu()
                      for i in range(0, len(images), batch_size)]).numpy()


def embeddings(extractors: SweepRuns, networks: Sequence[int] = (3, 8), n: int = 1000, data_root: str | None = None,
               checkpoint: str = "best") -> list[Embedding]:
    """Fig. 4's panels: the features of each network on ``n`` test points (:func:`test_points`), then their
    concatenation."""
    from sklearn.manifold import TSNE
    from sklearn.metrics import silhouette_score

    if n < MIN_TSNE_POINTS:
        raise ValueError(f"--n {n}: a t-SNE of classes needs at least {MIN_TSNE_POINTS} test points (default 1000)")
    singles = extractor_runs(extractors)
    _, dataset = only_value(singles, "params.dataset")
    images, labels = test_points(dataset, n, data_root)
    sets = [(network_name(i), features(logged_model(extractors, network_run(singles, extractors, i)["run_id"],
                                                    checkpoint), images)) for i in networks]
    if len(sets) > 1:
        sets.append((" + ".join(f"network-{i}" for i in networks) + " (concatenated)",
                     np.concatenate([f for _, f in sets], axis=1)))
    # t-SNE needs a perplexity below the number of points; 30 (scikit-learn's default) from 91 points on.
    perplexity = min(30.0, (len(images) - 1) / 3)
    panels = []
    for title, values in sets:
        points = TSNE(2, perplexity=perplexity, init="pca", random_state=TSNE_SEED).fit_transform(values)
        panels.append(Embedding(title, points, labels.numpy(), float(silhouette_score(points, labels.numpy()))))
    return panels


def fig4(panels: Sequence[Embedding], dataset: str) -> Figure:
    """Fig. 4: one t-SNE panel per feature set, each class one colour and marker (a colour scale past 20 classes)."""
    figure = Figure(figsize=(3.6 * len(panels) + 1.6, 3.9), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    classes = np.unique(panels[0].labels)
    styles = distinct_styles(len(classes))
    for letter, ax, panel in zip(ascii_lowercase, axes, panels):
        if len(classes) <= 20:
            for (colour, marker), k in zip(styles, classes):
                chosen = panel.labels == k
                ax.scatter(*panel.points[chosen].T, s=9, color=colour, marker=marker, label=f"class {k}",
                           linewidths=0)
        else:
            dots = ax.scatter(*panel.points.T, s=6, c=panel.labels, cmap="turbo", linewidths=0)
        ax.set_title(f"({letter}) {panel.title}\nsilhouette of the classes {panel.silhouette:.2f}", fontsize=9)
        ax.set_xlabel("t-SNE dimension 1")
        ax.set_ylabel("t-SNE dimension 2")
        ax.set_xticks([])
        ax.set_yticks([])
    if len(classes) <= 20:
        legend_outside(figure, markerscale=1.8, title="test label")
    else:
        figure.colorbar(dots, ax=list(axes), label="test label")
    figure.suptitle(f"Fig. 4: t-SNE of the penultimate features of {len(panels[0].labels)} {dataset} test points",
                    fontsize=10)
    return figure


# --- Fig. 5(a): accuracy by attack budget ------------------------------------------------------------------------------


def budget_curves(merger: SweepRuns, extractors: SweepRuns, *, alpha: float | None = None, mask: str | None = None,
                  networks: Sequence[int] | None = None, attack: str | None = None, n: int | None = None,
                  checkpoint: str = "best") -> tuple[pd.DataFrame, str, int]:
    """Fig. 5(a)'s curves: per series (each merger setting of ``merger``, then each single network: ``networks``,
    by default those the mergers stack) and budget (1/255 units; 0 is clean accuracy), the mean, sample std and count
    over seeds of the re-evaluated accuracy under ``attack`` (default: the strongest every series has) on ``n`` test
    points (default: the most every series has). Returns the curves (columns series, kind, eps, mean, std, runs),
    the attack and n."""
    mergers = merger_runs(merger)
    if alpha is not None:
        mergers, _ = only_value(mergers, "params.alpha", alpha)
    if mask is not None:
        mergers, _ = only_value(mergers, "params.mask", mask)
    singles = extractor_runs(extractors)
    wanted = sorted(set(networks) if networks is not None else
                    {i for m in mergers["params.mask"].unique() for i in stacked(m)})
    for index in wanted:
        network_run(singles, extractors, index)  # a missing network is an error naming those there are
    mergers = mergers.sort_values(["params.mask", "params.alpha"])
    mergers = mergers.assign(series=mergers.apply(merger_label, axis=1), kind="merger")
    singles = singles[singles["extractor"].isin(wanted)].sort_values("extractor")
    singles = singles.assign(series=[network_name(i) for i in singles["extractor"]], kind="single")
    runs = pd.concat([mergers, singles], ignore_index=True)
    names = list(dict.fromkeys(runs["series"]))
    logged = reevaluations(runs, label="series")
    # Budgets only: an inverse attack (negative eps) or a half of the points is another figure's (UIAT's).
    logged = logged[(logged["checkpoint"] == checkpoint) & (logged["half"] == "") & (logged["eps"] >= 0)]
    commands = f"{reevaluate_command(merger)} and {reevaluate_command(extractors)}"
    attacked = logged[logged["attack"] != "clean"]
    common = set.intersection(*(set(attacked.loc[attacked["series"] == s, "attack"]) for s in names))
    if attack is None:
        if not common:
            raise ValueError(f"no re-evaluation under attack ({checkpoint} checkpoint) for every one of "
                             f"{', '.join(names)}: run {commands}")
        attack = max(common, key=lambda a: attack_strength(a) or (-1, 0))
    elif attack not in common:
        raise ValueError(f"not every series was re-evaluated under {attack}; in common: {sorted(common) or 'none'}")
    n = choose_n(attacked[attacked["attack"] == attack], n, names, f"{attack} re-evaluation", commands,
                 label="series")
    shown = logged[(logged["n"] == n) & logged["attack"].isin(["clean", attack])]
    kinds = dict(zip(runs["series"], runs["kind"]))
    rows = [(series, kinds[series], eps, values.mean(), values.std(ddof=1), len(values))
            for (series, eps), values in shown.groupby(["series", "eps"], sort=False)["value"]]
    curves = pd.DataFrame(rows, columns=["series", "kind", "eps", "mean", "std", "runs"])
    curves["order"] = curves["series"].map(names.index)
    return curves.sort_values(["order", "eps"]).drop(columns="order").reset_index(drop=True), attack, n


def fig5a(curves: pd.DataFrame, attack: str, n: int, checkpoint: str = "best") -> Figure:
    """Fig. 5(a): accuracy (%) against the attack budget, the mergers in warm colours with stars, the single
    networks along viridis by training eps; error bars where there are seeds."""
    figure = Figure(figsize=(7.2, 4.2), layout="constrained")
    ax = figure.subplots()
    names = list(dict.fromkeys(curves["series"]))
    mergers = [s for s in names if (curves.loc[curves["series"] == s, "kind"] == "merger").all()]
    singles = [s for s in names if s not in mergers]
    if len(mergers) > len(MERGER_COLOURS):
        raise ValueError(f"{len(mergers)} merger settings: at most {len(MERGER_COLOURS)} read apart; pass --alpha "
                         "or --mask")
    styles = {s: (c, "*") for s, c in zip(mergers, MERGER_COLOURS)}
    styles |= dict(zip(singles, distinct_styles(len(singles), sequential="viridis")))
    for series in names:
        part = curves[curves["series"] == series]
        colour, marker = styles[series]
        merged = series in mergers
        ax.errorbar(part["eps"], 100 * part["mean"], yerr=error_bars(part["std"]), color=colour, marker=marker,
                    markersize=10 if merged else 5, linewidth=2.2 if merged else 1.2, capsize=2, label=series,
                    zorder=3 if merged else 2)
    ax.set_xticks(sorted(curves["eps"].unique()))
    ax.set_xlabel("attack budget eps (/255; 0 = clean images)")
    ax.set_ylabel(f"accuracy under {metric_label(f'{checkpoint}/{attack}').split(' (')[0]} (%)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.set_title(f"Fig. 5(a): accuracy by attack budget ({checkpoint} checkpoint, {n} test points)", fontsize=9)
    legend_outside(ax)
    return figure


# --- Fig. 5(b): importance ratio of each stacked network -------------------------------------------------------------


def stacked_importance(model: nn.Module) -> dict[int, float]:
    """Sec. 3.2: the merger's weight matrix split into one sub-matrix per stacked network (its columns, in stacking
    order); each sub-matrix's sum of absolute values over the whole matrix's: network index -> importance ratio."""
    stack = getattr(model, "body", None)
    if not hasattr(stack, "extractors"):
        raise ValueError(f"a {type(model).__name__} whose body holds no stack of extractors is no AFS merger")
    weight = model.heads["main"].weight.detach().abs()
    sums = weight.split([e.feature_dim for e in stack.extractors], dim=1)
    total = float(weight.sum())
    return {index: float(part.sum()) / total for index, part in zip(stack.indices, sums)}


def importance_ratios(merger: SweepRuns, mask: str | None = None, checkpoint: str = "best") -> tuple[pd.DataFrame,
                                                                                                         str]:
    """Every merger run of one stack: columns alpha, run_id, network, ratio; and the stack's mask."""
    runs, mask = only_value(merger_runs(merger), "params.mask", mask)
    rows = []
    for _, run in runs.sort_values("params.alpha").iterrows():
        ratios = stacked_importance(logged_model(merger, run["run_id"], checkpoint))
        rows += [(float(run["params.alpha"]), run["run_id"], network, ratio) for network, ratio in ratios.items()]
    return pd.DataFrame(rows, columns=["alpha", "run_id", "network", "ratio"]), mask


def fig5b(ratios: pd.DataFrame, mask: str, checkpoint: str = "best") -> Figure:
    """Fig. 5(b): importance ratio (%) against the stacked network, one line per alpha along viridis, the equal
    share dashed; error bars where there are seeds."""
    figure = Figure(figsize=(6.8, 4.0), layout="constrained")
    ax = figure.subplots()
    networks = sorted(ratios["network"].unique())
    alphas = sorted(ratios["alpha"].unique())
    for alpha, (colour, marker) in zip(alphas, distinct_styles(len(alphas), sequential="viridis")):
        stats = ratios[ratios["alpha"] == alpha].groupby("network")["ratio"].agg(["mean", "std"]).reindex(networks)
        ax.errorbar(networks, 100 * stats["mean"], yerr=error_bars(stats["std"]), color=colour, marker=marker,
                    capsize=2, label=f"alpha = {alpha:g}")
    ax.axhline(100 / len(networks), color="grey", linestyle="--", linewidth=1,
               label=f"equal share (1/{len(networks)})")
    ax.set_xticks(networks)
    ax.set_xlabel("stacked network: network-i, trained at eps i/255")
    ax.set_ylabel("importance ratio (% of the merger's |w|)")
    ax.grid(alpha=0.3)
    ax.set_title(f"Fig. 5(b): importance ratio of each stacked network by alpha\n(stack {mask}, {checkpoint} "
                 "checkpoint)", fontsize=9)
    legend_outside(ax, title="merger trained with")
    return figure


# --- Fig. 6: histograms of the linear classifier weights -------------------------------------------------------------


def classifier_weights(merger: SweepRuns, extractors: SweepRuns, networks: Sequence[int] = (1, 8), *,
                       alpha: float | None = None, mask: str | None = None,
                       checkpoint: str = "best") -> dict[str, np.ndarray]:
    """Fig. 6's panels: the flattened weight matrix of the linear classifier (head) of each single network, then of
    the merger of one ``alpha`` and ``mask`` (lowest seed), by panel title."""
    singles = extractor_runs(extractors)
    panels = {}
    for index in networks:
        model = logged_model(extractors, network_run(singles, extractors, index)["run_id"], checkpoint)
        panels[network_name(index)] = model.heads["main"].weight.detach().flatten().numpy()
    runs, alpha = only_value(merger_runs(merger), "params.alpha", alpha)
    runs, mask = only_value(runs, "params.mask", mask)
    model = logged_model(merger, lowest_seed(runs)["run_id"], checkpoint)
    panels[f"AFS merger (stack {mask}, alpha {alpha:g})"] = model.heads["main"].weight.detach().flatten().numpy()
    return panels


def fig6(panels: dict[str, np.ndarray], checkpoint: str = "best", bins: int = 60) -> Figure:
    """Fig. 6: one histogram per classifier, as a share of its weights (log scale, so the few large weights show),
    titled with its excess kurtosis: large where a few weights dominate, near 0 for a normal spread."""
    figure = Figure(figsize=(3.7 * len(panels), 3.6), layout="constrained")
    axes = figure.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for letter, ax, (title, weights), (colour, _) in zip(ascii_lowercase, axes, panels.items(),
                                                         distinct_styles(len(panels))):
        ax.hist(weights, bins=bins, weights=np.full(len(weights), 100 / len(weights)), color=colour)
        ax.set_yscale("log")
        ax.set_title(f"({letter}) {title}\n{len(weights):,} weights, excess kurtosis {kurtosis(weights):.1f}",
                     fontsize=9)
        ax.set_xlabel("weight value")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share of the weights (%, log scale)")
    figure.suptitle(f"Fig. 6: linear classifier weights ({checkpoint} checkpoint)", fontsize=10)
    return figure
