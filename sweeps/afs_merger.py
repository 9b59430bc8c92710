"""AFS stage 2 (Liu & Zhao, Sec. 3.2-3.3): linear mergers over frozen extractors of a stage-1 sweep.

    python sweeps/afs_merger.py table2                     # smoke, after `python sweeps/afs_extractors.py`
    python sweeps/afs_merger.py table3                     # smoke: the four Table 3 masks, 2 min on 2 CPUs
    python sweeps/afs_merger.py default                    # smoke: the default AFS model (Fig. 5(a), Fig. 6)
    python sweeps/afs_merger.py search --num-samples 8     # Optuna over alpha, clean and robust accuracy
    python sweeps/afs_merger.py table2 --preset paper --address auto --extractor-sweep afs-extractors-paper
    python sweeps/afs_merger.py default --preset paper-cifar100 --address auto   # Table 5: the AFS model on CIFAR-100

``table2``: alpha in {0, 0.2, ..., 1.0} on one stack. ``table3``: the masks 100000001, 100010001, 101010101 and
111111111 at alpha 0.5. ``default``: the paper's default AFS model, alpha 0.5 on the stack of table2 (Fig. 5(a)
re-evaluates it under budgets 0..16/255 with ``sweeps/reevaluate.py``; Fig. 6(c) is its weights). ``search``: a
multi-objective Optuna study (seeded TPE) over alpha in [0, 1] maximising both ``select/clean`` and
``select/pgd<k>`` on held-out training images (the last 1,000, 128 in smoke, which the merger does not train on;
never the test set), at the last epoch, not the kept one: Tune requires a searcher's metrics in every result; it
prints the Pareto front. The stack of table2, default and search is ``--mask``: a
9/10-character mask, by default the paper's 000111111 (eps 3..8/255, Sec. 3.1-3.2) in the paper preset, or
``delta-z``, the range over which the extractors' Delta_z is concave (analysis/afs/selection.py, the rule and
tolerance the analysis shows), the smoke preset's default so that a smoke run exercises that rule end to end.

The extractor sweep (``--extractor-sweep``, default ``afs-extractors-<preset>``) must have finished every extractor
the masks name: this is checked before Ray starts, and the error names the missing eps and the command to run.
Paper preset, the reference code's recipe (the paper says "5 epochs"): CIFAR-10 with WRN-28-10 extractors, batch
100, 7 epochs, LR 0.1 for epochs 1-2, 0.01 for 3-5, 0.001 for 6-7 (1-based; ``lr_milestones: [3, 6]``), and the
weights after epoch 5 (index 4) kept whatever their score (``keep_epoch: 5``): ``best/*`` and Tables 2, 3 and 6 are
that epoch's (``keep_epoch: 0`` would keep the epoch with the best PGD-10 on 1000 test points, evaluated
after every epoch). PGD-10 (2/255, 8/255) through the whole stack; one trial attacks six WRN-28-10s per step, about
six extractor epochs of compute per merger epoch. Smoke preset: 2 epochs, the best epoch kept. Tables print from
MLflow at the end, with the trade-off of Table 4 (CIFAR-10) or Table 5 (CIFAR-100).

``paper-cifar100`` is the paper preset on CIFAR-100 (Sec. 3: the same training setting), stacking the extractors of
``afs_extractors.py --preset paper-cifar100`` (``afs-extractors-paper-cifar100``): its ``default`` model is Table 5's
AFS row. Before Ray starts, every extractor the masks stack must have been trained with the mergers' model and data,
so CIFAR-10 extractors never reach a CIFAR-100 merger.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from launch.cli import add_search_arguments, run_parser
from launch.space import grid
from runstore.uri import absolute_tracking_uri
from sweeps.afs_presets import CIFAR100

if TYPE_CHECKING:
    from trainables.methods.afs import ExtractorRuns

FAMILY = "afs-merger"
ALPHAS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
TABLE3_MASKS = ["100000001", "100010001", "101010101", "111111111"]
TABLE3_ALPHA = 0.5  # the paper does not say; its recommended value (Sec. 3.2)
DEFAULT_ALPHA = 0.5  # Sec. 3.2: "practically, the alpha can be set to 0.5"; Fig. 5(a) shows that model

PRESETS = {
    "smoke": {
        # The extractors' data; 64 steps, the final protocol on the extractors' 128 test points.
        "dataset": "synthetic_absent", "train_n": 1024, "model": "tiny-cnn", "epochs": 2, "batch_size": 32, "lr": 0.1,
        "schedule": "cyclic", "nesterov": True, "attack_steps": 3, "attack_step": 4 / 255, "eval_n": 32,
        "final_n": 128, "final_attacks": ["clean", "pgd10", "pgd20"],
    },
    "paper": {
        "dataset": "cifar10", "model": "wrn-28-10", "epochs": 7, "batch_size": 100, "lr": 0.1,
        "lr_milestones": [3, 6], "keep_epoch": 5, "weight_decay": 5e-4, "attack_steps": 10, "attack_step": 2 / 255,
        "eval_n": 1000, "final_n": 10000, "final_attacks": ["clean", "pgd10", "pgd20", "autoattack"],
        "autoattack_n": 10000,
    },
}
SEARCH_SAMPLES = {"smoke": 4, "paper": 16}
# The search selects on the last training images, held out of the merger's training, never on the test points (the
# extractors did train on them: the honest split a stage-2 search has without retraining stage 1).
SEARCH_SELECTION = {"smoke": {"select_on": "holdout", "holdout_n": 128, "eval_n": 128},
                    "paper": {"select_on": "holdout", "holdout_n": 1000, "eval_n": 1000}}
# Table 5: the paper recipe on CIFAR-100, like the extractors' preset of the same name.
PRESETS[CIFAR100] = PRESETS["paper"] | {"dataset": "cifar100"}
SEARCH_SAMPLES[CIFAR100] = SEARCH_SAMPLES["paper"]
SEARCH_SELECTION[CIFAR100] = SEARCH_SELECTION["paper"]


def default_stack(preset: str) -> str:
    """The stack of table2 and search when --mask is not given: the paper's, or in the smoke preset ``delta-z``."""
    from trainables.methods.afs_masks import DEFAULT_MASK

    return "delta-z" if preset == "smoke" else DEFAULT_MASK


