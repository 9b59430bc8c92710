"""UIAT Figs. 1, 2, 4 and 5: the five trainings the figures compare, then the evaluations they need, x seeds.

    python sweeps/uiat_figures.py                      # smoke: synthetic data, tiny CNN, 5 trials: 3 min on 2 CPUs
    python sweeps/uiat_figures.py --preset paper --seeds 3 --address auto     # 5 x 3 ResNet-18 runs on a GPU cluster

Two sweeps (four on the paper preset), one after the other (``--resume`` continues them), on UIAT's recipe (``sweeps/uiat_presets.py``):
``NAME`` trains UIAT (all components; Fig. 4) and one-off UIAT (``components=uag+fr``; Figs. 2 and 5), and
``NAME-baselines`` standard training (Fig. 1), PGD-AT (Figs. 1 and 2) and TRADES (beta 6, its x + 0.001 N(0, 1)
start; Figs. 4 and 5). Every trial also evaluates clean and PGD-10 accuracy on 1,000 random training images (64 in
smoke) whenever it evaluates its selection points, every epoch (``train_eval_n``): Fig. 2's training curves beside
the test ones; and PGD-20 on both (``curve_steps``), the attack Fig. 2 plots, while PGD-10 still selects the
checkpoint. The paper trains Fig. 2's two runs for 200 epochs "for better visualization" (Sec. 5.2) and the others
for 100: the paper preset adds two more sweeps, ``NAME-fig2`` (one-off UIAT, its T' = 100 keeping its share of
training as on SVHN) and ``NAME-fig2-baselines`` (PGD-AT), for 200 epochs; ``fig2`` reads those. The smoke preset
keeps its short schedule and draws Fig. 2 from the first two sweeps.

The figures need evaluations beyond the final protocol; they run on the trained models, into the same runs, with
``sweeps/reevaluate.py`` (the sweep prints these commands, with its names, when it ends; paper preset shown):

    # Figs. 1 and 4: PGD-20 at signed eps (negative: the inverse attack), per half of the points by clean CE
    python sweeps/reevaluate.py --sweep uiat-figures-paper-baselines --attacks clean,pgd20 --ce-halves \\
        --eps=-12/255,-10/255,-8/255,-6/255,-4/255,-2/255,2/255,4/255,6/255,8/255,10/255,12/255 --n 10000
    python sweeps/reevaluate.py --sweep uiat-figures-paper ...                     # the same flags
    # Fig. 5: AutoAttack at eps 2..16/255
    python sweeps/reevaluate.py --sweep uiat-figures-paper-baselines --attacks autoattack \\
        --eps 2/255,4/255,6/255,8/255,10/255,12/255,14/255,16/255 --n 10000
    python sweeps/reevaluate.py --sweep uiat-figures-paper ...                     # the same flags
    python analysis/uiat_tables.py fig1 --sweep uiat-figures-paper-baselines --out fig1.png
    python analysis/uiat_tables.py fig2 --sweep uiat-figures-paper --sweep uiat-figures-paper-baselines --out fig2.png

(``fig4`` and ``fig5`` as ``fig2``.) The paper prints neither Fig. 1's eps grid nor Fig. 5's: 2/255 steps to
12/255 and to 16/255 here. Cost: one-off UIAT takes about 2.0 A100-minutes per ResNet-18 epoch (paper Table 2), so
one seed of the five trainings is about 1,000 A100-minutes (not measured here); AutoAttack on 10,000 points at eight
budgets adds a few A100-hours per model.
"""

from __future__ import annotations

from launch.cli import run_parser
from launch.space import grid, per_value
from sweeps.uiat_presets import PRESETS, baseline_preset

# Full UIAT (Fig. 4) and the one-off variant (Figs. 2 and 5), which stores p once and so has no momentum.
VARIANTS = {False: {"components": "uag+fr+iam"}, True: {"components": "uag+fr"}}
BASELINES = ["standard", "pgd_at", "trades"]
ATTACK_START = {"standard": "uniform", "pgd_at": "uniform", "trades": "normal"}  # TRADES: x + 0.001 N(0, 1)
TRAIN_EVAL_N = {"paper": 1000, "smoke": 64}
CURVE_STEPS = 20  # UIAT Fig. 2's curves are PGD-20 accuracy
# The re-evaluations the figures read: signed eps (1/255) and test points for Figs. 1 and 4, AutoAttack budgets
# (1/255) and test points for Fig. 5. AutoAttack on a CPU takes minutes for a few dozen points of the tiny CNN.
SIGNED_EPS = {"paper": [-12, -10, -8, -6, -4, -2, 2, 4, 6, 8, 10, 12], "smoke": [-8, -4, 4, 8]}
SIGNED_N = {"paper": 10000, "smoke": 128}
BUDGETS = {"paper": [2, 4, 6, 8, 10, 12, 14, 16], "smoke": [4, 8, 12]}
AUTOATTACK_N = {"paper": 10000, "smoke": 32}


