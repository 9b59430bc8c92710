"""The method registry (trainables/methods/registry.py) is complete and consistent: every registered method has a
recipe card, property tests and a cost entry, and its trainable, config class and speed names fit it. A method added to
the registry without them fails here, with what is missing."""

from __future__ import annotations

import ast
import dataclasses
import sys
from pathlib import Path
from typing import Any

import pytest

import recipe_cards
from launch.cost import NO_PUBLISHED_SPEED, PAPER_SPEEDS
from trainables.config import RunSettings, TrainConfig
from trainables.methods.registry import METHODS, UnknownMethodError, method, method_of_config

TESTS = Path(__file__).resolve().parent

# Values a config has no default for: the earlier sweep whose trained models the method loads.
REQUIRED: dict[str, dict[str, Any]] = {"afs": {"extractor_sweep": "x"}, "hat": {"helper_sweep": "x"}}

# (method, config values, speed name): every branch of each method's speed naming, with the names that
# launch/cost.py's isinstance chain (``method_of``, replaced by ``MethodSpec.speed_name``) gave these configs.
SPEED_NAMES: list[tuple[str, dict[str, Any], str]] = [
    ("baseline", {"training": "standard"}, "standard"),
    ("baseline", {"training": "pgd_at", "eps": 0}, "standard"),
    ("baseline", {"training": "trades", "eps": 0}, "standard"),
    ("baseline", {"training": "pgd_at"}, "pgd_at"),
    ("baseline", {"training": "trades"}, "trades"),
    ("afs_extractor", {"eps": 0}, "standard"),
    ("afs_extractor", {"eps": 3 / 255}, "pgd_at"),
    ("afs_extractor", {"training": "trades"}, "trades"),
    ("afs", {}, "afs_merger"),
    ("biamat", {"variant": "at"}, "at_biamat"),
    ("biamat", {"variant": "trades", "attack_bn": "eval"}, "trades_biamat"),
    ("uiat", {}, "uiat"),
    ("uiat", {"oneoff": True, "components": "uag+fr"}, "uiat_oneoff"),
    ("uiat", {"components": "fr+iam"}, "iat"),
    ("uiat", {"components": "none", "oneoff": True}, "iat"),
    ("uiat", {"training_attack": "n_fgsm", "oneoff": True, "components": "uag"}, "n_fgsm_uiat_oneoff"),
    ("uiat", {"training_attack": "rs_fgsm"}, "rs_fgsm_uiat"),
    ("uiat", {"training_attack": "gradalign", "align_lam": 0, "oneoff": True, "components": "uag"}, "fgsm_uiat_oneoff"),
    ("uiat", {"training_attack": "gradalign", "components": "fr"}, "gradalign_iat"),
    ("single_step", {"variant": "rs_fgsm"}, "rs_fgsm"),
    ("single_step", {"variant": "n_fgsm"}, "n_fgsm"),
    ("mart", {}, "mart"),
    ("gradalign", {}, "gradalign"),
    ("gradalign", {"lam": 0}, "fgsm"),
    ("hat", {}, "hat"),
    ("fat", {"variant": "at"}, "fat_at"),
    ("fat", {}, "fat_trades"),
    ("lbgat", {}, "lbgat"),
    ("tla", {}, "tla"),
]

