"""BiaMAT Table 1: AT on CIFAR-10 with each auxiliary dataset, all auxiliary labels (y~) vs all uniform (y^ER).

    python sweeps/biamat_labels.py                             # smoke: synthetic primary + synthetic_aux
    python sweeps/biamat_labels.py --preset paper --seeds 3    # CIFAR-10 x {SVHN, CIFAR-100, Places365, ImageNet32}
    python sweeps/baselines.py --preset paper --seeds 3        # the "Baseline [25]" column (PGD-AT)
    python analysis/biamat_tables.py table1 --sweep biamat-labels-paper --baseline-sweep baselines-paper

Table 1 rows: ``labels="aux"`` routes every auxiliary sample to its own label on the auxiliary head (y~),
``labels="uniform"`` every sample to y^ER on the primary head (OAT). Schedule (appendix E, "Table 1"): WRN-28-10,
100 epochs, LR 0.1 decayed x0.1 at 60% and 90%, weight decay 2e-4, eps 8/255, alpha 1.0, 5 warm-up epochs.
"""

from __future__ import annotations

from ray import tune

from analysis.biamat_tables import table1
from analysis.runs import emit, load_sweep
from sweeps.launcher import Sweep, run_parser, run_sweep, validate
from trainables.biamat import BiaMATConfig, trainable

PRESETS = {
    "smoke": {
        "dataset": "synthetic", "aux_datasets": tune.grid_search([["synthetic_aux"]]), "model": "tiny-cnn",
        "train_n": 256, "epochs": 3, "warmup_epochs": 1, "batch_size": 64, "aux_batch_size": 64, "lr": 0.05,
        "lr_milestones": [0.6, 0.9], "attack_steps": 3, "attack_step": 4 / 255, "eval_n": 64, "final_n": 128,
        "final_attacks": ["clean", "pgd20"],
    },
    "paper": {
        "dataset": "cifar10",
        "aux_datasets": tune.grid_search([["svhn"], ["cifar100"], ["places365_32"], ["imagenet32"]]),
        "model": "wrn-28-10", "epochs": 100, "warmup_epochs": 5, "batch_size": 128, "aux_batch_size": 128, "lr": 0.1,
        "lr_milestones": [0.6, 0.9], "weight_decay": 2e-4, "eval_n": 1000, "final_n": 10000, "autoattack_n": 10000,
        "final_attacks": ["clean", "pgd20", "pgd100", "cw100", "autoattack"],
    },
}


def search_space(preset: str, seeds: int) -> dict:
    return {
        **PRESETS[preset],
        "variant": "at",
        "alpha": 1.0,
        "labels": tune.grid_search(["aux", "uniform"]),
        "seed": tune.grid_search(list(range(seeds))),
    }


def main(argv: list[str] | None = None) -> None:
    args = run_parser(__doc__, PRESETS).parse_args(argv)
    space = search_space(args.preset, args.seeds)
    validate(BiaMATConfig, space, args.data_root, extra_datasets=lambda cfg: cfg.aux_datasets)
    sweep = Sweep(family="biamat-labels", trainable=trainable, param_space=space,
                  name_keys=("aux_datasets", "labels", "seed"), tags={"method": "biamat"})
    name = args.name or f"biamat-labels-{args.preset}"
    run_sweep(sweep, args, name, report=lambda: emit(table1(load_sweep(name, tracking_uri=args.tracking_uri))))


if __name__ == "__main__":
    main()
