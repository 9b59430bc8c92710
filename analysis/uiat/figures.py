"""UIAT's figures from sweeps' MLflow runs (Dong et al., CVPR 2023), drawn by ``analysis/uiat_tables.py figN``.

Each function returns a bare matplotlib ``Figure`` (Agg when saved, no pyplot state): small multiples with one
colour and marker per series, the same in every panel, a legend outside the data, axes in words and units, and
mean +- sample std over seeds (error bars or bands; none with one seed). What each figure reads, and the smoke
commands that produce it on the synthetic data (``--tracking-uri`` as the sweep's):

- Fig. 1 (:func:`fig1`): standard training and PGD-AT, accuracy under PGD-20 at signed eps (negative: the inverse,
  loss-minimising attack) on each half of the test points ranked by clean cross-entropy, and clean accuracy of all
  points. Reads ``reeval/<ckpt>/pgd20/eps<k>_255/n<N>/{low_ce,high_ce}`` and ``reeval/<ckpt>/clean/n<N>/*``::

      python sweeps/uiat_figures.py
      python sweeps/reevaluate.py --sweep uiat-figures-smoke-baselines --attacks clean,pgd20 --ce-halves \\
          --eps=-8/255,-4/255,4/255,8/255 --n 128
      python analysis/uiat_tables.py fig1 --sweep uiat-figures-smoke-baselines --out fig1.png

- Fig. 4 (:func:`fig4`): the same for TRADES and UIAT, the gap between the halves annotated at 8/255; also needs the
  command above with ``--sweep uiat-figures-smoke``, then
  ``fig4 --sweep uiat-figures-smoke --sweep uiat-figures-smoke-baselines``.
- Fig. 2 (:func:`fig2`): PGD-AT and one-off UIAT, natural and PGD accuracy per epoch on a fixed training subset
  (``train_eval/*``, trials with ``train_eval_n`` > 0) and on the selection points (``select/*``, the test
  points); needs only the sweep: ``fig2 --sweep uiat-figures-smoke --sweep uiat-figures-smoke-baselines``. The
  curves use the training attack (PGD-10 in the paper preset) where the paper plots PGD-20.
- Fig. 5 (:func:`fig5`): AutoAttack accuracy of one-off UIAT and TRADES across budgets, and their difference.
  Reads ``reeval/<ckpt>/autoattack/eps<k>_255/n<N>``::

      python sweeps/reevaluate.py --sweep uiat-figures-smoke --attacks autoattack --eps 4/255,8/255,12/255 --n 32
      python sweeps/reevaluate.py --sweep uiat-figures-smoke-baselines --attacks autoattack \\
          --eps 4/255,8/255,12/255 --n 32
      python analysis/uiat_tables.py fig5 --sweep uiat-figures-smoke --sweep uiat-figures-smoke-baselines

  (AutoAttack on a CPU: 3 to 6 min per sweep for these 32 points on 2 shared cores; ``--attacks pgd20`` with
  ``fig5 --attack pgd20`` is the quick stand-in.)

- Fig. 3 (:func:`fig3`): natural and robust accuracy against lambda, on separate axes: ``python
  sweeps/uiat_lambda.py``, then ``fig3 --sweep uiat-lambda-smoke``.

A figure finds its methods by the paper's names (``method_label``) among the runs of every ``--sweep`` given, so
baselines may come from another sweep (``sweeps/baselines.py --preset uiat-paper``) trained on the same recipe.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from analysis.cells import Cell
from analysis.reevaluations import choose_n, reevaluations
from analysis.runs import metric_label
from analysis.uiat.runs import datasets, lambda_cells, method_label
from runstore.reader import SweepRuns, column

HALVES = {"low_ce": "lower-loss half (top 50%)", "high_ce": "higher-loss half (bottom 50%)"}
# One (colour, marker) per series, the same wherever it appears.
STYLE = {
    "low_ce": ("tab:blue", "o"), "high_ce": ("tab:red", "s"), "all": ("tab:green", ""),
    "train": ("tab:blue", "o"), "test": ("tab:orange", "s"),
    "UIAT (One-off)": ("tab:purple", "D"), "TRADES": ("tab:gray", "^"), "difference": ("black", "o"),
    "natural": ("tab:blue", "o"), "robust": ("tab:red", "s"),
}
FIG1_METHODS = ("Natural Training", "PGD-AT")
FIG4_METHODS = ("TRADES", "UIAT")
FIG2_METHODS = ("PGD-AT", "UIAT (One-off)")
FIG5_METHODS = ("UIAT (One-off)", "TRADES")  # the difference is the first minus the second
GAP_EPS = 8  # Fig. 4 annotates the gap between the halves at 8/255


def labelled_runs(sweeps: Sequence[SweepRuns]) -> pd.DataFrame:
    """The finished runs of every sweep, with the paper's name of their method (``method``)."""
    frames = [s.runs for s in sweeps if len(s.runs)]
    if not frames:
        raise ValueError("no finished trials in " + "; ".join(s.summary() for s in sweeps))
    runs = pd.concat(frames, ignore_index=True)
    return runs.assign(method=[method_label(row) for _, row in runs.iterrows()])


