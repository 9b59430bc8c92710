"""BiaMAT: an Optuna (seeded TPE) search over alpha (Eq. 1) and pi (omega = pi * mean confidence, Algorithm 1 line 8),
optionally with ASHA stopping poor trials early.

    python sweeps/biamat_search.py --preset smoke --asha   # synthetic data, tiny CNN, 4 trials: 3-4 min on 2 busy CPUs
    python sweeps/biamat_search.py --preset paper --asha --address auto --num-samples 32       # CIFAR-10 + ImageNet32
    python sweeps/biamat_search.py --preset paper --asha --address auto --name biamat-at-paper-2  # 32 more trials

The paper fixes alpha and pi by hand (appendix Table 12; Table 13 ablates pi from 0.45 to 0.70 with CIFAR-10 primary,
ImageNet32 auxiliary); this sweep searches alpha in [0, 1] and pi in [0.4, 0.75] around them. A paper-preset trial is
a full 100-epoch WRN-28-10 run (110 epochs on WRN-34-10 for ``--variant trades``): one GPU each, not timed here.

Objective: ``select/pgd<k>`` (PGD at the training attack on the fixed selection subset), reported every epoch so ASHA
can compare trials mid-training; maximised. A trial's Optuna value is its score at its last epoch; trials ASHA stopped
are PRUNED with the score they were stopped at (``sweeps/optuna_search.py``). The study (default name
``biamat-<variant>-<preset>``, in ``sqlite:///$PWD/optuna.db`` or ADVSWEEP_OPTUNA_STORAGE) opens with
``optuna-dashboard <storage>``; its MLflow experiment has the study's name.

Continuing: a new sweep (``--name``) with the same study adds ``--num-samples`` trials to it. ``--resume`` with the
same ``--name`` restarts an interrupted sweep where it stopped, each trial reporting to its own Optuna trial.
"""

from __future__ import annotations

from ray import tune

from sweeps.launcher import grid_points, run_parser, run_sweep, validate
from sweeps.optuna_search import add_search_arguments, describe_study, search_sweep
from trainables.biamat import BiaMATConfig, trainable

SHARED = {
    # Small batches and a one-cycle LR: 64 steps in 4 epochs lift the tiny CNN off chance by the second epoch, so
    # trials differ when ASHA compares them (with 128-image batches every trial ties at chance and none is stopped).
    "smoke": {
        "dataset": "synthetic", "aux_datasets": ["synthetic_aux"], "train_n": 512, "model": "tiny-cnn", "epochs": 4,
        "warmup_epochs": 1, "batch_size": 32, "aux_batch_size": 32, "lr": 0.1, "schedule": "cyclic",
        "attack_steps": 3, "eval_n": 256, "final_n": 256, "final_attacks": ["clean", "pgd20"],
    },
    # methods.md (BiaMAT schedules) and appendix E: 128 + 128 images per step, 5 warm-up epochs.
    "paper": {
        "dataset": "cifar10", "aux_datasets": ["imagenet32"], "batch_size": 128, "aux_batch_size": 128, "lr": 0.1,
        "warmup_epochs": 5, "eval_n": 1000, "final_n": 10000, "autoattack_n": 10000,
        "final_attacks": ["clean", "pgd20", "pgd100", "cw100", "autoattack"],
    },
}
# What --variant changes. AT: PGD-10 (2/255, 8/255), BatchNorm on the mixed batch while crafting (reference code).
# TRADES: the TRADES attack (x + 0.001 N(0, 1) start, 10 steps of 0.007, eps 0.031) in eval mode.
VARIANTS = {
    "smoke": {
        "at": {"variant": "at", "attack_step": 4 / 255, "attack_start": "uniform", "attack_bn": "batch"},
        # 3 steps instead of 10, so each step is twice the paper's 0.007 to reach the boundary.
        "trades": {"variant": "trades", "eps": 0.031, "attack_step": 0.014, "attack_start": "normal",
                   "attack_bn": "eval"},
    },
    "paper": {
        "at": {"variant": "at", "model": "wrn-28-10", "epochs": 100, "lr_milestones": [0.6, 0.9], "weight_decay": 2e-4,
               "eps": 8 / 255, "attack_step": 2 / 255, "attack_start": "uniform", "attack_bn": "batch"},
        "trades": {"variant": "trades", "model": "wrn-34-10", "epochs": 110, "lr_milestones": [100, 105],
                   "weight_decay": 5e-4, "eps": 0.031, "attack_step": 0.007, "attack_start": "normal",
                   "attack_bn": "eval"},
    },
}
# Trials per invocation, and ASHA's first rung and reduction factor. Smoke: one rung, after epoch 3 (in the first
# epochs after warm-up the one-cycle LR is still low and trials tie). Paper: rungs at epochs 10, 30, 90. Rungs before
# the first LR decay rank trials on high-LR scores that the decay can reorder; --grace-period 65 compares after it
# (AT) at the price of stopping later.
SEARCH = {"smoke": {"num_samples": 4, "grace_period": 3, "reduction_factor": 2},
          "paper": {"num_samples": 32, "grace_period": 10, "reduction_factor": 3}}


def search_space(preset: str, variant: str) -> dict:
    return {
        **SHARED[preset], **VARIANTS[preset][variant],
        "alpha": tune.uniform(0.0, 1.0),
        "pi": tune.uniform(0.4, 0.75),
    }


def main(argv: list[str] | None = None) -> None:
    parser = run_parser(__doc__, SHARED)
    add_search_arguments(parser)
    parser.add_argument("--variant", choices=["at", "trades"], default="at")
    args = parser.parse_args(argv)
    if args.seeds != 1:
        parser.error("--seeds: each trial of a search trains seed 0; repeat the best point over seeds in a grid sweep")

    space = search_space(args.preset, args.variant)
    validate(BiaMATConfig, space, args.data_root, extra_datasets=lambda cfg: cfg.aux_datasets)
    cfg = BiaMATConfig.from_dict(next(grid_points(space)))
    search = SEARCH[args.preset]
    grace = args.grace_period or search["grace_period"]
    if args.asha and grace <= cfg.warmup_epochs:
        # Before omega exists and while the auxiliary weight is 0, alpha and pi change nothing: every trial (same
        # seed) has the same score, and ASHA never stops a tie.
        parser.error(f"--grace-period {grace} must exceed warmup_epochs={cfg.warmup_epochs}")

    metric = f"select/pgd{cfg.attack_steps}"
    study = args.study_name or f"biamat-{args.variant}-{args.preset}"
    sweep = search_sweep(study=study, trainable=trainable, space=space, name_keys=("variant", "alpha", "pi"),
                         metric=metric, epochs=cfg.epochs, args=args, defaults=search, tags={"method": "biamat"})
    run_sweep(sweep, args, args.name or study, report=lambda: print(describe_study(study, args.optuna_storage, [metric])))


if __name__ == "__main__":
    main()
