"""BiaMAT appendix Table 10: BiaMAT, generated data (Gowal et al. [16]) and both together, CIFAR-10 on WRN-16-8.

    python sweeps/biamat_generated_data.py                  # smoke: synthetic data, tiny CNN, three trials, 2-3 min
    python sweeps/biamat_generated_data.py --preset paper   # needs cifar10_ddpm.npz in --data-root (the error says where)
    python analysis/biamat_tables.py table10 --sweep biamat-generated-data-paper \\
        --generated-sweep biamat-generated-data-paper-generated

Two sweeps, checked together before the first starts: ``NAME`` trains TRADES+BiaMAT without and with the generated
images (``extra_data`` a grid axis: the "BiaMAT" and "BiaMAT+[16]" columns), ``NAME-generated`` trains TRADES with the
generated images and no auxiliary data (the "[16]" column: Gowal et al. 2021, "Improving Robustness using Generated
Data", whose loss is TRADES). A trial with generated images draws each batch 30% from CIFAR-10 and 70% from the
generated set (``original_fraction`` 0.3, Gowal et al.'s split; trainables/loader.py MixedLoader), and BiaMAT's
auxiliary stream (ImageNet32) comes on top, as in the primary-only case.

What the paper gives and what it does not: Table 10 names the network (WRN-16-8), the data (CIFAR-10, generated data
[20], DDPM samples) and the numbers (clean 84.51 / 82.68 / 83.71, AA 51.48 / 52.74 / 53.21), nothing else. The
variant is not stated: TRADES+BiaMAT here, because [16] trains with TRADES, so the two columns that add generated
data share one loss. The rest is the TRADES+BiaMAT paper recipe of ``sweeps/biamat_presets.py`` (110 epochs, LR decays
at epochs 100 and 105, batch 128 + 128 auxiliary, Table 12's CIFAR-10 alpha 0.5 and pi 0.5, selection by PGD-10 on the
test set every 2 epochs from the first decay) with WRN-16-8 in place of WRN-34-10, for all three columns; Gowal et
al.'s own schedule (400 epochs, batch 1024, up to 100M generated images, weight averaging) is not reproduced. The
generated images are the 1M DDPM samples of Rebuffi et al. 2021 (``sweeps/generated_presets.py``, the files UIAT
Table 4 uses), which the user downloads into the data root; a missing file stops the sweep before Ray starts with the
address to get it from. Cost: 3 trials of 110 epochs per seed, on WRN-16-8 (about a quarter of WRN-34-10's MACs).

Smoke: Table 1's smoke recipe (2,048 synthetic training images, tiny CNN) with the TRADES attack, and as "generated"
images the other 7,952 synthetic training images, fresh draws of the same distribution as DDPM samples are of CIFAR's.
"""

from __future__ import annotations

from launch.cli import run_parser
from launch.space import grid, per_value
from sweeps.biamat_presets import SMOKE_VARIANTS, TABLE1_SMOKE, TABLE12, baseline_recipe, paper_recipe
from sweeps.generated_presets import ddpm_data, require_ddpm

VARIANT = "trades"  # not stated by the paper; [16] trains with TRADES (module docstring)
PRESETS = {
    # One warm-up epoch, then two gated ones (Table 1's smoke recipe has no warm-up: its runs label every image).
    "smoke": {**TABLE1_SMOKE, **SMOKE_VARIANTS[VARIANT], "epochs": 3, "warmup_epochs": 1},
    "paper": {**paper_recipe(VARIANT), "model": "wrn-16-8"},  # Table 10: "CIFAR-10 (WRN16-8)"
}
ALPHA, PI = TABLE12[("cifar10", VARIANT, "imagenet32")]  # 0.5 and 0.5
ORIGINAL_FRACTION = 0.3  # Gowal et al. 2021: 30% original and 70% generated images per batch


def generated_data(preset: str, data_root: str | None) -> str:
    """The ``extra_data`` of the columns with generated images: the DDPM file, or in the smoke preset the synthetic
    training images the smoke recipe's ``train_n`` leaves out."""
    return "synthetic" if preset == "smoke" else ddpm_data("cifar10", data_root)


def biamat_space(preset: str, seeds: int, data_root: str | None) -> dict:
    """TRADES+BiaMAT without and with the generated images ("BiaMAT" and "BiaMAT+[16]")."""
    generated = generated_data(preset, data_root)
    return {
        **PRESETS[preset], "variant": VARIANT, "alpha": ALPHA, "pi": PI,
        "extra_data": grid(["", generated]),
        "seed": grid(list(range(seeds))),
        **per_value("extra_data", {"": {"original_fraction": 1.0}, generated: {"original_fraction": ORIGINAL_FRACTION}}),
    }


def generated_space(preset: str, seeds: int, data_root: str | None) -> dict:
    """TRADES with the generated images and no auxiliary data ("[16]")."""
    return {
        **baseline_recipe(PRESETS[preset], VARIANT),
        "extra_data": generated_data(preset, data_root), "original_fraction": ORIGINAL_FRACTION,
        "seed": grid(list(range(seeds))),
    }


def main(argv: list[str] | None = None) -> None:
    args = run_parser(__doc__, PRESETS).parse_args(argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.run import prepare_sweeps, run_sweep
    from launch.sweep import Sweep

    name = args.name or f"biamat-generated-data-{args.preset}"
    names = [name, f"{name}-generated"]
    preset, seeds, root = args.preset, args.seeds, args.data_root
    sweeps = {
        names[0]: Sweep.of("biamat", family="biamat-generated-data", param_space=biamat_space(preset, seeds, root),
                           name_keys=("extra_data", "seed"), extra_datasets=lambda cfg: cfg.aux_datasets),
        names[1]: Sweep.of("baseline", family="biamat-generated-data",
                           param_space=generated_space(preset, seeds, root), name_keys=("training", "seed")),
    }
    prepared = prepare_sweeps(sweeps, args, before_checks=lambda ready: require_ddpm(ready, args))
    if prepared is None:  # a dry run
        return
    sweeps, args = prepared
    run_sweep(sweeps[names[1]], args, names[1])

    def report() -> None:
        from analysis.biamat.tables import table10
        from analysis.render import emit
        from runstore.reader import load_sweep

        emit(table10(load_sweep(names[0], tracking_uri=args.tracking_uri),
                     load_sweep(names[1], tracking_uri=args.tracking_uri)))

    run_sweep(sweeps[names[0]], args, names[0], report=report,
              next_steps=[f"analysis/biamat_tables.py table10 --sweep {names[0]} --generated-sweep {names[1]}"])


if __name__ == "__main__":
    main()
