"""A :class:`~analysis.cells.Table` as Markdown, CSV or LaTeX, and the labels that LaTeX sets its own way.

Labels follow the papers: Greek letters and check marks as Unicode (LaTeX gets them in math mode,
:func:`latex_escape`), and a :class:`Label` where LaTeX needs its own markup (``Label("y^ER", "$y^{ER}$")``).
``--format latex`` drops the paper's number from the caption and adds a ``\\label``; ``latex-doc`` wraps the table in a
document that pdflatex compiles as it is.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Self

from analysis.cells import Cell, Table


class Label(str):
    """Text that LaTeX sets another way, usually in math mode: plain text in Markdown, CSV and comparisons (it is a
    ``str``), :attr:`latex` in :func:`to_latex`. ``Label("y^ER", "$y^{ER}$")`` is a header, row label or title like
    any other string; :func:`compose` joins labels and text (``+`` and f-strings give a plain ``str``)."""

    latex: str

    def __new__(cls, text: str, latex: str) -> Self:
        label = super().__new__(cls, text)
        label.latex = latex
        return label


def compose(*parts: str) -> str:
    """Parts joined into one :class:`Label` whose LaTeX escapes the plain parts, or a plain ``str`` if none is a Label."""
    text = "".join(parts)
    return Label(text, "".join(map(to_tex, parts))) if any(isinstance(p, Label) for p in parts) else text


def _is_number(value: str | Cell) -> bool:
    if isinstance(value, Cell) or value in ("", "-"):
        return True
    try:
        float(value)
    except ValueError:
        return False
    return True


def _numeric_columns(table: Table) -> list[bool]:
    """Numbers align right, text left: a column is numeric when every cell is a number, a Cell or empty."""
    return [all(_is_number(row[j]) for row in table.rows) for j in range(len(table.header))]


def _cell_text(value: str | Cell, table: Table, pm: str = "±") -> str:
    return value.text(value.n != table.typical_n(), pm) if isinstance(value, Cell) else value


def to_markdown(table: Table) -> str:
    def line(cells: Iterable[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    def md(value: str | Cell) -> str:
        text = _cell_text(value, table)
        return f"**{text}**" if isinstance(value, Cell) and value.bold else text

    align = ["---:" if numeric else "---" for numeric in _numeric_columns(table)]
    body = [line(table.header), "|" + "|".join(align) + "|", *(line(md(v) for v in row) for row in table.rows)]
    notes = [f"_{note}_  " for note in table.all_notes()]
    return "\n".join([f"**{table.title}**", "", *body, "", *notes]).rstrip() + "\n"


def to_csv(table: Table) -> str:
    """Header and rows only (no title or notes), so any CSV reader takes it as is."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.header)
    writer.writerows([_cell_text(v, table) for v in row] for row in table.rows)
    return out.getvalue()


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  # What the tables print as Unicode in Markdown: pdflatex stops at most of it (U+2713, Greek), so
                  # LaTeX gets the math-mode symbol. \checkmark is amssymb's (:func:`latex_packages`).
                  "π": r"$\pi$", "α": r"$\alpha$", "β": r"$\beta$", "λ": r"$\lambda$", "ε": r"$\epsilon$",
                  "ω": r"$\omega$", "Δ": r"$\Delta$", "ỹ": r"$\tilde{y}$", "±": r"$\pm$", "×": r"$\times$",
                  "≥": r"$\geq$", "†": r"$^\dagger$", "≤": r"$\leq$", "→": r"$\rightarrow$", "−": "-", "✓": r"$\checkmark$"}
# A caption's leading paper number ("Table 13. ", "Fig. 3. "), which LaTeX would print after its own "Table N:".
_PAPER_NUMBER = re.compile(r"(?:Table|Fig\.|Figure)\s+[0-9]+[a-z]?[.:]\s*")


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_tex(text: str) -> str:
    """Text as LaTeX: a :class:`Label`'s own LaTeX, anything else escaped."""
    return text.latex if isinstance(text, Label) else latex_escape(text)


def latex_label(table: Table) -> str:
    """The table's ``\\label``: ``tab:`` and its :attr:`Table.label`, else the first words of its title
    (``Table 6. Ablation of UIAT's components`` -> ``tab:table-6-ablation-of-uiat-s-components``)."""
    words = re.sub(r"[^a-z0-9]+", " ", (table.label or table.title).lower()).split()
    return "tab:" + "-".join(words if table.label else words[:7])


def latex_packages(tex: str) -> list[str]:
    """The packages LaTeX from :func:`to_latex` needs: booktabs' rules, graphicx's shrink to the line width, amssymb
    where a check mark is set."""
    return ["booktabs", "graphicx", *(["amssymb"] if "\\checkmark" in tex else [])]


def to_latex(table: Table) -> str:
    """A ``table`` environment with booktabs rules, its caption without the paper's number and a ``\\label``; the
    packages it needs in a first comment line, the notes as comments after it."""

    def tex(value: str | Cell) -> str:
        if isinstance(value, Cell):
            # A cell's text is numbers and its marks (--stats' dagger), which LaTeX takes as math.
            text = _cell_text(value, table, pm="$\\pm$").replace("†", _LATEX_SPECIAL["†"])
            return f"\\textbf{{{text}}}" if value.bold else text
        return to_tex(value)

    spec = "".join("r" if numeric else "l" for numeric in _numeric_columns(table))
    title = to_tex(table.title)
    number = _PAPER_NUMBER.match(title)
    caption = title[number.end():] if number else title
    body = [
        "\\begin{table}[t]", "\\centering", f"\\caption{{{caption}}}", f"\\label{{{latex_label(table)}}}",
        # Shrunk to the line width only when wider (AFS Table 6, BiaMAT Table 11): \width is the natural width.
        "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%",
        f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
        " & ".join(map(to_tex, table.header)) + " \\\\", "\\midrule",
        *(" & ".join(tex(v) for v in row) + " \\\\" for row in table.rows),
        "\\bottomrule", "\\end{tabular}}", "\\end{table}",
    ]
    packages = ", ".join(f"\\usepackage{{{name}}}" for name in latex_packages("\n".join(body)))
    lines = [f"% needs {packages}", *body, *(f"% {' '.join(note.splitlines())}" for note in table.all_notes())]
    return "\n".join(lines) + "\n"


def latex_document(tables: Iterable[Table]) -> str:
    """A whole LaTeX document of the tables, which pdflatex compiles as it is."""
    body = "".join(map(to_latex, tables))
    preamble = [f"\\usepackage{{{name}}}" for name in latex_packages(body)]
    return "\n".join(["\\documentclass{article}", *preamble, "\\begin{document}", body + "\\end{document}"]) + "\n"


def render(table: Table, fmt: str = "md") -> str:
    renderers = {"md": to_markdown, "csv": to_csv, "latex": to_latex, "latex-doc": lambda t: latex_document([t])}
    if fmt not in renderers:
        raise ValueError(f"unknown format {fmt!r}; formats: {', '.join(renderers)}")
    return renderers[fmt](table)


def emit(table: Table, fmt: str = "md", out: Path | None = None) -> None:
    """Print the table, or write it to ``out``. CSV carries no title or notes, so those go to stderr."""
    text = render(table, fmt)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out}", file=sys.stderr)
    if fmt == "csv":
        print("\n".join([table.title, *table.all_notes()]), file=sys.stderr)
