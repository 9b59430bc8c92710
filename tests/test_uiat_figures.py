"""UIAT Figs. 1-5 (analysis/uiat/figures.py), the data behind them: the signed-eps / CE-halves evaluation
(trainables/signed_eval.py, sweeps/reevaluate.py --ce-halves) and the per-epoch training-subset evaluation
(train_eval_n), and Table 6's LaTeX check marks.

The figures are drawn from runs seeded in the layout sweeps/uiat_figures.py and sweeps/reevaluate.py write (the
re-evaluation keys come from reevaluate.metric_key itself), and the tests read back what each figure plots.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time

import pandas as pd
import pytest
import torch
from matplotlib.container import ErrorbarContainer
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from torch import nn

from analysis import uiat_tables
from analysis.render import render
from analysis.uiat import figures as uiat_figures
from analysis.uiat.tables import TABLE6_ROWS, table6
from runstore.reader import SweepRuns, load_sweep
from sweeps import reevaluate, uiat_presets
from sweeps import uiat_figures as figure_sweep
from tests_support import TINY_TRIAL
from trainables.config import ConfigError, RunSettings
from trainables.evaluation import evaluate
from trainables.methods.baseline import Baseline
from trainables.runtime import Trial
from trainables.signed_eval import ce_halves, clean_losses, signed_points
from trainables.trial_data import TrialData

EPS = (-8, -4, 4, 8)  # re-evaluated signed eps, in 1/255
SEEDS = (0, 1)
N = 100
BUDGETS = (4, 8, 12)


# --- the evaluation behind Figs. 1 and 4 ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def linear_task():
    """A linear classifier on 8x8 images that is right on 40 of 64 points: its own argmax labels for those, another
    class for the rest, so there is room both to rise (inverse attack) and to fall (attack)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(64, 3, 8, 8, generator=generator)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4))
    with torch.no_grad():
        model[1].weight.copy_(torch.randn(4, 192, generator=generator) * 0.05)
        model[1].bias.zero_()
        predicted = model(x).argmax(dim=1)
    y = predicted.clone()
    y[40:] = (predicted[40:] + 1) % 4
    return model.eval(), x, y


def test_inverse_eps_raises_accuracy_and_forward_eps_lowers_it_in_both_halves(linear_task):
    model, x, y = linear_task
    by_eps = {eps: {name: right.float().mean().item() for name, (_, right) in signed_points(
        model, x, y, eps=eps / 255, attacks=("clean", "pgd5"), halves=True, device="cpu", seed=3).items()}
        for eps in (-4, 4)}
    clean = by_eps[4]["clean"]
    assert clean == pytest.approx(40 / 64) and by_eps[-4]["clean"] == clean  # no eps changes clean accuracy
    assert by_eps[-4]["pgd5"] > clean > by_eps[4]["pgd5"], by_eps
    # The halves by clean cross-entropy: the lower-loss half holds the correct points, the higher-loss one the rest,
    # and the inverse attack rectifies misclassified points there (the paper's point), as no forward attack can.
    low, high = by_eps[4]["clean/low_ce"], by_eps[4]["clean/high_ce"]
    assert low == 1.0 and high == pytest.approx(8 / 32)
    assert by_eps[-4]["pgd5/high_ce"] > high >= by_eps[4]["pgd5/high_ce"]
    for result in by_eps.values():  # two equal halves average to the whole
        for attack in ("clean", "pgd5"):
            assert (result[f"{attack}/low_ce"] + result[f"{attack}/high_ce"]) / 2 == pytest.approx(result[attack])
    # The forward attack is the evaluation protocol's PGD: same points, same seed, same accuracy.
    assert by_eps[4]["pgd5"] == evaluate(model, x, y, eps=4 / 255, attacks=("pgd5",), device="cpu", seed=3)["pgd5"]


