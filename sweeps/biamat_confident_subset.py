"""BiaMAT appendix D's ImageNet-(N x 100)k: the auxiliary images a classifier trained on the primary set is most
confident on, the top (N x 10)k per CIFAR-10 class (the top (N x 1)k per class of CIFAR-100), written as an ``npz:``
set that a sweep takes as its auxiliary data (Table 7's semi-supervised rows and Table 9's ImageNet-100k).

    python sweeps/biamat_confident_subset.py --run RUN_ID --aux imagenet32 --per-class 10000 --out imagenet-100k.npz
    python sweeps/biamat_oat.py --preset paper --set aux_datasets='["npz:imagenet-100k.npz"]' --set aux_n=0 \\
        --name biamat-oat-paper-100k

``RUN_ID`` is a finished trial whose model was trained on the primary set (its MLflow run id: the runs table shows
it; appendix D uses "a classifier trained on each primary dataset", e.g. a standard-training run of
``sweeps/baselines.py``). Every auxiliary image gets the model's clean softmax over the primary classes; each image
goes to its most confident class, and per class the ``--per-class`` most confident images are kept (all of a class's
images where it has fewer; how many each class got is printed). The paper says "sort the ImageNet data based on the
confidence in the primary dataset classes and select the top (N x 10)k samples for each class": assigning each
image to its arg-max class is this script's reading, which keeps an image from being taken twice.

The file holds ``image`` (uint8, N x 3 x H x W), ``label`` (the auxiliary set's own label, what BiaMAT's auxiliary
head learns), and ``pseudo_label`` and ``confidence`` (the primary class and its softmax probability), in decreasing
confidence within each class. With ``--labels pseudo``, ``label`` holds the pseudo-label and ``aux_label`` the set's
own: the file a semi-supervised method trains on as ``extra_data`` (Carmon et al., Tables 3 and 7:
``sweeps/biamat_semi_supervised.py`` makes its files this way). ``--per-class 0`` keeps every image. One pass over
the auxiliary set in evaluation mode; on a GPU when there is one (ImageNet32's 1.28M images: minutes for a
WRN-28-10).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from runstore.uri import DEFAULT_TRACKING_URI

LABELS = ("aux", "pseudo")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="MLflow run id of a trial trained on the primary set")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best", help="its model (default: best)")
    parser.add_argument("--aux", default="imagenet32", help="auxiliary dataset to rank (default: imagenet32)")
    parser.add_argument("--per-class", type=int, required=True,
                        help="images kept per primary class: 10000 for CIFAR-10's ImageNet-100k, 1000 for CIFAR-100's; "
                             "0 keeps every image (each pseudo-labelled)")
    parser.add_argument("--labels", choices=LABELS, default="aux",
                        help="what the file's label holds: aux, the auxiliary set's own labels (BiaMAT's auxiliary "
                             "head); pseudo, the primary class the model gives (a semi-supervised method's training "
                             "labels, e.g. as extra_data). Both are kept (default: aux)")
    parser.add_argument("--out", type=Path, required=True, help="the .npz file to write")
    parser.add_argument("--tracking-uri", default=None,
                        help=f"MLflow tracking URI (default: $MLFLOW_TRACKING_URI or {DEFAULT_TRACKING_URI})")
    parser.add_argument("--data-root", default=os.environ.get("ADVSWEEP_DATA"), help="dataset folder (default ./data)")
    parser.add_argument("--batch-size", type=int, default=512)
    args = parser.parse_args(argv)
    if args.per_class < 0 or args.batch_size < 1:
        parser.exit(2, f"error: --per-class {args.per_class} must be 0 (every image) or more, --batch-size "
                       f"{args.batch_size} at least 1\n")
    if args.out.suffix != ".npz":
        parser.exit(2, f"error: --out {args.out} must end in .npz (a sweep reads it as npz:{args.out})\n")
    if not args.out.resolve().parent.is_dir():
        parser.exit(2, f"error: --out {args.out}: the folder {args.out.resolve().parent} does not exist\n")
    return args


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once.
    from runstore.reader import StoreNotFoundError, open_store
    from trainables.confident_subset import write_subset
    from trainables.datasets import DatasetNotFoundError, load_dataset
    from trainables.safe_export import load_trained_model

    try:
        client = open_store(args.tracking_uri)  # never creates one
    except StoreNotFoundError as exc:
        raise SystemExit(f"error: {exc}") from None
    try:
        model = load_trained_model(client, args.run, args.checkpoint)
    except Exception as exc:  # noqa: BLE001 - MLflow raises several kinds for a missing run or model
        raise SystemExit(f"error: no {args.checkpoint} model in run {args.run} of {client.tracking_uri} "
                         f"({type(exc).__name__}: {exc}); pass the run id of a finished trial") from None
    try:
        aux = load_dataset(args.aux, "train", root=args.data_root)
    except DatasetNotFoundError as exc:
        raise SystemExit(f"error: {exc}") from None
    written = write_subset(model, aux, args.per_class, args.out, args.labels, args.batch_size)
    use = (f"--set aux_datasets='[\"npz:{args.out.resolve()}\"]' --set aux_n=0" if args.labels == "aux" else
           f"--set extra_data=npz:{args.out.resolve()} --set original_fraction=0.5")
    print(f"{written} (under run {args.run}, {args.checkpoint})\nto train on it: {use}")
    return args.out


if __name__ == "__main__":
    main()
