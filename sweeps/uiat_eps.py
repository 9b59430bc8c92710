"""UIAT Table 3: training at eps = 10, 12 and 16 /255; UIAT and one-off UIAT against TRADES, x seeds.

    python sweeps/uiat_eps.py                         # smoke: synthetic data, tiny CNN, eps 16/255 only: ~2 min
    python sweeps/uiat_eps.py --preset paper --seeds 3 --address auto      # 9 x 3 ResNet-18 runs on a GPU cluster
    python analysis/uiat_tables.py table3 --sweep uiat-eps-paper --baseline-sweep uiat-eps-paper-trades

Two sweeps, one after the other: ``NAME`` (UIAT with all components and one-off UIAT, ``components=uag+fr``) and
``NAME-trades`` (TRADES, beta 6, its x + 0.001 N(0, 1) start), on the same data, model, schedule and attack budget
(``sweeps/uiat_presets.py``); ``--resume`` continues both. Every trial is evaluated at its own training eps, as in
Table 3. The PGD step follows eps with the preset's step-to-eps ratio at 8/255 (2/255 in the paper preset, so 2.5,
3 and 4 /255), for TRADES too (its usual 0.007 at 0.031 is a similar ratio). The paper's Table 3 also lists HAT
rows, which this sweep does not train yet; HAT itself is implemented (``trainables/methods/hat.py``) and trained by
UIAT Table 1's comparison (``sweeps/uiat_comparison.py``).

The table is printed at the end (rebuilt from MLflow, like ``python analysis/uiat_tables.py table3``).
"""

from __future__ import annotations

from launch.cli import run_parser
from sweeps.uiat_presets import PRESETS, baseline_preset

# The smoke preset trains at the largest eps only, to stay within a few minutes on 2 CPU cores.
EPSILONS = {"paper": [10 / 255, 12 / 255, 16 / 255], "smoke": [16 / 255]}
# Full UIAT, and the one-off variant (which stores p once and so has no momentum).
VARIANTS = {False: {"components": "uag+fr+iam"}, True: {"components": "uag+fr"}}


def attack_steps(preset: str) -> dict:
    """``attack_step`` following the ``eps`` axis at the preset's step-to-eps ratio."""
    from launch.space import per_value

    ratio = PRESETS[preset]["attack_step"] / (8 / 255)
    return per_value("eps", {eps: {"attack_step": ratio * eps} for eps in EPSILONS[preset]})


def uiat_space(preset: str, seeds: int) -> dict:
    from ray import tune

    from launch.space import per_value

    return {
        **PRESETS[preset],
        "eps": tune.grid_search(list(EPSILONS[preset])),
        "oneoff": tune.grid_search([False, True]),
        "seed": tune.grid_search(list(range(seeds))),
        **per_value("oneoff", VARIANTS),
        **attack_steps(preset),
    }


def trades_space(preset: str, seeds: int) -> dict:
    from ray import tune

    return {
        **baseline_preset(preset),
        "training": "trades",
        "beta": 6.0,
        "attack_start": "normal",
        "eps": tune.grid_search(list(EPSILONS[preset])),
        "seed": tune.grid_search(list(range(seeds))),
        **attack_steps(preset),
    }


def main(argv: list[str] | None = None) -> None:
    args = run_parser(__doc__, PRESETS).parse_args(argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from analysis.render import emit
    from analysis.uiat.tables import table3
    from launch.checks import check_sweeps
    from launch.overrides import with_overrides_each
    from launch.sweep import Sweep
    from launch.tuner import run_sweep
    from runstore.reader import load_sweep

    spaces = uiat_space(args.preset, args.seeds), trades_space(args.preset, args.seeds)
    name = args.name or f"uiat-eps-{args.preset}"
    sweeps = {
        name: Sweep.of("uiat", family="uiat-eps", param_space=spaces[0], name_keys=("eps", "oneoff", "seed")),
        f"{name}-trades": Sweep.of("baseline", family="uiat-eps", param_space=spaces[1],
                                   name_keys=("training", "eps", "seed")),
    }
    sweeps, args = with_overrides_each(sweeps, args)  # --set, checked for both sweeps before either starts
    if check_sweeps(sweeps, args):  # both sweeps are checked before the first one starts
        return

    def report() -> None:
        uri = args.tracking_uri
        emit(table3(load_sweep(name, tracking_uri=uri), load_sweep(f"{name}-trades", tracking_uri=uri)))

    run_sweep(sweeps[name], args, name)
    run_sweep(sweeps[f"{name}-trades"], args, f"{name}-trades", report=report,
              next_steps=[f"analysis/uiat_tables.py table2 --sweep {name} --sweep {name}-trades"])


if __name__ == "__main__":
    main()
