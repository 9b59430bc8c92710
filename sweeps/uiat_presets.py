"""The data, model and schedule presets every UIAT sweep shares (Dong et al., CVPR 2023, Sec. 4.1).

``paper``: CIFAR-10, ResNet-18, 100 epochs, batch 128, SGD with Nesterov momentum 0.9, cyclic LR peaking at 0.1,
weight decay 5e-4, PGD-10 (2/255) at 8/255 during training; final protocol clean, PGD-20, CW and AutoAttack on the
10,000 test images (Table 1 reports natural, PGD-20, CW and AutoAttack accuracy; Tables 3 and 6 and Fig. 3 natural,
PGD-20 and AutoAttack). The paper does not give CW's steps: CW-20 here, the steps and step size of its PGD-20. Nor
does it say how it selects a checkpoint: the best PGD-10 on the first 1,000 test points, evaluated every epoch. UIAT's own defaults (lambda
3.5, eps' 4/255, alpha' 1/255, beta 1.0, gamma 0.9, T = 10, T' = 50) come from ``trainables/methods/uiat.py``.

``smoke``: synthetic data, tiny CNN, 3 epochs on 512 images with PGD-3; momentum from epoch 1 and the one-off epoch 1,
so every code path runs. Batches of 32: the 48 steps lift the tiny CNN off chance (UIAT, seed 0: clean 0.53, PGD-20
0.22 on the 64 selection images, against 0.13 / 0.09 with batches of 64 in the same 14 s on one CPU thread).
"""

from __future__ import annotations

from typing import Any

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
UIAT_ONLY = ("momentum_start", "oneoff_epoch", "iat_steps")


def baseline_preset(preset: str) -> dict[str, Any]:
    """The same data, model, schedule and attack budget for a baseline trial (``trainables/methods/baseline.py``)."""
    return {k: v for k, v in PRESETS[preset].items() if k not in UIAT_ONLY}
