"""BiaMAT Table 1 and Fig. 3: AT+BiaMAT on CIFAR-10 with each auxiliary dataset, with all auxiliary labels (y~), all
uniform (y^ER), and gated at pi = 0.55.

    python sweeps/biamat_labels.py                             # smoke: synthetic primary, two synthetic auxiliary sets
    python sweeps/biamat_labels.py --preset paper --seeds 3    # CIFAR-10 x {SVHN, CIFAR-100, Places365, ImageNet32}
    python sweeps/baselines.py --preset biamat-paper --seeds 3 # the "Baseline [25]" column (PGD-AT, same recipe)
    python analysis/biamat_tables.py table1 --sweep biamat-labels-paper --baseline-sweep baselines-biamat-paper
    python analysis/biamat_tables.py fig3 --sweep biamat-labels-paper --out fig3.png

Rows (``labels``): ``aux`` routes every auxiliary sample to its own label on the auxiliary head (Table 1 row y~),
``uniform`` every sample to y^ER on the primary head (row y^ER, OAT); both without warm-up, as the reference's y^ER
switch sets it to 0. ``gated`` is BiaMAT itself at pi = 0.55 with its 5 warm-up epochs: Fig. 3 plots its share of
high-confidence auxiliary samples per epoch for each auxiliary dataset. Recipe: the AT+BiaMAT paper recipe of
``sweeps/biamat_presets.py`` (WRN-28-10, 100 epochs, LR 0.1 decayed x0.1 at 60% and 90%, weight decay 2e-4, eps 8/255,
alpha 1.0; best checkpoint by PGD-10 on the test set every 2 epochs from the first decay, as the paper). One seed of
the paper grid is 12 runs of about 56.5 V100-hours each (appendix Table 11).

The smoke preset's auxiliary sets: ``synthetic_aux`` (half its classes share a primary class's robust pattern, as
ImageNet shares CIFAR-10's objects) and ``synthetic_aux_unrelated`` (none do, as SVHN).
"""

from __future__ import annotations

from launch.cli import run_parser
from launch.space import grid, per_value
from sweeps.biamat_presets import PAPER_SHARED, TABLE1_SMOKE, TABLE12, paper_recipe

PRESETS = {"smoke": TABLE1_SMOKE, "paper": paper_recipe("at")}
# The grid's auxiliary sets, one Table 1 column each.
AUX_SETS = {"smoke": [["synthetic_aux"], ["synthetic_aux_unrelated"]],
            "paper": [["svhn"], ["cifar100"], ["places365_32"], ["imagenet32"]]}
# Warm-up per row: none for Table 1's y~ and y^ER runs (the reference), BiaMAT's own for the gated Fig. 3 runs.
WARMUP = {"smoke": 1, "paper": PAPER_SHARED["warmup_epochs"]}
PI = TABLE12[("cifar10", "at", "imagenet32")][1]  # 0.55, Table 12 for every CIFAR-10 AT setting


def search_space(preset: str, seeds: int) -> dict:
    return {
        **PRESETS[preset],
        "aux_datasets": grid(AUX_SETS[preset]),
        "variant": "at",
        "alpha": 1.0,
        "pi": PI,
        "labels": grid(["aux", "uniform", "gated"]),
        "seed": grid(list(range(seeds))),
        **per_value("labels", {"aux": {"warmup_epochs": 0}, "uniform": {"warmup_epochs": 0},
                               "gated": {"warmup_epochs": WARMUP[preset]}}),
    }


def main(argv: list[str] | None = None) -> None:
    args = run_parser(__doc__, PRESETS).parse_args(argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.run import run_sweep
    from launch.sweep import Sweep

    space = search_space(args.preset, args.seeds)
    sweep = Sweep.of("biamat", family="biamat-labels", param_space=space, name_keys=("aux_datasets", "labels", "seed"),
                     extra_datasets=lambda cfg: cfg.aux_datasets)
    name = args.name or f"biamat-labels-{args.preset}"
    baseline = f"baselines-biamat-{args.preset}"  # sweeps/baselines.py's default name for that preset

    def report() -> None:
        from analysis.biamat.tables import table1
        from analysis.render import emit
        from runstore.reader import load_sweep

        emit(table1(load_sweep(name, tracking_uri=args.tracking_uri)))

    run_sweep(sweep, args, name, report=report,
              next_steps=[f"analysis/biamat_tables.py fig3 --sweep {name} --out fig3.png",
                          f"sweeps/baselines.py --preset biamat-{args.preset} --seeds {args.seeds}",
                          f"analysis/biamat_tables.py table1 --sweep {name} --baseline-sweep {baseline}"])


if __name__ == "__main__":
    main()
