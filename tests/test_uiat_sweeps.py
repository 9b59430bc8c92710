"""End to end: every UIAT sweep on a reduced smoke preset in the session's Ray, its table printed from MLflow, and
Table 2 from the epoch times of all of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis import uiat_tables
from sweeps import uiat_ablation, uiat_comparison, uiat_eps, uiat_lambda, uiat_presets, uiat_search, uiat_single_step


@pytest.fixture
def reduced(monkeypatch):
    """The smoke preset, smaller: 128 images, 2 epochs (momentum from epoch 1, one-off epoch 0)."""
    for key, value in {"train_n": 128, "epochs": 2, "eval_n": 32, "final_n": 64, "oneoff_epoch": 0}.items():
        monkeypatch.setitem(uiat_presets.PRESETS["smoke"], key, value)
    monkeypatch.setitem(uiat_lambda.LAMBDAS, "smoke", [1.0, 6.0])
    monkeypatch.setitem(uiat_eps.EPSILONS, "smoke", [12 / 255])
    monkeypatch.setitem(uiat_search.SEARCH, "smoke", {"num_samples": 2, "grace_period": 1, "reduction_factor": 2})


def run_args(tmp_path: Path) -> list[str]:
    return ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--storage-path", str(tmp_path / "ray")]


@pytest.mark.slow
def test_ablation_sweep_prints_table6(ray_local, reduced, tmp_path, capsys):
    uiat_ablation.main(run_args(tmp_path))
    out = capsys.readouterr().out
    table6 = out[out.find("**Table 6."):]
    print(table6[:2500])
    rows = [line for line in table6.splitlines() if line.startswith("|") and "---" not in line][1:6]
    assert [line.count("✓") for line in rows] == [0, 1, 2, 2, 3], "the five rows of Table 6, in the paper's order"
    assert "5 finished trials" in table6


@pytest.mark.slow
def test_lambda_and_eps_sweeps_print_fig3_table3_and_table2(ray_local, reduced, tmp_path, capsys):
    uiat_lambda.main(run_args(tmp_path))
    uiat_eps.main(run_args(tmp_path))
    out = capsys.readouterr().out
    figure3, table3 = out[out.find("**Fig. 3."):], out[out.find("**Table 3."):]
    print(figure3[:1200], table3[:2000])
    assert "| 1 |" in figure3 and "| 6 |" in figure3
    for name in ("| 12/255 | TRADES |", "| HAT |", "| UIAT |", "| UIAT (One-off) |"):
        assert name in table3, name

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    uiat_tables.main(["fig3", "--sweep", "uiat-lambda-smoke", "--tracking-uri", uri, "--out", str(tmp_path / "f.png")])
    assert (tmp_path / "f.png").stat().st_size > 0
    sweeps = ["uiat-lambda-smoke", "uiat-eps-smoke", "uiat-eps-smoke-trades", "uiat-eps-smoke-hat"]
    uiat_tables.main(["table2", *(arg for name in sweeps for arg in ("--sweep", name)), "--tracking-uri", uri])
    table2 = capsys.readouterr().out
    print(table2)
    assert all(f"| {name} |" in table2 for name in ("TRADES", "HAT", "UIAT", "UIAT (One-off)"))
    # The documented analysis command, HAT from its own sweep.
    uiat_tables.main(["table3", "--sweep", "uiat-eps-smoke", "--baseline-sweep", "uiat-eps-smoke-trades",
                      "--hat-sweep", "uiat-eps-smoke-hat", "--tracking-uri", uri])
    assert "| HAT |" in capsys.readouterr().out


@pytest.mark.slow
def test_search_sweep_prints_the_study(ray_local, reduced, tmp_path, capsys):
    uiat_search.main([*run_args(tmp_path), "--asha", "--optuna-storage", f"sqlite:///{tmp_path / 'optuna.db'}"])
    out = capsys.readouterr().out
    print(out[out.find("Optuna study"):])
    assert "Optuna study 'uiat-uiat-smoke'" in out and "best trial" in out


@pytest.mark.slow
def test_comparison_and_single_step_sweeps_print_tables_1_2_and_5(ray_local, reduced, tmp_path, capsys):
    """Table 1's seven trainings in four sweeps (HAT finding its helpers among the standard-training trials of the
    first), Table 5's six in three, and the documented analysis commands on them."""
    uiat_comparison.main(run_args(tmp_path))
    uiat_single_step.main(run_args(tmp_path))
    capsys.readouterr()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    comparison = [f"uiat-comparison-smoke{suffix}" for suffix in ("-baselines", "-mart", "-hat", "")]
    single_step = [f"uiat-single-step-smoke{suffix}" for suffix in ("", "-gradalign", "-uiat")]
    printed = {}
    for table, names in (("table1", comparison), ("table2", comparison), ("table5", single_step)):
        uiat_tables.main([table, *(arg for name in names for arg in ("--sweep", name)), "--tracking-uri", uri])
        printed[table] = capsys.readouterr().out
    print(*printed.values(), sep="\n")

    def rows(text: str) -> list[list[str]]:  # the Markdown table's cells, below its header
        return [[cell.strip() for cell in line.split("|")[1:-1]] for line in text.splitlines()
                if line.startswith("| ")][1:]

    def first_cells(text: str) -> list[str]:
        return [row[0] for row in rows(text)]

    methods = ["Natural Training", "PGD-AT", "TRADES", "MART", "HAT", "UIAT", "UIAT (One-off)"]
    assert first_cells(printed["table1"]) == methods and first_cells(printed["table2"]) == methods
    assert "| Method | synthetic Natural | synthetic PGD-20 |" in printed["table1"]
    assert first_cells(printed["table5"]) == ["N-FGSM", "N-FGSM + UIAT", "RS-FGSM", "RS-FGSM + UIAT", "GradAlign",
                                              "GradAlign + UIAT"]
    assert "| Method | eps 8/255 Natural | eps 8/255 PGD-20 | Time (s/epoch) |" in printed["table5"]
    assert all(cell != "-" for row in rows(printed["table5"]) for cell in row)  # every method trained at every eps
