"""The BiaMAT recipes (Lee et al., WACV 2023, appendix E and its reference code), shared by every BiaMAT sweep and by
the baselines that BiaMAT's tables compare against, so that both sides of a comparison are trained one way.

Paper recipe, per variant (appendix E "Table 2"; CIFAR-10 primary, ImageNet32x32 auxiliary by default):

- AT+BiaMAT: WRN-28-10, 100 epochs, 128 primary + 128 auxiliary images per step, SGD momentum 0.9, LR 0.1 decayed
  x0.1 at 60% and 90% of the training steps (epochs 1-60 at 0.1, 61-90 at 0.01, 91-100 at 0.001), weight decay
  2e-4, PGD-10 with step 2/255 at 8/255 from a uniform start, crafted with BatchNorm on the mixed batch's statistics
  (the reference code), 5 warm-up epochs whose auxiliary loss is multiplied by 0.
- TRADES+BiaMAT: WRN-34-10, 110 epochs, decays "at the 100th and 105th epoch" (99 / 5 / 6 epochs at 0.1 / 0.01 /
  0.001, as the reference trains), weight decay 5e-4, beta 6, the TRADES attack (x + 0.001 N(0, 1), 10 steps of
  0.007, eps 0.031) in eval mode; PGD and CW of the final protocol with step 0.003 (the TRADES repository's
  evaluation) instead of eps / 4.
- Checkpoint selection (the reference, and the paper's "best checkpoint"): PGD-10 on the whole test set (10,000
  points) every 2 epochs from the first LR decay (AT: epochs 61, 63, ..., 99; TRADES: 100, 102, ..., 110) and at the
  last epoch; the best is kept. Final protocol on the best and the last checkpoint: clean, PGD-20, PGD-100, CW-100
  and AutoAttack on the 10,000 test images.
- alpha and pi: appendix Table 12 (:data:`TABLE12`); the three Table 2 settings it does not list take this project's
  choice (:data:`TABLE2_UNLISTED`). Table 1's runs (y~ or y^ER for every auxiliary sample) have no warm-up: the
  reference's y^ER switch sets it to 0.
- ImgNet100 (ImageNet64x64's 100 classes, ``imgnet100``): WRN-16-10 for both variants ("On ImgNet100, we used
  WRN16-10", appendix E), otherwise the variant's CIFAR recipe ("100 training epochs ... on CIFAR-10, CIFAR-100, and
  ImgNet100", likewise 110 for TRADES); its auxiliary sets are ImgNet900 and Places365 at 64x64 (``places365_64``:
  "auxiliary data that do not fit the input size of the classifier are resized to the primary data size").

A baseline (``trainables/methods/baseline.py``) compared with a BiaMAT row takes the same recipe minus the auxiliary data:
:func:`baseline_recipe`. ``analysis/biamat_tables.py table1`` refuses a baseline whose recipe differs.
"""

from __future__ import annotations

from typing import Any

PAPER_FINAL_ATTACKS = ["clean", "pgd20", "pgd100", "cw100", "autoattack"]

PAPER_SHARED: dict[str, Any] = {
    "dataset": "cifar10", "aux_datasets": ["imagenet32"], "batch_size": 128, "aux_batch_size": 128, "lr": 0.1,
    "momentum": 0.9, "warmup_epochs": 5,
    "select_on": "test", "eval_n": 10000, "eval_every": 2, "eval_from": "first_decay",
    "final_n": 10000, "autoattack_n": 10000, "final_attacks": PAPER_FINAL_ATTACKS,
}

# Both variants set the same keys, so a sweep can make them follow its variant axis (launcher.per_value).
PAPER_VARIANTS: dict[str, dict[str, Any]] = {
    "at": {"model": "wrn-28-10", "epochs": 100, "lr_milestones": [0.6, 0.9], "weight_decay": 2e-4, "eps": 8 / 255,
           "attack_step": 2 / 255, "attack_steps": 10, "attack_start": "uniform", "attack_bn": "batch",
           "final_attack_step": 0.0},
    # beta 6 is the configs' default.
    "trades": {"model": "wrn-34-10", "epochs": 110, "lr_milestones": [100, 105], "weight_decay": 5e-4,
               "eps": 0.031, "attack_step": 0.007, "attack_steps": 10, "attack_start": "normal", "attack_bn": "eval",
               "final_attack_step": 0.003},
}

# Appendix Table 12: (primary, variant, auxiliary) -> (alpha, pi).
TABLE12: dict[tuple[str, str, str], tuple[float, float]] = {
    **{("cifar10", "at", aux): (1.0, 0.55) for aux in ("svhn", "cifar100", "places365_32", "imagenet32")},
    **{("cifar10", "trades", aux): (0.5, 0.5) for aux in ("cifar100", "places365_32", "imagenet32")},
    **{("cifar100", "at", aux): (1.0, 0.5) for aux in ("places365_32", "imagenet32")},
    **{("cifar100", "trades", aux): (1.0, 0.3) for aux in ("places365_32", "imagenet32")},
    **{("imgnet100", "at", aux): (1.0, 0.5) for aux in ("places365_64", "imgnet900")},
}
# Table 2 rows that Table 12 does not list: alpha and pi are this project's choice, not the paper's.
TABLE2_UNLISTED: dict[tuple[str, str, str], tuple[float, float]] = {
    # The other CIFAR-10 TRADES+BiaMAT rows' values: Table 12 gives one pair for all of them.
    ("cifar10", "trades", "svhn"): (0.5, 0.5),
    # CIFAR-100 TRADES+BiaMAT's: appendix E puts ImageNet with CIFAR-100 among the "challenging datasets" on which
    # TRADES' natural predictions are poor targets, so it also takes trades_aux_high=adv_ce (:data:`ADV_CE_PRIMARIES`).
    **{("imgnet100", "trades", aux): (1.0, 0.3) for aux in ("places365_64", "imgnet900")},
}
# Table 2's auxiliary sets per primary set, in the paper's order; each variant trains with every one.
TABLE2_AUX: dict[str, list[str]] = {"cifar10": ["svhn", "cifar100", "places365_32", "imagenet32"],
                                    "cifar100": ["places365_32", "imagenet32"],
                                    "imgnet100": ["places365_64", "imgnet900"]}
