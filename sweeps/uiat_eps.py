"""UIAT Table 3: training at eps = 10, 12 and 16 /255; TRADES, HAT, UIAT and one-off UIAT, x seeds.

    python sweeps/uiat_eps.py                         # smoke: synthetic data, tiny CNN, eps 16/255 only: ~3 min
    python sweeps/uiat_eps.py --preset paper --seeds 3 --address auto      # 12 x 3 ResNet-18 runs (+3 helpers)
    python analysis/uiat_tables.py table3 --sweep uiat-eps-paper --baseline-sweep uiat-eps-paper-trades \\
        --hat-sweep uiat-eps-paper-hat

Four sweeps, one after the other: ``NAME`` (UIAT with all components and one-off UIAT, ``components=uag+fr``),
``NAME-trades`` (TRADES, beta 6, its x + 0.001 N(0, 1) start), ``NAME-helpers`` (standard training, one per seed:
HAT's helper models, in the MLflow experiment ``baselines`` where HAT looks for them) and ``NAME-hat`` (HAT with its
CIFAR-10 ResNet-18 constants, beta 2.5, gamma 0.5, h 2, as in UIAT Table 1: HAT's paper gives none for larger eps), on
the same data, model, schedule and attack budget (``sweeps/uiat_presets.py``); ``--resume`` continues all four.
Every trial is evaluated at its own training eps, as in Table 3. The PGD step follows eps with the preset's
step-to-eps ratio at 8/255 (2/255 in the paper preset, so 2.5, 3 and 4 /255), for TRADES and HAT too (TRADES's usual
0.007 at 0.031 is a similar ratio).

The table is printed at the end (rebuilt from MLflow, like ``python analysis/uiat_tables.py table3``).
"""

from __future__ import annotations

from launch.cli import run_parser
from launch.space import grid, per_value
from sweeps.uiat_presets import PRESETS, baseline_preset

# The smoke preset trains at the largest eps only, to stay within a few minutes on 2 CPU cores.
EPSILONS = {"paper": [10 / 255, 12 / 255, 16 / 255], "smoke": [16 / 255]}
# Full UIAT, and the one-off variant (which stores p once and so has no momentum).
VARIANTS = {False: {"components": "uag+fr+iam"}, True: {"components": "uag+fr"}}


def attack_steps(preset: str) -> dict:
    """``attack_step`` following the ``eps`` axis at the preset's step-to-eps ratio."""
    ratio = PRESETS[preset]["attack_step"] / (8 / 255)
    return per_value("eps", {eps: {"attack_step": ratio * eps} for eps in EPSILONS[preset]})


def uiat_space(preset: str, seeds: int) -> dict:
    return {
        **PRESETS[preset],
        "eps": grid(list(EPSILONS[preset])),
        "oneoff": grid([False, True]),
        "seed": grid(list(range(seeds))),
        **per_value("oneoff", VARIANTS),
        **attack_steps(preset),
    }


def trades_space(preset: str, seeds: int) -> dict:
    return {
        **baseline_preset(preset),
        "training": "trades",
        "beta": 6.0,
        "attack_start": "normal",
        "eps": grid(list(EPSILONS[preset])),
        "seed": grid(list(range(seeds))),
        **attack_steps(preset),
    }


def helper_space(preset: str, seeds: int) -> dict:
    """HAT's helpers: standard training on the same data, model and schedule, one per seed (eps plays no part)."""
    return {**baseline_preset(preset), "training": "standard", "seed": grid(list(range(seeds)))}


def hat_space(preset: str, seeds: int, helper_sweep: str) -> dict:
    return {
        **baseline_preset(preset),
        "helper_sweep": helper_sweep, "beta": 2.5, "gamma": 0.5, "h": 2.0, "attack_start": "normal",
        "eps": grid(list(EPSILONS[preset])),
        "seed": grid(list(range(seeds))),
        **attack_steps(preset),
    }


def main(argv: list[str] | None = None) -> None:
    args = run_parser(__doc__, PRESETS).parse_args(argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.hat_helpers import require_hat_helpers
    from launch.run import prepare_sweeps, run_sweep
    from launch.sweep import Sweep

    preset, seeds = args.preset, args.seeds
    name = args.name or f"uiat-eps-{preset}"
    names = [name, f"{name}-trades", f"{name}-helpers", f"{name}-hat"]
    sweeps = {
        names[0]: Sweep.of("uiat", family="uiat-eps", param_space=uiat_space(preset, seeds),
                           name_keys=("eps", "oneoff", "seed")),
        names[1]: Sweep.of("baseline", family="uiat-eps", param_space=trades_space(preset, seeds),
                           name_keys=("training", "eps", "seed")),
        names[2]: Sweep.of("baseline", family="baselines", param_space=helper_space(preset, seeds),
                           name_keys=("training", "seed")),
        names[3]: Sweep.of("hat", family="uiat-eps", param_space=hat_space(preset, seeds, names[2]),
                           name_keys=("eps", "seed")),
    }
    prepared = prepare_sweeps(sweeps, args)  # every sweep is checked before the first one starts
    if prepared is None:  # a dry run
        return
    sweeps, args = prepared

    def report() -> None:
        from analysis.render import emit
        from analysis.uiat.tables import table3
        from runstore.reader import load_sweep

        uri = args.tracking_uri
        emit(table3(*(load_sweep(n, tracking_uri=uri) for n in (names[0], names[1])),
                    hat=load_sweep(names[3], tracking_uri=uri)))

    for sweep_name in names[:3]:
        run_sweep(sweeps[sweep_name], args, sweep_name)
    require_hat_helpers(sweeps[names[3]], args, names[2])  # the standard-training trials just run
    run_sweep(sweeps[names[3]], args, names[3], report=report,
              next_steps=[f"analysis/uiat_tables.py table2 --sweep {name} --sweep {name}-trades --sweep {name}-hat"])


if __name__ == "__main__":
    main()
