"""Recipe cards: every field of every paper-preset trial config, transcribed from the papers and their reference code,
each expected value with its source. ``tests/test_recipes.py`` holds the sweeps' ``paper`` presets to them.

A card maps each config field to ``(expected, source)``. ``expected`` is a value (floats compared to 1e-9, lists as
tuples), an :class:`Axis` (the values a sweep varies: each trial takes one, and every one is taken), or a
:class:`Rule` (a value that follows another field, e.g. BiaMAT's warm-up per label mode). A card names every field
of its config class: a new field must be added here with its source before any paper preset may use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Axis:
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Rule:
    expected: Callable[[Any], Any]  # the config -> the value its field must have
    text: str


Card = dict[str, tuple[Any, str]]

BIAMAT = "BiaMAT (Lee et al., WACV 2023)"
BIAMAT_REF = "BiaMAT reference code"
UIAT = "UIAT (Dong et al., CVPR 2023)"
AFS = "AFS (Liu & Zhao)"
AFS_REF = "AFS reference code"
NOT_SET = "not a recipe value: the papers train in fp32 without these fast paths, off until a GPU measurement says"

PGD_FINAL = ("clean", "pgd20", "pgd100", "cw100", "autoattack")

# Fields every paper preset shares.
RUNTIME: Card = {
    "seed": (0, "one seed: --seeds N gives 0..N-1"),
    "train_n": (0, "papers: the whole training set"),
    "test_data": ("", "papers: the dataset's own test split"),
    "subset_seed": (0, "not a recipe value: which test points a subset draws (the papers evaluate on all of them)"),
    "extra_data": ("", "papers: no extra data (UIAT Table 4 alone adds generated images)"),
    "original_fraction": (1.0, "every image from the training set when there is no extra data"),
    "init_from": ("", "papers: a random initialisation (only Hendrycks et al.'s fine-tuning starts pre-trained)"),
    "mixed_epoch": ("images", ("an epoch of as many images as the training set when extra data fills part of a "
                               "batch (HAT's count; only the robust self-training rows count passes over it)")),
    "momentum": (0.9, "papers: SGD with momentum 0.9"),
    "lr_gamma": (0.1, "papers: decay factor 0.1"),
    "precision": ("fp32", NOT_SET),
    "channels_last": (False, NOT_SET),
    "compile": (False, NOT_SET),
    "lr_base_batch": (0, "batch 128 as in the papers: no LR scaling"),
    "augment": ("auto", ("papers: random crop and flip on CIFAR and ImageNet; SVHN's is not stated: the crop alone "
                        "(trainables/dataset_names.default_augmentation: no flipped digits)")),
    "holdout_n": (1000, "unused when selecting on the test set"),
    "rung_epochs": ((), "not a recipe value: a budgeted sweep's rungs (--budget, launch/budget.py)"),
    "train_eval_n": (0, "not a recipe value: UIAT Fig. 2's training curves (sweeps/uiat_figures.py)"),
    "curve_steps": (0, "not a recipe value: UIAT Fig. 2's PGD-20 curves (sweeps/uiat_figures.py)"),
    "final_n": (10000, "papers: the whole CIFAR-10 test set"),
    "autoattack_n": (10000, "papers: AutoAttack on the whole test set"),
}

# --- BiaMAT ----------------------------------------------------------------------------------------------------------

BIAMAT_TRAINING: Card = {
    **RUNTIME,
    "dataset": ("cifar10", f"{BIAMAT} Table 13: primary CIFAR-10"),
    "batch_size": (128, f"{BIAMAT} Sec. 3.1: 128 primary + 128 auxiliary images per batch"),
    "lr": (0.1, f"{BIAMAT} App. E: initial learning rate 0.1"),
    "nesterov": (False, f"{BIAMAT_REF}: plain momentum SGD"),
    "schedule": ("piecewise", f"{BIAMAT} App. E: step decay"),
    "select_on": ("test", f"{BIAMAT} Sec. 3.1: the best checkpoint on the test set (the paper's protocol)"),
    "eval_n": (10000, f"{BIAMAT_REF}: PGD-10 on the whole test set"),
    "eval_every": (2, f"{BIAMAT_REF}: every 2 epochs"),
    "eval_from": ("first_decay", f"{BIAMAT_REF}: only after the first LR decay"),
    "keep_epoch": (0, f"{BIAMAT} Sec. 3.1: the best checkpoint"),
    "final_attacks": (PGD_FINAL, (f"{BIAMAT} Table 2: Clean, PGD-100, CW-100 (kappa not stated: 50, "
                                 "trainables/evaluation.CW_KAPPA), AA (and PGD-20)")),
}
BIAMAT_AT_TRAINING: Card = {
    **BIAMAT_TRAINING,
    "model": ("wrn-28-10", f"{BIAMAT} App. E: WRN28-10 for AT"),
    "epochs": (100, f"{BIAMAT} App. E 'Table 2': 100 training epochs for AT"),
    "weight_decay": (2e-4, f"{BIAMAT} App. E: weight decay 2e-4"),
    "lr_milestones": ((0.6, 0.9), f"{BIAMAT} App. E: decay at 60% and 90% (of the steps, as the TF1 reference counts)"),
    "eps": (8 / 255, f"{BIAMAT} App. E: l_inf bound 8/255"),
    "attack_step": (2 / 255, f"{BIAMAT_REF}: PGD-10, step 2/255"),
    "attack_steps": (10, f"{BIAMAT_REF}: PGD-10"),
    "attack_start": ("uniform", f"{BIAMAT_REF}: Madry's uniform random start"),
    "attack_bn": ("batch", f"{BIAMAT_REF}: crafted on the mixed batch's statistics, running ones untouched"),
    "final_attack_step": (0.0, "eps / 4 = 2/255, the PGD-20 step of the papers"),
}
BIAMAT_TRADES_TRAINING: Card = {
    **BIAMAT_TRAINING,
    "model": ("wrn-34-10", f"{BIAMAT} App. E: WRN34-10 for TRADES"),
    "epochs": (110, f"{BIAMAT} App. E: 110 training epochs for TRADES"),
    "weight_decay": (5e-4, f"{BIAMAT} App. E: weight decay 5e-4 for TRADES"),
    "lr_milestones": ((100, 105), f"{BIAMAT} App. E: decay at the 100th and 105th epoch (reference: 99 / 5 / 6)"),
    "eps": (0.031, f"{BIAMAT} App. E: l_inf bound 0.031 for TRADES"),
    "attack_step": (0.007, "TRADES convention: 10 steps of 0.007"),
    "attack_steps": (10, "TRADES convention: 10 steps"),
    "attack_start": ("normal", "TRADES reference: x + 0.001 N(0, 1), the first gradient taken there unprojected"),
    "attack_bn": ("eval", "TRADES: the attack runs in eval mode"),
    "final_attack_step": (0.003, "the TRADES repository's evaluation: PGD and CW with step 0.003"),
}
BIAMAT_ONLY: Card = {
    "aux_datasets": (("imagenet32",), f"{BIAMAT} Table 13: auxiliary ImageNet (32x32)"),
    "aux_batch_size": (128, f"{BIAMAT} Sec. 3.1: 128 auxiliary images per batch"),
    "labels": ("gated", f"{BIAMAT} Algorithm 1: the confidence-based selection"),
    "warmup_epochs": (5, f"{BIAMAT} App. E: 5 warm-up epochs"),
    "alpha_in_warmup": (False, f"{BIAMAT_REF}: auxiliary loss weight 0 during warm-up"),
    "warmup_aux_loss": ("times_zero", f"{BIAMAT_REF}: the auxiliary loss multiplied by 0 (weight decay still applies)"),
    "beta": (6.0, "TRADES beta = 6 (unused by AT)"),
    "trades_aux_high": ("kl", f"{BIAMAT} App. E: CIFAR-10 uses the same adversarial loss for both tasks"),
    "aux_mix": ("concatenated", f"{BIAMAT} App. Table 4: how two sets are drawn is not stated; the concatenation"),
    "aux_n": (0, f"{BIAMAT}: every auxiliary image (App. Table 9 alone takes ImageNet-100k)"),
}
PIS = Axis((0.45, 0.50, 0.55, 0.60, 0.65, 0.70))
BIAMAT_AT: Card = {
    **BIAMAT_AT_TRAINING, **BIAMAT_ONLY,
    "variant": ("at", f"{BIAMAT}: AT+BiaMAT"),
    "alpha": (1.0, f"{BIAMAT} Table 12: alpha 1.0 for CIFAR-10 AT+BiaMAT"),
    "pi": (0.55, f"{BIAMAT} Table 12: pi 0.55 for CIFAR-10 AT+BiaMAT"),
}
BIAMAT_TRADES: Card = {
    **BIAMAT_TRADES_TRAINING, **BIAMAT_ONLY,
    "variant": ("trades", f"{BIAMAT}: TRADES+BiaMAT"),
    "alpha": (0.5, f"{BIAMAT} Table 12: alpha 0.5 for CIFAR-10 TRADES+BiaMAT"),
    "pi": (0.5, f"{BIAMAT} Table 12: pi 0.5 for CIFAR-10 TRADES+BiaMAT"),
}
TABLE13_AXIS = (PIS, f"{BIAMAT} Table 13: pi from 0.45 to 0.70")
TABLE1: Card = {
    **BIAMAT_AT,
    "aux_datasets": (Axis((("svhn",), ("cifar100",), ("places365_32",), ("imagenet32",))),
                     f"{BIAMAT} Table 1: SVHN, CIFAR-100, Places365, ImageNet"),
    "labels": (Axis(("aux", "uniform", "gated")), f"{BIAMAT} Table 1 rows y~ and y^ER; gated at pi 0.55 for Fig. 3"),
    "warmup_epochs": (Rule(lambda c: 5 if c.labels == "gated" else 0, "0 for y~ / y^ER, 5 for gated"),
                      f"{BIAMAT_REF}: the y^ER switch sets the warm-up to 0; App. E: 5 for BiaMAT"),
}
TABLE4: Card = {
    **BIAMAT_AT,
    "aux_datasets": (Axis((("svhn",), ("cifar100",), ("svhn", "cifar100"), ("places365_32",), ("imagenet32",),
                           ("places365_32", "imagenet32"))),
                     f"{BIAMAT} App. Table 4: SVHN, CIFAR-100, both; Places365, ImageNet, both"),
}
# Table 2 (sweeps/biamat_main_results.py --primary P), one card per variant and primary set: its auxiliary sets and
# the alpha / pi of appendix Table 12 (the rows Table 12 does not list: this project's choice, said so).
TABLE2_PRIMARY: dict[str, Card] = {
    "cifar10": {},
    "cifar100": {"dataset": ("cifar100", f"{BIAMAT} Table 2: primary CIFAR-100")},
    "imgnet100": {"dataset": ("imgnet100", f"{BIAMAT} Table 2: primary ImgNet100 (ImageNet64x64, 100 classes)"),
                  "model": ("wrn-16-10", f"{BIAMAT} App. E: 'On ImgNet100, we used WRN16-10' (AT and TRADES)")},
}
TABLE2_AUX: dict[str, tuple[Any, str]] = {
    "cifar10": (Axis((("svhn",), ("cifar100",), ("places365_32",), ("imagenet32",))),
                f"{BIAMAT} Table 2: SVHN, CIFAR-100, Places365, ImageNet on CIFAR-10"),
    "cifar100": (Axis((("places365_32",), ("imagenet32",))), f"{BIAMAT} Table 2: Places365, ImageNet on CIFAR-100"),
    "imgnet100": (Axis((("places365_64",), ("imgnet900",))),
                  f"{BIAMAT} Table 2: Places365 (resized to the primary's 64x64, Sec. 3.1) and ImgNet900 on ImgNet100"),
}
TABLE12_ROW = f"{BIAMAT} App. Table 12"
UNLISTED = "not in App. Table 12 (this project's choice)"
TABLE2_AT: dict[str, Card] = {primary: {**BIAMAT_AT, **TABLE2_PRIMARY[primary], "aux_datasets": TABLE2_AUX[primary],
                                        "alpha": (1.0, f"{TABLE12_ROW}: alpha 1.0 for {primary} AT+BiaMAT"),
                                        "pi": (pi, f"{TABLE12_ROW}: pi {pi} for {primary} AT+BiaMAT")}
                              for primary, pi in (("cifar10", 0.55), ("cifar100", 0.5), ("imgnet100", 0.5))}
ADV_CE = ("adv_ce", (f"{BIAMAT} App. E: cross-entropy with labels for the auxiliary task on CIFAR-100; TRADES' "
                    "natural predictions are poor on 'challenging datasets such as CIFAR-100 and ImageNet'"))
TABLE2_TRADES: dict[str, Card] = {
    "cifar10": {**BIAMAT_TRADES, "aux_datasets": TABLE2_AUX["cifar10"],
                "alpha": (0.5, f"{TABLE12_ROW}: 0.5 for CIFAR-10 TRADES+BiaMAT; SVHN: {UNLISTED}, the same"),
                "pi": (0.5, f"{TABLE12_ROW}: 0.5 for CIFAR-10 TRADES+BiaMAT; SVHN: {UNLISTED}, the same")},
    "cifar100": {**BIAMAT_TRADES, **TABLE2_PRIMARY["cifar100"], "aux_datasets": TABLE2_AUX["cifar100"],
                 "alpha": (1.0, f"{TABLE12_ROW}: alpha 1.0 for CIFAR-100 TRADES+BiaMAT"),
                 "pi": (0.3, f"{TABLE12_ROW}: pi 0.3 for CIFAR-100 TRADES+BiaMAT"), "trades_aux_high": ADV_CE},
    "imgnet100": {**BIAMAT_TRADES, **TABLE2_PRIMARY["imgnet100"], "aux_datasets": TABLE2_AUX["imgnet100"],
                  "alpha": (1.0, f"{UNLISTED}: CIFAR-100 TRADES+BiaMAT's alpha 1.0"),
                  "pi": (0.3, f"{UNLISTED}: CIFAR-100 TRADES+BiaMAT's pi 0.3"), "trades_aux_high": ADV_CE},
}
# Table 2's baseline rows ("AT", "TRADES"; sweeps/baselines.py --preset biamat-main-P-paper): each variant's recipe.
TABLE2_BASELINE_AT: dict[str, Card] = {
    primary: {**BIAMAT_AT_TRAINING, **TABLE2_PRIMARY[primary], "beta": (6.0, "TRADES beta = 6 (unused by PGD-AT)"),
              "train_eps_range": ((), "one training eps"),
              "training": ("pgd_at", f"{BIAMAT} Table 2: the AT row, with the AT+BiaMAT rows' recipe")}
    for primary in TABLE2_PRIMARY}
TABLE2_BASELINE_TRADES: dict[str, Card] = {
    primary: {**BIAMAT_TRADES_TRAINING, **TABLE2_PRIMARY[primary], "beta": (6.0, "TRADES beta = 6"),
              "train_eps_range": ((), "one training eps"),
              "training": ("trades", f"{BIAMAT} Table 2: the TRADES row, with the TRADES+BiaMAT rows' recipe")}
    for primary in TABLE2_PRIMARY}
# App. Table 9 (sweeps/biamat_oat.py): OAT and BiaMAT on the same ImageNet-100k, on the TRADES+BiaMAT recipe.
TABLE9: Card = {
    **BIAMAT_TRADES,
    "variant": ("trades", (f"{BIAMAT} App. Table 9: the variant is not stated; its BiaMAT row (88.23 clean, 57.01 AA) "
                           "sits with TRADES+BiaMAT on all of ImageNet (Table 2: 88.03, 56.64), 6 points of AA above "
                           "every AT+BiaMAT result (at most 50.78): TRADES")),
    "labels": (Axis(("uniform", "gated")), f"{BIAMAT} App. Table 9: OAT (y^ER for every auxiliary sample), BiaMAT"),
    "warmup_epochs": (Rule(lambda c: 5 if c.labels == "gated" else 0, "0 for OAT, 5 for BiaMAT"),
                      f"{BIAMAT_REF}: the y^ER switch sets the warm-up to 0; App. E: 5 for BiaMAT"),
    "aux_n": (100_000, (f"{BIAMAT} App. Table 9: ImageNet-100k (its selection, the images closest to CIFAR-10, is "
                       "not specified: a seeded random subset)")),
}
# App. Table 10 (sweeps/biamat_generated_data.py): BiaMAT, generated data ([16], Gowal et al. 2021) and both; the table
# gives the network and the data, nothing else: the TRADES+BiaMAT recipe otherwise.
GOWAL = "Gowal et al. 2021 (BiaMAT's [16]), 'Improving Robustness using Generated Data'"
TABLE10_SHARED: Card = {
    "model": ("wrn-16-8", f"{BIAMAT} App. Table 10: 'CIFAR-10 (WRN16-8)'"),
    "original_fraction": (Rule(lambda c: 0.3 if c.extra_data else 1.0, "0.3 with generated images, else 1"),
                          f"{GOWAL}: 30% original, 70% generated images per batch"),
}
TABLE10_GENERATED = (Rule(lambda c: ddpm_file(c), "the DDPM file under the data root"),
                     f"{BIAMAT} App. Table 10: generated data [20] (DDPM); Rebuffi et al. 2021's 1M cifar10_ddpm.npz")
TABLE10: Card = {
    **BIAMAT_TRADES, **TABLE10_SHARED,
    "variant": ("trades", (f"{BIAMAT} App. Table 10: not stated; [16] trains with TRADES, so the two columns with "
                           "generated data share one loss")),
    "extra_data": (Rule(lambda c: ddpm_file(c) if c.extra_data else "", "none (BiaMAT) or the DDPM file"),
                   f"{BIAMAT} App. Table 10: BiaMAT and BiaMAT+[16]"),
}
TABLE10_BASELINE: Card = {
    **BIAMAT_TRADES_TRAINING, **TABLE10_SHARED, "extra_data": TABLE10_GENERATED,
    "training": ("trades", f"{GOWAL}: TRADES with the generated data"), "beta": (6.0, f"{GOWAL}: TRADES beta 6"),
    "train_eps_range": ((), "one training eps"),
}
# Tables 3 and 7 (sweeps/biamat_semi_supervised.py): Carmon et al.'s robust self-training, TRADES on the primary set
# with pseudo-labelled auxiliary images, on the TRADES recipe of the rows it is compared with.
CARMON = "Carmon et al. 2019 (BiaMAT's [4]), 'Unlabeled Data Improves Adversarial Robustness'"
TABLE7_LABELLER: Card = {
    **TABLE2_BASELINE_TRADES["cifar10"],
    "training": ("standard", f"{BIAMAT} App. D: 'a classifier trained on each primary dataset' (not adversarially)"),
    "final_attacks": (("clean",), "the labeller is judged by clean accuracy alone"),
    "autoattack_n": (0, "no AutoAttack: clean accuracy only"),
}
TABLE7_RST: Card = {
    **TABLE2_BASELINE_TRADES["cifar10"],
    "training": ("trades", f"{BIAMAT} Sec. 3.3: 'configure each training batch (for TRADES)'"),
    "extra_data": (Axis(("cifar100", "places365_32", "imagenet32")),
                   (f"{BIAMAT} Table 3: CIFAR-100, Places365, ImageNet and ImageNet-500k (until the labeller has run, "
                    "the sets the pseudo-labelled files come from)")),
    "batch_size": (256, f"{CARMON}: batches of 256, half pseudo-labelled: 128 primary images per step, as BiaMAT's"),
    "original_fraction": (0.5, f"{BIAMAT} Sec. 3.3: 'the same amount of primary and pseudo-labeled data', as [4]"),
    "mixed_epoch": ("original_pass", f"{CARMON}: an epoch is one pass over the labelled training set"),
}
# A search selects on held-out training images (no test-set leakage) every epoch, for ASHA's rungs.
SEARCH_SELECTION: Card = {
    "select_on": ("holdout", "project: a search must not select on the test set"),
    "holdout_n": (1000, "project: the last 1,000 training images"),
    "eval_n": (1000, "project: all 1,000 held-out images"),
    "eval_every": (1, "ASHA compares trials at any epoch"),
    "eval_from": (1, "ASHA compares trials at any epoch"),
}
SEARCH_DOMAINS: Card = {
    "alpha": (Axis((0.0, 1.0)), f"{BIAMAT} Eq. 1: alpha in [0, 1] (domain ends)"),
    "pi": (Axis((0.25, 0.75)), f"{BIAMAT} Table 12: pi from 0.3 to 0.55 (domain ends)"),
}
BIAMAT_SEARCH_AT: Card = {**BIAMAT_AT, **SEARCH_SELECTION, **SEARCH_DOMAINS}
BIAMAT_SEARCH_TRADES: Card = {**BIAMAT_TRADES, **SEARCH_SELECTION, **SEARCH_DOMAINS}

BASELINE_ONLY: Card = {
    "beta": (6.0, "TRADES beta = 6 (unused by PGD-AT)"),
    "train_eps_range": ((), "one training eps"),
}
BIAMAT_BASELINE: Card = {
    **BIAMAT_AT_TRAINING, **BASELINE_ONLY,
    "training": ("pgd_at", f"{BIAMAT} Table 1: 'Baseline [25]' is Madry's PGD-AT with the BiaMAT rows' recipe"),
}

# App. Table 5 (sweeps/biamat_data_density.py): standard training on CIFAR-10's train split in parts; App. B names the
# network, the parts and the batch sizes, nothing else: the AT+BiaMAT recipe's schedule, the one CIFAR-10 schedule given.
TABLE5: Card = {
    **BIAMAT_BASELINE,
    "training": ("standard", f"{BIAMAT} App. B: a classifier 'trained on cifar-A' normally (no adversarial training)"),
    "model": ("resnet18", f"{BIAMAT} App. B: 'a classifier (ResNet18)'"),
    "dataset": (Axis(("cifar10:A", "cifar10:A+B", "cifar10:A+C", "cifar10:A+B+C")),
                f"{BIAMAT} App. Table 5: cifar-A, + cifar-B, + cifar-C, + both (25,000 / 12,500 / 12,500 images)"),
    "batch_size": (Axis((128, 256, 384, 512, 1024)), f"{BIAMAT} App. Table 5: batch sizes 128 to 1024"),
    "final_attacks": (("clean",), f"{BIAMAT} App. Table 5: test error only"),
    "autoattack_n": (0, "no AutoAttack: clean accuracy only"),
}

# Tables 3, 7 and 8 (sweeps/biamat_pretraining.py): Hendrycks et al.'s adversarial pre-training, then fine-tuning.
HENDRYCKS = "Hendrycks et al. 2019 (BiaMAT's [17]), 'Using Pre-Training Can Improve Model Robustness and Uncertainty'"
PRETRAINED_RUN = "0123456789abcdef0123456789abcdef"  # a pre-training run whose best checkpoint is its 65th epoch
TABLE7_PRETRAINING: Card = {
    **BIAMAT_BASELINE,
    "dataset": (Axis(("cifar100", "imagenet32")), f"{BIAMAT} Table 3: pre-training on CIFAR-100 and on ImageNet"),
    "training": ("pgd_at", (f"{BIAMAT} App. E: 'adversarially trained on the auxiliary dataset according to ... "
                            "Section 3.1'")),
}
FINE_TUNING: Card = {
    "dataset": ("cifar10", f"{BIAMAT} Table 3: fine-tuned on CIFAR-10"),
    "init_from": (PRETRAINED_RUN, f"{BIAMAT} App. E: 'commenced from the best checkpoint of the pre-training phase'"),
    "lr": (0.01, f"{BIAMAT} App. E: best checkpoint at the 65th epoch -> 'commenced at 0.01'"),
    "lr_milestones": ((26,), f"{BIAMAT} App. E: '... and decreased to 0.001 after 25 epochs'"),
    "epochs": (35, f"{BIAMAT} App. E: the LR 'set according to the global step over' both phases: 100 - 65"),
    "eval_from": ("first_decay", f"{BIAMAT_REF}: selection from the first decay, as every BiaMAT preset"),
}
TABLE7_FINE_TUNING: Card = {**BIAMAT_BASELINE, **FINE_TUNING,
                            "training": ("pgd_at", f"{BIAMAT} Table 8: Hendrycks et al.'s rows fine-tune by AT")}
TABLE8_TRADES: Card = {
    **BIAMAT_TRADES_TRAINING, **BASELINE_ONLY, **FINE_TUNING,
    "training": ("trades", f"{BIAMAT} Table 8: fine-tuning by TRADES"),
    "model": ("wrn-28-10", "the pre-trained network's: fine-tuning keeps it"),
    "beta": (6.0, "TRADES beta = 6"),
}

# App. Table 6 (sweeps/biamat_robust_dataset.py): Ilyas et al.'s robust datasets from Table 2's AT and AT+BiaMAT
# (ImageNet) models, then a WRN-34-10 trained normally on each; App. C gives the networks, the loss and the attack.
TABLE6_SOURCE_AT: Card = TABLE2_BASELINE_AT["cifar10"]
TABLE6_SOURCE_BIAMAT: Card = {
    **TABLE2_AT["cifar10"],
    "aux_datasets": (("imagenet32",), f"{BIAMAT} App. C: 'the AT and AT+BiaMAT models' (Table 2's, with ImageNet)"),
}
TABLE6: Card = {
    **BIAMAT_BASELINE,
    "training": ("standard", f"{BIAMAT} App. C: 'normally train models from scratch ... using the cross-entropy loss'"),
    "model": ("wrn-34-10", f"{BIAMAT} App. Table 6: 'the models (WRN34-10)'"),
    "dataset": ("cifar10", (f"{BIAMAT} App. C: robust datasets of CIFAR-10's training images (until they are built, "
                            "the set they are built from; then npz:.../at-<run>.npz and biamat-<run>.npz)")),
    "test_data": ("cifar10", f"{BIAMAT} App. Table 6: accuracy on CIFAR-10 (its test split)"),
    "final_attacks": (("clean", "fgsm"), f"{BIAMAT} App. Table 6: 'Clean' and 'FGSM'"),
    "autoattack_n": (0, "no AutoAttack: clean and FGSM only"),
}

# AFS Tables 4 and 5 (sweeps/afs_comparison.py): the methods AFS cites, trained with their authors' code's defaults and
# tested by AFS's protocol.
FAT_CODE = "FAT reference code (FAT_for_TRADES.py)"
LBGAT_CODE = "LBGAT reference code (train_lbgat_cifar100.py)"
AFS_OTHERS: Card = {
    **RUNTIME,
    "dataset": ("cifar10", f"{AFS} Table 4: CIFAR-10"),
    "model": ("wrn-34-10", f"{AFS} Sec. 3.4: 'All the methods are evaluated with the WRN-34-10'"),
    "batch_size": (128, "both codes: batch 128"),
    "lr": (0.1, "both codes: LR 0.1"),
    "nesterov": (False, "both codes: plain momentum SGD"),
    "weight_decay": (2e-4, "both codes: weight decay 2e-4"),
    "schedule": ("piecewise", "both codes: step decay"),
    "eps": (0.031, "both codes: eps 0.031"),
    "attack_step": (0.007, "both codes: step 0.007"),
    "attack_steps": (10, "both codes: 10 steps"),
    "attack_bn": ("eval", "both codes craft in eval mode"),
    "beta": (6.0, ("both codes' default beta 6; LBGAT's README: its 'LBGAT6' CIFAR-100 model, 60.64 / 29.33, the row "
                   "AFS Table 5 cites (60.43 / 29.34)")),
    "select_on": ("test", "unused: the last epoch is kept"),
    "eval_n": (1000, "1,000 test points (the kept epoch does not depend on them)"),
    "eval_every": (1, "every epoch"),
    "eval_from": (1, "from the first epoch"),
    "final_attacks": (("clean", "pgd10", "pgd20", "autoattack"), f"{AFS} Tables 1-4: Clean, PGD, AA"),
    "final_attack_step": (0.0, "eps / 4, AFS's PGD step ratio"),
}
AFS_FAT: Card = {
    **AFS_OTHERS,
    "variant": ("trades", (f"{AFS} Table 4 does not name FAT's variant but evaluates all methods on WRN-34-10: the "
                           "FAT code trains WRN-34-10 in FAT_for_TRADES.py (FAT.py: WRN-32-10)")),
    "epochs": (85, f"{FAT_CODE}: --epochs 85"),
    "lr_milestones": ((75,), f"{FAT_CODE}: LR x0.1 from epoch 75 (its x0.01 at 90 is past the end)"),
    "keep_epoch": (85, f"{FAT_CODE}: evaluates and saves the last epoch's model"),
    "attack_start": ("normal_clamped", f"{FAT_CODE}: x + 0.001 N(0, 1) clipped to [0, 1]"),
    "tau": (0, f"{FAT_CODE}: dynamic tau starts at 0"),
    "tau_milestones": ((31, 51, 71), f"{FAT_CODE}: tau 0 to epoch 30, 1 to 50, 2 to 70, then 3"),
    "omega": (0.0, f"{FAT_CODE}: --omega 0.0"),
}
AFS_LBGAT: Card = {
    **AFS_OTHERS,
    "epochs": (100, f"{LBGAT_CODE}: --epochs 100"),
    "lr_milestones": ((76, 91), (f"{LBGAT_CODE}: x0.1 from epoch 76, x0.01 from 91 (its first epoch at 0.02 is not "
                                 "reproduced: no one-epoch warm-up in the runtime)")),
    "keep_epoch": (100, f"{LBGAT_CODE}: saves every epoch; the last is kept"),
    "attack_start": ("normal", f"{LBGAT_CODE}: TRADES' start x + 0.001 N(0, 1), first gradient unprojected"),
    "teacher_model": ("resnet18", ("LBGAT reference code (sh/train_lbgat0_cifar100.sh, its one training command): "
                                   "-teacher_model ResNet18_cifar")),
}
AFS_LBGAT_CIFAR100: Card = {**AFS_LBGAT, "dataset": ("cifar100", f"{AFS} Table 5: CIFAR-100")}

# TLA [11] fine-tunes Madry et al.'s adversarially trained network: first that network, by their CIFAR-10 code's
# config.json (80,000 steps of batch 128 = 204.8 epochs), then TLA by its code's config_cifar.json.
MADRY_CODE = "Madry et al.'s CIFAR-10 code (cifar10_challenge config.json)"
TLA_CODE = "TLA reference code (config_cifar.json)"
MADRY_THREAT: Card = {
    "eps": (8 / 255, "both codes: epsilon 8 (of 255)"),
    "attack_step": (2 / 255, "both codes: step_size 2 (of 255)"),
    "attack_steps": (7, ("TLA's config_cifar.json: num_steps 7; Madry et al. (ICLR 2018): a PGD adversary of 7 "
                         "steps of size 2 for CIFAR-10 training (their repository's config.json says 10)")),
    "attack_start": ("uniform", "both codes: random_start, uniform in the ball"),
    "weight_decay": (2e-4, "both codes: weight_decay 0.0002"),
    "lr": (0.1, "both codes: LR 0.1 at step 0"),
    "momentum": (0.9, "both codes: momentum 0.9"),
    "nesterov": (False, "both codes: tf.train.MomentumOptimizer, plain momentum"),
    "schedule": ("piecewise", "both codes: piecewise-constant LR"),
    "model": ("wrn-34-10", (f"{MADRY_CODE}: its wide ResNet (filters 16/160/320/640, 5 units per stage), here the "
                            "runtime's (ReLU where theirs is leaky, 1x1 shortcuts, no per-image standardisation); "
                            f"{AFS} Sec. 3.4: WRN-34-10")),
    "dataset": ("cifar10", f"{AFS} Table 4: CIFAR-10"),
    "select_on": ("test", "the test set, as the codes evaluate"),
    "eval_n": (1000, "1,000 test points"),
    "final_attacks": (("clean", "pgd10", "pgd20", "autoattack"), f"{AFS} Tables 1-4: Clean, PGD, AA"),
    "final_attack_step": (0.0, "eps / 4, AFS's PGD step ratio"),
}
AFS_TLA_SOURCE: Card = {
    **RUNTIME, **MADRY_THREAT,
    "training": ("pgd_at", f"{MADRY_CODE}: PGD adversarial training"),
    "beta": (6.0, "unused by PGD-AT"),
    "train_eps_range": ((), "every batch at eps"),
    "batch_size": (128, f"{MADRY_CODE}: training_batch_size 128"),
    "epochs": (205, f"{MADRY_CODE}: max_num_training_steps 80000 x 128 / 50,000 = 204.8 epochs"),
    "lr_milestones": ((103, 154), f"{MADRY_CODE}: x0.1 after steps 40000 and 60000 (epochs 102.4 and 153.6)"),
    "attack_bn": ("train", f"{MADRY_CODE}: the attack runs the mode='train' model (batch statistics, updated)"),
    "eval_every": (1, "every epoch"),
    "eval_from": (1, "from the first epoch"),
    "keep_epoch": (205, ("the last epoch's model: which step the released checkpoint is from is not stated (their "
                         "train.py saves every num_checkpoint_steps)")),
}
AFS_TLA: Card = {
    **RUNTIME, **MADRY_THREAT,
    "init_from": (PRETRAINED_RUN, f"{TLA_CODE}: finetuning from model_load_dir, Madry et al.'s adversarial baseline"),
    "batch_size": (50, f"{TLA_CODE}: training_batch_size 50"),
    "epochs": (80, f"{TLA_CODE}: max_num_training_steps 80000 x 50 / 50,000"),
    "lr_milestones": ((2, 6), f"{TLA_CODE}: step_size_schedule_finetune 0.1, 0.01 from step 1000, 0.001 from 5000"),
    "attack_bn": ("eval", "TLA reference code (train_update_fast_triplet.py): the attack with is_training False"),
    "eval_every": (2, f"{TLA_CODE}: num_checkpoint_steps 2000 (2 epochs)"),
    "eval_from": (2, (f"{TLA_CODE}: checks every 2,000 steps; its check of the source network at step 0 is not "
                      "reproduced (only fine-tuned epochs are selected)")),
    "keep_epoch": (0, ("TLA reference code: saves the best checkpoint by PGD-20 of step 1/255 on its first 500 test "
                       "images; here the best by PGD-7 (the training attack) on eval_n test points")),
    "triplet_weight": (2.0, f"{TLA_CODE}: lamda_triplet 2"),
    "margin": (0.03, f"{TLA_CODE}: margin_list [0.03]"),
    "feature_penalty": (1e-3, f"{TLA_CODE}: regularize_lambda 1e-3"),
    "negative_pool": (10, f"{TLA_CODE}: mul_num 10 (500 images at batch 50)"),
    "positive_noise": (8 / 255, f"{TLA_CODE}: nat_noise_level 8"),
}

# --- UIAT ------------------------------------------------------------------------------------------------------------

UIAT_TRAINING: Card = {
    **RUNTIME,
    "dataset": ("cifar10", f"{UIAT} Sec. 4.1: CIFAR-10"),
    "model": ("resnet18", f"{UIAT} Sec. 4.1: ResNet-18"),
    "epochs": (100, f"{UIAT} Sec. 4.1: 100 epochs on CIFAR"),
    "batch_size": (128, f"{UIAT} Sec. 4.1: batch 128"),
    "lr": (0.1, f"{UIAT} Sec. 4.1: cyclic LR peaking at 0.1"),
    "nesterov": (True, f"{UIAT} Sec. 4.1: Nesterov momentum"),
    "weight_decay": (5e-4, f"{UIAT} Sec. 4.1: weight decay 5e-4"),
    "schedule": ("cyclic", (f"{UIAT} Sec. 4.1: cyclic learning rate; its peak's place is not stated: mid-training "
                           "(one triangle, Smith & Topin)")),
    "lr_milestones": ((0.5, 0.75), "unused by the cyclic schedule"),
    "eps": (8 / 255, f"{UIAT} Sec. 4.1: eps 8/255"),
    "attack_step": (2 / 255, f"{UIAT} Sec. 4.1: PGD-10, step 2/255"),
    "attack_steps": (10, f"{UIAT} Sec. 4.1: PGD-10"),
    "attack_start": ("uniform", "Madry's uniform random start"),
    "attack_bn": ("eval", "not stated; running statistics while crafting"),
    "select_on": ("test", "not stated; the best checkpoint on test points, as the other papers"),
    "eval_n": (1000, "not stated; 1,000 test points"),
    "eval_every": (1, "not stated; every epoch"),
    "eval_from": (1, "not stated; from the first epoch"),
    "keep_epoch": (0, "not stated; the best checkpoint"),
    "final_attacks": (("clean", "pgd20", "cw20", "autoattack"),
                      (f"{UIAT} Table 1: natural, PGD-20, CW (steps not stated: 20; its margin's kappa not stated: "
                      "50, trainables/evaluation.CW_KAPPA) and "
                      "AutoAttack")),
    "final_attack_step": (0.0, f"{UIAT} Sec. 4.2: PGD-20 step 2/255 = eps / 4"),
}
UIAT_ONLY: Card = {
    "lam": (3.5, f"{UIAT} Sec. 4.1: lambda 3.5 on CIFAR"),
    "inv_eps": (4 / 255, f"{UIAT} Sec. 4.1: eps' 4/255"),
    "inv_step": (1 / 255, "alpha' is not in the main text; 1/255"),
    "beta": (1.0, f"{UIAT} Eq. 4: feature-term weight 1.0"),
    "gamma": (0.9, f"{UIAT} Eq. 8: momentum 0.9"),
    "components": ("uag+fr+iam", f"{UIAT}: the full method"),
    "momentum_start": (10, "T of Eq. 8 is not in the main text: 10 (0-based)"),
    "oneoff": (False, f"{UIAT}: the full method"),
    "oneoff_epoch": (50, "T' is not in the main text: 50 (0-based)"),
    "iat_steps": (5, "instance-wise IAT's steps are not in the main text: 5 steps of alpha' reach eps'"),
    "training_attack": ("pgd", f"{UIAT} Sec. 4.1: PGD-10 adversaries"),
    "align_lam": (0.2, "GradAlign's weight, used only with training_attack=gradalign (Table 5)"),
}
UIAT_FULL: Card = {**UIAT_TRAINING, **UIAT_ONLY}
UIAT_TABLE6: Card = {**UIAT_FULL, "components": (Axis(("none", "uag", "uag+fr", "uag+iam", "uag+fr+iam")),
                                                 f"{UIAT} Table 6: the UAG / FR / IAM rows")}
UIAT_LAMBDA: Card = {**UIAT_FULL,
                     "lam": (Axis((1.0, 2.0, 3.0, 3.5, 4.0, 5.0, 6.0)), f"{UIAT} Fig. 3: lambda around 3.5"),
                     "oneoff": (True, f"{UIAT} Fig. 3: one-off UIAT"),
                     "components": ("uag+fr", "one-off UIAT stores its targets once: no momentum")}
TABLE3_EPS = (Axis((10 / 255, 12 / 255, 16 / 255)), f"{UIAT} Table 3: training eps 10, 12, 16 /255")
EPS_STEP = (Rule(lambda c: c.eps / 4, "eps / 4"), f"{UIAT} Sec. 4.1's 2/255 at 8/255, scaled with eps")
UIAT_EPS: Card = {**UIAT_FULL, "eps": TABLE3_EPS, "attack_step": EPS_STEP,
                  "oneoff": (Axis((False, True)), f"{UIAT} Table 3: UIAT and one-off UIAT"),
                  "components": (Rule(lambda c: "uag+fr" if c.oneoff else "uag+fr+iam", "no momentum when one-off"),
                                 f"{UIAT}: one-off UIAT stores its targets once")}
UIAT_SEARCH: Card = {**UIAT_FULL, **{k: v for k, v in SEARCH_SELECTION.items()},
                     "lam": (Axis((1.0, 8.0)), "search domain ends around the paper's 3.5"),
                     "inv_eps": (Axis((1 / 255, 8 / 255)), "search domain ends around the paper's 4/255"),
                     "inv_step": (Axis((0.25 / 255, 2 / 255)), "search domain ends around 1/255")}
UIAT_BASELINE: Card = {
    **UIAT_TRAINING, **BASELINE_ONLY,
    "training": (Axis(("pgd_at", "trades")), f"{UIAT} Table 1: SAT (PGD-AT) and TRADES rows, on UIAT's recipe"),
    "attack_start": (Rule(lambda c: "normal" if c.training == "trades" else "uniform", "TRADES: normal start"),
                     "TRADES reference: x + 0.001 N(0, 1), first gradient unprojected; PGD-AT: uniform"),
}
UIAT_EPS_TRADES: Card = {**UIAT_BASELINE, "training": ("trades", f"{UIAT} Table 3: the TRADES rows"),
                         "eps": TABLE3_EPS, "attack_step": EPS_STEP}
UIAT_EPS_HELPERS: Card = {**UIAT_BASELINE, "training": ("standard", "HAT's helper: standard training, one per seed"),
                          "attack_start": ("uniform", "standard training crafts no attack: the field's default")}
FIG2_TRAIN_EVAL = (1000, f"{UIAT} Fig. 2: training-set curves; not stated how many: the first 1,000 images")
FIG2_CURVES = (20, f"{UIAT} Fig. 2: PGD-20 accuracy curves (PGD-10 still selects the checkpoint)")
UIAT_FIGURES: Card = {**UIAT_FULL, "train_eval_n": FIG2_TRAIN_EVAL, "curve_steps": FIG2_CURVES,
                      "oneoff": (Axis((False, True)), f"{UIAT} Fig. 4 (UIAT) and Figs. 2, 5 (one-off UIAT)"),
                      "components": (Rule(lambda c: "uag+fr" if c.oneoff else "uag+fr+iam", "no momentum when one-off"),
                                     f"{UIAT}: one-off UIAT stores its targets once")}
UIAT_FIGURES_BASELINES: Card = {
    **UIAT_BASELINE, "train_eval_n": FIG2_TRAIN_EVAL, "curve_steps": FIG2_CURVES,
    "training": (Axis(("standard", "pgd_at", "trades")), f"{UIAT} Fig. 1 (standard, PGD-AT), Figs. 2, 4, 5"),
}
FIG2_EPOCHS = (200, f"{UIAT} Sec. 5.2: Fig. 2's runs train 200 epochs \"for better visualization\"")
UIAT_FIGURES_FIG2: Card = {
    **UIAT_FIGURES, "epochs": FIG2_EPOCHS, "oneoff": (True, f"{UIAT} Fig. 2 (b): one-off UIAT"),
    "components": ("uag+fr", "one-off UIAT stores its targets once: no momentum"),
    "momentum_start": (20, "not stated at 200 epochs: T keeps its share of training (10 of 100)"),
    "oneoff_epoch": (100, "not stated at 200 epochs: T' keeps its share of training (50 of 100)"),
}
UIAT_FIGURES_FIG2_BASELINE: Card = {**UIAT_FIGURES_BASELINES, "epochs": FIG2_EPOCHS,
                                    "training": ("pgd_at", f"{UIAT} Fig. 2 (a): PGD-AT")}

# UIAT Table 1 (sweeps/uiat_comparison.py): every method on UIAT's recipe, per dataset as Sec. 4.1 says.
MART_PAPER = "MART (Wang et al., ICLR 2020)"
HAT_PAPER = "HAT (Rade & Moosavi-Dezfooli, ICLR 2022) and its reference code"


def on_svhn(svhn: Any, other: Any) -> Callable[[Any], Any]:
    return lambda c: svhn if c.dataset == "svhn" else other


TABLE1_DATA: Card = {
    "dataset": (Axis(("cifar10", "cifar100", "svhn")), f"{UIAT} Table 1: CIFAR-10, CIFAR-100 and SVHN"),
    "epochs": (Rule(on_svhn(30, 100), "30 on SVHN, else 100"), f"{UIAT} Sec. 4.1: 100 epochs on CIFAR, 30 on SVHN"),
    "attack_step": (Rule(on_svhn(1 / 255, 2 / 255), "1/255 on SVHN, else 2/255"),
                    f"{UIAT} Sec. 4.1: step 2/255 on CIFAR, 1/255 on SVHN"),
}
UIAT_TABLE1: Card = {
    **UIAT_FULL, **TABLE1_DATA,
    "lam": (Rule(on_svhn(3.0, 3.5), "3.0 on SVHN, else 3.5"), f"{UIAT} Sec. 4.1: lambda 3.5 on CIFAR, 3.0 on SVHN"),
    "momentum_start": (Rule(on_svhn(3, 10), "3 on SVHN, else 10"), "T not stated: 10 of 100 epochs, that share of 30"),
    "oneoff_epoch": (Rule(on_svhn(15, 50), "15 on SVHN, else 50"), "T' not stated: 50 of 100 epochs, that share of 30"),
    "oneoff": (Axis((False, True)), f"{UIAT} Table 1: UIAT and UIAT (One-off)"),
    "components": (Rule(lambda c: "uag+fr" if c.oneoff else "uag+fr+iam", "no momentum when one-off"),
                   f"{UIAT}: one-off UIAT stores its targets once"),
}
UIAT_TABLE1_BASELINES: Card = {
    **UIAT_BASELINE, **TABLE1_DATA,
    "training": (Axis(("standard", "pgd_at", "trades")), f"{UIAT} Table 1: SAT, TRADES; standard: HAT's helpers"),
}
UIAT_TABLE1_MART: Card = {**UIAT_TRAINING, **TABLE1_DATA, "beta": (6.0, f"{MART_PAPER}: beta 6 on CIFAR-10"),
                          "attack_start": ("normal", (f"{MART_PAPER}'s reference: x + 0.001 N(0, 1), first gradient "
                                                     "unprojected"))}
UIAT_TABLE1_HAT: Card = {
    **UIAT_TRAINING, **TABLE1_DATA,
    "helper_sweep": ("uiat-comparison-paper-baselines", "the standard-training trials of the same script"),
    "beta": (2.5, f"{HAT_PAPER}: beta 2.5 for CIFAR-10 ResNet-18 (none given for SVHN)"),
    "gamma": (0.5, f"{HAT_PAPER}: gamma 0.5"),
    "h": (2.0, f"{HAT_PAPER}: helper x + 2 (x_adv - x)"),
    "attack_start": ("normal", f"{HAT_PAPER}: the TRADES attack, x + 0.001 N(0, 1), first gradient unprojected"),
}
UIAT_EPS_HAT: Card = {**UIAT_TABLE1_HAT, **{k: UIAT_TRAINING[k] for k in TABLE1_DATA},
                      "eps": TABLE3_EPS, "attack_step": EPS_STEP,
                      "helper_sweep": ("uiat-eps-paper-helpers", "the standard-training trials of the same script"),
                      "beta": (2.5, f"{HAT_PAPER}: beta 2.5 for CIFAR-10 ResNet-18; none given for larger eps")}
# UIAT Table 5 (sweeps/uiat_single_step.py): single-step methods at three eps, alone and with one-off UIAT.
TABLE5_SHARED: Card = {
    "eps": (Axis((6 / 255, 8 / 255, 10 / 255)), f"{UIAT} Table 5: eps 6, 8 and 10 /255"),
    "attack_bn": ("train", "the single-step reference codes attack in train mode"),
}
SINGLE_STEP_TABLE5: Card = {**UIAT_TRAINING, **TABLE5_SHARED,
                            "variant": (Axis(("n_fgsm", "rs_fgsm")), f"{UIAT} Table 5: the N-FGSM and RS-FGSM rows")}
GRADALIGN_TABLE5: Card = {**UIAT_TRAINING, **TABLE5_SHARED,
                          "lam": (0.2, "GradAlign (Andriushchenko & Flammarion): lambda 0.2 at 8/255")}
UIAT_TABLE5: Card = {
    **UIAT_FULL, **TABLE5_SHARED,
    "oneoff": (True, f"{UIAT} Sec. 4.3: one-off UIAT on the single-step methods"),
    "components": ("uag", f"{UIAT} Sec. 4.3: beta = 0 in Eq. 4, no feature-level term"),
    "training_attack": (Axis(("n_fgsm", "rs_fgsm", "gradalign")), f"{UIAT} Table 5: each single-step method + UIAT"),
}

# UIAT Table 4 (sweeps/uiat_extra_data.py): every row trained with 1M DDPM-generated images, on HAT's recipe for them.
HAT_EXTRA = "HAT reference code, README's train-wa.py command with generated data"


def ddpm_file(cfg: Any) -> str:
    """The extra_data a Table 4 trial must have: its dataset's DDPM file, by absolute path under the data root."""
    name = f"{cfg.dataset}_ddpm.npz"
    ok = cfg.extra_data.startswith("npz:/") and cfg.extra_data.endswith(f"/{name}")
    return cfg.extra_data if ok else f"npz:<absolute data root>/{name}"