# The convention for property tests: each registered method lists here the test functions ("FILE::FUNCTION" under
# tests/) that check its own properties (its loss against the paper's equations, its attack, its state), as opposed
# to the smoke tests every method gets. A method registered without an entry, or naming a test that does not exist,
# fails test_every_method_names_its_property_tests.
PROPERTY_TESTS: dict[str, tuple[str, ...]] = {
    "baseline": (
        "test_hat.py::test_hat_at_gamma_zero_is_trades",  # the TRADES loss HAT extends
        "test_afs.py::test_random_eps_training_draws_a_radius_per_batch_in_the_range",
        "test_selection.py::test_standard_training_keeps_its_best_clean_epoch_whatever_the_robust_scores",
        "test_science.py::test_pgd_at_buys_robustness_with_clean_accuracy",
    ),
    "afs_extractor": (
        "test_afs.py::test_delta_z_is_the_largest_logit_change_in_the_ball",
        "test_afs.py::test_wrn_28_10_macs_match_table_6",
    ),
    "afs": (
        "test_afs.py::test_merger_training_changes_no_extractor_and_gives_none_a_gradient",
        "test_afs.py::test_merger_attack_targets_the_whole_stack",
        "test_afs.py::test_alpha_decides_what_is_attacked",
        "test_afs.py::test_weighted_alpha_is_equation_5",
    ),
    "biamat": (
        "test_biamat.py::test_gate_routes_exactly_the_samples_below_omega_to_uniform_on_the_primary_head",
        "test_biamat.py::test_omega_is_set_once_after_warmup_and_survives_a_resume",
        "test_biamat.py::test_auxiliary_term_is_averaged_over_all_auxiliary_samples",
        "test_biamat.py::test_at_attack_pushes_low_confidence_auxiliary_samples_away_from_uniform",
    ),
    "uiat": (
        "test_uiat.py::test_z_stays_in_the_inverse_ball_and_only_classes_in_the_batch_move",
        "test_uiat.py::test_momentum_buffer_follows_eq8_exactly_before_and_after_T",
        "test_uiat.py::test_kl_is_p_to_adversarial_and_no_gradient_reaches_the_target",
        "test_uiat.py::test_one_off_generates_inverse_examples_only_in_epoch_T_prime",
        "test_uiat_single_step.py::test_at_lambda_zero_the_loss_is_the_single_step_methods",
    ),
    "hat": (
        "test_hat.py::test_the_helper_term_is_ce_towards_the_helpers_labels_on_the_helper_examples",
        "test_hat.py::test_helper_examples_stretch_the_adversarial_perturbation_h_times",
        "test_hat.py::test_the_helper_is_frozen_outside_the_optimiser_and_the_checkpoint",
    ),
    "mart": (
        "test_comparison_methods.py::test_boosted_cross_entropy_is_ce_minus_log_one_minus_the_largest_wrong_probability",
        "test_comparison_methods.py::test_mart_on_a_one_hot_confident_clean_prediction_is_the_boosted_ce_alone",
        "test_comparison_methods.py::test_the_misclassification_weight_passes_its_gradient_to_the_model",
    ),
    "single_step": (
        "test_comparison_methods.py::test_rs_fgsm_points_stay_in_the_eps_ball_and_the_image_range",
        "test_comparison_methods.py::test_n_fgsm_points_reach_beyond_the_eps_ball_but_not_beyond_three_eps",
    ),
    "gradalign": (
        "test_comparison_methods.py::test_gradalign_at_lambda_zero_is_fgsm_training",
        "test_comparison_methods.py::test_gradalign_regulariser_reaches_the_weights_through_both_input_gradients",
        "test_comparison_methods.py::test_alignment_averages_one_minus_cosine_over_samples_with_nonzero_gradients",
    ),
    "fat": (
        "test_fat_lbgat.py::test_each_point_stops_tau_steps_after_it_is_first_misclassified",
        "test_fat_lbgat.py::test_a_point_never_misclassified_takes_every_step_of_plain_pgd",
        "test_fat_lbgat.py::test_frozen_points_do_not_change_the_others_and_every_point_stays_in_the_ball",
        "test_fat_lbgat.py::test_dynamic_tau_follows_the_fat_codes_schedules",
    ),
    "lbgat": (
        "test_fat_lbgat.py::test_the_lbgat_loss_is_the_authors_formula",
        "test_fat_lbgat.py::test_lbgat_trains_both_networks_and_the_guide_reaches_the_teacher",
        "test_fat_lbgat.py::test_the_teacher_is_in_the_checkpoint_and_comes_back_on_resume",
    ),
    "tla": (
        "test_tla.py::test_the_triplet_loss_is_the_authors_formula",
        "test_tla.py::test_the_negative_is_the_most_similar_image_of_another_class",
        "test_tla.py::test_the_noisy_positive_is_the_image_plus_rounded_uniform_noise_on_the_8_bit_grid",
        "test_tla.py::test_the_same_class_image_has_the_anchors_label_and_any_image_of_that_class_can_come",
        "test_tla.py::test_the_loss_is_pgd_at_plus_the_weighted_triplets_and_the_draws_depend_on_the_epoch_only",
        "test_tla.py::test_the_triplets_train_the_features_and_leave_the_head_to_the_cross_entropy",
    ),
}

def config_of(name: str, values: dict[str, Any] | None = None) -> TrainConfig:
    return method(name).config.from_dict({**REQUIRED.get(name, {}), **(values or {})})


def test_the_registry_names_the_methods_the_sweeps_tag():
    assert list(METHODS) == ["baseline", "afs_extractor", "afs", "biamat", "uiat", "hat", "mart", "single_step",
                             "gradalign", "fat", "lbgat", "tla"]
    for name, spec in METHODS.items():
        # The registry names each method's config and code without importing the code (configs are checked before
        # torch loads); the Method class it imports names the same.
        assert spec.name == name == spec.method.name and spec.paper
        assert spec.config is spec.method.Config


