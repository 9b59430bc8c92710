"""BiaMAT pi ablation (appendix Table 13): pi in {0.45, ..., 0.70} x {AT+BiaMAT, TRADES+BiaMAT} x seeds.

    python sweeps/pi_ablation.py                          # smoke preset: synthetic data, tiny CNN, 4 min on 2 CPUs
    python sweeps/pi_ablation.py --preset paper --seeds 3 --address auto   # CIFAR-10 + ImageNet32 on a GPU cluster

Paper preset (BiaMAT appendix E): CIFAR-10 primary, ImageNet32x32 auxiliary, 128 + 128 images per step, 5 warm-up
epochs. AT+BiaMAT: WRN-28-10, 100 epochs, LR 0.1 decayed x0.1 at 60% and 90%, weight decay 2e-4, alpha 1.0, PGD-10
(2/255, 8/255). TRADES+BiaMAT: WRN-34-10, 110 epochs, decays at epochs 100 and 105, weight decay 5e-4, alpha 0.5,
beta 6, the TRADES attack (x + 0.001 N(0,1) start, 10 steps of 0.007, eps 0.031). The paper (appendix Table 11)
reports 56.5 h for one AT+BiaMAT run and 103 h for one TRADES+BiaMAT run, so the 12-trial grid with one seed is
roughly 960 V100-hours at the paper's speed.

The table is printed at the end (rebuilt from MLflow, like ``python analysis/biamat_tables.py table13 --sweep NAME``).
"""

from __future__ import annotations

from ray import tune

from analysis.biamat_tables import table13
from analysis.runs import emit, load_sweep
from sweeps.launcher import Sweep, per_value, run_parser, run_sweep, validate
from trainables.biamat import BiaMATConfig, trainable

PIS = [0.45, 0.50, 0.55, 0.60, 0.65, 0.70]

SHARED = {
    "paper": {
        "dataset": "cifar10", "aux_datasets": ["imagenet32"], "batch_size": 128, "aux_batch_size": 128, "lr": 0.1,
        "warmup_epochs": 5, "eval_n": 1000, "final_n": 10000, "autoattack_n": 10000,
        "final_attacks": ["clean", "pgd20", "pgd100", "cw100", "autoattack"],
    },
    "smoke": {
        "dataset": "synthetic", "aux_datasets": ["synthetic_aux"], "train_n": 512, "batch_size": 64,
        "aux_batch_size": 64, "lr": 0.05, "warmup_epochs": 2, "attack_steps": 3, "attack_step": 4 / 255,
        "eval_n": 64, "final_n": 128, "final_attacks": ["clean", "pgd20"],
    },
}

# What differs between the two variants (appendix E), keyed by the `variant` grid axis.
VARIANTS = {
    "paper": {
        "at": {"model": "wrn-28-10", "epochs": 100, "lr_milestones": [0.6, 0.9], "weight_decay": 2e-4,
               "alpha": 1.0, "eps": 8 / 255, "attack_step": 2 / 255, "attack_start": "uniform", "attack_bn": "batch"},
        "trades": {"model": "wrn-34-10", "epochs": 110, "lr_milestones": [100, 105], "weight_decay": 5e-4,
                   "alpha": 0.5, "eps": 0.031, "attack_step": 0.007, "attack_start": "normal", "attack_bn": "eval"},
    },
    "smoke": {
        "at": {"model": "tiny-cnn", "epochs": 4, "lr_milestones": [0.6, 0.9], "alpha": 1.0,
               "attack_start": "uniform", "attack_bn": "batch"},
        "trades": {"model": "tiny-cnn", "epochs": 4, "lr_milestones": [0.6, 0.9], "alpha": 0.5,
                   "attack_start": "normal", "attack_bn": "eval"},
    },
}


def search_space(preset: str, seeds: int) -> dict:
    return {
        **SHARED[preset],
        "variant": tune.grid_search(["at", "trades"]),
        "pi": tune.grid_search(PIS),
        "seed": tune.grid_search(list(range(seeds))),
        **per_value("variant", VARIANTS[preset]),
    }


def main(argv: list[str] | None = None) -> None:
    args = run_parser(__doc__, ["smoke", "paper"]).parse_args(argv)
    space = search_space(args.preset, args.seeds)
    validate(BiaMATConfig, space, args.data_root, extra_datasets=lambda cfg: cfg.aux_datasets)
    sweep = Sweep(family="biamat-pi-ablation", trainable=trainable, param_space=space,
                  name_keys=("variant", "pi", "seed"), tags={"method": "biamat"})
    name = args.name or f"pi-ablation-{args.preset}"
    run_sweep(sweep, args, name, report=lambda: emit(table13(load_sweep(name, tracking_uri=args.tracking_uri))))


if __name__ == "__main__":
    main()