TABLE4_DATA: Card = {
    "dataset": (Axis(("cifar10", "cifar100")), f"{UIAT} Table 4: CIFAR-10 and CIFAR-100"),
    "model": (Axis(("preact-resnet18", "wrn-28-10")), f"{UIAT} Table 4: PRN-18 and WRN-28-10"),
    "extra_data": (Rule(ddpm_file, "the dataset's DDPM file under the data root"),
                   f"{UIAT} Sec. 4.2: 1M DDPM images; Rebuffi et al. 2021's cifar10_ddpm.npz, cifar100_ddpm.npz"),
    "original_fraction": (0.3, f"{HAT_EXTRA}: --unsup-fraction 0.7"),
    "batch_size": (1024, f"{HAT_EXTRA}: --batch-size 1024"),
    "epochs": (400, f"{HAT_EXTRA}: --num-adv-epochs 400"),
    "lr": (0.4, f"{HAT_EXTRA}: --lr 0.4 (cyclic, parser.py's default scheduler)"),
}
UIAT_TABLE4: Card = {
    **UIAT_FULL, **TABLE4_DATA,
    "momentum_start": (40, "T not stated: 10 of 100 epochs, that share of 400"),
    "oneoff_epoch": (200, "T' not stated: 50 of 100 epochs, that share of 400"),
    "oneoff": (Axis((False, True)), f"{UIAT} Table 4: UIAT and UIAT (One-off)"),
    "components": (Rule(lambda c: "uag+fr" if c.oneoff else "uag+fr+iam", "no momentum when one-off"),
                   f"{UIAT}: one-off UIAT stores its targets once"),
}
UIAT_TABLE4_BASELINES: Card = {
    **UIAT_BASELINE, **TABLE4_DATA,
    "training": (Axis(("standard", "trades")), f"{UIAT} Table 4: Rebuffi et al.'s loss, TRADES; standard: HAT's helpers"),
    "beta": (6.0, "TRADES beta 6: the Gowal et al. command of github.com/imrahulr/adversarial_robustness_pytorch"),
}
UIAT_TABLE4_HAT: Card = {
    **UIAT_TRAINING, **TABLE4_DATA,
    "helper_sweep": ("uiat-extra-data-paper-baselines", "the standard-training trials of the same script"),
    "beta": (3.5, f"{HAT_EXTRA}: --beta 3.5"),
    "gamma": (0.5, f"{HAT_EXTRA}: --gamma 0.5"),
    "h": (2.0, f"{HAT_PAPER}: helper x + 2 (x_adv - x)"),
    "attack_start": ("normal", f"{HAT_PAPER}: the TRADES attack, x + 0.001 N(0, 1), first gradient unprojected"),
}

