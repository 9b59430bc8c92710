"""UIAT: an Optuna (seeded TPE) search over lambda (Eq. 7), eps' (the inverse radius) and alpha' (the z_c step),
optionally with ASHA stopping poor trials early.

    python sweeps/uiat_search.py --preset smoke --asha       # synthetic data, tiny CNN, 4 trials: ~2 min on 2 CPUs
    python sweeps/uiat_search.py --preset paper --asha --address auto --num-samples 32        # CIFAR-10, ResNet-18
    python sweeps/uiat_search.py --preset paper --variant oneoff --asha --address auto        # one-off UIAT

The paper fixes lambda = 3.5 and eps' = 4/255 on CIFAR (Sec. 4.1) and leaves alpha' to its supplementary material;
this sweep searches lambda in [1, 8], eps' in [1, 8] /255 and alpha' in [0.25, 2] /255 (log scale for alpha', as a
step size). ``--variant oneoff`` searches the one-off variant (components ``uag+fr``), ``uiat`` the full method.
A paper-preset trial is a full 100-epoch ResNet-18 run (one GPU; about 220 A100-minutes by the paper's Table 2).

Objective, with no test-set leakage: ``select/pgd<k>`` (PGD at the training attack) on a held-out split of the
training set (the last 1,000 training images in the paper preset, 128 in smoke, which the trials do not train on),
reported every epoch so ASHA can compare trials mid-training; maximised. Trials ASHA stopped are PRUNED in the study
(``launch/optuna_search.py``).
The study (default name ``uiat-<variant>-<preset>``, in ``sqlite:///$PWD/optuna.db`` or ADVSWEEP_OPTUNA_STORAGE)
opens with ``optuna-dashboard <storage>``; its MLflow experiment has the study's name. A new ``--name`` with the same
study adds trials to it; ``--resume`` continues an interrupted sweep.
"""

from __future__ import annotations

from launch.cli import add_search_arguments, run_parser
from sweeps.uiat_presets import PRESETS

# Selection on held-out training images instead of the test points the grid presets select on.
HOLDOUT = {"smoke": {"select_on": "holdout", "holdout_n": 128, "eval_n": 128, "train_n": 640},
           "paper": {"select_on": "holdout", "holdout_n": 1000, "eval_n": 1000}}
VARIANTS = {"uiat": {"oneoff": False, "components": "uag+fr+iam"}, "oneoff": {"oneoff": True, "components": "uag+fr"}}
# Trials per invocation, and ASHA's first rung and reduction factor. Smoke: one rung after epoch 2 of 3 (the
# one-off epoch is 1, so every trial has used its inverse targets by then). Paper: rungs at epochs 10, 30, 90.
SEARCH = {"smoke": {"num_samples": 4, "grace_period": 2, "reduction_factor": 2},
          "paper": {"num_samples": 32, "grace_period": 10, "reduction_factor": 3}}


def search_space(preset: str, variant: str) -> dict:
    from ray import tune

    return {
        **PRESETS[preset], **HOLDOUT[preset], **VARIANTS[variant],
        "lam": tune.uniform(1.0, 8.0),
        "inv_eps": tune.uniform(1 / 255, 8 / 255),
        "inv_step": tune.loguniform(0.25 / 255, 2 / 255),
    }


def main(argv: list[str] | None = None) -> None:
    parser = run_parser(__doc__, PRESETS)
    add_search_arguments(parser)
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="uiat")
    args = parser.parse_args(argv)
    if args.seeds != 1:
        parser.error("--seeds: each trial of a search trains seed 0; repeat the best point over seeds in a grid sweep")
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.checks import trial_configs
    from launch.optuna_search import describe_study, search_sweep
    from launch.run import run_sweep
    from trainables.methods.configs import UIATConfig

    space = search_space(args.preset, args.variant)
    cfg = trial_configs(UIATConfig, space)[0]
    metric = f"select/pgd{cfg.attack_steps}"
    study = args.study_name or f"uiat-{args.variant}-{args.preset}"
    sweep = search_sweep("uiat", study=study, space=space, name_keys=("lam", "inv_eps", "inv_step"), metric=metric,
                         epochs=cfg.epochs, args=args, defaults=SEARCH[args.preset])
    run_sweep(sweep, args, args.name or study, report=lambda: print(describe_study(study, args.optuna_storage, [metric])))


if __name__ == "__main__":
    main()
