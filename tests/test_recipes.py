"""Every paper preset of every sweep script against its recipe card (tests/recipe_cards.py), field by field.

A preset that no longer matches its paper fails with the sweep, the field, the value found, the value expected and
the expected value's source. No data, Ray or MLflow is needed: the search spaces are expanded and validated only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

import recipe_cards as cards
from launch.checks import trial_configs
from sweeps import (
    afs_ablation,
    afs_comparison,
    afs_extractors,
    afs_merger,
    baselines,
    biamat_aux_sets,
    biamat_data_density,
    biamat_generated_data,
    biamat_labels,
    biamat_main_results,
    biamat_oat,
    biamat_pretraining,
    biamat_robust_dataset,
    biamat_search,
    biamat_semi_supervised,
    pi_ablation,
    uiat_ablation,
    uiat_comparison,
    uiat_eps,
    uiat_extra_data,
    uiat_figures,
    uiat_lambda,
    uiat_search,
    uiat_single_step,
)
from sweeps.biamat_presets import TABLE12
from trainables.config import TrainConfig
from trainables.methods.configs import (
    BaselineConfig,
    BiaMATConfig,
    ExtractorConfig,
    FATConfig,
    GradAlignConfig,
    HATConfig,
    LBGATConfig,
    MARTConfig,
    MergerConfig,
    SingleStepConfig,
    TLAConfig,
    UIATConfig,
)
from trainables.training import lr_factor


@dataclasses.dataclass(frozen=True)
class Case:
    space: Callable[[], dict[str, Any]]
    config_cls: type[TrainConfig]
    card: Callable[[Any], cards.Card]  # the card of one trial's config


def by_variant(at: cards.Card, trades: cards.Card) -> Callable[[Any], cards.Card]:
    return lambda cfg: at if cfg.variant == "at" else trades


CASES = {
    "pi_ablation paper": Case(lambda: pi_ablation.search_space("paper", 1), BiaMATConfig, by_variant(
        {**cards.BIAMAT_AT, "pi": cards.TABLE13_AXIS}, {**cards.BIAMAT_TRADES, "pi": cards.TABLE13_AXIS})),
    "biamat_labels paper": Case(lambda: biamat_labels.search_space("paper", 1), BiaMATConfig,
                                lambda cfg: cards.TABLE1),
    "biamat_aux_sets paper": Case(lambda: biamat_aux_sets.search_space("paper", 1), BiaMATConfig,
                                  lambda cfg: cards.TABLE4),
    "biamat_search paper --variant at": Case(lambda: biamat_search.search_space("paper", "at"), BiaMATConfig,
                                             lambda cfg: cards.BIAMAT_SEARCH_AT),
    "biamat_search paper --variant trades": Case(lambda: biamat_search.search_space("paper", "trades"), BiaMATConfig,
                                                 lambda cfg: cards.BIAMAT_SEARCH_TRADES),
    "baselines biamat-paper": Case(lambda: baselines.search_space("biamat-paper", 1), BaselineConfig,
                                   lambda cfg: cards.BIAMAT_BASELINE),
    **{f"biamat_main_results paper --primary {primary}": Case(
        lambda primary=primary: biamat_main_results.search_space("paper", 1, primary), BiaMATConfig,
        by_variant(cards.TABLE2_AT[primary], cards.TABLE2_TRADES[primary])) for primary in cards.TABLE2_PRIMARY},
    **{f"baselines biamat-main-{primary}-paper": Case(
        lambda primary=primary: baselines.search_space(f"biamat-main-{primary}-paper", 1), BaselineConfig,
        lambda cfg, primary=primary: (cards.TABLE2_BASELINE_AT if cfg.training == "pgd_at"
                                      else cards.TABLE2_BASELINE_TRADES)[primary]) for primary in cards.TABLE2_PRIMARY},
    "biamat_oat paper": Case(lambda: biamat_oat.search_space("paper", 1), BiaMATConfig, lambda cfg: cards.TABLE9),
    "biamat_data_density paper": Case(lambda: biamat_data_density.search_space("paper", 1), BaselineConfig,
                                      lambda cfg: cards.TABLE5),
    "biamat_generated_data paper": Case(lambda: biamat_generated_data.biamat_space("paper", 1, None), BiaMATConfig,
                                        lambda cfg: cards.TABLE10),
    "biamat_generated_data paper ([16])": Case(lambda: biamat_generated_data.generated_space("paper", 1, None),
                                               BaselineConfig, lambda cfg: cards.TABLE10_BASELINE),
    "biamat_semi_supervised paper (labeller)": Case(lambda: biamat_semi_supervised.labeller_space("paper", "cifar10"),
                                                    BaselineConfig, lambda cfg: cards.TABLE7_LABELLER),
    "biamat_semi_supervised paper": Case(
        lambda: biamat_semi_supervised.rst_space("paper", 1, "cifar10", ["cifar100", "places365_32", "imagenet32"]),
        BaselineConfig, lambda cfg: cards.TABLE7_RST),
    "biamat_pretraining paper (pre-training)": Case(
        lambda: biamat_pretraining.pretraining_space("paper", 1, "cifar10"), BaselineConfig,
        lambda cfg: cards.TABLE7_PRETRAINING),
    **{f"biamat_pretraining paper ({training} fine-tuning)": Case(
        lambda training=training: biamat_pretraining.fine_tuning_space("paper", 1, "cifar10", {
            cards.PRETRAINED_RUN: {"seed": 0, **biamat_pretraining.fine_tuning_schedule(
                biamat_pretraining.PRESETS["paper"], 64)}}, training), BaselineConfig,
        lambda cfg, card=card: card) for training, card in (("pgd_at", cards.TABLE7_FINE_TUNING),
                                                            ("trades", cards.TABLE8_TRADES))},
    "biamat_robust_dataset paper (AT source)": Case(lambda: biamat_robust_dataset.at_space("paper"), BaselineConfig,
                                                    lambda cfg: cards.TABLE6_SOURCE_AT),
    "biamat_robust_dataset paper (AT+BiaMAT source)": Case(lambda: biamat_robust_dataset.biamat_space("paper"),
                                                           BiaMATConfig, lambda cfg: cards.TABLE6_SOURCE_BIAMAT),
    "biamat_robust_dataset paper": Case(lambda: biamat_robust_dataset.training_space("paper", 1, ["cifar10"]),
                                        BaselineConfig, lambda cfg: cards.TABLE6),
    "afs_comparison paper (FAT)": Case(lambda: afs_comparison.search_space("fat", "paper", 1), FATConfig,
                                       lambda cfg: cards.AFS_FAT),
    "afs_comparison paper (LBGAT)": Case(lambda: afs_comparison.search_space("lbgat", "paper", 1), LBGATConfig,
                                         lambda cfg: cards.AFS_LBGAT),
    "afs_comparison paper (TLA source)": Case(lambda: afs_comparison.tla_source_space("paper", 1), BaselineConfig,
                                              lambda cfg: cards.AFS_TLA_SOURCE),
    "afs_comparison paper (TLA)": Case(lambda: afs_comparison.tla_space("paper", 1, {0: cards.PRETRAINED_RUN}),
                                       TLAConfig, lambda cfg: cards.AFS_TLA),
    "afs_comparison paper --primary cifar100 (LBGAT)": Case(
        lambda: afs_comparison.search_space("lbgat", "paper", 1, "cifar100"), LBGATConfig,
        lambda cfg: cards.AFS_LBGAT_CIFAR100),
    "baselines uiat-paper": Case(lambda: baselines.search_space("uiat-paper", 1), BaselineConfig,
                                 lambda cfg: cards.UIAT_BASELINE),
    "uiat_ablation paper": Case(lambda: uiat_ablation.search_space("paper", 1), UIATConfig,
                                lambda cfg: cards.UIAT_TABLE6),
    "uiat_lambda paper": Case(lambda: uiat_lambda.search_space("paper", 1), UIATConfig, lambda cfg: cards.UIAT_LAMBDA),
    "uiat_eps paper": Case(lambda: uiat_eps.uiat_space("paper", 1), UIATConfig, lambda cfg: cards.UIAT_EPS),
    "uiat_eps paper (TRADES)": Case(lambda: uiat_eps.trades_space("paper", 1), BaselineConfig,
                                    lambda cfg: cards.UIAT_EPS_TRADES),
    "uiat_eps paper (HAT helpers)": Case(lambda: uiat_eps.helper_space("paper", 1), BaselineConfig,
                                         lambda cfg: cards.UIAT_EPS_HELPERS),
    "uiat_eps paper (HAT)": Case(lambda: uiat_eps.hat_space("paper", 1, "uiat-eps-paper-helpers"), HATConfig,
                                 lambda cfg: cards.UIAT_EPS_HAT),
    "uiat_figures paper": Case(lambda: uiat_figures.uiat_space("paper", 1), UIATConfig,
                               lambda cfg: cards.UIAT_FIGURES),
    "uiat_figures paper (baselines)": Case(lambda: uiat_figures.baseline_space("paper", 1), BaselineConfig,
                                           lambda cfg: cards.UIAT_FIGURES_BASELINES),
    "uiat_figures paper (Fig. 2)": Case(lambda: uiat_figures.fig2_uiat_space("paper", 1), UIATConfig,
                                        lambda cfg: cards.UIAT_FIGURES_FIG2),
    "uiat_figures paper (Fig. 2 baseline)": Case(lambda: uiat_figures.fig2_baseline_space("paper", 1), BaselineConfig,
                                                 lambda cfg: cards.UIAT_FIGURES_FIG2_BASELINE),
    "uiat_search paper": Case(lambda: uiat_search.search_space("paper", "uiat"), UIATConfig,
                              lambda cfg: cards.UIAT_SEARCH),
    "uiat_search paper --variant oneoff": Case(lambda: uiat_search.search_space("paper", "oneoff"), UIATConfig,
                                               lambda cfg: cards.UIAT_SEARCH_ONEOFF),
    "uiat_comparison paper": Case(lambda: uiat_comparison.uiat_space("paper", 1), UIATConfig,
                                  lambda cfg: cards.UIAT_TABLE1),
    "uiat_comparison paper (baselines)": Case(lambda: uiat_comparison.baseline_space("paper", 1), BaselineConfig,
                                              lambda cfg: cards.UIAT_TABLE1_BASELINES),
    "uiat_comparison paper (MART)": Case(lambda: uiat_comparison.mart_space("paper", 1), MARTConfig,
                                         lambda cfg: cards.UIAT_TABLE1_MART),
    "uiat_comparison paper (HAT)": Case(
        lambda: uiat_comparison.hat_space("paper", 1, "uiat-comparison-paper-baselines"), HATConfig,
        lambda cfg: cards.UIAT_TABLE1_HAT),
    "uiat_extra_data paper": Case(lambda: uiat_extra_data.uiat_space("paper", 1, None), UIATConfig,
                                  lambda cfg: cards.UIAT_TABLE4),
    "uiat_extra_data paper (baselines)": Case(lambda: uiat_extra_data.baseline_space("paper", 1, None), BaselineConfig,
                                              lambda cfg: cards.UIAT_TABLE4_BASELINES),
    "uiat_extra_data paper (HAT)": Case(
        lambda: uiat_extra_data.hat_space("paper", 1, None, "uiat-extra-data-paper-baselines"), HATConfig,
        lambda cfg: cards.UIAT_TABLE4_HAT),
    "uiat_single_step paper": Case(lambda: uiat_single_step.single_step_space("paper", 1), SingleStepConfig,
                                   lambda cfg: cards.SINGLE_STEP_TABLE5),
    "uiat_single_step paper (GradAlign)": Case(lambda: uiat_single_step.gradalign_space("paper", 1), GradAlignConfig,
                                               lambda cfg: cards.GRADALIGN_TABLE5),
    "uiat_single_step paper (UIAT)": Case(lambda: uiat_single_step.uiat_space("paper", 1), UIATConfig,
                                          lambda cfg: cards.UIAT_TABLE5),
    "afs_extractors paper": Case(lambda: afs_extractors.search_space("paper", 1), ExtractorConfig,
                                 lambda cfg: cards.EXTRACTOR),
    "afs_extractors paper-cifar100": Case(lambda: afs_extractors.search_space("paper-cifar100", 1), ExtractorConfig,
                                          lambda cfg: cards.EXTRACTOR_CIFAR100),
    "afs_ablation paper": Case(lambda: afs_ablation.search_space("paper", 1), ExtractorConfig,
                               lambda cfg: cards.AFS_ABLATION),
    **{f"afs_merger {table} {preset}": Case(
        lambda table=table, preset=preset: afs_merger.search_space(table, preset, f"afs-extractors-{preset}",
                                                                   afs_merger.default_stack(preset), 1),
        MergerConfig, lambda cfg, card=card | data: card)
       for table, card in (("table2", cards.MERGER), ("table3", cards.MERGER_TABLE3), ("search", cards.MERGER_SEARCH),
                           ("default", cards.MERGER_DEFAULT))
       for preset, data in (("paper", {}), ("paper-cifar100", cards.MERGER_ON_CIFAR100))},
}


def same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float) or isinstance(actual, float):
        return isinstance(actual, (int, float)) and abs(actual - expected) <= 1e-9 * max(1.0, abs(expected))
    if isinstance(expected, (list, tuple)):
        return isinstance(actual, tuple) and len(actual) == len(expected) and all(map(same, actual, expected))
    return actual == expected


def mismatches(name: str, configs: list[TrainConfig], card_of: Callable[[Any], cards.Card]) -> list[str]:
    problems = []
    taken: dict[tuple[int, str], list[Any]] = {}
    for cfg in configs:
        card = card_of(cfg)
        fields = {f.name for f in dataclasses.fields(cfg)}
        if fields != set(card):
            problems.append(f"{name}: card fields differ from {type(cfg).__name__}'s: missing from the card "
                            f"{sorted(fields - set(card))}, unknown {sorted(set(card) - fields)}")
            continue
        for field, (expected, source) in card.items():
            actual = getattr(cfg, field)
            if isinstance(expected, cards.Axis):
                taken.setdefault((id(card), field), []).append(actual)
                ok = any(same(actual, v) for v in expected.values)
                shown = f"one of {list(expected.values)}"
            elif isinstance(expected, cards.Rule):
                ok, shown = same(actual, expected.expected(cfg)), f"{expected.expected(cfg)!r} ({expected.text})"
            else:
                ok, shown = same(actual, expected), repr(expected)
            if not ok:
                problems.append(f"{name}: {field} = {actual!r}, expected {shown} [{source}]")
    for cfg in configs:  # every value of an axis is trained
        for field, (expected, source) in card_of(cfg).items():
            seen = taken.get((id(card_of(cfg)), field))
            if isinstance(expected, cards.Axis) and seen is not None:
                for value in expected.values:
                    if not any(same(s, value) for s in seen):
                        problems.append(f"{name}: no trial has {field} = {value!r} [{source}]")
    return sorted(set(problems))


@pytest.mark.parametrize("name", sorted(CASES))
def test_paper_preset_matches_its_recipe_card(name):
    case = CASES[name]
    configs = trial_configs(case.config_cls, case.space())
    assert configs
    problems = mismatches(name, configs, case.card)
    assert not problems, "\n".join(problems)


def test_a_changed_preset_fails_with_field_value_and_source():
    configs = trial_configs(BiaMATConfig, {**pi_ablation.search_space("paper", 1), "weight_decay": 5e-4})
    problems = mismatches("pi_ablation paper", configs, CASES["pi_ablation paper"].card)
    assert "pi_ablation paper: weight_decay = 0.0005, expected 0.0002 [BiaMAT (Lee et al., WACV 2023) App. E: " \
           "weight decay 2e-4]" in problems
    missing_axis = trial_configs(BiaMATConfig, {**pi_ablation.search_space("paper", 1), "pi": 0.5})
    assert any("no trial has pi = 0.45" in p for p in mismatches("x", missing_axis, CASES["pi_ablation paper"].card))


def per_epoch_lr(cfg: TrainConfig, steps_per_epoch: int = 391) -> list[float]:
    """The LR of each epoch's first and last step (they must agree: these schedules decay at epoch boundaries)."""
    lrs = []
    for epoch in range(cfg.epochs):
        first, last = (cfg.lr * lr_factor(cfg, epoch * steps_per_epoch + i, steps_per_epoch)
                       for i in (0, steps_per_epoch - 1))
        assert first == pytest.approx(last), f"epoch {epoch} changes its LR mid-epoch"
        lrs.append(first)
    return lrs


