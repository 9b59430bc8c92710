"""BiaMAT appendix C, Table 6: Ilyas et al.'s robust datasets built from an AT and an AT+BiaMAT model, and a network
trained normally on each.

    python sweeps/biamat_robust_dataset.py                                      # smoke: synthetic data, ~3 min
    python sweeps/biamat_robust_dataset.py --preset paper --seeds 5 --sources AT_RUN_ID BIAMAT_RUN_ID
    python analysis/biamat_tables.py table6 --sweep biamat-robust-dataset-paper

Appendix C: "we construct robust datasets from the AT and AT+BiaMAT models. We then normally train models from scratch
on each robust dataset using the cross-entropy loss"; Table 6 is the clean and FGSM accuracy of those WRN-34-10s,
mean and std over 5 runs. Three steps:

1. The source models: with ``--sources AT_RUN_ID BIAMAT_RUN_ID``, two finished runs of the store (the paper's are
   Table 2's CIFAR-10 AT and AT+BiaMAT-with-ImageNet models, ``sweeps/baselines.py --preset biamat-main-cifar10-paper``
   and ``sweeps/biamat_main_results.py --preset paper``); without it, this command trains them: ``NAME-at`` (PGD-AT)
   and ``NAME-biamat`` (gated AT+BiaMAT with ImageNet32, Table 12's alpha 1 and pi 0.55), AT+BiaMAT's recipe
   (``sweeps/biamat_presets.py``: WRN-28-10, 100 epochs, PGD-10 at 8/255), one seed each.
2. The robust datasets (``trainables/robust_dataset.py``): each training image's features under the source's best
   model are matched, from another training image chosen at random, by 1000 L2-normalised gradient steps of 0.1 (Ilyas
   et al.'s construction; the same start images for both sources). The work is split in chunks of 2,000 images, one
   Ray task each (a GPU each where the cluster has GPUs), each chunk written to
   ``DATA_ROOT/robust-datasets/<at|biamat>-<run id>-<settings>-chunks/`` when done; the chunks are then joined into
   ``DATA_ROOT/robust-datasets/<at|biamat>-<run id>-<settings>.npz`` (settings: steps, step size, start seed, images,
   chunk size). A chunk or a dataset already there is reused, so the command goes on where it stopped (rerun it with
   ``--resume`` once step 1 has started; with ``--sources``, as it was). Cost: 1000 forward and backward passes per
   image, as many as about 90 epochs of PGD-10 training (11 passes per image and epoch), per source model.
3. ``NAME``: standard training (cross-entropy, no attack) of WRN-34-10 on each robust dataset, tested on CIFAR-10's
   test split (``test_data``) by clean accuracy and FGSM (one signed step of 8/255 from x) on all 10,000 images.

Not stated by the paper, and this project's choice: the schedule of step 3 (AT+BiaMAT's CIFAR-10 one, 100 epochs at
LR 0.1 decayed at 60% and 90%, weight decay 2e-4, the same as Table 5's), FGSM's eps (8/255, the paper's CIFAR-10
budget), the last epoch's model (no checkpoint chosen on the test set, as for Table 5), the random crop and flip of
the robust images, and keeping the iterate closest to the target's features. ``--set`` reaches every sweep (the
step-3 ``dataset`` is derived).
"""

from __future__ import annotations

import argparse
from typing import Any

from launch.cli import run_parser
from launch.space import grid
from sweeps.biamat_presets import SMOKE_VARIANTS, TABLE1_SMOKE, TABLE12, baseline_recipe, paper_recipe

