"""UIAT tables from run frames shaped like MLflow's (no store needed): row order, labels, check marks, bold."""

from __future__ import annotations

import pandas as pd

from analysis.runs import Cell, SweepRuns, render
from analysis.uiat_tables import lambda_table, method_label, table3, table6


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


def test_columns_from_two_checkpoints_name_their_own():
    rows = [uiat(c, clean=0.8, pgd20=0.5) | {"metrics.last/pgd20": 0.4} for c in ("uag+fr+iam", "uag")]
    table = table6(sweep_of(rows), metric="last/pgd20")
    assert table.header[3:] == ["Natural (best checkpoint)", "PGD-20 (best checkpoint)", "PGD-20 (last checkpoint)"]
    assert not any(note.startswith("accuracy of the") for note in table.notes)
