"""The names BiaMAT's tables give the runs' params, as the paper prints them. No heavy import: the command line
(``analysis/biamat_tables.py``) offers them as choices before it parses its arguments."""

from __future__ import annotations

VARIANT_NAMES = {"at": "AT+BiaMAT", "trades": "TRADES+BiaMAT"}
# Table 1 compares each BiaMAT variant with the baseline trained the same way, minus the auxiliary data.
BASELINE_TRAINING = {"at": "pgd_at", "trades": "trades"}
TRAINING_NAMES = {"standard": "Standard", "pgd_at": "AT", "trades": "TRADES"}  # the baselines as the paper names them
# Table 1's columns in the paper's order; Table 2 adds ImgNet100's (Places365 at 64x64, ImgNet900) after them, and
# other auxiliary sets follow alphabetically.
PAPER_AUX_ORDER = ("svhn", "cifar100", "places365_32", "imagenet32")
AUX_ORDER = (*PAPER_AUX_ORDER, "places365_64", "imgnet900")
MISSING = "-"
HIGH_FRACTION = "train/high_fraction"  # n_high / n_aux, averaged over an epoch's steps (trainables/methods/biamat.py)
PRIMARY_ORDER = ("cifar10", "cifar100", "imgnet100")
