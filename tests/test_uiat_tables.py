"""UIAT tables from run frames shaped like MLflow's (no store needed): row order, labels, check marks, bold."""

from __future__ import annotations

import pandas as pd

from analysis.cells import STOPPED_NOTE, Cell
from analysis.render import render
from analysis.uiat.runs import method_label
from analysis.uiat.tables import TABLE6_ROWS, lambda_table, table1, table2, table3, table4, table5, table6
from runstore.reader import SweepRuns
from sweeps.uiat_presets import TABLE6_COMPONENTS


def sweep_of(rows: list[dict]) -> SweepRuns:
    base = {"params.dataset": "synthetic", "params.model": "tiny-cnn"}
    return SweepRuns("s", "parent", "exp", pd.DataFrame([base | row for row in rows]), {}, client=None)


def uiat(components: str, oneoff: bool = False, **metrics: float) -> dict:
    return {"tags.method": "uiat", "params.components": components, "params.oneoff": str(oneoff),
            **{f"metrics.best/{k}": v for k, v in metrics.items()}}


def test_method_labels_follow_the_paper():
    labels = [method_label(pd.Series(row)) for row in (
        uiat("none"), uiat("uag+fr+iam"), uiat("uag+fr", oneoff=True), uiat("uag+iam"),
        {"tags.method": "baseline", "params.training": "trades"},
        {"tags.method": "baseline", "params.training": "standard"},
    )]
    assert labels == ["IAT", "UIAT", "UIAT (One-off)", "UIAT [uag+iam]", "TRADES", "Natural Training"]


def test_the_ablation_sweep_trains_table6s_rows():
    # Kept twice: the sweep script may not import the analysis before its checks (pandas, MLflow).
    assert TABLE6_COMPONENTS == TABLE6_ROWS


def test_table6_rows_in_paper_order_with_check_marks_and_bold_best():
    rows = [uiat(c, clean=0.8 + i / 100, pgd20=0.5 + i / 100) for i, c in
            enumerate(["uag+fr+iam", "uag+iam", "uag+fr", "uag", "none"])]
    rows.append(uiat("uag+fr", oneoff=True, clean=0.99, pgd20=0.99))  # not a Table 6 row
    table = table6(sweep_of(rows))
    assert table.header == ["UAG", "FR", "IAM", "Natural", "PGD-20"]  # the paper's names
    assert "accuracy of the best checkpoint" in table.notes
    assert [row[:3] for row in table.rows] == [["", "", ""], ["✓", "", ""], ["✓", "✓", ""], ["✓", "", "✓"],
                                               ["✓", "✓", "✓"]]
    natural = [row[3] for row in table.rows]
    assert all(isinstance(c, Cell) for c in natural) and [c.bold for c in natural] == [True] + [False] * 4
    assert "**84.00**" in render(table)


def test_table3_and_lambda_table():
    eps = 12 / 255
    rows = [uiat("uag+fr+iam", clean=0.8, pgd20=0.4) | {"params.eps": eps},
            uiat("uag+fr", oneoff=True, clean=0.81, pgd20=0.41) | {"params.eps": eps},
            {"tags.method": "baseline", "params.training": "trades", "params.eps": eps, "metrics.best/clean": 0.7,
             "metrics.best/pgd20": 0.3}]
    table = table3(sweep_of(rows))
    assert [row[:2] for row in table.rows] == [["12/255", "TRADES"], ["", "UIAT"], ["", "UIAT (One-off)"]]
    assert table.rows[0][3].mean == 0.3

    lam_rows = [uiat("uag+fr", oneoff=True, clean=c, pgd20=r) | {"params.lam": lam}
                for lam, c, r in ((1.0, 0.85, 0.4), (3.5, 0.8, 0.45), (3.5, 0.82, 0.47))]
    table = lambda_table(sweep_of(lam_rows))
    assert [row[0] for row in table.rows] == ["1", "3.5"] and table.rows[1][1].n == 2
    assert table.header == ["lambda", "Natural", "PGD-20"]
    # lambda 6 was stopped at a budget's rung after epoch 5: its rung score, marked, under the robust column only.
    stopped = pd.DataFrame([uiat("uag+fr", oneoff=True) | {"params.lam": 6.0, "metrics.rung/score": 0.25,
                                                           "metrics.epoch": 4.0, "status": "KILLED"}])
    budgeted = SweepRuns("s", "parent", "exp", sweep_of(lam_rows).runs, {"KILLED": 1}, client=None, stopped=stopped)
    table = lambda_table(budgeted)
    assert table.rows[-1] == ["6", "-", "25.00* (epoch 5)"] and STOPPED_NOTE in table.notes


def test_columns_from_two_checkpoints_name_their_own():
    rows = [uiat(c, clean=0.8, pgd20=0.5) | {"metrics.last/pgd20": 0.4} for c in ("uag+fr+iam", "uag")]
    table = table6(sweep_of(rows), metric="last/pgd20")
    assert table.header[3:] == ["Natural (best checkpoint)", "PGD-20 (best checkpoint)", "PGD-20 (last checkpoint)"]
    assert not any(note.startswith("accuracy of the") for note in table.notes)


