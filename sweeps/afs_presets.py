"""The AFS extractors' recipes (stage 1), which the merger sweep (stage 2) and the ablation (Table 6) train on too:
each preset's data, network and schedule, and the PGD step of the extractor trained at each eps.
``sweeps/afs_extractors.py`` says where each value comes from."""

from __future__ import annotations

PRESETS = {
    # 192 SGD steps (1024 images, batch 16, one-cycle LR): standard training finds the synthetic texture after about
    # 100 (with 96 the eps-0 extractor stayed near 45 % clean), so it is the accurate, non-robust end of the range.
    # synthetic_absent: its images without a robust pattern are where stacking can pay (trainables/synthetic_data.py).
    "smoke": {
        "dataset": "synthetic_absent", "train_n": 1024, "model": "tiny-cnn", "epochs": 3, "batch_size": 16, "lr": 0.1,
        "schedule": "cyclic", "nesterov": True, "attack_steps": 3, "eval_n": 128, "final_n": 128,
        "final_attacks": ["clean", "pgd10", "pgd20"], "delta_z_steps": 10,
    },
    "paper": {
        "dataset": "cifar10", "model": "wrn-28-10", "epochs": 65, "batch_size": 128, "lr": 0.1,
        "lr_milestones": [50, 60], "weight_decay": 5e-4, "attack_steps": 10, "attack_bn": "train", "keep_epoch": 64,
        "eval_n": 1000, "final_n": 10000, "final_attacks": ["clean", "pgd10", "pgd20", "autoattack"],
        "autoattack_n": 10000,
    },
}
# PGD step of the extractor trained at eps: the reference's 2/255 at every eps; eps/2 for the smoke preset's 3 steps.
ATTACK_STEP = {"smoke": lambda eps: eps / 2, "paper": lambda eps: 2 / 255}
# Table 5: the paper recipe on CIFAR-100 (Sec. 3: "The training setting of CIFAR-10 is the same as CIFAR-100").
CIFAR100 = "paper-cifar100"
PRESETS[CIFAR100] = PRESETS["paper"] | {"dataset": "cifar100"}
ATTACK_STEP[CIFAR100] = ATTACK_STEP["paper"]
