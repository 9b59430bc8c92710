"""The data, model and schedule presets every UIAT sweep shares (Dong et al., CVPR 2023, Sec. 4.1).

``paper``: CIFAR-10, ResNet-18, 100 epochs, batch 128, SGD with Nesterov momentum 0.9, cyclic LR peaking at 0.1,
weight decay 5e-4, PGD-10 (2/255) at 8/255 during training; final protocol clean, PGD-20, CW and AutoAttack on the
10,000 test images (Table 1 reports natural, PGD-20, CW and AutoAttack accuracy; Tables 3 and 6 and Fig. 3 natural,
PGD-20 and AutoAttack). The paper does not give CW's steps: CW-20 here, the steps and step size of its PGD-20. Nor
does it say how it selects a checkpoint: the best PGD-10 on 1,000 test points, evaluated every epoch. UIAT's own defaults (lambda
3.5, eps' 4/255, alpha' 1/255, beta 1.0, gamma 0.9, T = 10, T' = 50) come from ``UIATConfig`` in ``trainables/methods/configs.py``.

``smoke``: synthetic data, tiny CNN, 3 epochs on 512 images with PGD-3; momentum from epoch 1 and the one-off epoch 1,
so every code path runs. Batches of 32: the 48 steps lift the tiny CNN off chance (UIAT, seed 0: clean 0.53, PGD-20
0.22 on the 64 selection images, against 0.13 / 0.09 with batches of 64 in the same 14 s on one CPU thread).

Table 4 (extra data, ``sweeps/uiat_extra_data.py``) has its own recipes below, ``EXTRA_DATA_RECIPE``: HAT's numbers
for training with generated images, and the DDPM files the user downloads (``sweeps/generated_presets.py``'s ``missing_ddpm`` says from where).
"""

from __future__ import annotations

from typing import Any

from sweeps.generated_presets import DDPM_FILES, ddpm_data

PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {
        "dataset": "synthetic", "train_n": 512, "model": "tiny-cnn", "epochs": 3, "batch_size": 32, "lr": 0.1,
        "schedule": "cyclic", "nesterov": True, "attack_steps": 3, "attack_step": 4 / 255, "eval_n": 64,
        "final_n": 128, "final_attacks": ["clean", "pgd20"], "momentum_start": 1, "oneoff_epoch": 1, "iat_steps": 2,
    },
    "paper": {
        "dataset": "cifar10", "model": "resnet18", "epochs": 100, "batch_size": 128, "lr": 0.1, "schedule": "cyclic",
        "nesterov": True, "weight_decay": 5e-4, "eps": 8 / 255, "attack_step": 2 / 255, "attack_steps": 10,
        "eval_n": 1000, "final_n": 10000, "autoattack_n": 10000,
        "final_attacks": ["clean", "pgd20", "cw20", "autoattack"],
    },
}

# Keys of the UIAT presets that a baseline (TRADES, PGD-AT) trained on the same budget does not have.
# Table 6's rows, the component sets of the ablation (analysis/uiat/tables.py TABLE6_ROWS, held equal by a test):
# instance-wise IAT, then UAG, UAG + FR, UAG + IAM and all three.
TABLE6_COMPONENTS = ["none", "uag", "uag+fr", "uag+iam", "uag+fr+iam"]
UIAT_ONLY = ("momentum_start", "oneoff_epoch", "iat_steps")


def baseline_preset(preset: str, recipes: dict[str, dict[str, Any]] = PRESETS) -> dict[str, Any]:
    """The same data, model, schedule and attack budget for a baseline trial (``trainables/methods/baseline.py``)."""
    return {k: v for k, v in recipes[preset].items() if k not in UIAT_ONLY}


# --- Table 4: adversarial training with 1M generated images (sweeps/uiat_extra_data.py) ----------------------------
# UIAT Sec. 4.2 follows "the experimental settings of [11, 32, 33]" (Gowal et al. 2021, HAT, Rebuffi et al. 2021) and
# gives no numbers; these come from HAT's code for that setting (github.com/imrahulr/hat: README's train-wa.py command
# with generated data, core/utils/parser.py, core/data/semisup.py). Where UIAT's own recipe (PRESETS) is silent or
# kept, the value stays: Nesterov momentum 0.9 and weight decay 5e-4 (the same in both), PGD-10 of 2/255 at 8/255,
# selection on 1,000 test points, the final protocol, lambda 3.5 and eps' 4/255.
EXTRA_DATA_RECIPE: dict[str, dict[str, Any]] = {
    "smoke": {
        # The smoke recipe on the 512 training images, and as "generated" images the other 9,488 of the synthetic
        # training set: fresh draws of the same distribution, as DDPM samples are of CIFAR's (TrialData.load).
        **PRESETS["smoke"], "extra_data": "synthetic", "original_fraction": 0.3,
        # 6 epochs (96 steps), not 3: on this many distinct images UIAT (lambda 3.5) is still at chance after 48 steps
        # (clean and PGD-3 0.11 on the 64 selection images, seed 0), as it is without extra data on 1,536 images;
        # after 96 steps 0.61 / 0.50, one-off UIAT 0.42 / 0.36 (one CPU thread, 2026-12-01). T' = 3 of 6 epochs.
        "epochs": 6, "oneoff_epoch": 3,
    },
    "paper": {
        **PRESETS["paper"],
        "batch_size": 1024,  # HAT README (train-wa.py, generated data): --batch-size 1024
        "epochs": 400,  # HAT README: --num-adv-epochs 400, epochs of ceil(50,000 / 1024) = 49 batches (MixedLoader)
        "lr": 0.4,  # HAT README: --lr 0.4, with parser.py's default --scheduler cyclic
        "original_fraction": 0.3,  # HAT README: --unsup-fraction 0.7 generated images per batch
        # UIAT's T = 10 and T' = 50 of 100 epochs (trainables/methods/uiat.py) keep their share of 400: a choice.
        "momentum_start": 40, "oneoff_epoch": 200,
    },
}
# Table 4's datasets and networks: PRN-18 is preact-resnet18 (HAT's PreActResNet-18), WRN-28-10 the ReLU network
# (HAT's runs use its Swish variant, wrn-28-10-swish, which is not built here).
EXTRA_DATA_GRID: dict[str, dict[str, list[str]]] = {
    "smoke": {"datasets": ["synthetic"], "models": ["tiny-cnn"]},
    "paper": {"datasets": ["cifar10", "cifar100"], "models": ["preact-resnet18", "wrn-28-10"]},
}
def extra_data(dataset: str, root: str | None) -> str:
    """The ``extra_data`` of a Table 4 trial on ``dataset``: its DDPM file under the data root (an absolute path:
    Ray runs trials in other directories), or the smoke preset's built-in stand-in."""
    if dataset in DDPM_FILES:
        return ddpm_data(dataset, root)
    smoke = EXTRA_DATA_RECIPE["smoke"]
    if dataset == smoke["dataset"]:
        return smoke["extra_data"]
    raise ValueError(f"no generated data for {dataset!r}: Table 4 trains on {', '.join(DDPM_FILES)}")
