"""AFS stage 1 (Liu & Zhao, Sec. 3.1, Table 1 and Fig. 3): one PGD-AT extractor per training eps in 0..9/255.

    python sweeps/afs_extractors.py                      # smoke: synthetic_absent data, tiny CNN: 5 min on 2 CPUs
    python sweeps/afs_extractors.py --preset paper --address auto   # CIFAR-10, WRN-28-10, 65 epochs each: GPU cluster
    python sweeps/afs_extractors.py --preset paper-cifar100 --address auto   # the same on CIFAR-100 (Table 5)

eps 0 is standard training. Every trial evaluates clean and PGD (``attack_steps``) accuracy at its own training eps
on ``eval_n`` test points after every epoch, registers its selected weights in MLflow (the artifact stage 2
stacks), and evaluates them at 8/255 for every eps: clean, PGD-10, PGD-20 (and AutoAttack in the paper preset) plus
Delta_z (Eq. 8).

Paper preset, the reference code's recipe (the paper says only "PGD with early stopping"): CIFAR-10, WRN-28-10, 65
epochs, batch 128, weight decay 5e-4, LR 0.1 decayed x0.1 at epochs 50 and 60 (1-based; epoch indices 0-48 at 0.1,
49-58 at 0.01, 59-64 at 0.001), PGD-10 with step 2/255 at every training eps (at 1/255 a step larger than the ball,
clipped to it) crafted in train mode (``attack_bn: "train"``: batch statistics, running statistics updated), and
the weights after epoch 64 (index 63) kept whatever their score (``keep_epoch: 64``). The alternatives are config
values: ``keep_epoch: 0`` selects the epoch with the best PGD-10 (early stopping), a per-eps ``attack_step`` of eps/4
scales the step with the radius, ``attack_bn: "eval"`` crafts on running statistics. Smoke preset: the best epoch,
step eps/2 (its 3 steps reach the edge of the ball), running statistics. Ten WRN-28-10 PGD-AT runs of 65 epochs:
roughly 10 x 65 GPU-epochs. ``paper-cifar100`` (Table 5) is the paper preset on CIFAR-100, nothing else changed: "The
training setting of CIFAR-10 is the same as CIFAR-100" (Sec. 3); its eps-8/255 network is Table 5's PGD-AT row.

Stage 2 (``sweeps/afs_merger.py``) finds these extractors by the sweep name (default ``afs-extractors-<preset>``, so
``afs-extractors-paper-cifar100`` and ``afs-extractors-paper`` stay apart).
At the end Table 1 and the Delta_z selection are printed from MLflow, like
``python analysis/afs_tables.py table1 --sweep NAME``.
"""

from __future__ import annotations

from launch.cli import run_parser
from launch.space import grid, per_value
from sweeps.afs_presets import ATTACK_STEP, PRESETS

EXTRACTORS = range(10)  # training eps i/255


def search_space(preset: str, seeds: int) -> dict:
    eps = [i / 255 for i in EXTRACTORS]
    return {
        **PRESETS[preset],
        "training": "pgd_at",
        "eps": grid(eps),
        "seed": grid(list(range(seeds))),
        **per_value("eps", {e: {"attack_step": ATTACK_STEP[preset](e)} for e in eps}),
    }


def main(argv: list[str] | None = None) -> None:
    args = run_parser(__doc__, PRESETS).parse_args(argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.run import run_sweep
    from launch.sweep import Sweep
    from trainables.methods.configs import EXTRACTOR_EXPERIMENT

    space = search_space(args.preset, args.seeds)
    sweep = Sweep.of("afs_extractor", family=EXTRACTOR_EXPERIMENT, param_space=space, name_keys=("eps", "seed"))
    name = args.name or f"afs-extractors-{args.preset}"

    def report() -> None:
        from analysis.afs.tables import delta_z_summary, table1
        from analysis.render import emit
        from runstore.reader import load_sweep

        runs = load_sweep(name, experiment=EXTRACTOR_EXPERIMENT, tracking_uri=args.tracking_uri)
        emit(table1(runs))
        print(delta_z_summary(runs))

    run_sweep(sweep, args, name, report=report, next_steps=[
        f"analysis/afs_tables.py delta-z --sweep {name} --out dz.png",
        f"sweeps/afs_merger.py table2 --preset {args.preset} --extractor-sweep {name}",
        f"sweeps/afs_merger.py table3 --preset {args.preset} --extractor-sweep {name}",
        f"sweeps/afs_merger.py default --preset {args.preset} --extractor-sweep {name}",
    ])


if __name__ == "__main__":
    main()