def test_halves_split_by_clean_cross_entropy(linear_task):
    model, x, y = linear_task
    losses = clean_losses(model, x[:15], y[:15], batch_size=4, device=torch.device("cpu"))
    halves = ce_halves(losses)
    assert len(halves["low_ce"]) == 7 and len(halves["high_ce"]) == 8  # an odd count: the extra point goes high
    assert sorted(torch.cat(list(halves.values())).tolist()) == list(range(15))
    assert losses[halves["low_ce"]].max() <= losses[halves["high_ce"]].min()
    with pytest.raises(ValueError, match="clean and pgd<k> attacks, not 'cw20'"):
        signed_points(model, x, y, eps=-4 / 255, attacks=("cw20",), device="cpu")


def test_reevaluation_keys_and_flags_for_signed_eps_and_halves(capsys):
    assert reevaluate.parse_eps("-8/255") == -8 / 255
    assert reevaluate.metric_key("best", "pgd20", -8 / 255, 500) == "reeval/best/pgd20/eps-8_255/n500"
    assert reevaluate.metric_key("best", "clean", -8 / 255, 500, "low_ce") == "reeval/best/clean/n500/low_ce"
    # A run with the overall accuracy but not its halves still needs the halves.
    logged = {reevaluate.metric_key("best", a, -8 / 255, 500) for a in ("clean", "pgd20")}
    assert reevaluate.missing_groups(logged, "best", ["clean", "pgd20"], [-8 / 255], 500) == ()
    assert reevaluate.missing_groups(logged, "best", ["clean", "pgd20"], [-8 / 255], 500, halves=True) == (
        (-8 / 255, ("clean", "pgd20")),)
    for flags in (["--attacks", "autoattack", "--eps=-8/255"], ["--attacks", "clean,cw20", "--ce-halves"]):
        with pytest.raises(SystemExit):
            reevaluate.main(["--sweep", "any", *flags])
        assert "take clean and pgd<k> attacks only" in capsys.readouterr().err


# --- the per-epoch training-subset evaluation behind Fig. 2 ---------------------------------------------------------

def test_train_eval_n_evaluates_a_sample_of_the_training_images_with_the_selection():
    settings = RunSettings("sqlite:///unused.db", "t")
    cfg = Baseline.Config.from_dict({**TINY_TRIAL, "train_eval_n": 48})
    method = Baseline(cfg, TrialData.load(cfg, None), torch.device("cpu"), settings)
    metrics = Trial(method).end_epoch(0)
    points = method.data.train_eval_points(48, cfg.subset_seed)  # 48 of the training images, drawn once
    assert len(points) == 48 and torch.equal(points.images, method.data.train_eval_points(48, 0).images)
    expected = evaluate(method.model, points.images, points.labels, eps=cfg.eps, attacks=("clean", "pgd3"),
                        device="cpu", seed=cfg.seed)
    assert {k: v for k, v in metrics.items() if k.startswith("train_eval/")} == {
        "train_eval/clean": expected["clean"], "train_eval/pgd3": expected["pgd3"]}
    # curve_steps adds the curves' PGD on both subsets; the selection's PGD still chooses the checkpoint.
    curves = Baseline(Baseline.Config.from_dict({**TINY_TRIAL, "train_eval_n": 48, "curve_steps": 5}), method.data,
                      torch.device("cpu"), settings)
    logged = Trial(curves).end_epoch(0)
    assert {"select/pgd3", "select/pgd5", "train_eval/pgd3", "train_eval/pgd5"} <= set(logged)
    assert curves.selection_metric() == method.selection_metric()
    off = Baseline(Baseline.Config.from_dict(TINY_TRIAL), method.data, torch.device("cpu"), settings)
    assert not any(k.startswith("train_eval/") for k in Trial(off).end_epoch(0))
    with pytest.raises(ConfigError, match="train_eval_n=-1 must not be negative"):
        Baseline.Config.from_dict({**TINY_TRIAL, "train_eval_n": -1})


def test_fig2_plots_the_curves_own_pgd_where_the_runs_logged_one():
    runs = pd.DataFrame({"params.attack_steps": ["10", "10"], "params.curve_steps": ["20", "20"]})
    assert uiat_figures.curve_keys(runs)["test/robust"] == "select/pgd20"
    # Runs without curve_steps (or with 0) keep their selection attack's curves.
    assert uiat_figures.curve_keys(runs.drop(columns="params.curve_steps"))["train/robust"] == "train_eval/pgd10"
    assert uiat_figures.curve_keys(runs.assign(**{"params.curve_steps": "0"}))["test/robust"] == "select/pgd10"