def uiat_space(preset: str, seeds: int) -> dict:
    return {
        **PRESETS[preset],
        "train_eval_n": TRAIN_EVAL_N[preset],
        "curve_steps": CURVE_STEPS,
        "oneoff": grid([False, True]),
        "seed": grid(list(range(seeds))),
        **per_value("oneoff", VARIANTS),
    }


def baseline_space(preset: str, seeds: int) -> dict:
    return {
        **baseline_preset(preset),
        "train_eval_n": TRAIN_EVAL_N[preset],
        "curve_steps": CURVE_STEPS,
        "beta": 6.0,
        "training": grid(BASELINES),
        "seed": grid(list(range(seeds))),
        **per_value("training", {t: {"attack_start": ATTACK_START[t]} for t in BASELINES}),
    }


# Fig. 2's runs train longer than the others in the paper (Sec. 5.2: 200 epochs "for better visualization").
FIG2_EPOCHS = {"paper": 200}


def fig2_uiat_space(preset: str, seeds: int) -> dict:
    """One-off UIAT for Fig. 2: the figures' UIAT space at Fig. 2's epochs, T and T' keeping their share of training."""
    from trainables.methods.configs import UIATConfig

    space = uiat_space(preset, seeds)
    scale = FIG2_EPOCHS[preset] / space["epochs"]
    shares = {key: round(space.get(key, getattr(UIATConfig, key)) * scale) for key in ("momentum_start", "oneoff_epoch")}
    return {**space, **VARIANTS[True], "oneoff": True, "epochs": FIG2_EPOCHS[preset], **shares}


def fig2_baseline_space(preset: str, seeds: int) -> dict:
    """PGD-AT for Fig. 2: the figures' baseline space at Fig. 2's epochs."""
    return {**baseline_space(preset, seeds), "training": "pgd_at", "attack_start": ATTACK_START["pgd_at"],
            "epochs": FIG2_EPOCHS[preset]}


def evaluations(preset: str, name: str) -> list[str]:
    """The re-evaluation commands of both sweeps, then the figure commands (repository-relative)."""
    signed = ",".join(f"{k}/255" for k in SIGNED_EPS[preset])
    budgets = ",".join(f"{k}/255" for k in BUDGETS[preset])
    both = (name, f"{name}-baselines")
    reeval = [f"sweeps/reevaluate.py --sweep {sweep} --attacks clean,pgd20 --ce-halves --eps={signed} "
              f"--n {SIGNED_N[preset]}" for sweep in both]
    reeval += [f"sweeps/reevaluate.py --sweep {sweep} --attacks autoattack --eps {budgets} --n {AUTOATTACK_N[preset]}"
               for sweep in both]
    fig2 = f"{name}-fig2" if preset in FIG2_EPOCHS else name
    figures = [f"analysis/uiat_tables.py fig1 --sweep {name}-baselines --out fig1.png",
               f"analysis/uiat_tables.py fig2 --sweep {fig2} --sweep {fig2}-baselines --out fig2.png"]
    figures += [f"analysis/uiat_tables.py {fig} --sweep {name} --sweep {name}-baselines --out {fig}.png"
                for fig in ("fig4", "fig5")]
    return reeval + figures


def main(argv: list[str] | None = None) -> None:
    args = run_parser(__doc__, PRESETS).parse_args(argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.run import prepare_sweeps, run_sweep
    from launch.sweep import Sweep

    name = args.name or f"uiat-figures-{args.preset}"
    sweeps = {
        name: Sweep.of("uiat", family="uiat-figures", param_space=uiat_space(args.preset, args.seeds),
                       name_keys=("oneoff", "seed")),
        f"{name}-baselines": Sweep.of("baseline", family="uiat-figures",
                                      param_space=baseline_space(args.preset, args.seeds),
                                      name_keys=("training", "seed")),
    }
    if args.preset in FIG2_EPOCHS:
        sweeps |= {
            f"{name}-fig2": Sweep.of("uiat", family="uiat-figures", param_space=fig2_uiat_space(args.preset, args.seeds),
                                     name_keys=("oneoff", "seed")),
            f"{name}-fig2-baselines": Sweep.of("baseline", family="uiat-figures",
                                               param_space=fig2_baseline_space(args.preset, args.seeds),
                                               name_keys=("training", "seed")),
        }
    prepared = prepare_sweeps(sweeps, args)  # every sweep is checked before the first one starts
    if prepared is None:  # a dry run
        return
    sweeps, args = prepared
    *first, last = sweeps
    for sweep_name in first:
        run_sweep(sweeps[sweep_name], args, sweep_name)
    run_sweep(sweeps[last], args, last, next_steps=evaluations(args.preset, name))


if __name__ == "__main__":
    main()