def test_the_comparison_methods_have_the_papers_names():
    rows = [{"tags.method": "mart"}, {"tags.method": "hat"},
            {"tags.method": "single_step", "params.variant": "n_fgsm"},
            {"tags.method": "single_step", "params.variant": "rs_fgsm"},
            {"tags.method": "gradalign", "params.lam": "0.2"}, {"tags.method": "gradalign", "params.lam": "0.0"},
            uiat("uag", oneoff=True) | {"params.training_attack": "n_fgsm"},
            uiat("uag", oneoff=True) | {"params.training_attack": "gradalign", "params.align_lam": "0.2"},
            uiat("uag+fr", oneoff=True) | {"params.training_attack": "rs_fgsm"},
            uiat("uag+fr", oneoff=True) | {"params.training_attack": "pgd"}]
    assert [method_label(pd.Series(row)) for row in rows] == [
        "MART", "HAT", "N-FGSM", "RS-FGSM", "GradAlign", "FGSM", "N-FGSM + UIAT", "GradAlign + UIAT",
        "RS-FGSM + UIAT [uag+fr, one-off]", "UIAT (One-off)"]


def test_table1_one_row_per_method_across_sweeps_and_datasets_in_the_papers_order():
    def run(method: dict, dataset: str, clean: float, aa: float) -> dict:
        return method | {"params.dataset": dataset, "metrics.best/clean": clean, "metrics.best/autoattack": aa}

    trades = {"tags.method": "baseline", "params.training": "trades"}
    sat = {"tags.method": "baseline", "params.training": "pgd_at"}
    sweeps = [sweep_of([run(uiat("uag+fr+iam"), "svhn", 0.93, 0.52), run(uiat("uag+fr+iam"), "cifar10", 0.85, 0.49)]),
              sweep_of([run(trades, "cifar10", 0.82, 0.489), run(sat, "cifar10", 0.84, 0.477),
                        run({"tags.method": "mart"}, "cifar10", 0.82, 0.48)])]
    table = table1(sweeps)
    assert table.header == ["Method", "CIFAR-10 Natural", "CIFAR-10 AutoAttack", "SVHN Natural", "SVHN AutoAttack"]
    assert [row[0] for row in table.rows] == ["PGD-AT", "TRADES", "MART", "UIAT"]
    assert [row[1].bold for row in table.rows] == [False, False, False, True]
    assert table.rows[0][3] == "-" and table.rows[3][4].mean == 0.52  # SVHN: only UIAT trained there


class EpochTimes:
    """A client answering get_metric_history with fixed seconds per epoch for each run."""

    def __init__(self, seconds: dict[str, list[float]]) -> None:
        self.seconds = seconds

    def get_metric_history(self, run_id: str, key: str) -> list:
        from mlflow.entities import Metric

        return [Metric(key, s, i, i) for i, s in enumerate(self.seconds.get(run_id, []))]


def test_table5_per_eps_natural_and_robust_and_seconds_per_epoch():
    def run(i: int, method: dict, eps: int, clean: float, aa: float) -> dict:
        return method | {"run_id": f"r{i}", "params.eps": eps / 255, "metrics.best/clean": clean,
                         "metrics.best/autoattack": aa}

    nfgsm = {"tags.method": "single_step", "params.variant": "n_fgsm"}
    plus = uiat("uag", oneoff=True) | {"params.training_attack": "n_fgsm"}
    rows = [run(0, nfgsm, 6, 0.8466, 0.5636), run(1, nfgsm, 8, 0.8029, 0.4824), run(2, plus, 6, 0.8553, 0.5821),
            run(3, plus, 8, 0.8185, 0.4984), run(4, uiat("uag+fr", oneoff=True), 8, 0.9, 0.9)]  # PGD: not Table 5
    base = {"params.dataset": "cifar10", "params.model": "resnet18"}
    sweep = SweepRuns("s", "parent", "exp", pd.DataFrame([base | r for r in rows]), {},
                      client=EpochTimes({"r0": [48.0, 48.8], "r1": [48.4], "r2": [57.0, 57.6], "r3": [57.3]}))
    table = table5([sweep])
    assert table.header == ["Method", "eps 6/255 Natural", "eps 6/255 AutoAttack", "eps 8/255 Natural",
                            "eps 8/255 AutoAttack", "Time (s/epoch)"]
    assert [row[0] for row in table.rows] == ["N-FGSM", "N-FGSM + UIAT"]
    assert [round(100 * c.mean, 2) for c in table.rows[1][1:5]] == [85.53, 58.21, 81.85, 49.84]  # the paper's row
    assert all(c.bold for c in table.rows[1][1:5]) and not any(c.bold for c in table.rows[0][1:5])
    assert table.rows[0][5].text() == "48.4 ± 0.0" and table.rows[1][5].text() == "57.3 ± 0.0"


