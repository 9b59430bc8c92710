"""UIAT Table 4: adversarial training with 1M generated images, PRN-18 and WRN-28-10 on CIFAR-10 and CIFAR-100.

    python sweeps/uiat_extra_data.py                     # smoke: synthetic data, tiny CNN, five trials, 3-4 min
    python sweeps/uiat_extra_data.py --preset paper      # needs cifar10_ddpm.npz and cifar100_ddpm.npz in --data-root
    python analysis/uiat_tables.py table4 --sweep uiat-extra-data-paper-baselines \\
        --sweep uiat-extra-data-paper-hat --sweep uiat-extra-data-paper

Three sweeps, run in this order because HAT needs a standard-trained helper: ``NAME-baselines`` (standard training,
HAT's helpers, and TRADES, the "Rebuffi et al." row; MLflow experiment ``baselines``, where HAT looks for its
helpers), ``NAME-hat`` (its helpers checked before it starts) and ``NAME`` (UIAT and one-off UIAT). Every trial, the
helpers included, trains on the same data: each batch 30% training images and 70% generated ones
(``extra_data``, ``original_fraction``; trainables/loader.py MixedLoader), with HAT's batch 1024, 400 epochs and peak
LR 0.4 (``sweeps/uiat_presets.py`` EXTRA_DATA_RECIPE, each number's source there). The generated images are the
1M-image DDPM sets of Rebuffi et al. 2021, which the user downloads into the data root; a missing one stops the sweep
before Ray starts with the address to get it from.

What the rows are: "Rebuffi et al. [33]" is their loss, TRADES (beta 6, the value of the Gowal et al. command in
github.com/imrahulr/adversarial_robustness_pytorch, the code HAT's generated-data training extends), with the
generated data; HAT is beta 3.5, gamma 0.5, h 2 (HAT README, its generated-data command); UIAT keeps lambda 3.5. Not
reproduced, for any row: model weight averaging (HAT and Rebuffi et al. evaluate the average, decay 0.995), label
smoothing 0.1, Swish activations in WRN-28-10, BatchNorm momentum 0.01 and BatchNorm parameters without weight
decay, their one-cycle LR (cosine, peaking at 25% of training; here UIAT's triangle peaking half-way), drawing the
generated images with replacement, and selection on held-out training images; so the rows compare the methods on
one recipe, not the paper's absolute numbers. No CutMix, as in the paper ("following [32]").

Smoke: the 512-image smoke recipe with the other 9,488 synthetic training images as the "generated" data, five
trials of 6 epochs: 3 min 23 s for the command, one run on 2 CPU cores shared with other jobs (load average 4-5,
2026-12-01); UIAT 0.60 clean / 0.31 PGD-20 on the 128 final points. Paper: 20 trials of 400 epochs per seed
(``--dry-run`` prints them and a GPU estimate: about 500 A100-hours for the WRN-28-10 standard, TRADES and UIAT
trials at UIAT Table 2's speeds; there is none for PRN-18 or HAT).
"""

from __future__ import annotations

from launch.cli import run_parser
from launch.space import grid, per_value
from sweeps.generated_presets import require_ddpm
from sweeps.uiat_presets import EXTRA_DATA_GRID, EXTRA_DATA_RECIPE, baseline_preset, extra_data

BASELINES = ["standard", "trades"]  # standard: HAT's helpers; TRADES: the "Rebuffi et al." row
ATTACK_START = {"standard": "uniform", "trades": "normal"}
VARIANTS = {False: {"components": "uag+fr+iam"}, True: {"components": "uag+fr"}}  # UIAT and one-off UIAT


def shared(preset: str, seeds: int, data_root: str | None, recipe: dict) -> dict:
    """``recipe`` on each dataset and network of the preset, each dataset with its generated data, and the seeds."""
    axes = EXTRA_DATA_GRID[preset]
    data = {dataset: {"extra_data": extra_data(dataset, data_root)} for dataset in axes["datasets"]}
    return {**recipe, "dataset": grid(axes["datasets"]), "model": grid(axes["models"]),
            "seed": grid(list(range(seeds))), **per_value("dataset", data)}


def baseline_space(preset: str, seeds: int, data_root: str | None) -> dict:
    return {
        **shared(preset, seeds, data_root, baseline_preset(preset, EXTRA_DATA_RECIPE)),
        "beta": 6.0,  # TRADES's weight in the Gowal et al. command (module docstring)
        "training": grid(BASELINES),
        **per_value("training", {t: {"attack_start": ATTACK_START[t]} for t in BASELINES}),
    }


def hat_space(preset: str, seeds: int, data_root: str | None, helper_sweep: str) -> dict:
    # HAT README, training with generated data: --beta 3.5 --gamma 0.5; h 2 is parser.py's default.
    return {**shared(preset, seeds, data_root, baseline_preset(preset, EXTRA_DATA_RECIPE)),
            "helper_sweep": helper_sweep, "beta": 3.5, "gamma": 0.5, "h": 2.0, "attack_start": "normal"}


def uiat_space(preset: str, seeds: int, data_root: str | None) -> dict:
    return {**shared(preset, seeds, data_root, EXTRA_DATA_RECIPE[preset]), "oneoff": grid([False, True]),
            **per_value("oneoff", VARIANTS)}


def main(argv: list[str] | None = None) -> None:
    args = run_parser(__doc__, list(EXTRA_DATA_RECIPE)).parse_args(argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.hat_helpers import require_hat_helpers
    from launch.run import prepare_sweeps, run_sweep
    from launch.sweep import Sweep

    name = args.name or f"uiat-extra-data-{args.preset}"
    names = [f"{name}-baselines", f"{name}-hat", name]
    preset, seeds, root = args.preset, args.seeds, args.data_root
    sweeps = {
        names[0]: Sweep.of("baseline", family="baselines", param_space=baseline_space(preset, seeds, root),
                           name_keys=("dataset", "model", "training", "seed")),
        names[1]: Sweep.of("hat", family="uiat-extra-data", param_space=hat_space(preset, seeds, root, names[0]),
                           name_keys=("dataset", "model", "seed")),
        names[2]: Sweep.of("uiat", family="uiat-extra-data", param_space=uiat_space(preset, seeds, root),
                           name_keys=("dataset", "model", "oneoff", "seed")),
    }
    prepared = prepare_sweeps(sweeps, args, before_checks=lambda ready: require_ddpm(ready, args))
    if prepared is None:  # a dry run
        return
    sweeps, args = prepared
    run_sweep(sweeps[names[0]], args, names[0])
    require_hat_helpers(sweeps[names[1]], args, names[0])  # the standard-training trials just run
    run_sweep(sweeps[names[1]], args, names[1])
    table = f"analysis/uiat_tables.py table4 {' '.join(f'--sweep {n}' for n in names)}"

    def report() -> None:
        from analysis.render import emit
        from analysis.uiat.tables import table4
        from runstore.reader import load_sweep

        emit(table4([load_sweep(n, tracking_uri=args.tracking_uri) for n in names]))

    run_sweep(sweeps[names[2]], args, names[2], report=report,
              next_steps=[table])


if __name__ == "__main__":
    main()
