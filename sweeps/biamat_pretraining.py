"""BiaMAT Tables 3, 7 and 8, the rows of Hendrycks et al. [17]: adversarial pre-training on an auxiliary set, then
adversarial fine-tuning on the primary set.

    python sweeps/biamat_pretraining.py                                   # smoke: synthetic data, tiny CNN, ~2 min
    python sweeps/biamat_pretraining.py --preset paper                    # CIFAR-10 from CIFAR-100 and ImageNet
    python sweeps/biamat_pretraining.py --preset paper --primary cifar100  # CIFAR-100 from ImageNet
    python analysis/biamat_tables.py table8 --sweep biamat-pretraining-cifar10-paper \\
        --pretraining-sweep biamat-pretraining-cifar10-paper-pretraining

Appendix E: "In the pre-training phase, the model was adversarially trained on the auxiliary dataset according to
the implementation details described in Section 3.1. The fine-tuning phase commenced from the best checkpoint of the
pre-training phase. We adversarially fine-tuned the entire layers of the pre-trained model on the primary dataset.
The learning rate was set according to the global step over the pre-training and fine-tuning phase. For example, if
the best checkpoint was acquired at the 65th epoch in the pre-training phase, the learning rate of the fine-tuning
phase commenced at 0.01 and decreased to 0.001 after 25 epochs." Three sweeps, checked together before the first:

1. ``NAME-pretraining``: PGD-AT on each auxiliary set (CIFAR-10: CIFAR-100 and ImageNet32; CIFAR-100: ImageNet32),
   AT+BiaMAT's recipe (``sweeps/biamat_presets.py``: WRN-28-10, 100 epochs, LR 0.1 decayed at 60% and 90%, weight
   decay 2e-4, PGD-10 at 8/255), its best checkpoint by PGD-10 on the auxiliary set's own test split.
2. ``NAME``: PGD-AT on the primary set from each pre-trained network (``init_from``: every layer but the classifier
   head, which has the auxiliary set's classes), for the rest of the pre-training's schedule
   (:func:`fine_tuning_schedule`): the "Hendrycks et al." rows of Tables 3 and 7, and Table 8's "AT".
3. ``NAME-trades``: TRADES (beta 6, its attack and weight decay 5e-4) from the ImageNet network, on the same
   schedule: Table 8's "TRADES".

Not stated by the paper, and this project's choice: a best pre-training checkpoint at the last epoch leaves no global
schedule to continue; then the fine-tuning runs the last LR phase (10 epochs at 0.001 for 100 epochs at [60%, 90%]).
TRADES fine-tuning keeps the pre-training's network (WRN-28-10, where TRADES+BiaMAT trains WRN-34-10). Table 8's
ImageNet model is Hendrycks et al.'s own in the paper; here it is the one stage 1 trains. Checkpoints are selected by
PGD-10 on the primary test set every 2 epochs from the first decay of the fine-tuning (every epoch when none is left).
``--set`` reaches all three sweeps, except the keys the fine-tuning derives (``init_from``, ``seed``, ``lr``, ``epochs``,
``lr_milestones``, ``eval_from``): those set the pre-training's, whose schedule the fine-tuning then continues.
Cost: the ImageNet32 pre-training is 100 epochs over 1.28M images (about 26 times a CIFAR epoch), the bulk of it.
"""

from __future__ import annotations

from typing import Any

from launch.cli import parse_primary_args
from launch.space import grid, per_value
from sweeps.biamat_presets import (
    SMOKE_VARIANTS,
    TABLE1_SMOKE,
    baseline_recipe,
    on_primary,
    paper_recipe,
    variant_recipe,
)

PRESETS = {
    "smoke": {**baseline_recipe({**TABLE1_SMOKE, **SMOKE_VARIANTS["at"]}, "at"), "epochs": 3},
    "paper": baseline_recipe(paper_recipe("at"), "at"),
}
# Pre-training sets per primary set (Tables 3 and 7) and the one TRADES fine-tunes from (Table 8: "pre-trained
# ImageNet model").
AUX: dict[str, list[str]] = {"smoke": ["synthetic_aux", "synthetic_aux_unrelated"],
                             "cifar10": ["cifar100", "imagenet32"], "cifar100": ["imagenet32"]}
TRADES_FROM = {"smoke": "synthetic_aux", "cifar10": "imagenet32", "cifar100": "imagenet32"}
PRIMARIES = ["cifar10", "cifar100"]
# What the fine-tuning sweeps derive from stage 1: a --set of these sets the pre-training's.
DERIVED = ("init_from", "seed", "lr", "epochs", "lr_milestones", "eval_from")
# What TRADES fine-tuning changes of the AT recipe: its loss, attack and weight decay, not its network or schedule.
TRADES_KEYS = ("weight_decay", "eps", "attack_step", "attack_steps", "attack_start", "attack_bn", "final_attack_step")


def primary_of(preset: str, primary: str) -> str:
    return "smoke" if preset == "smoke" else primary


def pretraining_space(preset: str, seeds: int, primary: str) -> dict:
    """PGD-AT on each auxiliary set, judged on its own test split."""
    return {**on_primary(PRESETS, preset, primary), "dataset": grid(AUX[primary_of(preset, primary)]),
            "seed": grid(list(range(seeds)))}


