"""The README's three listings ("every table and figure, and the command that rebuilds it") name every table and
figure of each paper, and every analysis command they give parses with that script's own argument parser."""

from __future__ import annotations

import importlib
import re
import shlex
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")

# What each paper holds (its tables and figures, the appendix's included).
PAPERS = {
    "BiaMAT": {"Table": range(1, 15), "Fig.": range(1, 5)},
    "AFS": {"Table": range(1, 7), "Fig.": range(1, 7)},
    "UIAT": {"Table": range(1, 7), "Fig.": range(1, 6)},
}


def listing(paper: str) -> list[list[str]]:
    """The rows of a paper's listing table, as cells."""
    section = README.split(f"**{paper}: every table and figure, and the command that rebuilds it.**")[1]
    rows = re.search(r"\| paper \| what \| command \|\n\| --- \| --- \| --- \|\n((?:\|.*\|\n)+)", section).group(1)
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows.splitlines()]


def numbers(entry: str) -> set[tuple[str, int]]:
    """``Table 2, 3, 4, 5-10`` -> Table 2..10; ``Fig. 5(a)`` -> Fig. 5; ``Table 11 (appendix)`` -> Table 11."""
    kind, rest = entry.split(" ", 1)
    found = set()
    for start, end in re.findall(r"(\d+)(?:\([a-z]\))?(?:-(\d+))?", rest.split(" (appendix)")[0]):
        found |= {(kind, n) for n in range(int(start), int(end or start) + 1)}
    return found


@pytest.mark.parametrize("paper", PAPERS)
def test_every_table_and_figure_of_the_paper_is_listed(paper):
    listed = set().union(*(numbers(row[0]) for row in listing(paper)))
    expected = {(kind, n) for kind, span in PAPERS[paper].items() for n in span}
    assert expected - listed == set(), f"{paper}: not listed"
    assert listed - expected == set(), f"{paper}: listed but not in the paper"
    for row in listing(paper):
        assert len(row) == 3 and row[2], f"{paper} {row[0]}: no command and no reason"


@pytest.mark.parametrize("paper", PAPERS)
def test_every_listed_analysis_command_parses(paper):
    commands = [c for row in listing(paper) for c in re.findall(r"`(python analysis/[^`]+)`", row[2])]
    assert commands, paper
    for command in commands:
        script, *args = shlex.split(command)[1:]
        module = importlib.import_module(f"analysis.{Path(script).stem}")
        parsed = module.build_parser().parse_args(args)  # SystemExit (a failed test) on an unknown command or flag
        assert parsed.command == args[0], command
