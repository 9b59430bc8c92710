"""The documentation holds to the code. The paper pages' three listings ("every table and figure, and the command that
rebuilds it") name every table and figure of each paper; every `python analysis/...` command in the README and the
docs/ pages parses with that script's own argument parser, and every `python sweeps/...` command names a sweep script
whose parser takes its arguments; the README stays a front door (at most 200 lines) whose links resolve."""

from __future__ import annotations

import argparse
import functools
import importlib
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]

# What each paper holds (its tables and figures, the appendix's included), and the page that lists them.
PAPERS = {
    "BiaMAT": {"Table": range(1, 15), "Fig.": range(1, 5)},
    "AFS": {"Table": range(1, 7), "Fig.": range(1, 7)},
    "UIAT": {"Table": range(1, 7), "Fig.": range(1, 6)},
}
LISTING_PAGE = {"BiaMAT": "docs/biamat.md", "AFS": "docs/afs.md", "UIAT": "docs/uiat.md"}


def text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def listing(paper: str) -> list[list[str]]:
    """The rows of a paper's listing table, as cells."""
    page = text(ROOT / LISTING_PAGE[paper])
    section = page.split(f"**{paper}: every table and figure, and the command that rebuilds it.**")[1]
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


# --- The commands the pages give -------------------------------------------------------------------------------------

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
SEPARATORS = {"&&", "||", "|", ";"}


def code_lines(page: Path) -> list[str]:
    """Each line of the page's fenced blocks (a trailing backslash joins the next line) and each inline code span."""
    source = text(page)
    lines = []
    for block in FENCE.findall(source):
        lines += block.replace("\\\n", " ").splitlines()
    lines += [span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", FENCE.sub("", source))]
    return lines


def commands_in(line: str) -> list[list[str]]:
    """The `python analysis/X.py ...` and `python sweeps/X.py ...` commands of a shell line (also a sweep script
    after `sweep.sbatch`, and a command inside a quoted argument such as `ray exec ... 'cd ... && python ...'`),
    each as its words from the script on; a comment ends the line."""
    if not re.search(r"\b(?:analysis|sweeps)/\w+\.py", line):
        return []
    words = shlex.split(line, comments=True)
    found = []
    for i, word in enumerate(words):
        if " " in word:
            found += commands_in(word)
        elif re.fullmatch(r"(?:analysis|sweeps)/\w+\.py", word) and i and (
                words[i - 1] == "python" or words[i - 1].endswith("sweep.sbatch")):
            rest = words[i:]
            ends = [j for j, w in enumerate(rest) if w in SEPARATORS]
            found.append(rest[:ends[0]] if ends else rest)
    return found


def documented(folder: str) -> list[tuple[str, list[str]]]:
    """Every documented command of a script in ``folder``, as (page, words from the script on)."""
    return [(page.relative_to(ROOT).as_posix(), command) for page in PAGES for line in code_lines(page)
            for command in commands_in(line) if command[0].startswith(f"{folder}/")]


def test_the_pages_give_commands_of_both_kinds():
    analysis, sweeps = documented("analysis"), documented("sweeps")
    assert {page for page, _ in analysis} >= {"README.md", *LISTING_PAGE.values()}
    assert {page for page, _ in sweeps} >= {"README.md", *LISTING_PAGE.values(), "docs/running-sweeps.md"}
    assert len(analysis) >= 60 and len(sweeps) >= 40, (len(analysis), len(sweeps))


@pytest.mark.parametrize("paper", PAPERS)
def test_every_listed_analysis_command_parses(paper):
    commands = [c for row in listing(paper) for c in re.findall(r"`(python analysis/[^`]+)`", row[2])]
    assert commands, paper
    for command in commands:
        script, *args = shlex.split(command)[1:]
        module = importlib.import_module(f"analysis.{Path(script).stem}")
        parsed = module.build_parser().parse_args(args)  # SystemExit (a failed test) on an unknown command or flag
        assert parsed.command == args[0], command


def test_every_documented_analysis_command_parses():
    for page, (script, *args) in documented("analysis"):
        assert (ROOT / script).is_file(), f"{page}: {script} does not exist"
        module = importlib.import_module(f"analysis.{Path(script).stem}")
        try:
            parsed = module.build_parser().parse_args(args)
        except SystemExit:
            pytest.fail(f"{page}: `python {shlex.join([script, *args])}` does not parse")
        assert parsed.command == args[0], (page, script, args)


class Parsed(Exception):
    """Raised in place of running the sweep, once its command line has parsed."""


@functools.cache
def help_flags(script: str) -> frozenset[str]:
    """The flags ``python sweeps/X.py --help`` names (for a script with no ``main(argv)`` to parse with)."""
    result = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return frozenset(re.findall(r"--[a-z][\w-]*", result.stdout))


def test_every_documented_sweep_command_parses(monkeypatch):
    """Each sweep script's ``main(argv)`` builds its own parser (``launch.cli.run_parser`` and the script's flags);
    the parse is intercepted, so the arguments meet that very parser (choices, positionals, values), and the sweep
    never starts."""
    parse_args = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise Parsed(parse_args(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    for page, (script, *args) in documented("sweeps"):
        shown = f"{page}: `python {shlex.join([script, *args])}`"
        assert (ROOT / script).is_file(), f"{shown}: no such script"
        module = importlib.import_module(f"sweeps.{Path(script).stem}")
        if not hasattr(module, "main"):
            flags = {arg.split("=")[0] for arg in args if arg.startswith("--")}
            assert flags <= help_flags(script), f"{shown}: not in its --help: {flags - help_flags(script)}"
            continue
        try:
            module.main(args)
        except Parsed:
            continue
        except SystemExit:
            pytest.fail(f"{shown} does not parse")
        pytest.fail(f"{shown}: main() returned without parsing its arguments")


# --- The README as a front door ---------------------------------------------------------------------------------------

def anchors(page: Path) -> set[str]:
    """The heading anchors MkDocs gives a page (Python-Markdown's toc slugs)."""
    headings = re.findall(r"^#{1,6} (.+)$", FENCE.sub("", text(page)), re.MULTILINE)
    return {re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", heading).strip().lower()) for heading in headings}


def test_the_readme_is_at_most_200_lines():
    assert len(text(README).splitlines()) <= 200


def test_every_relative_link_in_the_readme_resolves():
    links = re.findall(r"\]\(([^)\s]+)\)", FENCE.sub("", text(README)))
    relative = [link for link in links if not re.match(r"[a-z][a-z0-9+.-]*:", link)]
    assert relative, "the README links to no page"
    for link in relative:
        path, _, anchor = link.partition("#")
        target = (README.parent / path) if path else README
        assert target.exists(), f"README.md links to {link}: no such file"
        if anchor and target.suffix == ".md":
            assert anchor in anchors(target), f"README.md links to {link}: no such heading"
