"""UIAT Fig. 3: sensitivity of one-off UIAT to lambda (natural and AutoAttack accuracy), x seeds.

    python sweeps/uiat_lambda.py                       # smoke: synthetic data, tiny CNN, 3 trials: ~2 min
    python sweeps/uiat_lambda.py --preset paper --seeds 3 --address auto      # 7 x 3 ResNet-18 runs on a GPU cluster
    python analysis/uiat_tables.py fig3 --sweep uiat-lambda-paper --out fig3.png

Fig. 3 trains the one-off variant (inverse examples generated in epoch T' only, components ``uag+fr``) and varies
lambda of Eq. 7 around the paper's 3.5; the paper reads robust accuracy rising and natural accuracy falling with
lambda. The figure's exact lambda values are not printed in the paper: this grid spans 1 to 6. Schedule in
``sweeps/uiat_presets.py``; one-off UIAT takes about 2.0 A100-minutes per ResNet-18 epoch (paper Table 2), so one
seed of the grid is about 1,400 A100-minutes (not measured here).

The lambda table is printed at the end (rebuilt from MLflow, like ``python analysis/uiat_tables.py lambda``).
"""

from __future__ import annotations

from launch.cli import run_parser
from launch.space import grid
from sweeps.uiat_presets import PRESETS

LAMBDAS = {"paper": [1.0, 2.0, 3.0, 3.5, 4.0, 5.0, 6.0], "smoke": [1.0, 3.5, 6.0]}


def search_space(preset: str, seeds: int) -> dict:
    return {
        **PRESETS[preset],
        "oneoff": True,
        "components": "uag+fr",
        "lam": grid(list(LAMBDAS[preset])),
        "seed": grid(list(range(seeds))),
    }


def main(argv: list[str] | None = None) -> None:
    args = run_parser(__doc__, PRESETS).parse_args(argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.run import run_sweep
    from launch.sweep import Sweep

    space = search_space(args.preset, args.seeds)
    sweep = Sweep.of("uiat", family="uiat-lambda", param_space=space, name_keys=("lam", "seed"))
    name = args.name or f"uiat-lambda-{args.preset}"

    def report() -> None:
        from analysis.render import emit
        from analysis.uiat.tables import lambda_table
        from runstore.reader import load_sweep

        emit(lambda_table(load_sweep(name, tracking_uri=args.tracking_uri)))

    run_sweep(sweep, args, name, report=report,
              next_steps=[f"analysis/uiat_tables.py fig3 --sweep {name} --out lambda.png"])


if __name__ == "__main__":
    main()
