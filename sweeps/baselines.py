"""Baselines: standard training, PGD-AT and TRADES, each paper's comparison with that paper's own recipe.

    python sweeps/baselines.py                                  # smoke: the three trainings on synthetic data, 2 min
    python sweeps/baselines.py --preset biamat-paper --seeds 3  # BiaMAT Table 1's "AT" column: PGD-AT, BiaMAT's recipe
    python sweeps/baselines.py --preset biamat-main-cifar100-paper  # BiaMAT Table 2's AT and TRADES rows on CIFAR-100
    python sweeps/baselines.py --preset uiat-paper --seeds 3    # UIAT Table 1's PGD-AT (SAT) and TRADES rows

A baseline in a table must be trained the way the table's method is, minus the method, or the comparison says
nothing about the method. So each paper has its own presets, built from that paper's recipe instead of copied:

- ``biamat-paper`` / ``biamat-smoke``: the AT+BiaMAT recipe of ``sweeps/biamat_presets.py`` without the auxiliary
  data (WRN-28-10, 100 epochs, decay at 60% and 90%, weight decay 2e-4, the attack on batch statistics, selection
  on the test set every 2 epochs from the first decay). ``analysis/biamat_tables.py table1 --baseline-sweep
  baselines-biamat-paper`` reads it, and refuses a baseline whose recipe differs from the BiaMAT rows'.
- ``biamat-main-<primary>-paper`` (``cifar10``, ``cifar100``, ``imgnet100``) / ``biamat-main-smoke``: BiaMAT Table 2's
  "AT" and "TRADES" rows on that primary set, PGD-AT on the AT+BiaMAT recipe and TRADES on the TRADES+BiaMAT one
  (``baseline_recipe`` of each: WRN-16-10 on ImgNet100), as ``sweeps/biamat_main_results.py --primary <primary>``
  trains the BiaMAT rows; ``analysis/biamat_tables.py table2 --baseline-sweep baselines-biamat-main-<primary>-paper``
  reads it.
- ``uiat-paper`` / ``uiat-smoke``: UIAT's recipe (``sweeps/uiat_presets.py``: ResNet-18, 100 epochs, cyclic LR with
  Nesterov momentum, weight decay 5e-4), PGD-AT and TRADES (beta 6, its x + 0.001 N(0, 1) start), evaluated like UIAT
  (clean, PGD-20, CW-20, AutoAttack).
- ``smoke``: all three trainings on synthetic data, the quick check of the whole path.
"""

from __future__ import annotations

from typing import Any

from launch.cli import run_parser
from launch.space import grid, per_value
from sweeps import uiat_presets
from sweeps.biamat_presets import (
    BASELINE_TRAINING,
    BIAMAT_ONLY,
    TABLE1_SMOKE,
    TABLE2_AUX,
    baseline_recipe,
    paper_recipe,
    table2_recipe,
)

SMOKE = {
    "dataset": "synthetic", "train_n": 1024, "model": "tiny-cnn", "epochs": 3, "batch_size": 64, "lr": 0.05,
    "attack_steps": 5, "attack_step": 3 / 255, "lr_milestones": [0.75], "eval_n": 256, "final_n": 512,
    "final_attacks": ["clean", "pgd20"],
}


def biamat_main(preset: str, dataset: str) -> tuple[tuple[dict[str, Any], list[str]], dict[str, dict[str, Any]]]:
    """BiaMAT Table 2's baselines on ``dataset``: the preset (the recipe both share, the trainings) and what each
    training sets on its own, so that each equals ``baseline_recipe(paper_recipe(variant, dataset), variant)``."""
    shared, variants = table2_recipe(preset, dataset)
    own = {BASELINE_TRAINING[variant]: {k: v for k, v in recipe.items() if k not in BIAMAT_ONLY}
           for variant, recipe in variants.items()}
    return (baseline_recipe(shared, "at"), list(own)), own


# Table 2's baselines, one preset per primary set (sweeps/biamat_main_results.py's --primary).
BIAMAT_MAIN = {"biamat-main-smoke": biamat_main("smoke", "synthetic"),
               **{f"biamat-main-{primary}-paper": biamat_main("paper", primary) for primary in TABLE2_AUX}}
# preset -> (recipe, the trainings it runs)
PRESETS = {
    "smoke": (SMOKE, ["standard", "pgd_at", "trades"]),
    "biamat-smoke": (baseline_recipe(TABLE1_SMOKE, "at"), ["pgd_at"]),
    "biamat-paper": (baseline_recipe(paper_recipe("at"), "at"), ["pgd_at"]),
    **{name: preset for name, (preset, _) in BIAMAT_MAIN.items()},
    "uiat-smoke": (uiat_presets.baseline_preset("smoke"), ["pgd_at", "trades"]),
    "uiat-paper": (uiat_presets.baseline_preset("paper"), ["pgd_at", "trades"]),
}
# preset -> training -> what that training sets on top of the preset's recipe (Table 2: one recipe per BiaMAT variant)
PER_TRAINING = {name: own for name, (_, own) in BIAMAT_MAIN.items()}
# The TRADES convention's start (x + 0.001 N(0, 1)); PGD-AT (and standard training, which never attacks) start
# uniformly in the eps-ball.
ATTACK_START = {"standard": "uniform", "pgd_at": "uniform", "trades": "normal"}


def search_space(preset: str, seeds: int) -> dict:
    recipe, trainings = PRESETS[preset]
    own = PER_TRAINING.get(preset, {})
    return {
        **recipe,
        "training": grid(trainings),
        "seed": grid(list(range(seeds))),
        **per_value("training", {t: {"attack_start": ATTACK_START[t], **own.get(t, {})} for t in trainings}),
    }


def main(argv: list[str] | None = None) -> None:
    args = run_parser(__doc__, PRESETS).parse_args(argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.run import run_sweep
    from launch.sweep import Sweep

    space = search_space(args.preset, args.seeds)
    sweep = Sweep.of("baseline", family="baselines", param_space=space, name_keys=("training", "seed"))
    name = args.name or f"baselines-{args.preset}"
    # Every preset ends with its trainings' accuracies (UIAT Table 1's layout, which takes any baselines), then the
    # tables these baselines are a column of (biamat-paper: BiaMAT's paper preset, whose labels sweep is
    # biamat-labels-paper).
    method, _, size = args.preset.partition("-")
    next_steps = {"biamat": [f"analysis/biamat_tables.py table1 --sweep biamat-labels-{size} --baseline-sweep {name}"],
                  "uiat": [f"analysis/uiat_tables.py table2 --sweep {name}"]}
    if size.startswith("main-"):  # BiaMAT Table 2: its sweep is biamat_main_results.py's default name for the preset
        next_steps["biamat"] = [f"analysis/biamat_tables.py table2 --sweep biamat-{size} --baseline-sweep {name}"]

    def report() -> None:
        from analysis.render import emit
        from analysis.uiat.tables import table1
        from runstore.reader import load_sweep

        emit(table1([load_sweep(name, tracking_uri=args.tracking_uri)], title=f"Baselines of sweep {name!r}"))

    run_sweep(sweep, args, name, report=report,
              next_steps=[f"analysis/uiat_tables.py table1 --sweep {name}", *next_steps.get(method, [])])


if __name__ == "__main__":
    main()
