"""The house stays as it was built: every experiment script is under the import contract that keeps scripts from
importing each other (checked by ``lint-imports`` in .ci/run), and no source module grows past what one reader holds."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ("trainables", "launch", "runstore", "analysis", "sweeps", "benchmarks")
MAX_LINES = 450


def contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_every_experiment_script_is_under_the_independence_contract():
    scripts = {f"sweeps.{path.stem}" for path in (ROOT / "sweeps").glob("*.py") if "\ndef main(" in path.read_text()}
    independent = [c for c in contracts() if c["type"] == "independence" and
                   all(m.startswith("sweeps.") for m in c["modules"])]
    assert len(independent) == 1
    assert set(independent[0]["modules"]) == scripts


def test_sweeps_holds_experiment_scripts_and_their_presets_only():
    others = {path.name for path in (ROOT / "sweeps").glob("*.py")
              if "\ndef main(" not in path.read_text() and path.name != "__init__.py"}
    assert all(name.endswith("_presets.py") for name in others), others


def test_no_source_module_is_over_the_line_budget():
    sizes = {str(path.relative_to(ROOT)): len(path.read_text().splitlines())
             for folder in SOURCE for path in (ROOT / folder).rglob("*.py")}
    assert {path: n for path, n in sizes.items() if n > MAX_LINES} == {}