# --- AFS -------------------------------------------------------------------------------------------------------------

AFS_TRAINING: Card = {
    **RUNTIME,
    "dataset": ("cifar10", f"{AFS} Sec. 3: CIFAR-10"),
    "model": ("wrn-28-10", f"{AFS} Sec. 3.1: WRN-28-10 extractors"),
    "lr": (0.1, f"{AFS_REF}: LR 0.1"),
    "nesterov": (False, f"{AFS_REF}: plain momentum SGD"),
    "weight_decay": (5e-4, f"{AFS_REF}: weight decay 5e-4"),
    "schedule": ("piecewise", f"{AFS_REF}: step decay"),
    "attack_steps": (10, f"{AFS} Sec. 3: PGD-10 training"),
    "attack_start": ("uniform", "Madry's uniform random start"),
    "select_on": ("test", f"{AFS} Sec. 3 (early stopping [13]) on test points; unused for the kept epoch"),
    "eval_n": (1000, "1,000 test points (the kept epoch does not depend on them)"),
    "eval_every": (1, "every epoch"),
    "eval_from": (1, "from the first epoch"),
    "final_attacks": (("clean", "pgd10", "pgd20", "autoattack"), f"{AFS} Tables 1-3: Clean, PGD-10, PGD-20, AA"),
    "final_attack_step": (0.0, "eps / 4 = 2/255 at 8/255"),
}
EXTRACTOR: Card = {
    **AFS_TRAINING, **BASELINE_ONLY,
    "training": ("pgd_at", f"{AFS} Eq. 3-4: PGD-AT extractors (eps 0: standard training)"),
    "epochs": (65, f"{AFS_REF}: 65 epochs"),
    "batch_size": (128, f"{AFS_REF}: batch 128"),
    "lr_milestones": ((50, 60), f"{AFS_REF}: the decayed rates start at epoch indices 49 and 59"),
    "eps": (Axis(tuple(i / 255 for i in range(10))), f"{AFS} Sec. 3.1: network-0 to network-9, eps 0..9/255"),
    "attack_step": (2 / 255, f"{AFS_REF}: step 2/255 at every training eps"),
    "attack_bn": ("train", f"{AFS_REF}: crafted in train mode (batch statistics, running ones updated)"),
    "keep_epoch": (64, f"{AFS_REF}: keeps the checkpoint of epoch index 63"),
    "eval_eps": (8 / 255, f"{AFS} Sec. 3: robustness is accuracy at 8/255"),
    "delta_z_steps": (20, f"{AFS} Sec. 2.4 Eq. 8: Delta_z by PGD (steps not stated: 20)"),
}
AFS_ABLATION: Card = {
    **EXTRACTOR,
    "eps": (8 / 255, f"{AFS} Sec. 3.5: both single networks at 8/255"),
    "model": (Axis(("wrn-28-10", "wrn-28-30")), f"{AFS} Table 6: Rand. pert. (WRN-28-10) and the large WRN-28-30"),
    "train_eps_range": (Rule(lambda c: (3 / 255, 8 / 255) if c.model == "wrn-28-10" else (), "random eps on 28-10"),
                        f"{AFS} Sec. 3.5: random perturbation budgets from 3/255 to 8/255"),
}
MERGER: Card = {
    **AFS_TRAINING,
    "epochs": (7, f"{AFS_REF}: trains 7 epochs (the paper: 5), keeps the 5th"),
    "batch_size": (100, f"{AFS_REF}: merger batch 100"),
    "lr_milestones": ((3, 6), f"{AFS_REF}: LR 0.1 for epochs 0-1, 0.01 for 2-4, 0.001 for 5-6 (indices)"),
    "eps": (8 / 255, f"{AFS} Sec. 3: the merger is trained at 8/255"),
    "attack_step": (2 / 255, f"{AFS_REF}: PGD-10, step 2/255"),
    "attack_bn": ("eval", "the extractors are frozen in eval mode"),
    "keep_epoch": (5, f"{AFS_REF}: keeps epoch index 4"),
    "extractor_sweep": ("afs-extractors-paper", "the paper preset's stage 1"),
    "mask": ("000111111", f"{AFS} Sec. 3.1-3.2: networks 3 to 8"),
    "alpha": (Axis((0.0, 0.2, 0.4, 0.6, 0.8, 1.0)), f"{AFS} Table 2: alpha from 0 to 1"),
    "alpha_mode": ("mix", f"{AFS_REF}: the first int(B * alpha) samples clean, the rest adversarial"),
}
MERGER_TABLE3: Card = {
    **MERGER,
    "mask": (Axis(("100000001", "100010001", "101010101", "111111111")), f"{AFS} Table 3: the four stacks"),
    "alpha": (0.5, f"{AFS} Sec. 3.2: 'alpha can be set to 0.5'"),
}
MERGER_DEFAULT: Card = {**MERGER, "alpha": (0.5, f"{AFS} Sec. 3.2 and Fig. 5(a): 'alpha can be set to 0.5'")}
# Table 5 (Sec. 3.4): both stages on CIFAR-100, their recipe unchanged.
ON_CIFAR100: Card = {
    "dataset": ("cifar100", f"{AFS} Sec. 3: 'The training setting of CIFAR-10 is the same as CIFAR-100'; Table 5"),
    "final_n": (10000, "the whole CIFAR-100 test set"),
}
EXTRACTOR_CIFAR100: Card = {**EXTRACTOR, **ON_CIFAR100}
MERGER_ON_CIFAR100: Card = {
    **ON_CIFAR100,
    "extractor_sweep": ("afs-extractors-paper-cifar100", "the paper-cifar100 preset's stage 1, not CIFAR-10's"),
}
MERGER_SEARCH: Card = {**MERGER, **SEARCH_SELECTION, "alpha": (Axis((0.0, 1.0)), "search domain ends: [0, 1]")}
UIAT_SEARCH_ONEOFF: Card = {**UIAT_SEARCH, "oneoff": (True, f"{UIAT} Sec. 3.3: one-off UIAT"),
                            "components": ("uag+fr", "one-off UIAT stores its targets once: no momentum")}
