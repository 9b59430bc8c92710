"""UIAT Table 6: the five rows of UAG / FR / IAM on CIFAR-10 with ResNet-18, x seeds.

    python sweeps/uiat_ablation.py                     # smoke: synthetic data, tiny CNN: 3 min on 2 busy CPUs
    python sweeps/uiat_ablation.py --preset paper --seeds 3 --address auto    # 5 x 3 ResNet-18 runs on a GPU cluster
    python analysis/uiat_tables.py table6 --sweep uiat-ablation-paper

Rows (``components``): ``none`` is instance-wise IAT (Table 6 row 1, inverse PGD on Eq. 4's CE term), ``uag`` the
class-wise universal inverse perturbations, ``+fr`` the feature term of Eq. 4 (beta 1.0), ``+iam`` the momentum of
Eq. 8 from epoch T. Schedule in ``sweeps/uiat_presets.py``. Table 2 of the paper puts one UIAT epoch of ResNet-18 at
2.2 min on an A100 (IAT 2.8 min), so one seed of the grid is about 1,200 A100-minutes (not measured here).

The table is printed at the end (rebuilt from MLflow, like ``python analysis/uiat_tables.py table6 --sweep NAME``).
"""

from __future__ import annotations

from launch.cli import run_parser
from launch.space import grid
from sweeps.uiat_presets import PRESETS, TABLE6_COMPONENTS


def search_space(preset: str, seeds: int) -> dict:
    return {
        **PRESETS[preset],
        "components": grid(TABLE6_COMPONENTS),
        "seed": grid(list(range(seeds))),
    }


def main(argv: list[str] | None = None) -> None:
    args = run_parser(__doc__, PRESETS).parse_args(argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.run import run_sweep
    from launch.sweep import Sweep

    space = search_space(args.preset, args.seeds)
    sweep = Sweep.of("uiat", family="uiat-ablation", param_space=space, name_keys=("components", "seed"))
    name = args.name or f"uiat-ablation-{args.preset}"

    def report() -> None:
        from analysis.render import emit
        from analysis.uiat.tables import table6
        from runstore.reader import load_sweep

        emit(table6(load_sweep(name, tracking_uri=args.tracking_uri)))

    run_sweep(sweep, args, name, report=report,
              next_steps=[f"analysis/uiat_tables.py table2 --sweep {name}"])


if __name__ == "__main__":
    main()
