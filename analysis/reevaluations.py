"""The metrics ``sweeps/reevaluate.py`` logs into trained runs, read back in long form for the figures that need
several threat models (AFS Fig. 5(a), UIAT Figs. 1, 4 and 5).

Its keys are ``reeval/<checkpoint>/<attack>[/eps<e>]/n<N>[/<half>]``: ``e`` an eps in units of 1/255 (``8_255``,
``-8_255`` for an inverse attack) or a decimal (``0.03``), no eps for clean accuracy, ``half`` one of the clean-loss
halves (``low_ce``, ``high_ce``) where it split the points. Analysis does not import ``sweeps/``, so the grammar is
written out here; ``tests/test_afs_figures.py`` holds it to ``sweeps.reevaluate.metric_key``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

REEVAL = re.compile(r"metrics\.reeval/(?P<checkpoint>best|last)/(?P<attack>clean|pgd\d+|cw\d+|autoattack)"
                    r"(?:/eps(?P<eps>-?[0-9.]+(?:e-?\d+)?)(?P<unit>_255)?)?/n(?P<n>\d+)(?:/(?P<half>low_ce|high_ce))?")
COLUMNS = ["checkpoint", "attack", "eps", "n", "half", "value"]


def reevaluations(runs: pd.DataFrame, label: str = "method") -> pd.DataFrame:
    """The runs' ``reeval/*`` metrics, one row per run and metric: run_id, ``label`` (the runs' own column naming
    their series), checkpoint, attack, eps (in 1/255; 0 for clean accuracy), n, half ("" for all points), value."""
    rows = []
    for column in runs.columns:
        key = REEVAL.fullmatch(column)
        if key is None:
            continue
        eps = 0.0 if key["eps"] is None else float(key["eps"]) * (1 if key["unit"] else 255)
        for run_id, name, value in runs[["run_id", label, column]].dropna().itertuples(index=False):
            rows.append((run_id, name, key["checkpoint"], key["attack"], round(eps, 6), int(key["n"]),
                         key["half"] or "", value))
    return pd.DataFrame(rows, columns=["run_id", label, *COLUMNS])


def choose_n(frame: pd.DataFrame, n: int | None, names: Sequence[str], what: str, command: str,
             label: str = "method") -> int:
    """``n`` if every series in ``names`` (values of ``label``) has it, else the largest N they all were
    re-evaluated on; none in common is an error that names ``command``, the re-evaluation to run."""
    counts = [set(frame.loc[frame[label] == name, "n"]) for name in names]
    common = set.intersection(*counts) if counts else set()
    if n is not None and n not in common:
        raise ValueError(f"no {what} on n={n} points for every series; logged: {sorted(common) or 'none'}")
    if not common:
        raise ValueError(f"these runs have no {what} for every one of {', '.join(names)}: run {command}")
    return n if n is not None else max(common)
