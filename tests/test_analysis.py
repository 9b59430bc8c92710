"""analysis/: tables and Fig. 3 read from a real MLflow SQLite store laid out the way the sweeps write it."""

from __future__ import annotations

import csv
import io
import statistics
import time

import pandas as pd
import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from analysis import biamat_tables
from analysis.biamat.figures import fig3
from analysis.biamat.tables import table1, table4, table12, table13
from analysis.cells import STOPPED_NOTE, Cell, aggregate
from analysis.render import emit, to_csv, to_latex, to_markdown
from analysis.runs import distinguishing_params, resolve_metric
from runstore.reader import StoreNotFoundError, load_sweep, selection_protocol

EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
NAME_KEYS = ("variant", "training", "labels", "aux_datasets", "alpha", "pi", "seed")
ATTACKS = ("clean", "pgd20", "pgd100", "cw100", "autoattack")

# Table 13 sweep: AutoAttack accuracy per (variant, pi), one value per seed.
PI_AA = {
    ("at", 0.45): [0.4985, 0.5015],
    ("at", 0.55): [0.5078, 0.5100],
    ("trades", 0.45): [0.5642, 0.5600],
    ("trades", 0.55): [0.5621, 0.5601],
}
# n_high/n_aux of the last epoch per (variant, pi), one value per seed; (trades, 0.55) logged none.
PI_HIGH = {("at", 0.45): [0.90, 0.94], ("at", 0.55): [0.40, 0.44], ("trades", 0.45): [0.71, 0.69]}
# Table 1 sweep: one seed per (labels, aux) cell; the better row differs per dataset.
LABELS_AA = {("aux", "svhn"): 0.4744, ("uniform", "svhn"): 0.4853,
             ("aux", "imagenet32"): 0.5033, ("uniform", "imagenet32"): 0.4981}
BASELINE_AA = [0.4800, 0.4906]  # pgd_at seeds in the Table 1 sweep itself
OTHER_BASELINE_AA = 0.4500  # pgd_at in a separate baselines sweep
FIG3_AUX = ("cifar100", "imagenet32", "svhn")
# Table 4 sweep: (aux_datasets as logged, aux_mix) -> AA; None: a run from before aux_mix was logged.
AUX_SETS_AA = {("imagenet32", None): 0.5078, ("svhn,cifar100", "equal"): 0.4950, ("cifar100", "concatenated"): 0.5008,
               ("svhn,cifar100", "concatenated"): 0.4988, ("svhn", "concatenated"): 0.4861}
# Table 12 search (smoke: only clean and PGD-20): (variant, alpha, pi) -> (select/pgd10 on the held-out split,
# best/pgd20 on the test set). The test set would pick other winners than the selection split does.
SEARCH_PGD20 = {("at", 1.0, 0.55): (0.40, 0.31), ("at", 0.5, 0.60): (0.35, 0.36), ("at", 0.5, 0.45): (0.30, 0.33),
                ("trades", 0.5, 0.50): (0.38, 0.41), ("trades", 1.0, 0.70): (0.42, 0.39)}