def stack_mask(mask: str, extractor_sweep: str, tracking_uri: str) -> str:
    """``--mask`` itself, or for ``delta-z`` the mask of the extractors over which Delta_z is concave."""
    if mask != "delta-z":
        return mask
    from analysis.afs.tables import selected_extractors
    from runstore.reader import load_sweep
    from trainables.methods.afs_masks import MASK_LENGTHS, mask_of
    from trainables.methods.configs import EXTRACTOR_EXPERIMENT

    chosen = selected_extractors(load_sweep(extractor_sweep, experiment=EXTRACTOR_EXPERIMENT,
                                            tracking_uri=tracking_uri))
    return mask_of(chosen, length=MASK_LENGTHS[0] if max(chosen) < MASK_LENGTHS[0] else MASK_LENGTHS[1])


def check_extractors_match(extractors: ExtractorRuns, masks: list[str], space: dict[str, Any]) -> None:
    """SystemExit before Ray unless every extractor ``masks`` stack was trained with the mergers' model and dataset
    (the trial's own load refuses it too, but only once Ray has started)."""
    index = extractors.trained_otherwise(masks, space["model"], space["dataset"])
    if index is not None:
        params = extractors.params[index]
        raise SystemExit(
            f"error: extractor eps {index}/255 of sweep {extractors.sweep!r} is a {params['model']} on "
            f"{params['dataset']}, and these mergers train a {space['model']} on {space['dataset']}: pass "
            f"--extractor-sweep NAME of extractors trained so (afs_extractors.py --preset P names its sweep "
            f"afs-extractors-P), or the matching --preset")


def search_space(table: str, preset: str, extractor_sweep: str, mask: str, seeds: int) -> dict:
    from ray import tune

    space = {**PRESETS[preset], "extractor_sweep": extractor_sweep}
    if table == "search":  # seed 0 for every trial: Optuna cannot take a grid axis
        return space | SEARCH_SELECTION[preset] | {"mask": mask, "alpha": tune.uniform(0.0, 1.0)}
    space["seed"] = grid(list(range(seeds)))
    if table == "table2":
        return space | {"mask": mask, "alpha": grid(ALPHAS)}
    if table == "default":
        return space | {"mask": mask, "alpha": DEFAULT_ALPHA}
    return space | {"mask": grid(TABLE3_MASKS), "alpha": TABLE3_ALPHA}


def build_parser() -> argparse.ArgumentParser:
    parser = run_parser(__doc__, PRESETS)
    parser.add_argument("table", choices=["table2", "table3", "default", "search"],
                        help="which experiment to run")
    parser.add_argument("--extractor-sweep", default=None, help="stage-1 sweep name (default afs-extractors-<preset>)")
    parser.add_argument("--mask", default=None, help="stack of table2/default/search: a 9/10-character mask or "
                        "delta-z (default: the paper's eps 3..8/255 in the paper preset, delta-z in smoke)")
    add_search_arguments(parser)
    return parser