def fine_tuning_schedule(pretraining: dict[str, Any], best_epoch: int) -> dict[str, Any]:
    """The fine-tuning's share of the global schedule after ``best_epoch`` (0-based) of ``pretraining``'s: its LR,
    epochs and the milestones left (1-based epochs of the fine-tuning), and where selection starts."""
    epochs, milestones = pretraining["epochs"], pretraining["lr_milestones"]
    # 0-based epochs that start a decay (fractions rounded to whole epochs), those the pre-training reached.
    starts = [s for s in (round(m * epochs) if m < 1 else int(m) - 1 for m in milestones) if s < epochs]
    # At the last LR phase's start at the latest (the module doc), and one epoch at least.
    done = min(best_epoch + 1, max(starts, default=epochs - 1), epochs - 1)
    left = [s - done + 1 for s in starts if s > done]
    return {"lr": round(pretraining["lr"] * pretraining.get("lr_gamma", 0.1) ** sum(s <= done for s in starts), 12),
            "epochs": epochs - done, "lr_milestones": left, "eval_from": "first_decay" if left else 1}


def fine_tuning_space(preset: str, seeds: int, primary: str, sources: dict[str, dict[str, Any]],
                      training: str = "pgd_at") -> dict:
    """Fine-tuning from each pre-trained run (``sources``: run id -> its seed and schedule, from
    :func:`fine_tuning_schedule`; before stage 1 has run, a placeholder ``{"": ...}`` that the checks take)."""
    shared = on_primary(PRESETS, preset, primary)
    if training == "trades":
        trades = SMOKE_VARIANTS["trades"] if preset == "smoke" else variant_recipe("trades", primary)
        shared = {**shared, **{k: trades[k] for k in TRADES_KEYS if k in trades}, "training": "trades"}
    return {**shared, "init_from": grid(sorted(sources)), **per_value("init_from", sources)}


def pretrained(args, sweep: str, schedule: dict[str, Any], only: str | None = None) -> dict[str, dict[str, Any]]:
    """Stage 1's finished runs (of auxiliary set ``only``, if given): run id -> the fine-tuning's seed and its share
    of ``schedule``, the pre-training's (its search space as it ran)."""
    from launch.space import grid_points
    from runstore.reader import load_sweep

    runs = load_sweep(sweep, tracking_uri=args.tracking_uri).runs
    wanted = len([p for p in grid_points(schedule) if only is None or p["dataset"] == only])
    runs = runs[runs["params.dataset"] == only] if only else runs
    if len(runs) < wanted:
        raise SystemExit(f"error: sweep {sweep} holds {len(runs)} finished pre-training runs of {wanted}: rerun this "
                         f"command with --resume --name {args.name or '<name>'}")
    return {run_id: {"seed": int(seed), **fine_tuning_schedule(schedule, int(best))}
            for run_id, seed, best in zip(runs["run_id"], runs["params.seed"], runs["metrics.best_epoch"], strict=True)}


def main(argv: list[str] | None = None) -> None:
    args = parse_primary_args(__doc__, PRESETS, PRIMARIES, argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.run import args_for_later_sweep, prepare_sweeps, run_sweep
    from launch.sweep import Sweep

    preset, seeds, primary = args.preset, args.seeds, args.primary
    suffix = "smoke" if preset == "smoke" else f"{primary}-{preset}"
    name = args.name or f"biamat-pretraining-{suffix}"
    names = [f"{name}-pretraining", name, f"{name}-trades"]

    def fine_tuning(sources: dict[str, dict[str, Any]], training: str) -> Sweep:
        return Sweep.of("baseline", family="biamat-pretraining", name_keys=("init_from", "seed"),
                        param_space=fine_tuning_space(preset, seeds, primary, sources, training))

    # Before stage 1 has run, the fine-tuning sweeps are checked with a placeholder schedule and no init_from.
    aux = AUX[primary_of(preset, primary)]
    print(f"note: sweeps {names[1]} and {names[2]} fine-tune each network {names[0]} pre-trains ({len(aux) * seeds} "
          f"and {seeds} trials: from {', '.join(aux)}; from {TRADES_FROM[primary_of(preset, primary)]}), each for the "
          "rest of its pre-training's schedule; until then their plans show a placeholder schedule")
    placeholder = {"": {"seed": 0, **fine_tuning_schedule(on_primary(PRESETS, preset, primary), 0)}}
    original = args
    prepared = prepare_sweeps({names[0]: Sweep.of("baseline", family="biamat-pretraining", name_keys=("dataset", "seed"),
                                                  param_space=pretraining_space(preset, seeds, primary)),
                               names[1]: fine_tuning(placeholder, "pgd_at"),
                               names[2]: fine_tuning(placeholder, "trades")}, args)
    if prepared is None:  # a dry run
        return
    sweeps, args = prepared
    run_sweep(sweeps[names[0]], args, names[0])
    # The fine-tuning continues the schedule stage 1 ran (--set applied) and takes every other --set key.
    schedule = sweeps[names[0]].param_space
    later = args_for_later_sweep(original, args, DERIVED)
    run_sweep(fine_tuning(pretrained(args, names[0], schedule), "pgd_at"), later, names[1])
    from_imagenet = pretrained(args, names[0], schedule, only=TRADES_FROM[primary_of(preset, primary)])

    def report() -> None:
        from analysis.biamat.comparisons import table8
        from analysis.render import emit
        from runstore.reader import load_sweep

        emit(table8([load_sweep(n, tracking_uri=args.tracking_uri) for n in names[1:]],
                    load_sweep(names[0], tracking_uri=args.tracking_uri)))

    table8_command = (f"analysis/biamat_tables.py table8 --sweep {names[1]} --sweep {names[2]} "
                      f"--pretraining-sweep {names[0]}")
    table7_command = (f"analysis/biamat_tables.py table7 --sweep biamat-semi-supervised-{suffix} "
                      f"--fine-tuning-sweep {names[1]} --pretraining-sweep {names[0]}")
    run_sweep(fine_tuning(from_imagenet, "trades"), later, names[2], report=report,
              next_steps=[table8_command, table7_command])

if __name__ == "__main__":
    main()
