"""UIAT Table 1: PGD-AT (SAT), TRADES, MART, HAT, UIAT and one-off UIAT, one recipe and one evaluation for all.

    python sweeps/uiat_comparison.py                            # smoke: synthetic data, tiny CNN, seven trials
    python sweeps/uiat_comparison.py --preset paper --seeds 3   # CIFAR-10, CIFAR-100 and SVHN, ResNet-18
    python analysis/uiat_tables.py table1 --sweep uiat-comparison-paper --sweep uiat-comparison-paper-baselines \\
        --sweep uiat-comparison-paper-mart --sweep uiat-comparison-paper-hat

Four sweeps, run in this order because HAT needs a standard-trained helper: ``NAME-baselines`` (standard training,
the helpers; PGD-AT; TRADES; MLflow experiment ``baselines``, where HAT looks for its helpers), ``NAME-mart``,
``NAME-hat`` (its helpers checked before it starts) and ``NAME`` (UIAT and one-off UIAT).

A fair comparison trains every method the same way: UIAT's recipe (``sweeps/uiat_presets.py``: ResNet-18, 100
epochs, cyclic LR peaking at 0.1 with Nesterov momentum, weight decay 5e-4, PGD-10 of 2/255 at 8/255) and one final
protocol (clean, PGD-20, CW-20, AutoAttack), not each method's own paper recipe. Per dataset (UIAT Sec. 4.1): SVHN
trains 30 epochs with PGD steps of 1/255 and UIAT's lambda 3.0; CIFAR-10 and CIFAR-100 keep lambda 3.5. Each
method's own constants: TRADES beta 6 and the x + 0.001 N(0, 1) start (as HAT's attack), MART beta 6 (its CIFAR-10
value), HAT beta 2.5, gamma 0.5, h 2 (its CIFAR-10 ResNet-18 values; its paper gives none for SVHN, so SVHN keeps
them). ``analysis/uiat_tables.py table2`` on the same sweeps gives Table 2's minutes per epoch, HAT included.
"""

from __future__ import annotations

import dataclasses

from launch.cli import run_parser
from launch.space import grid, per_value
from sweeps.uiat_presets import PRESETS, baseline_preset

DATASETS = {"smoke": ["synthetic"], "paper": ["cifar10", "cifar100", "svhn"]}
# UIAT Sec. 4.1: "30 [epochs] for SVHN", "the step size alpha is set as ... 1/255 for SVHN", "lambda = 3.0 for SVHN".
PER_DATASET = {"svhn": {"epochs": 30, "attack_step": 1 / 255}}
# UIAT on SVHN: lambda 3.0 (Sec. 4.1); T = 10 and T' = 50 of 100 epochs are not given for 30, so they keep their
# share of training: momentum from epoch 3, the one-off targets stored in epoch 15. Other datasets: UIAT's defaults.
UIAT_PER_DATASET = {"svhn": {"lam": 3.0, "momentum_start": 3, "oneoff_epoch": 15}}
BASELINES = ["standard", "pgd_at", "trades"]  # standard: HAT's helpers
ATTACK_START = {"standard": "uniform", "pgd_at": "uniform", "trades": "normal"}
VARIANTS = {False: {"components": "uag+fr+iam"}, True: {"components": "uag+fr"}}  # UIAT and one-off UIAT


def shared(preset: str, seeds: int, recipe: dict, **per_dataset: dict[str, object]) -> dict:
    """``recipe`` on each dataset of the preset with Sec. 4.1's per-dataset changes (and ``per_dataset``: a key's
    value for each dataset), and the seeds."""
    datasets = DATASETS[preset]
    values = {d: {**{k: PER_DATASET.get(d, {}).get(k, recipe[k]) for k in ("epochs", "attack_step")},
                  **{key: by_dataset[d] for key, by_dataset in per_dataset.items()}} for d in datasets}
    return {**recipe, "dataset": grid(datasets), "seed": grid(list(range(seeds))),
            **per_value("dataset", values)}


def baseline_space(preset: str, seeds: int) -> dict:
    return {
        **shared(preset, seeds, baseline_preset(preset)),
        "beta": 6.0,
        "training": grid(BASELINES),
        **per_value("training", {t: {"attack_start": ATTACK_START[t]} for t in BASELINES}),
    }


def mart_space(preset: str, seeds: int) -> dict:
    # MART's reference crafts like TRADES's: from x + 0.001 N(0, 1) (trainables/methods/mart.py).
    return {**shared(preset, seeds, baseline_preset(preset)), "beta": 6.0, "attack_start": "normal"}


def hat_space(preset: str, seeds: int, helper_sweep: str) -> dict:
    return {**shared(preset, seeds, baseline_preset(preset)), "helper_sweep": helper_sweep, "beta": 2.5, "gamma": 0.5,
            "h": 2.0, "attack_start": "normal"}


def uiat_space(preset: str, seeds: int) -> dict:
    from trainables.methods.configs import UIATConfig

    recipe = PRESETS[preset]
    defaults = {f.name: recipe.get(f.name, f.default) for f in dataclasses.fields(UIATConfig)}
    keys = {key for values in UIAT_PER_DATASET.values() for key in values}
    per_dataset = {key: {d: UIAT_PER_DATASET.get(d, {}).get(key, defaults[key]) for d in DATASETS[preset]}
                   for key in keys}
    return {**shared(preset, seeds, recipe, **per_dataset), "oneoff": grid([False, True]),
            **per_value("oneoff", VARIANTS)}


def main(argv: list[str] | None = None) -> None:
    args = run_parser(__doc__, PRESETS).parse_args(argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.hat_helpers import require_hat_helpers
    from launch.run import prepare_sweeps, run_sweep
    from launch.sweep import Sweep

    name = args.name or f"uiat-comparison-{args.preset}"
    names = [f"{name}-baselines", f"{name}-mart", f"{name}-hat", name]
    sweeps = {
        names[0]: Sweep.of("baseline", family="baselines", param_space=baseline_space(args.preset, args.seeds),
                           name_keys=("dataset", "training", "seed")),
        names[1]: Sweep.of("mart", family="uiat-comparison", param_space=mart_space(args.preset, args.seeds),
                           name_keys=("dataset", "seed")),
        names[2]: Sweep.of("hat", family="uiat-comparison", param_space=hat_space(args.preset, args.seeds, names[0]),
                           name_keys=("dataset", "seed")),
        names[3]: Sweep.of("uiat", family="uiat-comparison", param_space=uiat_space(args.preset, args.seeds),
                           name_keys=("dataset", "oneoff", "seed")),
    }
    prepared = prepare_sweeps(sweeps, args)  # every sweep is checked before the first one starts
    if prepared is None:  # a dry run
        return
    sweeps, args = prepared
    run_sweep(sweeps[names[0]], args, names[0])
    run_sweep(sweeps[names[1]], args, names[1])
    require_hat_helpers(sweeps[names[2]], args, names[0])  # the standard-training trials just run
    run_sweep(sweeps[names[2]], args, names[2])
    table = f"analysis/uiat_tables.py table1 {' '.join(f'--sweep {n}' for n in names)}"

    def report() -> None:
        from analysis.render import emit
        from analysis.uiat.tables import table1
        from runstore.reader import load_sweep

        emit(table1([load_sweep(n, tracking_uri=args.tracking_uri) for n in names]))

    run_sweep(sweeps[names[3]], args, names[3], report=report,
              next_steps=[table, table.replace("table1", "table2", 1)])


if __name__ == "__main__":
    main()
