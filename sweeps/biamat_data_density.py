"""BiaMAT appendix Table 5: standard training on cifar-A with cifar-B and/or a noisy cifar-C added, by batch size.

    python sweeps/biamat_data_density.py                          # smoke: synthetic data, tiny CNN, 8 trials
    python sweeps/biamat_data_density.py --preset paper --seeds 5  # CIFAR-10 parts, ResNet-18, 20 settings x 5 runs
    python analysis/biamat_tables.py table5 --sweep biamat-data-density-paper

Appendix B's test of why more data can hurt: CIFAR-10's training set is split into cifar-A (25,000 images), cifar-B
and cifar-C (12,500 each, with uniform noise added to cifar-C "to sparsify the information"), and a ResNet-18 is
trained normally on cifar-A alone, with cifar-B, with cifar-C and with both, at batch sizes 128 to 1024; the table is
the test error, mean and std over 5 runs. The parts are the dataset names ``cifar10:A``, ``cifar10:A+B``, ...
(trainables/dataset_parts.py: one seeded split, the same for every trial; the noise amplitude is not stated, 32/255
here).

Not stated by the paper, and this project's choice: the schedule, taken from the only CIFAR-10 one the paper gives
(AT+BiaMAT's, ``sweeps/biamat_presets.py``: 100 epochs, SGD momentum 0.9, LR 0.1 decayed x0.1 at 60% and 90% of
the steps, weight decay 2e-4), the same LR at every batch size, and the test error of the last epoch (no checkpoint
chosen on the test set). Cost: 20 settings x 100 epochs of ResNet-18 per seed, on 25,000 to 50,000 images.
"""

from __future__ import annotations

from launch.cli import run_parser
from launch.space import grid
from sweeps.biamat_presets import baseline_recipe, paper_recipe

PARTS = ["A", "A+B", "A+C", "A+B+C"]  # Table 5's rows: cifar-A, + cifar-B, + cifar-C, + both
BATCH_SIZES = {"smoke": [64, 128], "paper": [128, 256, 384, 512, 1024]}
# Test error is the one number: clean accuracy alone, on the whole test split.
PROTOCOL = {"training": "standard", "final_attacks": ["clean"], "autoattack_n": 0}
PRESETS = {
    "smoke": {"dataset": "synthetic", "model": "tiny-cnn", "epochs": 1, "lr": 0.1, "eval_n": 64, "final_n": 256,
              **PROTOCOL},
    "paper": {**baseline_recipe(paper_recipe("at"), "at"), "model": "resnet18", **PROTOCOL},  # App. B: "(ResNet18)"
}


def search_space(preset: str, seeds: int) -> dict:
    base = PRESETS[preset]["dataset"]
    return {
        **PRESETS[preset],
        "dataset": grid([f"{base}:{parts}" for parts in PARTS]),
        "batch_size": grid(BATCH_SIZES[preset]),
        "seed": grid(list(range(seeds))),
    }


def main(argv: list[str] | None = None) -> None:
    args = run_parser(__doc__, PRESETS).parse_args(argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.run import run_sweep
    from launch.sweep import Sweep

    sweep = Sweep.of("baseline", family="biamat-data-density", param_space=search_space(args.preset, args.seeds),
                     name_keys=("batch_size", "dataset", "seed"))
    name = args.name or f"biamat-data-density-{args.preset}"

    def report() -> None:
        from analysis.biamat.tables import table5
        from analysis.render import emit
        from runstore.reader import load_sweep

        emit(table5(load_sweep(name, tracking_uri=args.tracking_uri)))

    run_sweep(sweep, args, name, report=report,
              next_steps=[f"analysis/biamat_tables.py table5 --sweep {name} --format latex --out table5.tex"])


if __name__ == "__main__":
    main()
