"""Baselines: standard training, PGD-AT and TRADES, one trial per training mode and seed.

    python sweeps/baselines.py --preset smoke            # synthetic data, tiny CNN: about 2 min on 2 CPU cores
    python sweeps/baselines.py --preset paper --seeds 3  # CIFAR-10, WRN-28-10, 100 epochs: GPU cluster

Rebuilds the baseline rows the papers' tables compare against (e.g. BiaMAT Table 1 "AT", UIAT Table 1 "PGD-AT" and
"TRADES"); the BiaMAT Table 1 analysis reads them with ``--baseline-sweep baselines-<preset>``.
"""

from __future__ import annotations

from ray import tune

from sweeps.launcher import Sweep, run_parser, run_sweep, validate
from trainables.baseline import BaselineConfig, trainable

PRESETS = {
    "smoke": {
        "dataset": "synthetic", "train_n": 1024, "model": "tiny-cnn", "epochs": 3, "batch_size": 64, "lr": 0.05,
        "attack_steps": 5, "attack_step": 3 / 255,
        "lr_milestones": [0.75], "eval_n": 256, "final_n": 512, "final_attacks": ["clean", "pgd20"],
    },
    "paper": {
        "dataset": "cifar10", "model": "wrn-28-10", "epochs": 100, "batch_size": 128, "lr": 0.1,
        "lr_milestones": [0.5, 0.75], "weight_decay": 5e-4, "eval_n": 1000, "final_n": 10000,
        "final_attacks": ["clean", "pgd20", "pgd100", "cw100", "autoattack"], "autoattack_n": 10000,
    },
}


def search_space(preset: str, seeds: int) -> dict:
    return {
        **PRESETS[preset],
        "training": tune.grid_search(["standard", "pgd_at", "trades"]),
        "seed": tune.grid_search(list(range(seeds))),
    }


def main(argv: list[str] | None = None) -> None:
    args = run_parser(__doc__, PRESETS).parse_args(argv)
    space = search_space(args.preset, args.seeds)
    validate(BaselineConfig, space, args.data_root)
    sweep = Sweep(family="baselines", trainable=trainable, param_space=space, name_keys=("training", "seed"),
                  tags={"method": "baseline"})
    run_sweep(sweep, args, args.name or f"baselines-{args.preset}")


if __name__ == "__main__":
    main()
