"""BiaMAT: an Optuna (seeded TPE) search over alpha (Eq. 1) and pi (omega = pi * mean confidence, Algorithm 1 line 8)
for one setting of appendix Table 12 (primary dataset, variant, auxiliary dataset), optionally with ASHA stopping poor
trials early.

    python sweeps/biamat_search.py --preset smoke --asha   # synthetic data, tiny CNN, 4 trials: 3-4 min on 2 busy CPUs
    python sweeps/biamat_search.py --preset paper --asha --address auto --num-samples 32       # CIFAR-10 + ImageNet32
    python sweeps/biamat_search.py --preset paper --variant trades --dataset cifar100 --aux-datasets places365_32
    python analysis/biamat_tables.py table12 --sweep biamat-at-cifar10-imagenet32-paper       # the winner per setting

The paper fixes alpha and pi by hand (appendix Table 12: 1.0 / 0.55 for CIFAR-10 AT, 0.5 / 0.5 for CIFAR-10 TRADES,
1.0 / 0.5 for CIFAR-100 AT, 1.0 / 0.3 for CIFAR-100 TRADES, 1.0 / 0.5 for ImgNet100 AT); this sweep searches alpha in
[0, 1] and pi in [0.25, 0.75], which holds every one of them. ``--dataset`` and ``--aux-datasets`` pick the setting
(paper preset: CIFAR-10 and ImageNet32 by default, ImgNet900 beside ``--dataset imgnet100`` on WRN-16-10; TRADES on
CIFAR-100 and ImgNet100 takes appendix E's switch, plain adversarial CE for high-confidence auxiliary samples). The recipe is the paper's (``sweeps/biamat_presets.py``); a paper-preset trial is a
full 100-epoch WRN-28-10 run (110 epochs on WRN-34-10 for ``--variant trades``): one GPU each.

Objective, with no test-set leakage: ``select/pgd<k>`` (PGD at the training attack) on a held-out split of the
training set (the last 1,000 training images, which the trials do not train on), evaluated every epoch so ASHA can
compare trials mid-training; maximised. A trial's Optuna value is its score at its last epoch, and Table 12's winner
is chosen by the same score; its test accuracy is reported beside it. Trials ASHA stopped are PRUNED with the score
they were stopped at (``launch/optuna_search.py``). The study (default name ``biamat-<variant>-<dataset>-<aux>-<preset>``,
in ``sqlite:///$PWD/optuna.db`` or ADVSWEEP_OPTUNA_STORAGE) opens with ``optuna-dashboard <storage>``; its MLflow
experiment has the study's name.

Continuing: a new sweep (``--name``) with the same study adds ``--num-samples`` trials to it. ``--resume`` with the
same ``--name`` restarts an interrupted sweep where it stopped, each trial reporting to its own Optuna trial.
"""

from __future__ import annotations

from launch.cli import add_search_arguments, run_parser
from sweeps.biamat_presets import PAPER_SHARED, paper_recipe

# Selection on held-out training images, every epoch (ASHA compares trials at its rungs), instead of the paper's test set.
HOLDOUT = {"select_on": "holdout", "holdout_n": 1000, "eval_n": 1000, "eval_every": 1, "eval_from": 1}
SMOKE = {
    # Small batches and a one-cycle LR: 64 steps in 4 epochs lift the tiny CNN off chance by the second epoch, so
    # trials differ when ASHA compares them (with 128-image batches every trial ties at chance and none is stopped).
    "dataset": "synthetic", "aux_datasets": ["synthetic_aux"], "train_n": 768, "model": "tiny-cnn", "epochs": 4,
    "warmup_epochs": 1, "batch_size": 32, "aux_batch_size": 32, "lr": 0.1, "schedule": "cyclic", "attack_steps": 3,
    "final_n": 256, "final_attacks": ["clean", "pgd20"], "select_on": "holdout", "holdout_n": 256, "eval_n": 256,
}
# What --variant changes in the smoke preset. AT: BatchNorm on the mixed batch while crafting (reference code).
# TRADES: its attack in eval mode, 3 steps instead of 10, so each step is twice the paper's 0.007.
SMOKE_VARIANTS = {
    "at": {"attack_step": 4 / 255, "attack_start": "uniform", "attack_bn": "batch"},
    "trades": {"eps": 0.031, "attack_step": 0.014, "attack_start": "normal", "attack_bn": "eval"},
}
PRESETS = {"smoke": SMOKE, "paper": PAPER_SHARED}
DEFAULT_DATASET = {"smoke": "synthetic", "paper": "cifar10"}

