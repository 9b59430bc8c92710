"""BiaMAT appendix F (Table 14 and Fig. 4): a gated BiaMAT run's trained model scored on every auxiliary training
image, and the result logged into that run.

    python sweeps/biamat_gate_pass.py --run RUN_ID --figure-class 0       # the run's auxiliary set, its best model
    python analysis/biamat_tables.py table14 --sweep biamat-main-cifar10-paper --aux imagenet32 --variant at \\
        --pass best --mapping imagenet32_to_cifar10.csv
    python analysis/biamat_tables.py fig4 --run RUN_ID --aux-class 0 --out fig4.png

Appendix F: "We use the AT+BiaMAT model in Table 2, trained on the CIFAR-10 dataset with the ImageNet auxiliary
dataset" and show, per CIFAR-10 superclass, the share of ImageNet training images above the confidence threshold,
then "the top-10 highest and lowest confident ImageNet training samples ("aircraft carrier" class)". Here: the run's
``--checkpoint`` model (default best, the Table 2 model) computes the clean primary confidence (max softmax of the
primary head, eval mode: the gate's own score, ``trainables/methods/biamat.py``) of every image of the auxiliary
set's train split, un-augmented; an image is above the threshold when its confidence is at least the run's omega
(pi x the mean primary confidence the gate set after warm-up, the run's ``omega`` metric). Logged into the run:

- ``gate_pass/<checkpoint>.csv``: ``aux_class,seen,high`` per auxiliary class, the format of the gate's per-epoch
  counts, which ``table14 --pass <checkpoint>`` reads in their place;
- ``gate_pass/<checkpoint>_class_<N>.npz`` per ``--figure-class N``: the class's 10 most and 10 least confident
  images and their confidences, which ``fig4`` draws (the paper's "aircraft carrier" is the auxiliary label of
  synset n02687172 in your ImageNet32 files' class list).

One pass in this process (on its GPU when it has one; ImageNet32's 1.28M images through a WRN-28-10 take minutes on
a GPU). A second call overwrites what the first logged.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from runstore.uri import DEFAULT_TRACKING_URI

FOLDER = "gate_pass"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="MLflow run id of a finished gated BiaMAT trial")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best", help="its model (default: best)")
    parser.add_argument("--aux", default=None, help="auxiliary dataset to score (default: the run's own, when it has "
                        "one; its labels must be the ones the run trained on)")
    parser.add_argument("--figure-class", type=int, action="append", default=[], metavar="N",
                        help="also keep auxiliary class N's 10 most and least confident images, for fig4 (repeat)")
    parser.add_argument("--tracking-uri", default=None,
                        help=f"MLflow tracking URI (default: $MLFLOW_TRACKING_URI or {DEFAULT_TRACKING_URI})")
    parser.add_argument("--data-root", default=os.environ.get("ADVSWEEP_DATA"), help="dataset folder (default ./data)")
    parser.add_argument("--batch-size", type=int, default=512)
    args = parser.parse_args(argv)
    if args.batch_size < 1 or any(c < 0 for c in args.figure_class):
        parser.exit(2, "error: --batch-size must be at least 1 and --figure-class a label (0, 1, ...)\n")
    return args


def main(argv: list[str] | None = None) -> dict[str, str]:
    """Returns the artifact paths it logged (for tests)."""
    args = parse_args(argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once.
    import numpy as np
    import torch

    from runstore.reader import StoreNotFoundError, open_store
    from trainables.confident_subset import softmax_outputs
    from trainables.datasets import DatasetNotFoundError, load_dataset
    from trainables.gate_pass import class_counts, extremes
    from trainables.safe_export import load_trained_model

    try:
        client = open_store(args.tracking_uri)  # never creates one
        run = client.get_run(args.run)
    except StoreNotFoundError as exc:
        raise SystemExit(f"error: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - MLflow raises several kinds for a missing run
        raise SystemExit(f"error: no run {args.run} in the store ({type(exc).__name__}): pass a finished gated BiaMAT "
                         "trial's run id (the MLflow runs table shows it)") from None
    omega = run.data.metrics.get("omega")
    if omega is None or run.data.params.get("labels") != "gated":
        raise SystemExit(f"error: run {args.run} is not a gated BiaMAT trial that set its threshold (no omega metric): "
                         "pass a run of a BiaMAT sweep with labels=gated, trained past its warm-up")
    aux = args.aux or run.data.params.get("aux_datasets", "")
    if "," in aux or not aux:
        raise SystemExit(f"error: run {args.run} trained on the auxiliary sets {aux!r}: name the one to score with "
                         "--aux (its labels must be the ones the run counts)")
    try:
        model = load_trained_model(client, args.run, args.checkpoint)
        images = load_dataset(aux, "train", root=args.data_root)
    except DatasetNotFoundError as exc:
        raise SystemExit(f"error: {exc}") from None
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    confidence = softmax_outputs(model, images.images, args.batch_size, device).amax(dim=1)
    logged = {"counts": f"{FOLDER}/{args.checkpoint}.csv"}
    client.log_text(args.run, class_counts(confidence, images.labels, omega, images.num_classes), logged["counts"])
    with tempfile.TemporaryDirectory() as folder:
        for aux_class in args.figure_class:
            highest, lowest = extremes(confidence, images.labels, aux_class)
            path = Path(folder) / f"{args.checkpoint}_class_{aux_class}.npz"
            np.savez(path, highest=images.images[highest].numpy(), lowest=images.images[lowest].numpy(),
                     highest_confidence=confidence[highest].numpy(), lowest_confidence=confidence[lowest].numpy(),
                     omega=np.float64(omega))
            client.log_artifact(args.run, str(path), FOLDER)
            logged[f"class {aux_class}"] = f"{FOLDER}/{path.name}"
    above = float((confidence >= omega).float().mean())
    print(f"run {args.run} ({args.checkpoint}): {above:.1%} of {images.name}'s {len(images)} training images at or "
          f"above omega = {omega:.4f}; logged {', '.join(logged.values())}")
    return logged


if __name__ == "__main__":
    main()
