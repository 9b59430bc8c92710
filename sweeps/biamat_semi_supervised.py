"""BiaMAT Tables 3 and 7, the rows of Carmon et al. [4]: robust self-training (RST) on pseudo-labelled auxiliary data.

    python sweeps/biamat_semi_supervised.py                                  # smoke: synthetic data, 3 trials, ~2 min
    python sweeps/biamat_semi_supervised.py --preset paper                   # CIFAR-10: 6 auxiliary rows
    python sweeps/biamat_semi_supervised.py --preset paper --primary cifar100  # CIFAR-100: 5 auxiliary rows
    python analysis/biamat_tables.py table7 --sweep biamat-semi-supervised-cifar10-paper \\
        --baseline-sweep baselines-biamat-main-cifar10-paper --biamat-sweep biamat-main-cifar10-paper

Section 3.3 and appendix D: "we assign pseudo labels to the auxiliary data using a classifier trained on each primary
dataset and configure each training batch to contain the same amount of primary data and pseudo-labeled data as in
[4]" (TRADES), on the whole of CIFAR-100, Places365 and ImageNet, and on ImageNet-(N x 100)k, the top (N x 10)k
ImageNet images per CIFAR-10 class by that classifier's confidence (the top (N x 1)k per CIFAR-100 class). Three steps:

1. ``NAME-labeller``: standard training on the primary set, one trial, the classifier that pseudo-labels.
2. Labelling, in this process (on its GPU when it has one; ImageNet32 is 1.28M images): each row's auxiliary images
   get the labeller's best checkpoint's arg-max class as label (``trainables/confident_subset.py``, the ranking
   ``sweeps/biamat_confident_subset.py`` uses), written to ``DATA_ROOT/pseudo-labelled/<labeller run id>/<aux>.npz`` or ``<aux>-<N>k.npz``, where every node reads
   the data; a file already there is reused, so ``--resume`` does not label again.
3. ``NAME``: TRADES on the primary set with each file as ``extra_data``, half of every batch (``original_fraction``
   0.5), an epoch being one pass over the primary set (``mixed_epoch=original_pass``, as [4] counts epochs).

``--set`` reaches both sweeps (the labeller and TRADES share one config class), ``extra_data`` excepted.

Rows (the paper's): CIFAR-10 with CIFAR-100, Places365, ImageNet, ImageNet-500k, -250k and -100k; CIFAR-100 with
Places365, ImageNet, ImageNet-500k, -250k and -100k (Table 7's CIFAR-100 block; its extracted text puts the method
names on middle rows, and the rows between Hendrycks et al.'s ImageNet row and Carmon et al.'s ImageNet-500k row are
read here as Carmon et al.'s, since Hendrycks et al. pre-train on ImageNet only).

Recipe: the TRADES+BiaMAT paper recipe without its auxiliary stream (``sweeps/biamat_presets.py``: WRN-34-10, 110
epochs, LR 0.1 decayed at epochs 100 and 105, weight decay 5e-4, beta 6, the TRADES attack, the best checkpoint by
PGD-10 on the test set, the final protocol with AutoAttack), at 128 primary + 128 pseudo-labelled images per step,
BiaMAT's and [4]'s composition, 391 steps per epoch as TRADES+BiaMAT takes. Not stated by the paper, and this
project's choice: the labeller's recipe (that recipe with standard training and no attack; [4] used a WRN-28-10
trained normally for 200 epochs), the arg-max assignment of an image to one class, and the schedule of [4] (200
epochs, cosine LR) not being used. Cost per seed: the labeller, then 6 (CIFAR-10) or 5 (CIFAR-100) TRADES trials at
twice TRADES's images per step.
"""

from __future__ import annotations

from launch.cli import parse_primary_args
from launch.space import grid
from sweeps.biamat_presets import SMOKE_VARIANTS, TABLE1_SMOKE, baseline_recipe, on_primary, paper_recipe

VARIANT = "trades"  # "configure each training batch (for TRADES)", section 3.3
PRESETS = {
    # Table 1's smoke recipe with TRADES' attack, two epochs at 16 + 16 images per step.
    "smoke": {**baseline_recipe({**TABLE1_SMOKE, **SMOKE_VARIANTS[VARIANT]}, VARIANT), "epochs": 2},
    "paper": baseline_recipe(paper_recipe(VARIANT), VARIANT),
}
# The pseudo-labelled share of each batch and what an epoch is ([4]: half of a batch of 256, epochs over the labelled
# set); the batch is twice the recipe's, so each step holds the recipe's primary images.
RST = {"original_fraction": 0.5, "mixed_epoch": "original_pass"}
# (auxiliary set, images kept per primary class; 0: all of them, each pseudo-labelled), in the paper's row order.
ROWS: dict[str, list[tuple[str, int]]] = {
    "smoke": [("synthetic_aux", 0), ("synthetic_aux_unrelated", 0), ("synthetic_aux", 50)],
    "cifar10": [("cifar100", 0), ("places365_32", 0), ("imagenet32", 0),
                ("imagenet32", 50_000), ("imagenet32", 25_000), ("imagenet32", 10_000)],
    "cifar100": [("places365_32", 0), ("imagenet32", 0),
                 ("imagenet32", 5_000), ("imagenet32", 2_500), ("imagenet32", 1_000)],
}
PRIMARIES = ["cifar10", "cifar100"]
# The labeller: the recipe trained normally, judged by clean accuracy alone.
LABELLER = {"training": "standard", "final_attacks": ["clean"], "autoattack_n": 0}