# Step 3: trained normally, judged by clean accuracy and FGSM on the source models' test split.
PROTOCOL = {"training": "standard", "final_attacks": ["clean", "fgsm"], "autoattack_n": 0}
PRESETS = {
    "smoke": {"dataset": "synthetic", "test_data": "synthetic", "model": "tiny-cnn", "epochs": 2, "lr": 0.1,
              "batch_size": 32, "eval_n": 64, "final_n": 256, "eps": 8 / 255, **PROTOCOL},
    "paper": {**baseline_recipe(paper_recipe("at"), "at"), "model": "wrn-34-10", "test_data": "cifar10", **PROTOCOL},
}
# Step 1: the source models, AT+BiaMAT's recipe with and without the auxiliary data.
SOURCE_RECIPES: dict[str, dict[str, Any]] = {"smoke": {**TABLE1_SMOKE, **SMOKE_VARIANTS["at"], "warmup_epochs": 1},
                                             "paper": paper_recipe("at")}
ALPHA, PI = TABLE12[("cifar10", "at", "imagenet32")]
# Step 2: Ilyas et al.'s 1000 steps of 0.1; the smoke preset builds from 512 images in 20 steps.
CONSTRUCTION: dict[str, dict[str, Any]] = {"smoke": {"steps": 20, "chunk_size": 256, "limit": 512},
                                           "paper": {}}
ROLES = ("at", "biamat")  # Table 6's rows, and the prefix of each robust dataset's file


def at_space(preset: str) -> dict:
    return {**baseline_recipe(SOURCE_RECIPES[preset], "at"), "seed": 0}


def biamat_space(preset: str) -> dict:
    return {**SOURCE_RECIPES[preset], "variant": "at", "labels": "gated", "alpha": ALPHA, "pi": PI, "seed": 0}


def training_space(preset: str, seeds: int, datasets: list[str]) -> dict:
    """Step 3 on each robust dataset (before step 2: the data it is built from, which the checks find)."""
    return {**PRESETS[preset], "dataset": grid(datasets), "seed": grid(list(range(seeds)))}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = run_parser(__doc__, PRESETS)
    parser.add_argument("--sources", nargs=2, metavar=("AT_RUN_ID", "BIAMAT_RUN_ID"), default=None,
                        help="finished runs of the store to build from (default: step 1 trains them)")
    return parser.parse_args(argv)


def check_sources(sources: dict[str, str], tracking_uri: str | None) -> None:
    """Each ``--sources`` run is in the store, logged its best weights and is what its place says: PGD-AT, then gated
    AT+BiaMAT."""
    from launch.preflight import check_initial_weights
    from runstore.reader import StoreNotFoundError, open_store

    try:
        client = open_store(tracking_uri)  # never creates one
    except StoreNotFoundError as exc:
        raise SystemExit(f"error: --sources: {exc}") from None
    check_initial_weights(sources.values(), tracking_uri)
    params_of = {role: client.get_run(run_id).data.params for role, run_id in sources.items()}
    datasets = {params.get("dataset") for params in params_of.values()}
    if len(datasets) > 1:
        raise SystemExit(f"error: --sources trained on different datasets ({', '.join(sorted(map(str, datasets)))}): "
                         "both robust datasets start from the same training images, so pass two runs of one dataset")
    for role, run_id in sources.items():
        params = params_of[role]
        right = (params.get("training") == "pgd_at" if role == "at"
                 else params.get("variant") == "at" and params.get("labels") == "gated")
        if not right:
            what = "a PGD-AT run (training=pgd_at)" if role == "at" else "a gated AT+BiaMAT run (variant=at)"
            raise SystemExit(f"error: --sources: run {run_id} is not {what}: pass the AT run's id first, then the "
                             "AT+BiaMAT run's")


def finished_run(args: argparse.Namespace, sweep: str) -> str:
    from runstore.reader import load_sweep

    runs = load_sweep(sweep, tracking_uri=args.tracking_uri).runs
    if runs.empty:
        raise SystemExit(f"error: sweep {sweep} has no finished trial: rerun this command with --resume --name "
                         f"{args.name or '<name>'}")
    return str(runs["run_id"].iloc[0])