def methods_of(runs: pd.DataFrame, wanted: Sequence[str], figure: str) -> dict[str, pd.DataFrame]:
    """The runs of each wanted method, in that order; a missing one is an error naming what there is."""
    missing = [m for m in wanted if m not in set(runs["method"])]
    if missing:
        raise ValueError(f"{figure} needs {' and '.join(wanted)} runs; these sweeps have no {', '.join(missing)} "
                         f"(they have {', '.join(sorted(set(runs['method'])))}): pass the sweeps that trained them "
                         "with --sweep, e.g. sweeps/uiat_figures.py's NAME and NAME-baselines")
    return {m: runs[runs["method"] == m] for m in wanted}


def cells(frame: pd.DataFrame, by: Sequence[str]) -> dict[tuple, Cell]:
    """Mean and std over seeds (runs) of ``value`` per combination of ``by``."""
    return {tuple(key): Cell.of(group["value"]) for key, group in frame.groupby(list(by), sort=True)}


def attack_name(attack: str) -> str:
    """``pgd20`` -> ``PGD-20``, ``autoattack`` -> ``AutoAttack``, as the tables write them."""
    return metric_label(f"best/{attack}").removesuffix(" (best checkpoint)")


def seeds_note(found: dict[tuple, Cell]) -> str:
    counts = sorted({c.n for c in found.values()})
    if counts == [1]:
        return "1 seed"
    return f"mean ± std over {counts[0]} seeds" if len(counts) == 1 else \
        f"mean ± std over {counts[0]} to {counts[-1]} seeds per point"


def draw(ax: Axes, series: str, label: str, points: Sequence[tuple[float, Cell]]) -> None:
    """One series as a line with markers and +- std error bars, in percent."""
    colour, marker = STYLE[series]
    ax.errorbar([x for x, _ in points], [100 * c.mean for _, c in points],
                yerr=[100 * (c.std or 0.0) for _, c in points], color=colour, marker=marker, capsize=3, label=label)


def outside_legend(figure: Figure, axes: Sequence[Axes], columns: int) -> None:
    """One legend for all panels, below them: each series once, data (error bars) before reference lines."""
    handles: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    ordered = sorted(handles.items(), key=lambda item: isinstance(item[1], Line2D))
    figure.legend([h for _, h in ordered], [label for label, _ in ordered], loc="outside lower center",
                  ncols=columns, fontsize=8)


# --- Figs. 1 and 4: accuracy at signed eps, per half by clean cross-entropy ------------------------------------------

def signed_curves(sweeps: Sequence[SweepRuns], methods: Sequence[str], figure: str, attack: str, n: int | None,
                  checkpoint: str) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, int]:
    runs = labelled_runs(sweeps)
    chosen = methods_of(runs, methods, figure)
    frame = reevaluations(pd.concat(chosen.values()))
    frame = frame[(frame["checkpoint"] == checkpoint) & frame["attack"].isin([attack, "clean"])]
    halves = frame[(frame["half"] != "") & (frame["attack"] == attack)]
    command = (f"sweeps/reevaluate.py --sweep NAME --attacks clean,{attack} --ce-halves --eps=-8/255,...,8/255 "
               f"--checkpoints {checkpoint}")
    n = choose_n(halves, n, methods, f"{attack} re-evaluation per half by clean CE (--ce-halves)", command)
    return chosen, frame[frame["n"] == n], n