def test_the_figure_sweep_evaluates_a_training_subset_and_prints_its_evaluations():
    space = figure_sweep.baseline_space("paper", 1)
    assert space["train_eval_n"] == 1000 and space["training"] == {"grid_search": ["standard", "pgd_at", "trades"]}
    assert figure_sweep.uiat_space("smoke", 2)["train_eval_n"] == 64
    assert space["curve_steps"] == figure_sweep.uiat_space("paper", 1)["curve_steps"] == 20  # Fig. 2 plots PGD-20
    steps = figure_sweep.evaluations("smoke", "figs")
    assert "sweeps/reevaluate.py --sweep figs-baselines --attacks clean,pgd20 --ce-halves " \
           "--eps=-8/255,-4/255,4/255,8/255 --n 128" in steps
    assert "analysis/uiat_tables.py fig5 --sweep figs --sweep figs-baselines --out fig5.png" in steps
    assert "analysis/uiat_tables.py fig2 --sweep figs --sweep figs-baselines --out fig2.png" in steps
    # The paper preset trains Fig. 2's two runs for 200 epochs in sweeps of their own, which fig2 reads.
    assert "analysis/uiat_tables.py fig2 --sweep figs-fig2 --sweep figs-fig2-baselines --out fig2.png" in \
        figure_sweep.evaluations("paper", "figs")


# --- the figures, from runs seeded in the sweeps' layout ------------------------------------------------------------

def accuracy(method: str, half: str, eps: int, seed: int) -> float:
    """A seeded value per point: higher for the lower-loss half, falling with eps, apart per method and seed."""
    base = {"Natural Training": 0.50, "PGD-AT": 0.60, "TRADES": 0.62, "UIAT": 0.66, "UIAT (One-off)": 0.65}[method]
    shift = {"low_ce": 0.25, "high_ce": -0.25, "": 0.0}[half]
    return round(min(1.0, max(0.0, base + shift - 0.03 * eps + 0.01 * seed)), 4)


def autoattack(method: str, eps: int, seed: int) -> float:
    start, slope = (0.80, 0.04) if method == "UIAT (One-off)" else (0.75, 0.03)  # ahead at 4/255, behind above
    return round(start - slope * eps + 0.02 * seed, 4)


def curve(method: str, series: str, epoch: int, seed: int) -> float:
    """Training accuracy keeps rising; PGD-AT's test robustness falls after epoch 2 (robust overfitting)."""
    rise = 0.05 * epoch
    fall = 0.04 * max(0, epoch - 2) if (method, series) == ("PGD-AT", "select/pgd3") else 0.0
    start = 0.3 if series.endswith("pgd3") else 0.5
    return round(start + (rise if series.startswith("train_eval") else min(rise, 0.1) - fall) + 0.01 * seed, 4)


SWEEP_RUNS = {
    "figs": {"UIAT": {"components": "uag+fr+iam", "oneoff": False},
             "UIAT (One-off)": {"components": "uag+fr", "oneoff": True}},
    "figs-baselines": {"Natural Training": {"training": "standard"}, "PGD-AT": {"training": "pgd_at"},
                       "TRADES": {"training": "trades"}},
}


