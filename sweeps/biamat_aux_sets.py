"""BiaMAT appendix Table 4: AT+BiaMAT on CIFAR-10 with one auxiliary dataset or two at once.

    python sweeps/biamat_aux_sets.py                            # smoke: two synthetic auxiliary sets, and both
    python sweeps/biamat_aux_sets.py --preset paper --seeds 3   # SVHN, CIFAR-100, both; Places365, ImageNet32, both
    python sweeps/baselines.py --preset biamat-paper --seeds 3  # the "AT" row (PGD-AT, same recipe)
    python analysis/biamat_tables.py table4 --sweep biamat-aux-sets-paper --baseline-sweep baselines-biamat-paper

Every trial is gated BiaMAT at Table 12's alpha 1.0 and pi 0.55 (the paper gives no other values for Table 4) on the
AT+BiaMAT paper recipe of ``sweeps/biamat_presets.py``. Two auxiliary sets share one auxiliary head over both sets'
classes. How the paper draws from two sets is not stated: this sweep streams their concatenation, so each fills the
batch in proportion to its size (``aux_mix=concatenated``); ``--set aux_mix=equal`` gives each set half of every
batch instead (run it under another ``--name``; the table marks those rows "(equal shares)", and a sweep may hold
both). One seed of the paper grid is 6 runs of about 56.5 V100-hours each (appendix Table 11).
"""

from __future__ import annotations

from launch.cli import run_parser
from launch.space import grid
from sweeps.biamat_presets import PAPER_SHARED, TABLE1_SMOKE, TABLE12, paper_recipe

PRESETS = {"smoke": TABLE1_SMOKE, "paper": paper_recipe("at")}
# Table 4's rows, in its order: each pair after its two single sets.
AUX_SETS = {"smoke": [["synthetic_aux"], ["synthetic_aux_unrelated"], ["synthetic_aux", "synthetic_aux_unrelated"]],
            "paper": [["svhn"], ["cifar100"], ["svhn", "cifar100"], ["places365_32"], ["imagenet32"],
                      ["places365_32", "imagenet32"]]}
WARMUP = {"smoke": 1, "paper": PAPER_SHARED["warmup_epochs"]}  # the smoke preset's as biamat_labels.py's gated runs
ALPHA, PI = TABLE12[("cifar10", "at", "imagenet32")]  # 1.0 and 0.55 for every CIFAR-10 AT setting


def search_space(preset: str, seeds: int) -> dict:
    return {
        **PRESETS[preset],
        "aux_datasets": grid(AUX_SETS[preset]),
        "variant": "at",
        "alpha": ALPHA,
        "pi": PI,
        "labels": "gated",
        "warmup_epochs": WARMUP[preset],
        "aux_mix": "concatenated",
        "seed": grid(list(range(seeds))),
    }


def main(argv: list[str] | None = None) -> None:
    args = run_parser(__doc__, PRESETS).parse_args(argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.run import run_sweep
    from launch.sweep import Sweep

    sweep = Sweep.of("biamat", family="biamat-aux-sets", param_space=search_space(args.preset, args.seeds),
                     name_keys=("aux_datasets", "aux_mix", "seed"), extra_datasets=lambda cfg: cfg.aux_datasets)
    name = args.name or f"biamat-aux-sets-{args.preset}"
    baseline = f"baselines-biamat-{args.preset}"  # sweeps/baselines.py's default name for that preset

    def report() -> None:
        from analysis.biamat.tables import table4
        from analysis.render import emit
        from runstore.reader import load_sweep

        emit(table4(load_sweep(name, tracking_uri=args.tracking_uri)))

    run_sweep(sweep, args, name, report=report,
              next_steps=[f"sweeps/baselines.py --preset biamat-{args.preset} --seeds {args.seeds}",
                          f"analysis/biamat_tables.py table4 --sweep {name} --baseline-sweep {baseline}"])


if __name__ == "__main__":
    main()