# Appendix E: plain adversarial CE for TRADES' high-confidence auxiliary samples on these primary sets (above).
ADV_CE_PRIMARIES = ("cifar100", "imgnet100")
# What a primary set changes in a variant's recipe: ImgNet100's network (appendix E) and default auxiliary set (Table
# 2's "ImageNet" on ImgNet100 is ImgNet900: the primary's own classes are left out).
PRIMARY_MODELS = {"imgnet100": "wrn-16-10"}
PRIMARY_AUX = {"imgnet100": ["imgnet900"]}

# Keys only BiaMAT has: a baseline trained "the same way" takes every other key of the recipe.
BIAMAT_ONLY = ("variant", "aux_datasets", "aux_batch_size", "warmup_epochs", "alpha", "pi", "labels",
               "alpha_in_warmup", "warmup_aux_loss", "trades_aux_high", "aux_mix", "aux_n")
BASELINE_TRAINING = {"at": "pgd_at", "trades": "trades"}

# BiaMAT Table 1's recipe on the synthetic data, small enough for 2 CPU cores (biamat_labels.py's smoke preset and
# the baseline it is compared with). The gated run's one warm-up epoch must leave a confident model, or omega falls
# below every auxiliary confidence and the gate passes everything: 64 steps of 32 images at LR 0.1 before the decay
# lift the mean primary confidence to about 0.33. Half-size auxiliary batches keep the six trials within minutes.
TABLE1_SMOKE: dict[str, Any] = {
    "dataset": "synthetic", "aux_datasets": ["synthetic_aux"], "model": "tiny-cnn", "train_n": 2048, "epochs": 2,
    "batch_size": 32, "aux_batch_size": 16, "lr": 0.1, "lr_milestones": [0.6, 0.9], "attack_steps": 3,
    "attack_step": 4 / 255, "attack_bn": "batch", "eval_n": 64, "final_n": 128, "final_attacks": ["clean", "pgd20"],
}
# Each variant's attack on that smoke recipe, with the keys PAPER_VARIANTS' attacks set (Table 2's and Table 9's smoke
# presets and their baselines). TRADES crafts in eval mode from x + 0.001 N(0, 1), its 3 steps twice the paper's 0.007
# (biamat_search.py's smoke TRADES).
SMOKE_VARIANTS: dict[str, dict[str, Any]] = {
    "at": {"eps": 8 / 255, "attack_step": 4 / 255, "attack_start": "uniform", "attack_bn": "batch",
           "trades_aux_high": "kl"},
    "trades": {"eps": 0.031, "attack_step": 0.014, "attack_start": "normal", "attack_bn": "eval",
               "trades_aux_high": "kl"},
}


def variant_recipe(variant: str, dataset: str = "cifar10") -> dict[str, Any]:
    """What one variant's paper recipe sets on primary ``dataset``: the keys of :data:`PAPER_VARIANTS`, the model
    per primary set, and ``trades_aux_high`` (plain adversarial CE for TRADES' high-confidence auxiliary samples on
    CIFAR-100 and ImgNet100, appendix E). Both variants set the same keys, so a sweep over variants can make them
    follow its variant axis (launcher.per_value)."""
    adv_ce = variant == "trades" and dataset in ADV_CE_PRIMARIES
    return {**PAPER_VARIANTS[variant], "trades_aux_high": "adv_ce" if adv_ce else "kl",
            **({"model": PRIMARY_MODELS[dataset]} if dataset in PRIMARY_MODELS else {})}


def paper_recipe(variant: str, dataset: str = "cifar10") -> dict[str, Any]:
    """The paper preset of one variant on one primary set, without alpha and pi (a sweep sets or searches them)."""
    return {**PAPER_SHARED, **variant_recipe(variant, dataset), "dataset": dataset,
            "aux_datasets": PRIMARY_AUX.get(dataset, PAPER_SHARED["aux_datasets"])}


def table2_recipe(preset: str, dataset: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Table 2's recipe on primary ``dataset`` in two parts: what both variants share, and what each variant sets
    (keyed by variant): ``paper_recipe(v, dataset)`` without its auxiliary set, which a Table 2 sweep varies.
    ``smoke``: Table 1's smoke recipe on the synthetic data with :data:`SMOKE_VARIANTS`' attacks (``dataset`` does not
    apply)."""
    if preset == "smoke":
        return TABLE1_SMOKE, SMOKE_VARIANTS
    return {**PAPER_SHARED, "dataset": dataset}, {v: variant_recipe(v, dataset) for v in PAPER_VARIANTS}


def on_primary(presets: dict[str, dict[str, Any]], preset: str, primary: str) -> dict[str, Any]:
    """A script's preset on primary dataset ``primary`` (``--primary``); the smoke preset keeps its synthetic data."""
    return presets[preset] if preset == "smoke" else {**presets[preset], "dataset": primary}


def baseline_recipe(recipe: dict[str, Any], variant: str) -> dict[str, Any]:
    """The baseline of a BiaMAT recipe: the same data, model, schedule, attack and protocol, no auxiliary data."""
    return {k: v for k, v in recipe.items() if k not in BIAMAT_ONLY} | {"training": BASELINE_TRAINING[variant]}
