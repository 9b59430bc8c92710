"""The command-line flags every analysis script (and ``sweeps/reevaluate.py``) shares, in a module that imports
nothing heavy, so that ``--help`` answers before MLflow, pandas or torch load."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

from runstore.uri import DEFAULT_TRACKING_URI

# latex: a table environment for a paper (its first line names the packages); latex-doc: a whole document for pdflatex.
FORMATS = ("md", "csv", "latex", "latex-doc")


def subcommands(parser: argparse.ArgumentParser) -> argparse._SubParsersAction:
    """The parser's subcommands (table1, fig3, ...), which take no abbreviated flag either (``--sw`` for ``--sweep``
    would be argparse's default guess)."""
    return parser.add_subparsers(dest="command", required=True,
                                 parser_class=partial(argparse.ArgumentParser, allow_abbrev=False))


def add_source_arguments(parser: argparse.ArgumentParser, *, output: bool = True, several: bool = False) -> None:
    """``--sweep``/``--parent-run``/``--experiment``/``--tracking-uri`` and, with ``output``, ``--format``/``--out``.

    ``several``: a table over several sweeps, named by repeating ``--sweep`` (no ``--parent-run``).
    """
    if several:
        parser.add_argument("--sweep", action="append", required=True, help="a sweep to read (repeat for several)")
    else:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--sweep", help="sweep name (the parent run's 'sweep' tag)")
        source.add_argument("--parent-run", help="MLflow run id of the sweep's parent run")
    parser.add_argument("--experiment", help="MLflow experiment to look in (default: all)")
    parser.add_argument("--tracking-uri", default=None,
                        help=f"MLflow tracking URI (default: $MLFLOW_TRACKING_URI or {DEFAULT_TRACKING_URI})")
    if output:
        parser.add_argument("--format", choices=FORMATS, default="md",
                            help="md (default), csv, latex (a table environment) or latex-doc (a document that "
                                 "pdflatex compiles as it is)")
        parser.add_argument("--out", type=Path, default=None, help="write to this file instead of the terminal")
        parser.add_argument("--stats", action="store_true",
                            help="add each cell's 95%% interval and mark (with a dagger) the rows that differ from the "
                                 "reference row by a paired test on the same test points (analysis/significance.py)")
        parser.add_argument("--reference", default=None, metavar="ROW",
                            help="with --stats: the row the others are tested against, by its first column (default: "
                                 "the first row)")


def add_table_commands(commands: argparse._SubParsersAction, helps: dict[str, str]) -> None:
    """One subcommand per table (name -> help): the source and output flags, and ``--metric``."""
    for name, text in helps.items():
        sub = commands.add_parser(name, help=text, description=text)
        add_source_arguments(sub)
        sub.add_argument("--metric", default=None,
                         help="MLflow metric to show, e.g. best/pgd20 or last/autoattack (default: the strongest "
                              "attack logged under best/)")