def recipe(preset: str, primary: str) -> dict:
    shared = on_primary(PRESETS, preset, primary)
    return {**shared, "batch_size": 2 * shared["batch_size"]} | RST


def rows(preset: str, primary: str) -> list[tuple[str, int]]:
    return ROWS["smoke" if preset == "smoke" else primary]


def file_name(aux: str, per_class: int, classes: int) -> str:
    """``imagenet32-500k.npz`` for the top 50,000 of each of 10 classes (the paper's ImageNet-500k), ``cifar100.npz``
    for every image (``analysis/biamat/comparisons.py`` names the rows from it)."""
    if not per_class:
        return f"{aux}.npz"
    kept = per_class * classes
    return f"{aux}-{kept // 1000}k.npz" if kept % 1000 == 0 else f"{aux}-{kept}.npz"


def labeller_space(preset: str, primary: str) -> dict:
    return {**on_primary(PRESETS, preset, primary), **LABELLER, "seed": 0}


def rst_space(preset: str, seeds: int, primary: str, extra_data: list[str]) -> dict:
    """TRADES with each pseudo-labelled file (before labelling: each auxiliary set, which the checks find on disk)."""
    return {**recipe(preset, primary), "extra_data": grid(extra_data), "seed": grid(list(range(seeds)))}


def label_rows(args, labeller_sweep: str, preset: str, primary: str) -> list[str]:
    """Step 2: the pseudo-labelled file of every row, written from the labeller's best checkpoint where missing."""
    from runstore.reader import load_sweep, open_store
    from trainables.confident_subset import write_subset
    from trainables.dataset_names import data_root
    from trainables.datasets import load_dataset
    from trainables.safe_export import load_trained_model

    runs = load_sweep(labeller_sweep, tracking_uri=args.tracking_uri).runs
    if runs.empty:
        raise SystemExit(f"error: sweep {labeller_sweep} has no finished labeller trial: rerun this command with "
                         f"--resume --name {args.name or ''}".rstrip())
    run_id = str(runs["run_id"].iloc[0])
    folder = data_root(args.data_root).absolute() / "pseudo-labelled" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    classes = load_dataset(str(runs["params.dataset"].iloc[0]), "test", root=args.data_root).num_classes
    model, files = None, []
    for aux, per_class in rows(preset, primary):
        out = folder / file_name(aux, per_class, classes)
        if not out.exists():
            model = model or load_trained_model(open_store(args.tracking_uri), run_id, "best")
            print(write_subset(model, load_dataset(aux, "train", root=args.data_root), per_class, out, "pseudo"))
        files.append(f"npz:{out}")
    return files


def main(argv: list[str] | None = None) -> None:
    args = parse_primary_args(__doc__, PRESETS, PRIMARIES, argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.run import args_for_later_sweep, prepare_sweeps, run_sweep
    from launch.sweep import Sweep

    primary = args.primary
    suffix = "smoke" if args.preset == "smoke" else f"{primary}-{args.preset}"
    name = args.name or f"biamat-semi-supervised-{suffix}"
    labeller = f"{name}-labeller"

    def rst_sweep(extra_data: list[str]) -> Sweep:
        return Sweep.of("baseline", family="biamat-semi-supervised", name_keys=("extra_data", "seed"),
                        param_space=rst_space(args.preset, args.seeds, primary, extra_data))

    # Both sweeps checked before the labeller starts; the RST sweep with its auxiliary sets in place of the files
    # that step 2 writes from them.
    aux_sets = list(dict.fromkeys(aux for aux, _ in rows(args.preset, primary)))
    planned = [f"{aux} ({f'top {per_class} per class' if per_class else 'every image'})"
               for aux, per_class in rows(args.preset, primary)]
    print(f"note: sweep {name} trains {len(planned) * args.seeds} trials, one per seed and pseudo-labelled set: "
          f"{', '.join(planned)}; until {labeller} has labelled them, its plan lists the auxiliary sets they come from")
    original = args
    prepared = prepare_sweeps({labeller: Sweep.of("baseline", family="biamat-semi-supervised", name_keys=("seed",),
                                                  param_space=labeller_space(args.preset, primary)),
                               name: rst_sweep(aux_sets)}, args)
    if prepared is None:  # a dry run
        return
    sweeps, args = prepared
    run_sweep(sweeps[labeller], args, labeller)
    files = label_rows(args, labeller, args.preset, primary)
    baseline = "baselines-biamat-main-smoke" if args.preset == "smoke" else f"baselines-biamat-main-{primary}-paper"
    biamat = "biamat-main-smoke" if args.preset == "smoke" else f"biamat-main-{primary}-paper"

    def report() -> None:
        from analysis.biamat.comparisons import comparison_table
        from analysis.render import emit
        from runstore.reader import load_sweep

        emit(comparison_table(load_sweep(name, tracking_uri=args.tracking_uri)))

    run_sweep(rst_sweep(files), args_for_later_sweep(original, args, ("extra_data",)), name, report=report,
              next_steps=[(f"analysis/biamat_tables.py table7 --sweep {name} --baseline-sweep {baseline} "
                          f"--biamat-sweep {biamat}"),
                          (f"analysis/biamat_tables.py table3 --sweep {name} --baseline-sweep {baseline} "
                          f"--biamat-sweep {biamat}")])


if __name__ == "__main__":
    main()