def signed_figure(sweeps: Sequence[SweepRuns], methods: Sequence[str], figure: str, title: str, *, attack: str,
                  n: int | None, checkpoint: str, annotate_gap: bool) -> Figure:
    chosen, frame, n = signed_curves(sweeps, methods, figure, attack, n, checkpoint)
    found = cells(frame, ["method", "half", "attack", "eps"])
    fig = Figure(figsize=(4.2 * len(methods), 4.0), layout="constrained")
    axes = fig.subplots(1, len(methods), sharey=True, squeeze=False)[0]
    for letter, ax, method in zip("abcdefgh", axes, methods):
        for half, label in HALVES.items():
            points = sorted((eps, c) for (m, h, a, eps), c in found.items() if m == method and h == half)
            draw(ax, half, label, points)
        overall = found.get((method, "", "clean", 0.0))
        if overall is not None:
            colour, _ = STYLE["all"]
            ax.axhline(100 * overall.mean, color=colour, linestyle="--", label="all points, clean")
        ax.axvline(0, color="0.6", linewidth=0.8, linestyle=":")
        if annotate_gap:
            annotate(ax, found, method, attack)
        ax.set_title(f"({letter}) {method}", fontsize=10)
        ax.set_xticks(sorted({eps for (m, _, _, eps) in found if m == method}))
        name = attack_name(attack)
        ax.set_xlabel(f"attack strength ε (/255)\n< 0: inverse {name}, 0: clean, > 0: {name}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    axes[0].set_ylim(-3, 103)
    runs = pd.concat(chosen.values())
    fig.suptitle(f"{title} ({datasets(runs)}; {n} test points, {checkpoint} checkpoint, {seeds_note(found)})",
                 fontsize=9)
    outside_legend(fig, axes, 3)
    return fig


def annotate(ax: Axes, found: dict[tuple, Cell], method: str, attack: str) -> None:
    """A double arrow between the halves at eps = 8/255, labelled with the gap in points (nothing without 8/255)."""
    ends = [found.get((method, half, attack, float(GAP_EPS))) for half in HALVES]
    if None in ends:
        return
    low, high = (100 * e.mean for e in ends)
    ax.annotate("", xy=(GAP_EPS, low), xytext=(GAP_EPS, high), arrowprops={"arrowstyle": "<->", "color": "black"})
    ax.annotate(f"gap {low - high:.1f} pts", xy=(GAP_EPS, (low + high) / 2), xytext=(-6, 0),
                textcoords="offset points", ha="right", va="center", fontsize=8)


def fig1(sweeps: Sequence[SweepRuns], *, attack: str = "pgd20", n: int | None = None,
         checkpoint: str = "best") -> Figure:
    """Fig. 1: standard training and PGD-AT, accuracy per half of the test points by clean cross-entropy under
    signed attack strengths (negative: the inverse attack), clean accuracy of all points dashed."""
    return signed_figure(sweeps, FIG1_METHODS, "fig1", "Fig. 1. Accuracy under attack strengths", attack=attack,
                         n=n, checkpoint=checkpoint, annotate_gap=False)


def fig4(sweeps: Sequence[SweepRuns], *, attack: str = "pgd20", n: int | None = None,
         checkpoint: str = "best") -> Figure:
    """Fig. 4: Fig. 1 for TRADES and UIAT, with the gap between the halves annotated at eps = 8/255."""
    return signed_figure(sweeps, FIG4_METHODS, "fig4", "Fig. 4. Accuracy under attack strengths", attack=attack,
                         n=n, checkpoint=checkpoint, annotate_gap=True)


# --- Fig. 2: learning curves on a training subset and on the test points ---------------------------------------------

def curve_keys(runs: pd.DataFrame) -> dict[str, str]:
    """Series -> the per-epoch metric (``train_eval/pgd20``...): the curves' own PGD where the runs logged one
    (``curve_steps``, 20 for the paper's figure), else their training attack's."""
    curve = pd.to_numeric(column(runs, "params.curve_steps"), errors="coerce").fillna(0).astype(int)
    steps = sorted(set(curve.where(curve > 0, runs["params.attack_steps"].astype(int))))
    if len(steps) != 1:
        raise ValueError(f"fig2: the runs were evaluated with different PGD steps {steps}: pass sweeps of one recipe")
    k = steps[0]
    return {"train/natural": "train_eval/clean", "train/robust": f"train_eval/pgd{k}",
            "test/natural": "select/clean", "test/robust": f"select/pgd{k}"}


def fig2(sweeps: Sequence[SweepRuns]) -> Figure:
    """Fig. 2: PGD-AT and one-off UIAT, natural (top) and PGD (bottom) accuracy per epoch on the fixed training
    subset (``train_eval_n``) and on the selection points, one column per method."""
    runs = labelled_runs(sweeps)
    chosen = methods_of(runs, FIG2_METHODS, "fig2")
    both = pd.concat(chosen.values())
    keys = curve_keys(both)
    # Every sweep given was read from one store, so one sweep's client reads every run's history.
    history = pd.concat(sweeps[0].history(key, both["run_id"]).assign(series=series) for series, key in keys.items())
    history = history.merge(both[["run_id", "method"]], on="run_id")
    logged = set(history.loc[history["series"].str.startswith("train/"), "method"])
    lacking = [m for m in FIG2_METHODS if m not in logged]
    if lacking:
        raise ValueError(f"fig2 needs the per-epoch training-subset metrics train_eval/*, which the "
                         f"{' and '.join(lacking)} runs did not log: train with train_eval_n > 0 "
                         "(sweeps/uiat_figures.py does)")
    found = cells(history.assign(epoch=history["step"] + 1), ["method", "series", "epoch"])
    fig = Figure(figsize=(9.0, 6.0), layout="constrained")
    axes = fig.subplots(2, len(FIG2_METHODS), sharex=True, sharey="row", squeeze=False)
    labels = subset_labels(both)
    for col, method in enumerate(FIG2_METHODS):
        for row, kind in enumerate(("natural", "robust")):
            ax = axes[row][col]
            for subset in ("train", "test"):
                points = sorted((e, c) for (m, s, e), c in found.items() if m == method and s == f"{subset}/{kind}")
                band(ax, subset, labels[subset], points)
            ax.grid(alpha=0.3)
            if row == 0:
                ax.set_title(f"({'ab'[col]}) {method}", fontsize=10)
            else:
                ax.set_xlabel("epoch")
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0][0].set_ylabel("natural accuracy (%)")
    axes[1][0].set_ylabel(f"{attack_name(keys['test/robust'].removeprefix('select/'))} accuracy (%)")
    fig.suptitle(f"Fig. 2. Learning curves ({datasets(both)}; {seeds_note(found)})", fontsize=9)
    outside_legend(fig, axes.ravel(), 2)
    return fig