def stacked_extractors(args: argparse.Namespace, extractor_sweep: str,
                       tracking_uri: str) -> tuple[ExtractorRuns | None, list[str]]:
    """The dependency on stage 1, checked before Ray starts: the extractor sweep and the masks the mergers stack,
    every extractor they name registered (else SystemExit naming what is missing). A dry run plans ahead of stage 1:
    it notes what is missing, without opening a SQLite store that is not there (that would create it), and returns
    no extractors."""
    from runstore.uri import missing_sqlite_store
    from trainables.methods.afs import MissingExtractorError, find_extractors
    from trainables.methods.afs_masks import DEFAULT_MASK

    mask = args.mask or default_stack(args.preset)
    try:
        if args.dry_run and missing_sqlite_store(tracking_uri):
            raise MissingExtractorError(f"no extractor sweep {extractor_sweep!r} yet: {tracking_uri} does not exist")
        extractors = find_extractors(tracking_uri, extractor_sweep)
        mask = stack_mask(mask, extractor_sweep, tracking_uri)
        extractors.require(TABLE3_MASKS if args.table == "table3" else [mask])
    except MissingExtractorError as exc:
        if not args.dry_run:
            raise SystemExit(f"error: {exc}") from None
        print(f"note: {exc}")
        if mask == "delta-z":
            mask = DEFAULT_MASK
            print(f"note: --mask delta-z is chosen from that sweep's Delta_z; planned with the paper's stack {mask}")
        extractors = None
    return extractors, TABLE3_MASKS if args.table == "table3" else [mask]


def next_steps(table: str, preset: str, name: str, extractor_sweep: str) -> list[str]:
    """The commands that print the experiment's other tables and figures once it has run."""
    from analysis.afs.model_figures import reevaluation

    scatter = f"analysis/afs_tables.py scatter --sweep {name} --out fig1.png"
    if table == "table2":
        return [scatter, f"analysis/afs_tables.py fig5b --sweep {name} --out fig5b.png"]
    if table == "table3":
        # Table 6 is CIFAR-10's (Sec. 3.5): afs_ablation.py has no CIFAR-100 preset.
        return [scatter] + ([] if preset == CIFAR100 else [
            f"analysis/afs_tables.py table6 --sweep {name} --ablation-sweep afs-ablation-{preset}"])
    if table == "default":
        # Fig. 5(a) needs the default model and the single networks under every budget: clean (budget 0), PGD-20.
        n = PRESETS[preset]["final_n"]
        return [reevaluation(name, n), reevaluation(extractor_sweep, n),
                f"analysis/afs_tables.py fig5a --sweep {name} --out fig5a.png",
                f"analysis/afs_tables.py fig6 --sweep {name} --out fig6.png"]
    return []


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.table == "search" and args.seeds != 1:
        parser.error("--seeds: each trial of a search trains seed 0")
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.optuna_search import build_search, describe_study
    from launch.preflight import check_tracking_uri
    from launch.run import run_sweep
    from launch.sweep import Sweep
    from trainables.methods.configs import EXTRACTOR_EXPERIMENT

    extractor_sweep = args.extractor_sweep or f"afs-extractors-{args.preset}"
    tracking_uri = absolute_tracking_uri(args.tracking_uri)
    check_tracking_uri(tracking_uri)  # stage 1's store is read here, before run_sweep's own checks
    extractors, masks = stacked_extractors(args, extractor_sweep, tracking_uri)
    space = search_space(args.table, args.preset, extractor_sweep, masks[0], args.seeds)
    if extractors is not None:  # --set model=... or dataset=... included: run_sweep applies the same values
        check_extractors_match(extractors, masks, space | {o.key: o.value for o in args.overrides or ()})

    metrics = ["select/clean", f"select/pgd{PRESETS[args.preset]['attack_steps']}"]
    if args.table == "search":
        family = name = args.study_name or f"afs-alpha-{args.preset}"  # one MLflow experiment per study
        options = {"num_samples": args.num_samples or SEARCH_SAMPLES[args.preset],
                   "search_alg": lambda: build_search(metrics, ["max", "max"], study_name=family,
                                                      storage=args.optuna_storage, seed=args.sampler_seed),
                   "tags": {"study": family}}
    else:
        family, name, options = FAMILY, f"afs-{args.table}-{args.preset}", {}
    name = args.name or name
    sweep = Sweep.of("afs", family=family, param_space=space, name_keys=("mask", "alpha", "seed"), **options)

    def report() -> None:
        from analysis.afs.tables import table2, table3, tradeoff
        from analysis.render import emit
        from runstore.reader import load_sweep

        runs = load_sweep(name, experiment=family, tracking_uri=args.tracking_uri)
        if args.table == "search":
            print(describe_study(family, args.optuna_storage, metrics))
        elif args.table != "default":  # one model: its trade-off row below is its table
            emit((table2 if args.table == "table2" else table3)(runs))
        emit(tradeoff(runs, load_sweep(extractor_sweep, experiment=EXTRACTOR_EXPERIMENT,
                                       tracking_uri=args.tracking_uri)))

    print(f"stacking the extractors of sweep {extractor_sweep!r}: {', '.join(masks)}")
    run_sweep(sweep, args, name, report=report, next_steps=next_steps(args.table, args.preset, name, extractor_sweep))


if __name__ == "__main__":
    main()