class Store:
    """Writes experiments, parent runs and child runs with the tags, params and metrics the trial runtime logs."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.client = MlflowClient(uri)

    def sweep(self, experiment: str, name: str, status: str = "FINISHED", **tags: str) -> tuple[str, str]:
        exp = self.client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp else self.client.create_experiment(experiment, tags=EXPERIMENT_KIND)
        parent = self.client.create_run(exp_id, run_name=name, tags={"sweep": name, "git_commit": "abc", **tags})
        if status != "RUNNING":
            self.client.set_terminated(parent.info.run_id, status)
        return exp_id, parent.info.run_id

    def trial(self, sweep: tuple[str, str], method: str, params: dict, final: dict[str, float], *,
              status: str = "FINISHED", history: dict[str, list[tuple[int, float]]] | None = None) -> str:
        exp_id, parent_id = sweep
        tags = {"sweep_run_id": parent_id, "trial_id": f"t{time.perf_counter_ns()}", "method": method,
                "git_commit": "abc"}
        if status == "KILLED":
            tags["stopped_early"] = "true"
        # Named like run_name() in trainables/runtime.py names them: the method, then what differs.
        name = " ".join([method, *(f"{k}={params[k]}" for k in NAME_KEYS if k in params)])
        run_id = self.client.create_run(exp_id, run_name=name, tags=tags).info.run_id
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in final.items()]
        for key, points in (history or {}).items():
            metrics += [Metric(key, value, now + i, step) for i, (step, value) in enumerate(points)]
        self.client.log_batch(run_id, metrics=metrics, params=[Param(k, str(v)) for k, v in params.items()],
                              tags=[RunTag("model", "tiny-cnn")])
        self.client.set_terminated(run_id, status)
        return run_id


def final_metrics(aa: float, attacks: tuple[str, ...] = ATTACKS) -> dict[str, float]:
    """best/ and last/ metrics; weaker attacks leave higher accuracy so a wrong pick shows up in the numbers."""
    bonus = {"clean": 0.35, "pgd20": 0.05, "pgd100": 0.04, "cw100": 0.03, "autoattack": 0.0}
    return {f"{tag}/{a}": aa + bonus[a] - (0.01 if tag == "last" else 0) for tag in ("best", "last") for a in attacks}


# The recipe params the trials of the AT rows log; a baseline compared with them must log the same.
AT_RECIPE = {"model": "wrn-28-10", "lr_milestones": "0.6,0.9", "epochs": 100, "weight_decay": 2e-4}


def biamat(variant: str, pi: float, seed: int, *, labels: str = "gated", aux: str = "imagenet32",
           alpha: float = 1.0) -> dict:
    recipe = AT_RECIPE if variant == "at" else {"model": "wrn-34-10", "lr_milestones": "100,105", "epochs": 110,
                                                 "weight_decay": 5e-4}
    return {"variant": variant, "pi": pi, "alpha": alpha, "labels": labels, "aux_datasets": aux, "dataset": "cifar10",
            "seed": seed, **recipe}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    # Creating the SQLite schema is the slow part (seconds): one store serves the whole module.
    s = Store(f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}")

    pi_sweep = s.sweep("biamat-pi-ablation", "pi-abl")
    for (variant, pi), values in PI_AA.items():
        for seed, aa in enumerate(values):
            s.trial(pi_sweep, "biamat", biamat(variant, pi, seed), final_metrics(aa))
    # Trials that never finished must not move a mean: a crash and a scheduler stop with absurd scores.
    s.trial(pi_sweep, "biamat", biamat("at", 0.45, 2), final_metrics(0.99), status="FAILED")
    s.trial(pi_sweep, "biamat", biamat("at", 0.55, 2), {"select/pgd10": 0.01}, status="KILLED")
    # The same grid with the gate's n_high/n_aux per epoch, as the runtime logs it; the last epoch is the one shown.
    # (trades, 0.55) logged none (a trial from before the metric existed).
    gate_sweep = s.sweep("biamat-pi-ablation", "pi-gate")
    for (variant, pi), values in PI_AA.items():
        for seed, aa in enumerate(values):
            last = PI_HIGH.get((variant, pi))
            history = {"train/high_fraction": [(1, 0.99), (2, last[seed])]} if last else None
            s.trial(gate_sweep, "biamat", biamat(variant, pi, seed), final_metrics(aa), history=history)

    labels_sweep = s.sweep("biamat-labels", "labels")
    for (labels, aux), aa in LABELS_AA.items():
        s.trial(labels_sweep, "biamat", biamat("at", 0.55, 0, labels=labels, aux=aux), final_metrics(aa))
    for seed, aa in enumerate(BASELINE_AA):
        s.trial(labels_sweep, "baseline", {"training": "pgd_at", "dataset": "cifar10", "seed": seed, **AT_RECIPE},
                final_metrics(aa))
    s.trial(labels_sweep, "baseline", {"training": "standard", "dataset": "cifar10", "seed": 0}, final_metrics(0.0))
    s.trial(labels_sweep, "baseline", {"training": "trades", "dataset": "cifar10", "seed": 0}, final_metrics(0.53))
    for i, aux in enumerate(FIG3_AUX):
        for seed in range(2):
            # Warm-up is epochs 0-1: the ratio exists from epoch 2 on. The imagenet32 seed-0 run was resumed after
            # epoch 3 and logged epoch 3 twice; the later value is the one that counts.
            points = [(epoch, 0.1 * i + 0.02 * epoch + 0.01 * seed) for epoch in range(2, 6)]
            if aux == "imagenet32" and seed == 0:
                points.insert(1, (3, 0.95))
            s.trial(labels_sweep, "biamat", biamat("at", 0.55, seed, aux=aux), final_metrics(0.5),
                    history={"train/high_fraction": points})

    other = s.sweep("baselines", "baselines-smoke")
    s.trial(other, "baseline", {"training": "pgd_at", "dataset": "cifar10", "seed": 0, **AT_RECIPE},
            final_metrics(OTHER_BASELINE_AA))
    # The old baselines preset's recipe: decays at 50% / 75% and weight decay 5e-4.
    mismatched = s.sweep("baselines", "baselines-other-recipe")
    s.trial(mismatched, "baseline", {"training": "pgd_at", "dataset": "cifar10", "seed": 0, **AT_RECIPE,
                                     "lr_milestones": "0.5,0.75", "weight_decay": 5e-4}, final_metrics(0.47))

    aux_sets = s.sweep("biamat-aux-sets", "aux-sets")
    for (aux, mix), aa in AUX_SETS_AA.items():
        s.trial(aux_sets, "biamat", biamat("at", 0.55, 0, aux=aux) | ({"aux_mix": mix} if mix else {}),
                final_metrics(aa))

    search = s.sweep("biamat-search", "search")
    for (variant, alpha, pi), (selection, score) in SEARCH_PGD20.items():
        s.trial(search, "biamat", biamat(variant, pi, 0, alpha=alpha),
                final_metrics(score - 0.05, ("clean", "pgd20")) | {"select/pgd10": selection})
    s.trial(search, "biamat", biamat("at", 0.3, 0, alpha=0.1),
            final_metrics(0.9, ("clean", "pgd20")) | {"select/pgd10": 0.9}, status="KILLED")
    return s


def cell_texts(table) -> list[list[str]]:
    return list(csv.reader(io.StringIO(to_csv(table))))


def test_load_sweep_keeps_finished_trials_with_numeric_params(store):
    sweep = load_sweep("pi-abl", tracking_uri=store.uri)
    assert len(sweep.runs) == 8
    assert sweep.skipped == {"FAILED": 1, "KILLED": 1}
    assert "8 finished trials; skipped 1 FAILED, 1 KILLED" in sweep.summary()
    assert sweep.runs["params.pi"].dtype.kind == "f" and sweep.runs["params.seed"].dtype.kind == "i"
    assert set(sweep.runs["params.aux_datasets"]) == {"imagenet32"}
    assert set(sweep.runs["params.lr_milestones"]) == {"0.6,0.9", "100,105"}  # comma lists stay strings
    assert resolve_metric(None, sweep.runs) == "best/autoattack"
    with pytest.raises(ValueError, match="best/pgd5.*best/autoattack"):
        resolve_metric("best/pgd5", sweep.runs)


def test_attacks_sort_by_strength_and_print_as_the_papers_name_them():
    """The strongest attack a table shows by default: AutoAttack, then more steps, CW above PGD, FGSM lowest."""
    from analysis.runs import metric_label
    from runstore.reader import attack_strength

    order = ["fgsm", "pgd1", "cw1", "pgd20", "cw20", "pgd100", "autoattack"]
    assert sorted(["pgd100", "fgsm", "autoattack", "cw1", "pgd20", "pgd1", "cw20"], key=attack_strength) == order
    assert attack_strength("clean") is None
    assert [metric_label(f"best/{a}", checkpoint=False) for a in ("fgsm", "pgd20", "cw100", "autoattack")] == [
        "FGSM", "PGD-20", "CW-100", "AutoAttack"]


def test_table13_mean_and_std_over_seeds(store):
    table = table13(load_sweep("pi-abl", tracking_uri=store.uri))
    assert table.header == ["π", "AT+BiaMAT", "TRADES+BiaMAT"]
    assert [row[0] for row in table.rows] == ["0.45", "0.55"]
    for i, pi in enumerate((0.45, 0.55)):
        for j, variant in enumerate(("at", "trades")):
            cell = table.rows[i][j + 1]
            assert isinstance(cell, Cell) and cell.n == 2
            assert cell.mean == pytest.approx(statistics.mean(PI_AA[variant, pi]))
            assert cell.std == pytest.approx(statistics.stdev(PI_AA[variant, pi]))
    assert cell_texts(table)[1] == ["0.45", "50.00 ± 0.21", "56.21 ± 0.30"]
    assert "AutoAttack (best checkpoint)" in table.title and "primary CIFAR-10, auxiliary ImageNet" in table.title
    assert "mean ± sample std over 2 seeds per cell" in to_markdown(table)


def test_a_budgeted_table13_marks_the_rows_stopped_at_a_rung_and_never_averages_them_in(store):
    sweep = store.sweep("biamat-pi-ablation", "pi-budget")
    for seed in range(2):
        store.trial(sweep, "biamat", biamat("at", 0.45, seed), final_metrics(0.50))
    # pi 0.55 was stopped at the rung after epoch 10 (logged as step 9): its two seeds' scores there, 0.30 and 0.32.
    for seed, score in enumerate((0.30, 0.32)):
        run_id = store.trial(sweep, "biamat", biamat("at", 0.55, seed), {"rung/score": score, "epoch": 9},
                             status="KILLED")
        store.client.set_tag(run_id, "end_reason", "stopped_early")
    runs = load_sweep("pi-budget", tracking_uri=store.uri)
    assert len(runs.runs) == 2 and len(runs.stopped) == 2
    table = table13(runs)
    assert cell_texts(table)[1:] == [["0.45", "50.00 ± 0.00"], ["0.55", "31.00* (epoch 10)"]]
    assert isinstance(table.rows[0][1], Cell) and isinstance(table.rows[1][1], str)  # text: no mean, bold or test
    assert STOPPED_NOTE in table.notes
    assert "skipped 2 stopped at a rung by the budget*" in runs.summary()
    # The cells themselves refuse truncated runs beside finished ones.
    with pytest.raises(ValueError, match="never mixes truncated runs with finished ones"):
        aggregate(pd.concat([runs.runs, runs.stopped]), ["params.pi"], "best/autoattack")


def test_table13_shows_the_last_epochs_high_fraction_beside_each_variant(store):
    table = table13(load_sweep("pi-gate", tracking_uri=store.uri))
    high = "n_high/n_aux (last epoch)"
    assert table.header == ["π", "AT+BiaMAT", f"AT+BiaMAT {high}", "TRADES+BiaMAT", f"TRADES+BiaMAT {high}"]
    # Means over seeds of the last logged epoch (not of the 0.99 epoch before it); a cell that logged none is '-'.
    assert cell_texts(table)[1:] == [["0.45", "50.00 ± 0.21", "0.92", "56.21 ± 0.30", "0.70"],
                                     ["0.55", "50.89 ± 0.16", "0.42", "56.11 ± 0.14", "-"]]
    assert f"{high}: share of auxiliary samples with primary confidence >= omega" in to_markdown(table)


def test_table13_omits_the_high_fraction_when_no_trial_logged_it(store):
    table = table13(load_sweep("pi-abl", tracking_uri=store.uri))
    assert not any("n_high" in column for column in table.header)
    assert "n_high" not in to_markdown(table)


def test_table1_baseline_column_and_bold(store):
    table = table1(load_sweep("labels", tracking_uri=store.uri))
    # The paper's column order (SVHN, CIFAR-100, Places365, ImageNet, Baseline) and names, not sorted dataset ids.
    assert table.header == ["ỹ / y^ER", "SVHN", "ImageNet", "Baseline (AT)"]
    markdown = to_markdown(table)
    # y^ER wins on SVHN, y~ on ImageNet (as in the paper); only the winner of each column is bold.
    assert "| ỹ | 47.44 | **50.33** | 48.53 ± 0.75 (n=2) |" in markdown
    assert "| y^ER | **48.53** | 49.81 |  |" in markdown
    # The standard and TRADES baselines, and the gated runs of the same sweep, stay out.
    assert table.rows[0][-1].mean == pytest.approx(statistics.mean(BASELINE_AA))

    other = table1(load_sweep("labels", tracking_uri=store.uri),
                                 baseline=load_sweep("baselines-smoke", tracking_uri=store.uri))
    assert cell_texts(other)[1][-1] == "45.00"
    assert "1 seed per cell" in to_markdown(other) and "baseline from sweep 'baselines-smoke'" in to_markdown(other)


def test_table4_rows_in_the_papers_order_with_the_baseline_and_the_equal_share_rows_marked(store):
    table = table4(load_sweep("aux-sets", tracking_uri=store.uri),
                                 baseline=load_sweep("baselines-smoke", tracking_uri=store.uri))
    assert table.header == ["Method", "Auxiliary dataset", "Clean", "PGD-20", "PGD-100", "CW-100", "AutoAttack"]
    texts = cell_texts(table)[1:]
    assert [row[:2] for row in texts] == [["AT", "-"], ["AT+BiaMAT", "SVHN"], ["", "CIFAR-100"],
                                          ["", "SVHN, CIFAR-100"], ["", "SVHN, CIFAR-100 (equal shares)"],
                                          ["", "ImageNet"]]
    assert [row[-1] for row in texts] == ["45.00", "48.61", "50.08", "49.88", "49.50", "50.78"]  # the paper's AA
    assert [c.bold for c in (row[-1] for row in table.rows)] == [False] * 5 + [True]
    with pytest.raises(ValueError, match="not trained with the recipe"):
        table4(load_sweep("aux-sets", tracking_uri=store.uri),
                             baseline=load_sweep("baselines-other-recipe", tracking_uri=store.uri))


def test_table1_refuses_a_baseline_trained_with_another_recipe(store):
    with pytest.raises(ValueError) as info:
        table1(load_sweep("labels", tracking_uri=store.uri),
                             baseline=load_sweep("baselines-other-recipe", tracking_uri=store.uri))
    message = str(info.value)
    assert "lr_milestones: 0.6,0.9 vs baseline 0.5,0.75" in message
    assert "weight_decay: 0.0002 vs baseline 0.0005" in message
    assert "model" not in message.split("recipe of the BiaMAT rows:")[1].split(".")[0]
    assert "baselines.py --preset biamat-paper" in message


def test_table12_picks_the_winner_by_the_selection_split_not_the_test_set(store):
    table = table12(load_sweep("search", tracking_uri=store.uri))
    rows = cell_texts(table)
    assert rows[0][5:7] == ["selected by select/pgd10 (%)", "PGD-20 (best checkpoint) (%)"]
    # The KILLED trial scored 90% but never finished; the winners are the best FINISHED ones by select/pgd10, although
    # the test set's PGD-20 would have picked alpha 0.5 / pi 0.60 (AT) and alpha 0.5 / pi 0.50 (TRADES).
    assert rows[1:] == [
        ["CIFAR-10", "AT+BiaMAT", "ImageNet", "1.00", "0.55", "40.00", "31.00", "3",
         "biamat variant=at labels=gated aux_datasets=imagenet32 alpha=1.0 pi=0.55 seed=0"],
        ["CIFAR-10", "TRADES+BiaMAT", "ImageNet", "1.00", "0.70", "42.00", "39.00", "2",
         "biamat variant=trades labels=gated aux_datasets=imagenet32 alpha=1.0 pi=0.7 seed=0"],
    ]
    assert "|---|---|---|---:|---:|---:|---:|---:|---|" in to_markdown(table)
    by_test = cell_texts(table12(load_sweep("search", tracking_uri=store.uri), by="best/pgd20"))
    assert [row[3:5] for row in by_test[1:]] == [["0.50", "0.60"], ["0.50", "0.50"]]


def test_fig3_one_line_per_auxiliary_dataset(store):
    sweep = load_sweep("labels", tracking_uri=store.uri)
    history = sweep.history("train/high_fraction")
    resumed = history[history["step"] == 3]
    assert len(resumed) == 6 and resumed["value"].max() < 0.9  # the re-logged epoch keeps its later value
    figure = fig3(sweep)
    lines = figure.axes[0].get_lines()
    assert sorted(line.get_label() for line in lines) == ["CIFAR-100", "ImageNet", "SVHN"]
    assert len({line.get_color() for line in lines}) == 3
    assert all(list(line.get_xdata()) == [3, 4, 5, 6] for line in lines)  # 1-based: MLflow steps 2-5


def test_fig3_cli_writes_png(store, tmp_path, capsys):
    out = tmp_path / "fig3.png"
    biamat_tables.main(["fig3", "--sweep", "labels", "--tracking-uri", store.uri, "--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 1000
    assert "3 lines" in capsys.readouterr().out


def test_csv_and_latex_contain_the_values(store, tmp_path):
    table = table13(load_sweep("pi-abl", tracking_uri=store.uri))
    rows = cell_texts(table)
    assert rows[0] == ["π", "AT+BiaMAT", "TRADES+BiaMAT"] and len(rows) == 3
    latex = to_latex(table)
    assert "0.55 & 50.89 $\\pm$ 0.16 & 56.11 $\\pm$ 0.14 \\\\" in latex
    assert latex.count("\\begin{tabular}{rrr}") == 1 and "\\bottomrule" in latex

    out = tmp_path / "table1.tex"
    biamat_tables.main(["table1", "--sweep", "labels", "--tracking-uri", store.uri, "--format", "latex",
                        "--out", str(out)])
    text = out.read_text()
    assert "\\textbf{48.53}" in text and "$\\tilde{y}$ & $y^{ER}$" not in text and "\\midrule\n$\\tilde{y}$ & " in text
    assert "$y^{ER}$ & \\textbf{48.53}" in text and "\\label{tab:biamat-table1}" in text


def test_cli_prints_markdown_and_reads_uri_from_environment(store, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    biamat_tables.main(["table13", "--sweep", "pi-abl", "--experiment", "biamat-pi-ablation"])
    out = capsys.readouterr().out
    assert "| π | AT+BiaMAT | TRADES+BiaMAT |" in out
    assert "| 0.45 | 50.00 ± 0.21 | 56.21 ± 0.30 |" in out
    assert "skipped 1 FAILED, 1 KILLED" in out

    biamat_tables.main(["table13", "--sweep", "pi-abl", "--metric", "best/pgd20", "--format", "csv"])
    captured = capsys.readouterr()
    assert captured.out.splitlines()[1] == "0.45,55.00 ± 0.21,61.21 ± 0.30"
    assert "PGD-20" in captured.err  # CSV has no title: which metric it shows goes to stderr

    emit(table13(load_sweep("pi-abl", tracking_uri=store.uri)))  # what sweeps/pi_ablation.py prints
    assert "| 0.55 | 50.89 ± 0.16 | 56.11 ± 0.14 |" in capsys.readouterr().out


def test_missing_sweep_lists_the_sweeps_that_exist(store):
    with pytest.raises(SystemExit) as exc:
        biamat_tables.main(["table13", "--sweep", "nope", "--tracking-uri", store.uri])
    message = str(exc.value)
    assert "no sweep named 'nope'" in message
    assert "pi-abl (experiment biamat-pi-ablation)" in message and "search (experiment biamat-search)" in message

    with pytest.raises(SystemExit, match="no MLflow run 'deadbeef'"):
        biamat_tables.main(["table12", "--parent-run", "deadbeef", "--tracking-uri", store.uri])
    with pytest.raises(SystemExit, match="metric 'best/pgd7' is not logged"):
        biamat_tables.main(["table13", "--sweep", "pi-abl", "--tracking-uri", store.uri, "--metric", "best/pgd7"])


def test_a_missing_store_is_reported_and_never_created(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    missing = tmp_path / "typo" / "mlflow.db"
    for argv in (["table13", "--sweep", "pi-abl", "--tracking-uri", f"sqlite:///{missing}"], ["table13", "--sweep", "x"]):
        with pytest.raises(SystemExit) as exc:
            biamat_tables.main(argv)
        message = str(exc.value)
        assert message.startswith("error: no MLflow store at ") and "the file does not exist" in message, message
        assert "never creates one" in message and "--tracking-uri" in message and "sqlite:///mlflow.db" in message
    assert "from the default store" in message and "mlflow.db" in message
    assert not (tmp_path / "typo").exists() and not (tmp_path / "mlflow.db").exists()

    (tmp_path / "mlflow.db").write_bytes(b"")  # an empty file: SQLite would take it as a new database
    with pytest.raises(StoreNotFoundError, match="holds no MLflow tables"):
        load_sweep("x", tracking_uri="sqlite:///mlflow.db")
    assert (tmp_path / "mlflow.db").stat().st_size == 0
    with pytest.raises(StoreNotFoundError, match=r"mlflow.db exists here: leave --tracking-uri out"):
        load_sweep("x", tracking_uri=f"sqlite:///{missing}")
    (tmp_path / "notes.db").write_text("not a database, but long enough for SQLite to read its header" * 4)
    with pytest.raises(StoreNotFoundError, match="not an SQLite database"):
        load_sweep("x", tracking_uri="sqlite:///notes.db")


def test_an_unfinished_sweep_says_how_many_trials_never_started(store):
    running = store.sweep("biamat-pi-ablation", "unfinished", status="RUNNING", trials="6")
    for seed, status in enumerate(["FINISHED", "FINISHED", "RUNNING"]):
        store.trial(running, "biamat", biamat("at", 0.45, seed), final_metrics(0.5), status=status)
    sweep = load_sweep("unfinished", tracking_uri=store.uri)
    assert (sweep.trials, sweep.never_started()) == (6, 3)
    assert "2 finished trials; skipped 1 RUNNING; 3 of 6 trials never started; the sweep is running" in sweep.summary()

    old = store.sweep("biamat-pi-ablation", "interrupted-old", status="KILLED")  # before the trials tag existed
    store.trial(old, "biamat", biamat("at", 0.45, 0), final_metrics(0.5), status="KILLED")
    summary = load_sweep("interrupted-old", tracking_uri=store.uri).summary()
    assert "skipped 1 KILLED; the sweep was interrupted (--resume continues it) (its size was not recorded" in summary

    done = store.sweep("biamat-pi-ablation", "complete", trials="1")
    store.trial(done, "biamat", biamat("at", 0.45, 0), final_metrics(0.5))
    assert load_sweep("complete", tracking_uri=store.uri).summary().endswith("1 finished trial")


def test_the_selection_note_says_standard_training_kept_its_best_clean_epoch():
    protocol = {"params.select_on": "test", "params.eval_n": 64, "params.eval_every": 1, "params.eval_from": 1,
                "params.keep_epoch": 0, "params.attack_steps": 3}
    runs = pd.DataFrame([protocol | {"params.training": training, "params.eps": eps}
                         for training, eps in [("standard", 16 / 255), ("pgd_at", 0.0), ("pgd_at", 8 / 255)]])
    note = selection_protocol(runs)
    # One protocol with its exception, said once (not twice, differing only in what is kept).
    assert note == ("checkpoint selection: PGD-3 on the first 64 test points, every 1 epoch(s) from epoch 1, best PGD-3 "
                    "kept (best clean accuracy at eps 0 and for standard training)")
    assert selection_protocol(runs[runs["params.training"] == "standard"]).endswith(
        "best clean accuracy kept (standard training)")
    assert selection_protocol(runs.drop(columns=["params.training", "params.eps"])).endswith("best PGD-3 kept")


def test_distinguishing_params_skip_settings_that_follow_the_variant(store):
    runs = load_sweep("pi-abl", tracking_uri=store.uri).runs
    # epochs and model change with the variant; they add nothing once variant is in the label.
    assert distinguishing_params(runs, prefer=("variant", "pi")) == ["params.variant", "params.pi"]