def test_an_unknown_name_is_refused_listing_the_registered_ones():
    with pytest.raises(UnknownMethodError) as raised:
        method("pgd_at")
    assert isinstance(raised.value, LookupError)
    assert "'pgd_at'" in str(raised.value) and all(name in str(raised.value) for name in METHODS)


def test_a_config_no_method_trains_is_refused_listing_the_config_classes():
    with pytest.raises(UnknownMethodError, match="TrainConfig.*BaselineConfig \\(baseline\\)"):
        method_of_config(TrainConfig())


def test_the_exact_config_type_picks_the_method():
    assert method_of_config(config_of("afs_extractor")) is METHODS["afs_extractor"]  # a BaselineConfig subclass
    assert method_of_config(config_of("baseline")) is METHODS["baseline"]


@pytest.mark.parametrize("name", METHODS)
def test_each_trainable_is_its_modules_and_runs_its_method(name, monkeypatch):
    spec = METHODS[name]
    module = sys.modules[spec.method.__module__]
    assert spec.trainable.__module__ == module.__name__
    ran = []
    monkeypatch.setattr(module, "run_trial", lambda config, method_cls, settings: ran.append(method_cls))
    spec.trainable({}, RunSettings(tracking_uri="sqlite:///unused.db", experiment="x", git_commit="x"))
    assert ran == [spec.method]


@pytest.mark.parametrize("name", METHODS)
def test_each_config_class_round_trips_its_defaults(name):
    spec = METHODS[name]
    cfg = config_of(name)
    assert cfg == spec.config(**REQUIRED.get(name, {}))
    assert spec.config.from_dict(dataclasses.asdict(cfg)) == cfg


@pytest.mark.parametrize(("name", "values", "expected"), SPEED_NAMES, ids=[
    f"{name}-{expected}-{i}" for i, (name, _, expected) in enumerate(SPEED_NAMES)])
def test_speed_names_are_those_the_cost_estimate_gave_before_the_registry(name, values, expected):
    cfg = config_of(name, values)
    spec = method_of_config(cfg)
    assert spec is METHODS[name]
    assert spec.speed_name(cfg) == expected


# --- completeness ----------------------------------------------------------------------------------------------------


def recipe_card_fields() -> list[set[str]]:
    """The field names of every card in tests/recipe_cards.py (a dict of field -> (expected, source))."""
    return [set(card) for card in vars(recipe_cards).values()
            if isinstance(card, dict) and card
            and all(isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], str)
                    for entry in card.values())]


def test_every_method_has_a_recipe_card():
    """A card names every field of its config class (tests/test_recipes.py holds the paper presets to it)."""
    cards = recipe_card_fields()
    missing = [name for name, spec in METHODS.items()
               if {field.name for field in dataclasses.fields(spec.config)} not in cards]
    assert not missing, f"no recipe card in tests/recipe_cards.py names exactly the fields of: {missing}"


def functions_in(file: str) -> set[str]:
    tree = ast.parse((TESTS / file).read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def test_every_method_names_its_property_tests():
    assert set(PROPERTY_TESTS) == set(METHODS), (
        f"methods without property tests in PROPERTY_TESTS: {sorted(set(METHODS) - set(PROPERTY_TESTS))}; "
        f"entries of no registered method: {sorted(set(PROPERTY_TESTS) - set(METHODS))}")
    absent = []
    for name, tests in PROPERTY_TESTS.items():
        assert tests, f"{name} lists no property test"
        for test in tests:
            file, _, function = test.partition("::")
            if not (TESTS / file).is_file() or function not in functions_in(file):
                absent.append(f"{name}: {test}")
    assert not absent, f"property tests that do not exist: {absent}"


def test_every_method_has_speed_names_covered_here():
    uncovered = set(METHODS) - {name for name, _, _ in SPEED_NAMES}
    assert not uncovered, f"methods with no SPEED_NAMES row (a config and the speed name it gets): {sorted(uncovered)}"


def test_every_method_has_a_cost_entry():
    """A paper's speed for at least one model under one of its speed names, or an entry saying why there is none."""
    published = {speed_name for speed_name, _ in PAPER_SPEEDS}
    without = [name for name in METHODS
               if not {expected for method_name, _, expected in SPEED_NAMES if method_name == name}
               & (published | set(NO_PUBLISHED_SPEED))]
    assert not without, f"methods with no PAPER_SPEEDS and no NO_PUBLISHED_SPEED entry (launch/cost.py): {without}"


def test_no_published_speed_entries_name_speeds_that_have_none():
    named = {expected for _, _, expected in SPEED_NAMES}
    published = {speed_name for speed_name, _ in PAPER_SPEEDS}
    assert set(NO_PUBLISHED_SPEED) <= named - published
    assert all(NO_PUBLISHED_SPEED.values())