# Trials per invocation, and ASHA's first rung and reduction factor. Smoke: one rung, after epoch 3 (in the first
# epochs after warm-up the one-cycle LR is still low and trials tie). Paper: rungs at epochs 10, 30, 90. Rungs before
# the first LR decay rank trials on high-LR scores that the decay can reorder; --grace-period 65 compares after it
# (AT) at the price of stopping later.
SEARCH = {"smoke": {"num_samples": 4, "grace_period": 3, "reduction_factor": 2},
          "paper": {"num_samples": 32, "grace_period": 10, "reduction_factor": 3}}


def search_space(preset: str, variant: str, dataset: str | None = None, aux: list[str] | None = None) -> dict:
    """The searched domains over one setting (default: the preset's primary and auxiliary datasets)."""
    from ray import tune

    dataset = dataset or DEFAULT_DATASET[preset]
    recipe = {**SMOKE, **SMOKE_VARIANTS[variant], "dataset": dataset} if preset == "smoke" else \
        {**paper_recipe(variant, dataset), **HOLDOUT}
    return {
        **recipe,
        "variant": variant,
        "aux_datasets": aux or recipe["aux_datasets"],  # the primary's own default: ImgNet900 beside ImgNet100
        "alpha": tune.uniform(0.0, 1.0),
        "pi": tune.uniform(0.25, 0.75),
    }


def main(argv: list[str] | None = None) -> None:
    parser = run_parser(__doc__, PRESETS)
    add_search_arguments(parser)
    parser.add_argument("--variant", choices=["at", "trades"], default="at")
    parser.add_argument("--dataset", default=None, help="primary dataset (default: cifar10, synthetic in smoke)")
    parser.add_argument("--aux-datasets", nargs="+", default=None,
                        help="auxiliary dataset(s) (default: imagenet32, synthetic_aux in smoke)")
    args = parser.parse_args(argv)
    if args.seeds != 1:
        parser.error("--seeds: each trial of a search trains seed 0; repeat the best point over seeds in a grid sweep")
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.checks import trial_configs
    from launch.optuna_search import describe_study, search_sweep
    from launch.run import run_sweep
    from trainables.methods.configs import BiaMATConfig

    space = search_space(args.preset, args.variant, args.dataset, args.aux_datasets)
    cfg = trial_configs(BiaMATConfig, space)[0]
    search = SEARCH[args.preset]
    grace = args.grace_period or search["grace_period"]
    if args.asha and grace <= cfg.warmup_epochs:
        # Before omega exists and while the auxiliary weight is 0, alpha and pi change nothing: every trial (same
        # seed) has the same score, and ASHA never stops a tie.
        parser.error(f"--grace-period {grace} must exceed warmup_epochs={cfg.warmup_epochs}")

    metric = f"select/pgd{cfg.attack_steps}"
    setting = "-".join([args.variant, space["dataset"], *space["aux_datasets"]])
    study = args.study_name or f"biamat-{setting}-{args.preset}"
    sweep = search_sweep("biamat", study=study, space=space, name_keys=("variant", "alpha", "pi"), metric=metric,
                         epochs=cfg.epochs, args=args, defaults=search, extra_datasets=lambda cfg: cfg.aux_datasets)
    name = args.name or study
    run_sweep(sweep, args, name, report=lambda: print(describe_study(study, args.optuna_storage, [metric])),
              next_steps=[f"analysis/biamat_tables.py table12 --sweep {name}"])


if __name__ == "__main__":
    main()