def test_table2_takes_iat_from_the_ablation_sweep_and_leaves_its_partial_uiats_out():
    ablation = [uiat(c) | {"run_id": f"a{i}"} for i, c in enumerate(("none", "uag", "uag+fr+iam"))]
    comparison = [{"tags.method": "baseline", "params.training": "trades", "run_id": "t"},
                  uiat("uag+fr", oneoff=True) | {"run_id": "o"}]
    seconds = {"a0": [170.0], "a1": [150.0], "a2": [132.0], "t": [154.0], "o": [118.0]}
    sweeps = [SweepRuns(name, "parent", "exp", pd.DataFrame([{"params.dataset": "cifar10", "params.model": "resnet18"}
                                                             | r for r in rows]), {}, client=EpochTimes(seconds))
              for name, rows in (("ablation", ablation), ("comparison", comparison))]
    table = table2(sweeps)
    assert [row[0] for row in table.rows] == ["TRADES", "IAT", "UIAT", "UIAT (One-off)"]  # the paper's order
    assert [row[1] for row in table.rows] == ["2.57", "2.83", "2.20", "1.97"]
    assert table.notes[-1] == "left out, not methods of the paper's table: UIAT [uag]"


def with_extra(method: dict, dataset: str, model: str, clean: float, aa: float) -> dict:
    return method | {"params.dataset": dataset, "params.model": model, "params.original_fraction": 0.3,
                     "params.extra_data": f"npz:/data/{dataset}_ddpm.npz", "metrics.best/clean": clean,
                     "metrics.best/pgd20": aa + 0.05, "metrics.best/autoattack": aa}


def table4_sweeps() -> list[SweepRuns]:
    """Table 4's three sweeps as frames: the paper's numbers where it has them, a helper and a run without extra
    data that the table leaves out."""
    trades, standard = ({"tags.method": "baseline", "params.training": t} for t in ("trades", "standard"))
    no_extra = uiat("uag+fr+iam", clean=0.99, pgd20=0.99, autoattack=0.99) | {"params.dataset": "cifar10",
                                                                               "params.model": "preact-resnet18"}
    return [sweep_of([with_extra(trades, "cifar10", "preact-resnet18", 0.8353, 0.5666),
                      with_extra(standard, "cifar10", "preact-resnet18", 0.95, 0.0),
                      with_extra(trades, "cifar100", "wrn-28-10", 0.5918, 0.3081)]),
            sweep_of([with_extra({"tags.method": "hat"}, "cifar10", "preact-resnet18", 0.8686, 0.5709)]),
            sweep_of([with_extra(uiat("uag+fr+iam"), "cifar10", "wrn-28-10", 0.8893, 0.6132),
                      with_extra(uiat("uag+fr", oneoff=True), "cifar10", "preact-resnet18", 0.8710, 0.5815),
                      with_extra(uiat("uag+fr+iam"), "cifar10", "preact-resnet18", 0.8734, 0.5846),
                      with_extra(uiat("uag+fr+iam"), "cifar100", "wrn-28-10", 0.6326, 0.3118), no_extra])]


def test_table4_groups_rows_by_dataset_and_network_in_the_papers_order():
    table = table4(table4_sweeps())
    assert table.header == ["Dataset", "Architecture", "Method", "Natural", "Robust"]
    assert [row[:3] for row in table.rows] == [
        ["CIFAR-10", "PRN-18", "Rebuffi et al. (TRADES)"], ["", "", "HAT"], ["", "", "UIAT"], ["", "", "UIAT (One-off)"],
        ["", "WRN-28-10", "UIAT"], ["CIFAR-100", "WRN-28-10", "Rebuffi et al. (TRADES)"], ["", "", "UIAT"]]
    assert [round(100 * row[4].mean, 2) for row in table.rows[:4]] == [56.66, 57.09, 58.46, 58.15]  # AutoAttack
    assert [(row[3].bold, row[4].bold) for row in table.rows] == [(False, False), (False, False), (True, True),
                                                                  (False, False), (True, True), (False, False),
                                                                  (True, True)]  # best within each group
    assert "Natural: Natural (best checkpoint); Robust: AutoAttack (best checkpoint)" in table.notes
    assert "trained with extra data cifar100_ddpm.npz, cifar10_ddpm.npz; training-set share of each batch 0.3" \
        in table.notes
    assert "not shown: HAT's standard-trained helpers and methods Table 4 does not have" in table.notes


def test_table4_without_autoattack_shows_the_strongest_attack_and_says_so():
    sweeps = [SweepRuns("s", "p", "e", s.runs.drop(columns="metrics.best/autoattack"), {}, client=None)
              for s in table4_sweeps()]
    table = table4(sweeps)
    assert round(100 * table.rows[0][4].mean, 2) == 61.66  # PGD-20
    assert table.notes[0] == ("Natural: Natural (best checkpoint); Robust: PGD-20 (best checkpoint); AutoAttack was "
                              "not measured by these runs")