def subset_labels(runs: pd.DataFrame) -> dict[str, str]:
    """Legend labels that say which points each curve evaluates, from the runs' params."""
    train_n = sorted(set(runs["params.train_eval_n"].astype(int)))
    eval_n = sorted(set(runs["params.eval_n"].astype(int)))
    held_out = set(runs["params.select_on"]) == {"holdout"}
    where = "held-out training images" if held_out else "test set"
    return {"train": f"training set ({'/'.join(map(str, train_n))} images, fixed)",
            "test": f"{where} ({'/'.join(map(str, eval_n))} points: checkpoint selection)"}


def band(ax: Axes, series: str, label: str, points: Sequence[tuple[float, Cell]]) -> None:
    """A learning curve: the mean over seeds, markers every tenth of the epochs, +- std shaded."""
    if not points:
        return
    colour, marker = STYLE[series]
    x = np.array([e for e, _ in points])
    mean = np.array([100 * c.mean for _, c in points])
    std = np.array([100 * (c.std or 0.0) for _, c in points])
    ax.plot(x, mean, color=colour, marker=marker, markevery=max(1, len(x) // 10), markersize=4, label=label)
    ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.2, linewidth=0)


# --- Fig. 5: AutoAttack of one-off UIAT minus TRADES across budgets --------------------------------------------------

def fig5(sweeps: Sequence[SweepRuns], *, attack: str = "autoattack", n: int | None = None,
         checkpoint: str = "best") -> Figure:
    """Fig. 5: (a) accuracy of one-off UIAT and TRADES under ``attack`` at each re-evaluated eps; (b) their
    difference in points, +- the two methods' std combined, with reference lines at 0 and at the training eps."""
    runs = labelled_runs(sweeps)
    chosen = methods_of(runs, FIG5_METHODS, "fig5")
    frame = reevaluations(pd.concat(chosen.values()))
    frame = frame[(frame["checkpoint"] == checkpoint) & (frame["attack"] == attack) & (frame["eps"] > 0)
                  & (frame["half"] == "")]
    command = f"sweeps/reevaluate.py --sweep NAME --attacks {attack} --eps 2/255,4/255,...,16/255"
    n = choose_n(frame, n, FIG5_METHODS, f"{attack} re-evaluation", command)
    found = cells(frame[frame["n"] == n], ["method", "eps"])
    fig = Figure(figsize=(9.0, 3.8), layout="constrained")
    absolute, difference = fig.subplots(1, 2)
    for method in FIG5_METHODS:
        draw(absolute, method, method, sorted((eps, c) for (m, eps), c in found.items() if m == method))
    first, second = FIG5_METHODS
    budgets = sorted({eps for (m, eps) in found if m == first} & {eps for (m, eps) in found if m == second})
    diffs = [(eps, diff(found[(first, eps)], found[(second, eps)])) for eps in budgets]
    draw(difference, "difference", f"{first} − {second}", diffs)
    difference.axhline(0, color="red", linewidth=1)
    train_eps = sorted({round(float(e) * 255, 4) for e in pd.concat(chosen.values())["params.eps"]})
    for eps in train_eps:
        for ax in (absolute, difference):
            ax.axvline(eps, color="red", linewidth=1, linestyle="--")
    label = attack_name(attack)
    absolute.set_ylabel(f"{label} accuracy (%)")
    difference.set_ylabel("difference (percentage points)")
    absolute.set_title("(a) accuracy", fontsize=10)
    difference.set_title(f"(b) {first} minus {second}", fontsize=10)
    for ax in (absolute, difference):
        ax.set_xlabel("attack budget ε (/255); red dashed: training ε")
        ax.grid(alpha=0.3)
    fig.suptitle(f"Fig. 5. {label} across budgets ({datasets(pd.concat(chosen.values()))}; {n} test points, "
                 f"{checkpoint} checkpoint, {seeds_note(found)})", fontsize=9)
    outside_legend(fig, (absolute, difference), 3)
    return fig


def diff(a: Cell, b: Cell) -> Cell:
    """``a - b``; the std of a difference of independent runs, sqrt(std_a^2 + std_b^2), when both have seeds."""
    std = (a.std**2 + b.std**2) ** 0.5 if a.std is not None and b.std is not None else None
    return Cell(a.mean - b.mean, std, min(a.n, b.n))


# --- Fig. 3: natural and robust accuracy against lambda ---------------------------------------------------------------

def fig3(sweep: SweepRuns, metric: str | None = None) -> Figure:
    """Fig. 3: natural (top) and robust (bottom) accuracy (%) against lambda, on separate axes so that each trend
    shows at its own scale; mean over seeds with +-std error bars."""
    df, metrics, found = lambda_cells(sweep, metric)
    fig = Figure(figsize=(5.0, 5.0), layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    for ax, series, m in zip(axes, ("natural", "robust"), metrics):
        draw(ax, series, metric_label(m), sorted((key[0], c) for key, c in found[m].items()))
        name = "natural" if m == metrics[0] else attack_name(m.partition("/")[2])
        ax.set_ylabel(f"{name} accuracy (%)")
        ax.grid(alpha=0.3)
    axes[1].set_xlabel("λ (weight of the KL term, Eq. 7)")
    variant = ", ".join(sorted({method_label(r) for _, r in df.iterrows()}))
    checkpoint = metrics[1].partition("/")[0]
    fig.suptitle(f"Fig. 3. Sensitivity of {variant} to λ\n({datasets(df)}; {checkpoint} checkpoint; "
                 f"{seeds_note(found[metrics[0]])})", fontsize=9)
    return fig