def test_biamat_paper_lr_per_epoch_equals_the_reference():
    configs = {cfg.variant: cfg for cfg in trial_configs(BiaMATConfig, pi_ablation.search_space("paper", 1))}
    # TRADES+BiaMAT reference: 99 epochs at 0.1, 5 at 0.01, 6 at 0.001 ("decay at the 100th and 105th epoch").
    assert per_epoch_lr(configs["trades"]) == pytest.approx([0.1] * 99 + [0.01] * 5 + [0.001] * 6)
    # AT+BiaMAT: decays after 60% and 90% of the steps, i.e. at the start of epochs 61 and 91 (1-based).
    assert per_epoch_lr(configs["at"]) == pytest.approx([0.1] * 60 + [0.01] * 30 + [0.001] * 10)


@pytest.mark.parametrize("setting", sorted(TABLE12), ids="-".join)
def test_every_table12_setting_is_a_valid_search_whose_domain_holds_the_papers_values(setting):
    dataset, variant, aux = setting
    alpha, pi = TABLE12[setting]
    configs = trial_configs(BiaMATConfig, biamat_search.search_space("paper", variant, dataset, [aux]))
    assert {(c.dataset, c.variant, c.aux_datasets) for c in configs} == {(dataset, variant, (aux,))}
    assert min(c.alpha for c in configs) <= alpha <= max(c.alpha for c in configs)
    assert min(c.pi for c in configs) <= pi <= max(c.pi for c in configs)
    # App. E: TRADES+BiaMAT on CIFAR-100 uses plain adversarial CE for the high-confidence auxiliary samples.
    assert {c.trades_aux_high for c in configs} == {"adv_ce" if setting[:2] == ("cifar100", "trades") else "kl"}
    assert {c.select_on for c in configs} == {"holdout"}
