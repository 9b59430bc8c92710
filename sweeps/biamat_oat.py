"""BiaMAT appendix Table 9: OAT against BiaMAT on CIFAR-10 when ImageNet-100k is the auxiliary data.

    python sweeps/biamat_oat.py                                 # smoke: synthetic data, 1,000 auxiliary images, 2 min
    python sweeps/biamat_oat.py --preset paper --seeds 3        # CIFAR-10 + 100,000 ImageNet32 images
    python sweeps/biamat_confident_subset.py --run RUN_ID --per-class 10000 --out imagenet-100k.npz
    python sweeps/biamat_oat.py --preset paper --set aux_datasets='["npz:imagenet-100k.npz"]' --set aux_n=0 \\
        --name biamat-oat-paper-selected                        # an ImageNet-100k selected by confidence
    python analysis/biamat_tables.py table9 --sweep biamat-oat-paper

Two rows, one run each per seed, on the same auxiliary images: OAT (Lee et al., ICLR 2021), where every auxiliary
sample gets the uniform label y^ER (``labels=uniform``, no warm-up, as the reference's y^ER switch sets it), and
BiaMAT with its confidence-based selection (``labels=gated``, 5 warm-up epochs) at Table 12's CIFAR-10 TRADES+BiaMAT
alpha 0.5 and pi 0.5. The paper does not say which variant Table 9 trains. Its numbers say TRADES: the BiaMAT row
(88.23 clean, 57.01 AA) sits with TRADES+BiaMAT on all of ImageNet (Table 2: 88.03, 56.64) and 6 points of AA above
every AT+BiaMAT result in the paper (at most 50.78, also on all of ImageNet), which a 100k subset would not explain.
So both rows train on the TRADES+BiaMAT paper recipe of ``sweeps/biamat_presets.py`` (WRN-28-10, 110 epochs), alpha
0.5 weighting OAT's auxiliary loss too.

The paper's ImageNet-100k is "100k ImageNet samples closest to CIFAR-10", OAT's own selection, which is not specified
here (neither the distance nor the features it is measured on; appendix D's ImageNet-(N x 100)k of Table 7 are the
ImageNet images a CIFAR-10 classifier is most confident on, the top N x 10k per class, but Table 9 does not say it
uses them). The paper preset therefore draws a seeded random subset of 100,000 ImageNet32 training images
(``aux_n=100000``: the same images for every trial and seed), a weaker stand-in whose numbers need not match the
paper's. ``sweeps/biamat_confident_subset.py`` builds appendix D's ImageNet-100k instead (the top 10k ImageNet images
per CIFAR-10 class under a classifier trained on CIFAR-10, RUN_ID: a finished run's id); that file, or any selection
of your own written as an ``npz:`` file (arrays ``image`` uint8 (N, 32, 32, 3) and ``label``; README "Your own
data"), replaces the random subset with the commands above: ``aux_n=0`` takes all of its images. Cost: 2 runs
of about 103 V100-hours each per seed (appendix Table 11's TRADES+BiaMAT).
"""

from __future__ import annotations

from launch.cli import run_parser
from launch.space import grid, per_value
from sweeps.biamat_presets import PAPER_SHARED, SMOKE_VARIANTS, TABLE1_SMOKE, TABLE12, paper_recipe

VARIANT = "trades"  # not stated by the paper; its numbers point to TRADES+BiaMAT (module docstring)
PRESETS = {"smoke": {**TABLE1_SMOKE, **SMOKE_VARIANTS[VARIANT]}, "paper": paper_recipe(VARIANT)}
AUX_N = {"smoke": 1000, "paper": 100_000}  # a fixed subset of the auxiliary set (smoke: of synthetic_aux's 10,000)
WARMUP = {"smoke": 1, "paper": PAPER_SHARED["warmup_epochs"]}  # the gated row's; OAT has none
ALPHA, PI = TABLE12[("cifar10", VARIANT, "imagenet32")]  # 0.5 and 0.5


def search_space(preset: str, seeds: int) -> dict:
    return {
        **PRESETS[preset],
        "variant": VARIANT,
        "alpha": ALPHA,
        "pi": PI,
        "aux_n": AUX_N[preset],
        "labels": grid(["uniform", "gated"]),
        "seed": grid(list(range(seeds))),
        **per_value("labels", {"uniform": {"warmup_epochs": 0}, "gated": {"warmup_epochs": WARMUP[preset]}}),
    }


def main(argv: list[str] | None = None) -> None:
    args = run_parser(__doc__, PRESETS).parse_args(argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.run import run_sweep
    from launch.sweep import Sweep

    sweep = Sweep.of("biamat", family="biamat-oat", param_space=search_space(args.preset, args.seeds),
                     name_keys=("labels", "seed"), extra_datasets=lambda cfg: cfg.aux_datasets)
    name = args.name or f"biamat-oat-{args.preset}"

    def report() -> None:
        from analysis.biamat.tables import table9
        from analysis.render import emit
        from runstore.reader import load_sweep

        emit(table9(load_sweep(name, tracking_uri=args.tracking_uri)))

    run_sweep(sweep, args, name, report=report,
              next_steps=[f"analysis/biamat_tables.py table9 --sweep {name} --format latex --out table9.tex",
                          f"analysis/biamat_tables.py fig3 --sweep {name} --out fig3.png"])


if __name__ == "__main__":
    main()