def build_robust_datasets(args: argparse.Namespace, sources: dict[str, str], preset: str) -> list[str]:
    """Step 2: every missing chunk as a Ray task (``launch/driver_tasks.py``), then each source's chunks joined; the
    ``npz:`` dataset names. A failed chunk stops the command after the others are done: rerun it to build that one."""
    from mlflow.tracking import MlflowClient

    from launch.driver_tasks import run_tasks
    from runstore.uri import absolute_tracking_uri
    from trainables.dataset_names import data_root
    from trainables.datasets import load_dataset
    from trainables.robust_dataset import Construction, assemble, build_chunk_of_run

    uri = absolute_tracking_uri(args.tracking_uri)
    root = data_root(args.data_root).absolute()
    jobs, calls = {}, []
    for role, run_id in sources.items():
        dataset = MlflowClient(uri).get_run(run_id).data.params["dataset"]
        # The file names hold the source, its run and the settings: another preset's file is never reused here.
        job = Construction(root / "robust-datasets", f"{role}-{run_id}", **CONSTRUCTION[preset])
        n = job.size(len(load_dataset(dataset, "train", root=str(root))))
        jobs[role] = (job, n)
        if not job.out.exists():
            calls += [(f"{job.chunk_path(k).parent.name}/{job.chunk_path(k).name}",
                       (uri, run_id, dataset, str(root), job, k)) for k in job.missing_chunks(n)]
    if calls:
        print(f"building {len(calls)} chunks of robust images in {root / 'robust-datasets'}")
        failed = run_tasks(build_chunk_of_run, calls, args,
                           lambda label, path, progress: print(f"{progress} wrote {label}", flush=True))
        if failed:
            raise SystemExit(f"error: {failed} chunk(s) failed (above): run the same command again (with --resume "
                             "once the source sweeps have started) to build them; the chunks written are kept")
    for job, n in jobs.values():
        if not job.out.exists():
            print(assemble(job, n))
    return [f"npz:{jobs[role][0].out}" for role in sources]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.run import args_for_later_sweep, prepare_sweeps, run_sweep
    from launch.sweep import Sweep

    preset = args.preset
    name = args.name or f"biamat-robust-dataset-{preset}"
    stage1 = {} if args.sources else {
        f"{name}-at": Sweep.of("baseline", family="biamat-robust-dataset", name_keys=("seed",),
                               param_space=at_space(preset)),
        f"{name}-biamat": Sweep.of("biamat", family="biamat-robust-dataset", name_keys=("seed",),
                                   param_space=biamat_space(preset), extra_datasets=lambda cfg: cfg.aux_datasets)}

    def training(datasets: list[str]) -> Sweep:
        return Sweep.of("baseline", family="biamat-robust-dataset", name_keys=("dataset", "seed"),
                        param_space=training_space(preset, args.seeds, datasets))

    print(f"note: sweep {name} trains {2 * args.seeds} trials, one per seed on each robust dataset (from the AT and "
          "the AT+BiaMAT model); until they are built, its plan lists the data they are built from")
    original = args
    prepared = prepare_sweeps({**stage1, name: training([PRESETS[preset]["test_data"]])}, args)
    sources = dict(zip(ROLES, args.sources, strict=True)) if args.sources else {}
    if sources:
        check_sources(sources, args.tracking_uri)
    if prepared is None:  # a dry run
        return
    sweeps, args = prepared
    if not sources:
        for sweep in stage1:
            run_sweep(sweeps[sweep], args, sweep)
        sources = {role: finished_run(args, f"{name}-{role}") for role in ROLES}
    datasets = build_robust_datasets(args, sources, preset)

    def report() -> None:
        from analysis.biamat.robust_datasets import table6
        from analysis.render import emit
        from runstore.reader import load_sweep

        emit(table6(load_sweep(name, tracking_uri=args.tracking_uri)))

    run_sweep(training(datasets), args_for_later_sweep(original, args, ("dataset",)), name, report=report,
              next_steps=[f"analysis/biamat_tables.py table6 --sweep {name} --format latex --out table6.tex"])


if __name__ == "__main__":
    main()