def reeval_metrics(method: str, seed: int) -> dict[str, float]:
    metrics = {}
    for half in ("", "low_ce", "high_ce"):
        metrics[reevaluate.metric_key("best", "clean", EPS[0] / 255, N, half)] = accuracy(method, half, 0, seed)
        for eps in EPS:
            metrics[reevaluate.metric_key("best", "pgd20", eps / 255, N, half)] = accuracy(method, half, eps, seed)
    for eps in BUDGETS:
        metrics[reevaluate.metric_key("best", "autoattack", eps / 255, N)] = autoattack(method, eps, seed)
    return metrics


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """Two sweeps as sweeps/uiat_figures.py names them, two seeds per method: final, re-evaluated and per-epoch
    metrics. One store for the module: creating the SQLite schema takes seconds."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp_id = client.create_experiment("uiat-figures")
    lam_parent = client.create_run(exp_id, run_name="lam", tags={"sweep": "lam"}).info.run_id
    for name, methods in SWEEP_RUNS.items():
        parent = client.create_run(exp_id, run_name=name, tags={"sweep": name}).info.run_id
        for method, params in methods.items():
            for seed in SEEDS:
                tags = {"sweep_run_id": parent, "trial_id": f"t{time.perf_counter_ns()}",
                        "method": "uiat" if "components" in params else "baseline"}
                run_id = client.create_run(exp_id, run_name=f"{method} {seed}", tags=tags).info.run_id
                recipe = {"dataset": "synthetic", "model": "tiny-cnn", "eps": 8 / 255, "attack_steps": 3,
                          "eval_n": 64, "select_on": "test", "train_eval_n": 48, "seed": seed, **params}
                now = int(time.time() * 1000)
                metrics = [Metric(k, v, now, 0) for k, v in reeval_metrics(method, seed).items()]
                metrics += [Metric(key, curve(method, key, epoch, seed), now + epoch, epoch - 1)
                            for key in ("train_eval/clean", "train_eval/pgd3", "select/clean", "select/pgd3")
                            for epoch in (1, 2, 3, 4)]
                client.log_batch(run_id, metrics=metrics, params=[Param(k, str(v)) for k, v in recipe.items()])
                client.set_terminated(run_id)
        client.set_terminated(parent)
    # Fig. 3's lambda sweep: one-off UIAT at two lambdas, natural accuracy falling and AutoAttack rising with lambda.
    for lam, clean, robust in ((1.0, 0.86, 0.46), (1.0, 0.84, 0.48), (6.0, 0.80, 0.50)):
        tags = {"sweep_run_id": lam_parent, "trial_id": f"t{time.perf_counter_ns()}", "method": "uiat"}
        run_id = client.create_run(exp_id, run_name=f"lam {lam}", tags=tags).info.run_id
        params = {"lam": lam, "components": "uag+fr", "oneoff": True, "dataset": "synthetic", "model": "tiny-cnn"}
        client.log_batch(run_id, metrics=[Metric("best/clean", clean, 0, 0), Metric("best/autoattack", robust, 0, 0)],
                         params=[Param(k, str(v)) for k, v in params.items()])
        client.set_terminated(run_id)
    client.set_terminated(lam_parent)
    return uri


@pytest.fixture(scope="module")
def sweeps(store) -> list[SweepRuns]:
    return [load_sweep(name, tracking_uri=store) for name in SWEEP_RUNS]


def plotted(ax) -> dict[str, tuple[list[float], list[float], list[float]]]:
    """label -> (x, y, error bar half-widths) of every error-bar series of ``ax``."""
    series = {}
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer):
            line, _caps, (bars, *_) = container.lines
            x, y = (list(map(float, v)) for v in line.get_data())
            errors = [float(abs(seg[1][1] - seg[0][1]) / 2) for seg in bars.get_segments()]
            series[container.get_label()] = (x, y, errors)
    return series


def mean_std(values: list[float]) -> tuple[float, float]:
    return 100 * statistics.mean(values), 100 * statistics.stdev(values)


@pytest.mark.parametrize(("name", "methods"), [("fig1", ("Natural Training", "PGD-AT")), ("fig4", ("TRADES", "UIAT"))])
def test_signed_eps_figures_plot_each_half_per_method_with_seed_error_bars(sweeps, name, methods):
    figure = getattr(uiat_figures, name)(sweeps)
    axes = figure.axes
    assert [ax.get_title() for ax in axes] == [f"({letter}) {m}" for letter, m in zip("ab", methods)]
    for ax, method in zip(axes, methods):
        series = plotted(ax)
        assert set(series) == set(uiat_figures.HALVES.values())
        for half, label in uiat_figures.HALVES.items():
            x, y, errors = series[label]
            assert x == [-8, -4, 0, 4, 8]  # eps 0 is the half's clean accuracy
            for eps, value, error in zip(x, y, errors):
                mean, std = mean_std([accuracy(method, half, int(eps), seed) for seed in SEEDS])
                assert value == pytest.approx(mean) and error == pytest.approx(std)
        (clean,) = [line for line in ax.get_lines() if line.get_label() == "all points, clean"]
        assert clean.get_ydata()[0] == pytest.approx(mean_std([accuracy(method, "", 0, s) for s in SEEDS])[0])
        gaps = [t.get_text() for t in ax.texts if t.get_text()]  # the arrow is an annotation without text
        if name == "fig4":  # the gap between the halves at 8/255, in points
            low, high = (mean_std([accuracy(method, h, 8, s) for s in SEEDS])[0] for h in ("low_ce", "high_ce"))
            assert gaps == [f"gap {low - high:.1f} pts"]
        else:
            assert gaps == []
    (legend,) = figure.legends  # one legend, outside the panels
    assert [t.get_text() for t in legend.get_texts()] == [*uiat_figures.HALVES.values(), "all points, clean"]


def test_fig2_plots_training_and_test_curves_per_method(sweeps):
    figure = uiat_figures.fig2(sweeps)
    axes = figure.axes
    assert [ax.get_title() for ax in axes[:2]] == ["(a) PGD-AT", "(b) UIAT (One-off)"]
    assert [ax.get_ylabel() for ax in (axes[0], axes[2])] == ["natural accuracy (%)", "PGD-3 accuracy (%)"]
    keys = {("natural", "train"): "train_eval/clean", ("natural", "test"): "select/clean",
            ("robust", "train"): "train_eval/pgd3", ("robust", "test"): "select/pgd3"}
    for index, ax in enumerate(axes):
        kind, method = ("natural", "robust")[index // 2], uiat_figures.FIG2_METHODS[index % 2]
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert len(lines) == 2
        for subset in ("train", "test"):
            prefix = {"train": "training set", "test": "test set"}[subset]
            (label,) = [text for text in lines if text.startswith(prefix)]
            x, y = lines[label].get_data()
            assert list(x) == [1, 2, 3, 4]
            expected = [mean_std([curve(method, keys[kind, subset], e, s) for s in SEEDS])[0] for e in x]
            assert list(y) == pytest.approx(expected)
    robust_test = axes[2].get_lines()[1].get_ydata()
    assert robust_test[-1] < robust_test[1], "PGD-AT's seeded robust overfitting shows as a falling test curve"


def test_fig5_plots_both_methods_and_their_difference(sweeps):
    figure = uiat_figures.fig5(sweeps)
    absolute, difference = figure.axes
    series = plotted(absolute)
    assert set(series) == {"UIAT (One-off)", "TRADES"}
    for method, (x, y, _) in series.items():
        assert x == list(BUDGETS)
        assert y == pytest.approx([mean_std([autoattack(method, e, s) for s in SEEDS])[0] for e in BUDGETS])
    ((label, (x, y, errors)),) = plotted(difference).items()
    assert label == "UIAT (One-off) − TRADES"
    assert y == pytest.approx([100 * (autoattack("UIAT (One-off)", e, 0) - autoattack("TRADES", e, 0)) for e in x])
    assert errors == pytest.approx([2 ** 0.5 * mean_std([0.0, 0.02])[1]] * 3)  # both methods' seed std combined
    assert y[0] > 0 > y[-1]
    assert 8.0 in [line.get_xdata()[0] for line in difference.get_lines()]  # the training eps, for reference


def test_fig3_puts_natural_and_robust_accuracy_on_separate_axes(store):
    figure = uiat_figures.fig3(load_sweep("lam", tracking_uri=store))
    top, bottom = figure.axes
    (natural,) = plotted(top).values()
    (robust,) = plotted(bottom).values()
    assert natural[0] == robust[0] == [1.0, 6.0]
    assert natural[1] == pytest.approx([85.0, 80.0]) and robust[1] == pytest.approx([47.0, 50.0])
    assert bottom.get_ylim()[1] < top.get_ylim()[0], "each trend at its own scale"


def test_figure_commands_write_pngs_and_name_the_missing_evaluation(store, sweeps, tmp_path, capsys):
    out = tmp_path / "fig4.png"
    uiat_tables.main(["fig4", "--sweep", "figs", "--sweep", "figs-baselines", "--tracking-uri", store,
                      "--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "wrote" in capsys.readouterr().out
    with pytest.raises(SystemExit, match=r"no pgd50 re-evaluation per half.*run sweeps/reevaluate.py"):
        uiat_tables.main(["fig1", "--sweep", "figs-baselines", "--tracking-uri", store, "--attack", "pgd50"])
    with pytest.raises(SystemExit, match="fig1 needs Natural Training and PGD-AT runs"):
        uiat_tables.main(["fig1", "--sweep", "figs", "--tracking-uri", store])


# --- Table 6 in LaTeX ------------------------------------------------------------------------------------------------

def test_table6_latex_has_math_mode_check_marks_that_pdflatex_compiles(tmp_path):
    rows = [{"tags.method": "uiat", "params.components": c, "params.oneoff": "False", "params.dataset": "synthetic",
             "params.model": "tiny-cnn", "metrics.best/clean": 0.8, "metrics.best/pgd20": 0.5}
            for c in TABLE6_ROWS]
    table = table6(SweepRuns("s", "p", "e", pd.DataFrame(rows), {}, client=None))
    text = render(table, "latex")
    assert "✓" not in text and text.count("$\\checkmark$") == 8  # 0 + 1 + 2 + 2 + 3 marks in the five rows
    assert "\\usepackage{amssymb}" in text.splitlines()[0]  # the packages it needs, named in its first line
    if shutil.which("pdflatex") is None:
        return  # Debian's texlive-latex-base: with it, the document compiles here
    (tmp_path / "t.tex").write_text(render(table, "latex-doc"), encoding="utf-8")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-2000:]


# --- end to end: the smoke sweep, its re-evaluation, the figures ----------------------------------------------------

@pytest.mark.slow  # two reduced sweeps (5 trials) and a re-evaluation: 75 s on 2 shared CPUs
def test_smoke_sweep_and_reevaluation_draw_figures_1_and_2(ray_local, tmp_path, monkeypatch, capsys):
    for key, value in {"train_n": 128, "epochs": 2, "eval_n": 32, "final_n": 64, "oneoff_epoch": 0}.items():
        monkeypatch.setitem(uiat_presets.PRESETS["smoke"], key, value)
    monkeypatch.setitem(figure_sweep.TRAIN_EVAL_N, "smoke", 32)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    figure_sweep.main(["--tracking-uri", uri, "--storage-path", str(tmp_path / "ray")])
    assert "sweeps/reevaluate.py --sweep uiat-figures-smoke-baselines --attacks clean,pgd20 --ce-halves" in \
        capsys.readouterr().out
    plan = reevaluate.main(["--sweep", "uiat-figures-smoke-baselines", "--tracking-uri", uri, "--attacks",
                            "clean,pgd5", "--ce-halves", "--eps=-8/255,8/255", "--n", "32"])
    assert len(plan.jobs) == 3

    fig1 = uiat_figures.fig1([load_sweep("uiat-figures-smoke-baselines", tracking_uri=uri)], attack="pgd5")
    for ax in fig1.axes:
        series = plotted(ax)
        assert all(x == [-8, 0, 8] for x, _, _ in series.values())
        low, high = (series[label][1] for label in uiat_figures.HALVES.values())
        assert all(a >= b for a, b in zip(low, high)), "the lower-loss half is the more accurate one"
        assert low[0] >= low[1] >= low[2], "inverse attack >= clean >= attack"
    out = tmp_path / "fig2.png"
    uiat_tables.main(["fig2", "--sweep", "uiat-figures-smoke", "--sweep", "uiat-figures-smoke-baselines",
                      "--tracking-uri", uri, "--out", str(out)])
    assert out.stat().st_size > 1000
