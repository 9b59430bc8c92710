"""UIAT Table 5: N-FGSM, RS-FGSM and GradAlign, each alone and with one-off UIAT, trained at eps 6, 8 and 10 /255.

    python sweeps/uiat_single_step.py                            # smoke: synthetic data, tiny CNN, eps 8/255 only
    python sweeps/uiat_single_step.py --preset paper --seeds 3   # CIFAR-10, ResNet-18, eps 6, 8, 10 /255
    python analysis/uiat_tables.py table5 --sweep uiat-single-step-paper --sweep uiat-single-step-paper-gradalign \\
        --sweep uiat-single-step-paper-uiat

Three sweeps, one per trainable: ``NAME`` (RS-FGSM and N-FGSM), ``NAME-gradalign`` and ``NAME-uiat`` (one-off UIAT
on each of the three attacks). "+ UIAT" is UIAT Sec. 4.3's setting: the one-off variant with beta = 0 in Eq. 4, that
is no feature-level term (``components: uag``), its inverse adversaries from cross-entropy alone.

The paper leaves the recipe of Table 5 to its supplementary material, which is not available here, so every trial
takes UIAT's own recipe (``sweeps/uiat_presets.py``: ResNet-18, 100 epochs, cyclic LR peaking at 0.1 with Nesterov
momentum, weight decay 5e-4) at its training eps, with the single-step attacks taken in train-mode BatchNorm as
their reference codes do (``attack_bn: train``). Each method's own constants: RS-FGSM's step 1.25 eps from a uniform
start, N-FGSM's noise 2 eps and step eps without projection (trainables/methods/single_step.py), GradAlign's lambda
0.2 at every eps (its paper's 8/255 value; it grows with eps there, so set ``--set lam=...`` and
``--set align_lam=...`` under another ``--name`` per eps to follow it). The robust column is AutoAttack in the paper
preset; seconds per epoch are the trials' own training-pass times.
"""

from __future__ import annotations

from launch.cli import run_parser
from launch.space import grid
from sweeps.uiat_presets import PRESETS, baseline_preset

EPSILONS = {"smoke": [8 / 255], "paper": [6 / 255, 8 / 255, 10 / 255]}
ATTACKS = ["n_fgsm", "rs_fgsm", "gradalign"]
GRADALIGN_LAMBDA = 0.2
TABLE5_UIAT = {"oneoff": True, "components": "uag"}  # Sec. 4.3: one-off, beta = 0


def shared(preset: str, seeds: int, recipe: dict) -> dict:
    return {**recipe, "eps": grid(EPSILONS[preset]), "attack_bn": "train",
            "seed": grid(list(range(seeds)))}


def single_step_space(preset: str, seeds: int) -> dict:
    return {**shared(preset, seeds, baseline_preset(preset)), "variant": grid(["n_fgsm", "rs_fgsm"])}


def gradalign_space(preset: str, seeds: int) -> dict:
    return {**shared(preset, seeds, baseline_preset(preset)), "lam": GRADALIGN_LAMBDA}


def uiat_space(preset: str, seeds: int) -> dict:
    return {**shared(preset, seeds, PRESETS[preset]), **TABLE5_UIAT, "training_attack": grid(ATTACKS),
            "align_lam": GRADALIGN_LAMBDA}


def main(argv: list[str] | None = None) -> None:
    args = run_parser(__doc__, PRESETS).parse_args(argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.run import prepare_sweeps, run_sweep
    from launch.sweep import Sweep

    name = args.name or f"uiat-single-step-{args.preset}"
    names = [name, f"{name}-gradalign", f"{name}-uiat"]
    family = "uiat-single-step"
    sweeps = {
        names[0]: Sweep.of("single_step", family=family, param_space=single_step_space(args.preset, args.seeds),
                           name_keys=("variant", "eps", "seed")),
        names[1]: Sweep.of("gradalign", family=family, param_space=gradalign_space(args.preset, args.seeds),
                           name_keys=("eps", "seed")),
        names[2]: Sweep.of("uiat", family=family, param_space=uiat_space(args.preset, args.seeds),
                           name_keys=("training_attack", "eps", "seed")),
    }
    prepared = prepare_sweeps(sweeps, args)  # every sweep is checked before the first one starts
    if prepared is None:  # a dry run
        return
    sweeps, args = prepared
    run_sweep(sweeps[names[0]], args, names[0])
    run_sweep(sweeps[names[1]], args, names[1])
    table = f"analysis/uiat_tables.py table5 {' '.join(f'--sweep {n}' for n in names)}"

    def report() -> None:
        from analysis.render import emit
        from analysis.uiat.tables import table5
        from runstore.reader import load_sweep

        emit(table5([load_sweep(n, tracking_uri=args.tracking_uri) for n in names]))

    run_sweep(sweeps[names[2]], args, names[2], report=report,
              next_steps=[table])


if __name__ == "__main__":
    main()
