"""BiaMAT Table 2: AT+BiaMAT and TRADES+BiaMAT with each auxiliary dataset, one primary dataset per sweep.

    python sweeps/biamat_main_results.py                          # smoke: 2 variants x 2 synthetic auxiliary sets
    python sweeps/biamat_main_results.py --preset paper --seeds 3                       # CIFAR-10: 8 runs per seed
    python sweeps/biamat_main_results.py --preset paper --primary cifar100 --seeds 3    # CIFAR-100: 4 runs per seed
    python sweeps/biamat_main_results.py --preset paper --primary imgnet100 --seeds 3   # ImgNet100: 4 runs per seed
    python sweeps/baselines.py --preset biamat-main-cifar10-paper --seeds 3   # the "AT" and "TRADES" rows, same recipe
    python analysis/biamat_tables.py table2 --sweep biamat-main-cifar10-paper \\
        --baseline-sweep baselines-biamat-main-cifar10-paper

The grid is Table 2's rows of one primary dataset: variant (AT, TRADES) x auxiliary set x seed, every trial gated
BiaMAT. CIFAR-10: SVHN, CIFAR-100, Places365 (32x32), ImageNet32; CIFAR-100: Places365, ImageNet32; ImgNet100:
Places365 at 64x64 and ImgNet900 (``sweeps/biamat_presets.py`` TABLE2_AUX). Each trial takes the alpha and pi of its
setting (primary, variant, auxiliary) from appendix Table 12; the three rows Table 12 does not list (CIFAR-10
TRADES+BiaMAT with SVHN, ImgNet100 TRADES+BiaMAT with either set) take this project's choice, ``TABLE2_UNLISTED``,
whose comments give the reasons. alpha and pi are logged as params beside variant and aux_datasets.

Recipe: each variant's paper recipe on the primary set (``paper_recipe``): AT+BiaMAT WRN-28-10 for 100 epochs,
TRADES+BiaMAT WRN-34-10 for 110, WRN-16-10 for both on ImgNet100 (appendix E), TRADES with plain adversarial CE for
high-confidence auxiliary samples on CIFAR-100 and ImgNet100; 5 warm-up epochs; the best checkpoint by PGD-10 on the
test set (ImgNet100: its 5,000 validation images). The smoke preset is Table 1's smoke recipe (synthetic data,
tiny CNN, 2 epochs, one of them warm-up) with each variant's attack, at Table 12's CIFAR-10 alpha and pi: its 4 trials
took 1 min 39 s on 2 otherwise idle CPU cores (2026-12-01), their baselines 37 s more.

Cost at the paper's speed (appendix Table 11, one V100): CIFAR-10 4 x 56.5 h + 4 x 103 h = 638 V100-hours per seed,
CIFAR-100 319; ImgNet100 AT+BiaMAT 196 h each (the paper does not time TRADES+BiaMAT there).
"""

from __future__ import annotations

from launch.cli import parse_primary_args
from launch.space import Derived, grid, per_value
from sweeps.biamat_presets import PAPER_SHARED, PAPER_VARIANTS, TABLE2_AUX, TABLE2_UNLISTED, TABLE12, table2_recipe

PRESETS = ("smoke", "paper")
PRIMARIES = list(TABLE2_AUX)
SMOKE_AUX = ["synthetic_aux", "synthetic_aux_unrelated"]  # half related to the primary classes, as ImageNet; none
WARMUP = {"smoke": 1, "paper": PAPER_SHARED["warmup_epochs"]}  # the smoke preset's as biamat_aux_sets.py's


def auxiliary_sets(preset: str, primary: str) -> list[str]:
    return SMOKE_AUX if preset == "smoke" else TABLE2_AUX[primary]


def settings(preset: str, primary: str) -> dict[tuple[str, str], tuple[float, float]]:
    """(variant, auxiliary set) -> (alpha, pi) for every trial of the grid: Table 12, else TABLE2_UNLISTED. The smoke
    preset's synthetic sets take Table 12's CIFAR-10 values (with ImageNet32)."""
    if preset == "smoke":
        return {(v, aux): TABLE12[("cifar10", v, "imagenet32")] for v in PAPER_VARIANTS for aux in SMOKE_AUX}
    chosen = TABLE12 | TABLE2_UNLISTED
    return {(v, aux): chosen[(primary, v, aux)] for v in PAPER_VARIANTS for aux in TABLE2_AUX[primary]}


def search_space(preset: str, seeds: int, primary: str = "cifar10") -> dict:
    shared, variants = table2_recipe(preset, primary)
    chosen = settings(preset, primary)

    def setting(config: dict) -> tuple[float, float]:
        return chosen[(config["variant"], config["aux_datasets"][0])]

    return {
        **shared,
        "variant": grid(list(variants)),
        "aux_datasets": grid([[aux] for aux in auxiliary_sets(preset, primary)]),
        "labels": "gated",
        "warmup_epochs": WARMUP[preset],
        "seed": grid(list(range(seeds))),
        **per_value("variant", variants),
        # Both follow the pair of grid values, as per_value's entries follow one.
        "alpha": Derived(lambda config: setting(config)[0]),
        "pi": Derived(lambda config: setting(config)[1]),
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_primary_args(__doc__, PRESETS, PRIMARIES, argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.run import run_sweep
    from launch.sweep import Sweep

    primary = args.primary
    sweep = Sweep.of("biamat", family="biamat-main-results", param_space=search_space(args.preset, args.seeds, primary),
                     name_keys=("variant", "aux_datasets", "seed"), extra_datasets=lambda cfg: cfg.aux_datasets)
    suffix = "main-smoke" if args.preset == "smoke" else f"main-{primary}-{args.preset}"
    name = args.name or f"biamat-{suffix}"
    baseline = f"baselines-biamat-{suffix}"  # sweeps/baselines.py's default name for its preset biamat-<suffix>

    def report() -> None:
        from analysis.biamat.tables import table2
        from analysis.render import emit
        from runstore.reader import load_sweep

        emit(table2(load_sweep(name, tracking_uri=args.tracking_uri)))

    run_sweep(sweep, args, name, report=report,
              next_steps=[f"sweeps/baselines.py --preset biamat-{suffix} --seeds {args.seeds}",
                          f"analysis/biamat_tables.py table2 --sweep {name} --baseline-sweep {baseline}"])


if __name__ == "__main__":
    main()
