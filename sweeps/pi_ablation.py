"""BiaMAT pi ablation (appendix Table 13): pi in {0.45, ..., 0.70} x {AT+BiaMAT, TRADES+BiaMAT} x seeds.

    python sweeps/pi_ablation.py                          # smoke preset: synthetic data, tiny CNN, 4.6 min on 2 idle CPUs
    python sweeps/pi_ablation.py --preset paper --seeds 3 --address auto   # CIFAR-10 + ImageNet32 on a GPU cluster
    python sweeps/pi_ablation.py --preset paper --dry-run  # the trials, their shared recipe and the GPU-hours

Paper preset: the BiaMAT recipe of ``sweeps/biamat_presets.py`` (appendix E and the reference code) with ImageNet32
as auxiliary data, alpha 1.0 (AT) and 0.5 (TRADES) as in Table 12: AT+BiaMAT on WRN-28-10 for 100 epochs, TRADES+BiaMAT
on WRN-34-10 for 110, both with 5 warm-up epochs; the best checkpoint by PGD-10 on the 10,000 test images, evaluated
every 2 epochs from the first LR decay (the paper's own protocol, which the table's notes state). The paper
(appendix Table 11) reports 56.5 h for one AT+BiaMAT run and 103 h for one TRADES+BiaMAT run, so the 12-trial grid
with one seed is roughly 960 V100-hours at the paper's speed.

The table is printed at the end (rebuilt from MLflow, like ``python analysis/biamat_tables.py table13 --sweep NAME``).
"""

from __future__ import annotations

from launch.cli import run_parser
from launch.space import grid, per_value
from sweeps.biamat_presets import PAPER_SHARED, PAPER_VARIANTS, TABLE12

PIS = [0.45, 0.50, 0.55, 0.60, 0.65, 0.70]

SHARED = {
    "paper": PAPER_SHARED,
    # omega is only informative once the model is confident: 96 SGD steps of warm-up (small batches, one
    # FGSM-like step with a random start, LR 0.1 until the decay) lift the mean primary confidence from 1/K to about
    # 0.4, and the auxiliary confidences then spread around pi * 0.4 across 0.45..0.70 (tests/test_pi_gate.py).
    "smoke": {
        "dataset": "synthetic", "aux_datasets": ["synthetic_aux"], "train_n": 1024, "batch_size": 32,
        "aux_batch_size": 32, "lr": 0.1, "warmup_epochs": 3, "attack_steps": 1, "attack_step": 10 / 255,
        "eval_n": 64, "final_n": 128, "final_attacks": ["clean", "pgd20"],
    },
}

# What differs between the two variants, keyed by the `variant` grid axis: the recipe and Table 12's alpha.
VARIANTS = {
    "paper": {variant: {**recipe, "alpha": TABLE12[("cifar10", variant, "imagenet32")][0]}
              for variant, recipe in PAPER_VARIANTS.items()},
    "smoke": {
        # One gated epoch after the warm-up, at the decayed LR, so its n_high/n_aux is the routing pi chose.
        "at": {"model": "tiny-cnn", "epochs": 4, "lr_milestones": [0.75, 0.9], "alpha": 1.0,
               "attack_start": "uniform", "attack_bn": "batch"},
        "trades": {"model": "tiny-cnn", "epochs": 4, "lr_milestones": [0.75, 0.9], "alpha": 0.5,
                   "attack_start": "normal", "attack_bn": "eval"},
    },
}


def search_space(preset: str, seeds: int) -> dict:
    return {
        **SHARED[preset],
        "variant": grid(["at", "trades"]),
        "pi": grid(PIS),
        "seed": grid(list(range(seeds))),
        **per_value("variant", VARIANTS[preset]),
    }


def main(argv: list[str] | None = None) -> None:
    args = run_parser(__doc__, ["smoke", "paper"]).parse_args(argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.run import run_sweep
    from launch.sweep import Sweep

    space = search_space(args.preset, args.seeds)
    sweep = Sweep.of("biamat", family="biamat-pi-ablation", param_space=space, name_keys=("variant", "pi", "seed"),
                     extra_datasets=lambda cfg: cfg.aux_datasets)
    name = args.name or f"pi-ablation-{args.preset}"

    def report() -> None:
        from analysis.biamat.tables import table13
        from analysis.render import emit
        from runstore.reader import load_sweep

        emit(table13(load_sweep(name, tracking_uri=args.tracking_uri)))

    run_sweep(sweep, args, name, report=report,
              next_steps=[f"analysis/biamat_tables.py fig3 --sweep {name} --out fig3.png"])


if __name__ == "__main__":
    main()
