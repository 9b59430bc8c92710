"""AFS Table 6's single-network ablations (Liu & Zhao, Sec. 3.5): can one network match the stacked mergers?

    python sweeps/afs_ablation.py                        # smoke: synthetic_absent, tiny-cnn and tiny-cnn-3
    python sweeps/afs_ablation.py --preset paper --address auto   # CIFAR-10: WRN-28-10 and WRN-28-30, GPU cluster

Two PGD-AT trials on the extractors' recipe (``sweeps/afs_extractors.py`` presets; paper: 65 epochs, LR decayed at
epochs 50 and 60, PGD-10 step 2/255 crafted in train mode, the weights after epoch 64 kept), each evaluated at 8/255
like the extractors, with parameter and MAC counts:

* **Rand. pert.**: the extractor model trained at an eps drawn per batch uniformly from [3/255, 8/255] (the merger's
  default stack covers the same range with six networks);
* **Large model**: a wider network at eps 8/255, WRN-28-30 in the paper (328 M parameters, 47 GMACs: more than the
  six-extractor merger), ``tiny-cnn-3`` in the smoke preset.

The random-eps network's PGD step scales with the drawn eps (2/255 at 8/255). Both are evaluated for selection at
8/255; the paper preset keeps epoch 64 like the extractors, the smoke preset the epoch with the best PGD accuracy.
At the end Table 6 is printed from MLflow with the eps-8/255 baseline of the extractor sweep (``--extractor-sweep``,
default ``afs-extractors-<preset>``) when that sweep exists; with the mergers too via
``python analysis/afs_tables.py table6 --sweep afs-table3-<preset> --ablation-sweep afs-ablation-<preset>``.
The paper preset is two 65-epoch runs, the WRN-28-30 one about 9x the compute of a WRN-28-10 extractor.
"""

from __future__ import annotations

from launch.cli import run_parser
from launch.space import grid, per_value
from sweeps.afs_presets import ATTACK_STEP, PRESETS

RANDOM_EPS_RANGE = [3 / 255, 8 / 255]  # Sec. 3.5: "random perturbation budgets ranging from 3/255 to 8/255"
LARGE_MODEL = {"smoke": "tiny-cnn-3", "paper": "wrn-28-30"}


def search_space(preset: str, seeds: int) -> dict:
    from trainables.methods.afs_masks import EVAL_EPS

    base, large = PRESETS[preset]["model"], LARGE_MODEL[preset]
    return {
        **PRESETS[preset],
        "training": "pgd_at",
        "eps": EVAL_EPS,
        "attack_step": ATTACK_STEP[preset](EVAL_EPS),
        "model": grid([base, large]),
        "seed": grid(list(range(seeds))),
        **per_value("model", {base: {"train_eps_range": RANDOM_EPS_RANGE}, large: {"train_eps_range": []}}),
    }


def main(argv: list[str] | None = None) -> None:
    parser = run_parser(__doc__, LARGE_MODEL)  # smoke and paper: Table 6 is CIFAR-10's only (Sec. 3.5)
    parser.add_argument("--extractor-sweep", default=None,
                        help="extractor sweep whose eps-8/255 network is Table 6's baseline (default "
                             "afs-extractors-<preset>)")
    args = parser.parse_args(argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.run import run_sweep
    from launch.sweep import Sweep
    from trainables.methods.configs import EXTRACTOR_EXPERIMENT

    space = search_space(args.preset, args.seeds)
    # The ablation networks are single PGD-AT models like the extractors: same MLflow experiment, own parent run.
    sweep = Sweep.of("afs_extractor", family=EXTRACTOR_EXPERIMENT, param_space=space, name_keys=("model", "seed"))
    name = args.name or f"afs-ablation-{args.preset}"
    extractor_sweep = args.extractor_sweep or f"afs-extractors-{args.preset}"

    def report() -> None:
        from analysis.afs.tables import table6
        from analysis.render import emit
        from runstore.reader import SweepNotFoundError, load_sweep

        ablation = load_sweep(name, experiment=EXTRACTOR_EXPERIMENT, tracking_uri=args.tracking_uri)
        try:
            extractors = load_sweep(extractor_sweep, experiment=EXTRACTOR_EXPERIMENT, tracking_uri=args.tracking_uri)
        except SweepNotFoundError:
            extractors = None
        emit(table6(extractors=extractors, ablation=ablation))

    run_sweep(sweep, args, name, report=report, next_steps=[
        f"analysis/afs_tables.py table6 --sweep afs-table3-{args.preset} --ablation-sweep {name}",
    ])


if __name__ == "__main__":
    main()
