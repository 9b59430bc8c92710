"""Science on the synthetic data: the phenomena the papers study must show up, with the numbers printed.

The synthetic set (trainables/synthetic_data.py) gives every class a large robust pattern that predicts the label 75% of
the time and a texture below 8/255 that predicts it always. Each test trains for well under two minutes on 2 cores
(the BiaMAT one for about two and a half, in the slow pass).
"""

from __future__ import annotations

import time

import pytest
import torch

from tests_support import SCIENCE, robustness, science_pgd_at, train_without_ray
from trainables.datasets import load_dataset, synthetic_aux_related
from trainables.evaluation import evaluate
from trainables.methods.baseline import Baseline
from trainables.methods.biamat import BiaMAT, primary_confidence
from trainables.methods.gradalign import GradAlign
from trainables.methods.single_step import SingleStep


@pytest.mark.slow  # with the PGD-AT reference the slow pass's other science tests share (tests_support.science_pgd_at)
def test_pgd_at_buys_robustness_with_clean_accuracy():
    results, seconds = {}, {}
    for training, train in (("standard", lambda: train_without_ray(Baseline, {**SCIENCE, "training": "standard"})),
                            ("pgd_at", lambda: science_pgd_at()[0])):
        start = time.perf_counter()
        results[training] = robustness(train())
        seconds[training] = time.perf_counter() - start  # PGD-AT's is its evaluation alone when another test trained it
    standard, adversarial = results["standard"], results["pgd_at"]
    print(f"\nstandard: clean {standard['clean']:.3f} PGD-20 {standard['pgd20']:.3f} ({seconds['standard']:.0f} s)"
          f"\nPGD-AT:   clean {adversarial['clean']:.3f} PGD-20 {adversarial['pgd20']:.3f}"
          f" ({seconds['pgd_at']:.0f} s)")
    assert standard["clean"] >= 0.9, "standard training must find the (non-robust) texture"
    assert standard["pgd20"] <= 0.2, "an 8/255 attack must break a model that reads the texture"
    assert adversarial["pgd20"] >= standard["pgd20"] + 0.30, "PGD-AT must gain at least 30 points of PGD-20"
    assert adversarial["clean"] < standard["clean"], "and pay for it in clean accuracy"


@pytest.mark.slow  # about 140 s on 2 cores: the default pass stays under 10 minutes
def test_biamat_gate_passes_related_auxiliary_classes_more_often():
    """BiaMAT Table 14: auxiliary classes that share robust patterns with primary classes get through the gate (high
    confidence, own label) far more often than unrelated ones.

    pi = 0.7 (the top of the paper's Table 13 range), not 0.55: a model of the synthetic data is far less confident
    than a CIFAR model (its robust pattern predicts only 75% of labels; mean top-class probability about 0.3 after
    warm-up), so at pi = 0.55 omega sits below almost every auxiliary sample's confidence and the gate passes all of
    them. Seen while calibrating (seed 0): pi 0.55 passes ~100% of both groups, pi 0.9 routes ~all to y^ER (which then
    drives their confidence down further), pi 0.7 passes 61% of related against 16% of unrelated samples.
    """
    trial = train_without_ray(BiaMAT, {**SCIENCE, "epochs": 5, "warmup_epochs": 3, "schedule": "piecewise",
                                       "lr": 0.05, "lr_milestones": [0.8], "aux_batch_size": 64, "pi": 0.7})
    method = trial.method
    aux = load_dataset("synthetic_aux", "test")
    x = aux.images.float() / 255
    high = primary_confidence(method.model, x) >= method.omega
    related = torch.tensor([label in synthetic_aux_related() for label in aux.labels.tolist()])
    ratio = {c: high[aux.labels == c].float().mean().item() for c in range(aux.num_classes)}
    related_ratio, unrelated_ratio = high[related].float().mean().item(), high[~related].float().mean().item()
    print(f"\nomega {method.omega:.3f}; n_high/n_aux per auxiliary class: "
          + " ".join(f"{c}{'*' if c in synthetic_aux_related() else ''}:{r:.2f}" for c, r in ratio.items())
          + f"\nrelated (*) {related_ratio:.2f} vs unrelated {unrelated_ratio:.2f} (all {high.float().mean():.2f})")
    # Group level, as Table 14 compares superclasses with "Others": single classes vary (seed 0 left one related
    # class at 0.13 while the others passed 0.47-0.83).
    assert related_ratio >= unrelated_ratio + 0.25 and related_ratio >= 2 * unrelated_ratio


@pytest.mark.slow  # four trainings (PGD-AT shared), about 3 minutes on 2 cores
def test_single_step_methods_come_near_pgd_at_and_rs_fgsm_is_reported_at_16():
    """UIAT Table 5's single-step methods at 8/255 reach PGD-AT's PGD-20 accuracy within 5 points on the synthetic
    data (2026-12-01: PGD-AT 0.516, N-FGSM 0.502, RS-FGSM 0.492, GradAlign 0.496, clean 0.69 for all). RS-FGSM at
    16/255, where its successors report catastrophic overfitting on CIFAR-10, is printed, not asserted: here it did
    not collapse (PGD-20 at 16/255 0.194, clean 0.626), the synthetic task being easier than CIFAR-10."""
    runs = {"N-FGSM": (SingleStep, {"variant": "n_fgsm"}), "RS-FGSM": (SingleStep, {"variant": "rs_fgsm"}),
            "GradAlign": (GradAlign, {"lam": 0.2})}
    results = {"PGD-AT": robustness(science_pgd_at()[0])}
    results |= {name: robustness(train_without_ray(cls, {**SCIENCE, **extra})) for name, (cls, extra) in runs.items()}
    wide = train_without_ray(SingleStep, {**SCIENCE, "variant": "rs_fgsm", "eps": 16 / 255, "attack_step": 6 / 255})
    test = wide.method.data.test
    at16 = evaluate(wide.method.model, test.images, test.labels, eps=16 / 255, attacks=("clean", "pgd20"),
                    device="cpu")
    print("\n" + "\n".join(f"{name:9s} clean {r['clean']:.3f} PGD-20 {r['pgd20']:.3f} (8/255)"
                           for name, r in results.items())
          + f"\nRS-FGSM trained at 16/255: clean {at16['clean']:.3f} PGD-20 at 16/255 {at16['pgd20']:.3f}, at 8/255 "
          f"{robustness(wide)['pgd20']:.3f}")
    for name in ("N-FGSM", "RS-FGSM", "GradAlign"):
        assert results[name]["pgd20"] >= results["PGD-AT"]["pgd20"] - 0.05, name
