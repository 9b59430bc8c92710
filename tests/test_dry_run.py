"""``--dry-run`` on every sweep script and preset: the trials it lists, nothing started or written, bad values refused."""

from __future__ import annotations

import contextlib
import io
import math
import re
from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest
import ray
import torch
from mlflow.tracking import MlflowClient

from launch import optuna_search
from launch.checks import trial_configs
from launch.cost import NO_PUBLISHED_SPEED, cost_lines, reference_speeds
from sweeps import (
    afs_ablation,
    afs_comparison,
    afs_extractors,
    afs_merger,
    baselines,
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
    uiat_eps,
    uiat_lambda,
    uiat_search,
)
from trainables.methods.configs import BiaMATConfig
from trainables.tracking import SWEEP_TAG, TrialRun, experiment_id

SEEDS = 2
GRID_SCRIPTS = [pi_ablation, biamat_labels, biamat_main_results, biamat_oat, biamat_data_density, baselines,
                afs_extractors, afs_ablation, uiat_ablation, uiat_lambda]


def grid_size(space: dict) -> int:
    return math.prod(len(v["grid_search"]) for v in space.values() if isinstance(v, dict) and set(v) == {"grid_search"})


def presets(module: ModuleType) -> list[str]:
    """The script's --preset choices, read from its --help (so renamed or added presets are covered)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        module.main(["--help"])
    return re.search(r"--preset \{([^}]*)\}", out.getvalue()).group(1).split(",")


# (script, argv before the flags, the trial count of each sweep the script runs, given the preset)
CASES: list[tuple[ModuleType, list[str], Callable[[str], list[int]]]] = [
    *[(m, ["--seeds", str(SEEDS)], lambda p, m=m: [grid_size(m.search_space(p, SEEDS))]) for m in GRID_SCRIPTS],
    (uiat_eps, ["--seeds", str(SEEDS)],
     lambda p: [grid_size(uiat_eps.uiat_space(p, SEEDS)), grid_size(uiat_eps.trades_space(p, SEEDS)),
                grid_size(uiat_eps.helper_space(p, SEEDS)), grid_size(uiat_eps.hat_space(p, SEEDS, "h"))]),
    (biamat_generated_data, ["--seeds", str(SEEDS)],
     lambda p: [grid_size(biamat_generated_data.biamat_space(p, SEEDS, None)),
                grid_size(biamat_generated_data.generated_space(p, SEEDS, None))]),
    (biamat_semi_supervised, ["--seeds", str(SEEDS)],  # before labelling, one row per auxiliary set it draws from
     lambda p: [1, grid_size(biamat_semi_supervised.rst_space(
         p, SEEDS, "cifar10", list(dict.fromkeys(aux for aux, _ in biamat_semi_supervised.rows(p, "cifar10")))))]),
    (biamat_pretraining, ["--seeds", str(SEEDS)],  # before pre-training, one placeholder fine-tuning trial each
     lambda p: [grid_size(biamat_pretraining.pretraining_space(p, SEEDS, "cifar10")), 1, 1]),
    (biamat_robust_dataset, ["--seeds", str(SEEDS)],  # before the robust datasets, one row of the data they come from
     lambda p: [1, 1, grid_size(biamat_robust_dataset.training_space(p, SEEDS, ["x"]))]),
    (afs_comparison, ["--seeds", str(SEEDS)], lambda p: [SEEDS, SEEDS, SEEDS, SEEDS]),
    (biamat_search, ["--asha"], lambda p: [biamat_search.SEARCH[p]["num_samples"]]),
    (uiat_search, ["--asha"], lambda p: [uiat_search.SEARCH[p]["num_samples"]]),
    *[(afs_merger, [table, "--seeds", str(SEEDS)],
       lambda p, table=table: [grid_size(afs_merger.search_space(table, p, "x", "000111111", SEEDS))])
      for table in ("table2", "table3", "default")],
    (afs_merger, ["search"], lambda p: [afs_merger.SEARCH_SAMPLES[p]]),
]
PARAMS = [pytest.param(module, argv, preset, trials, id=f"{module.__name__.split('.')[-1]}-{' '.join(argv)}-{preset}")
          for module, argv, trials in CASES for preset in presets(module)]


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    """An empty working directory, and no environment that points the run settings elsewhere: every default path
    (./data, ./mlflow.db, ./ray_results, ./optuna.db) is under it."""
    for name in ("RAY_ADDRESS", "ADVSWEEP_STORAGE", "MLFLOW_TRACKING_URI", "ADVSWEEP_DATA", "ADVSWEEP_OPTUNA_STORAGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    # No Ray may start: asserted on ray.init itself, since another test on this xdist worker may have left the
    # session's Ray running (ray.is_initialized() would then say nothing about this test).
    monkeypatch.setattr(ray, "init", started_ray)
    return tmp_path


def started_ray(*args, **kwargs):
    raise AssertionError("ray.init was called: the code under test started Ray")


def dry_run(module: ModuleType, argv: list[str], capsys) -> str:
    module.main([*argv, "--dry-run"])
    return capsys.readouterr().out


@pytest.mark.parametrize("module, argv, preset, trials", PARAMS)
def test_dry_run_lists_the_grid_and_starts_nothing(module, argv, preset, trials, empty_cwd, capsys):
    out = dry_run(module, [*argv, "--preset", preset], capsys)
    assert [int(n) for n in re.findall(r"^trials: (\d+)$", out, re.MULTILINE)] == trials(preset)
    assert list(empty_cwd.iterdir()) == []  # no mlflow.db, ray_results, optuna.db, data folder (and no Ray)
    if "smoke" in preset:
        assert "runs on a CPU in minutes, no GPU estimate" in out
    else:
        assert "GPU estimate: " in out


def test_a_quarter_budget_of_table_13_prints_its_plan_and_both_costs(empty_cwd, capsys):
    out = dry_run(pi_ablation, ["--preset", "paper", "--budget", "0.25"], capsys)
    assert "GPU estimate: about 957 V100-hours" in out  # the full grid, as without a budget
    assert "cost: about 239 V100-hours budgeted, against 957 for the full grid" in out
    assert "variant=at: 6 rows of 100 epochs, rung(s) at epoch 10" in out
    assert "ranks before the first LR decay (epoch 61)" in out and "ranks before the first LR decay (epoch 100)" in out
    assert list(empty_cwd.iterdir()) == []
    # The same budget in GPU-hours, and a budget that ranks after the decay at a price.
    assert "cost: about 239 V100-hours budgeted" in dry_run(pi_ablation, ["--preset", "paper", "--budget-hours",
                                                                          "239.3"], capsys)
    assert "variant=at: 6 rows of 100 epochs, rung(s) at epoch 61 with reduction factor 3" in dry_run(
        pi_ablation, ["--preset", "paper", "--budget", "0.8"], capsys)
    with pytest.raises(SystemExit, match="--budget 0.05 is too small for variant=at"):
        dry_run(pi_ablation, ["--preset", "paper", "--budget", "0.05"], capsys)
    with pytest.raises(SystemExit, match="--budget pauses each trial at a rung until its whole group \\(6 trials\\)"):
        dry_run(pi_ablation, ["--preset", "paper", "--budget", "0.8", "--concurrency", "4"], capsys)
    # A bad value is the checks' one-line refusal, not a traceback from planning the budget.
    with pytest.raises(SystemExit, match="error: train_n=128 leaves 0 images to train on"):
        dry_run(uiat_search, ["--budget", "0.9", "--set", "train_n=128"], capsys)
    with pytest.raises(SystemExit, match="leave out --asha"):
        dry_run(uiat_search, ["--asha", "--budget", "0.9"], capsys)


def test_a_budget_reaches_every_sweep_of_a_multi_sweep_script_before_the_first_starts(empty_cwd, capsys):
    """uiat_eps.py checks its four sweeps before the first starts: --budget plans each sweep that ranks rows there,
    and leaves the helper sweep (one standard-training model per seed, nothing to rank) whole, saying so."""
    out = dry_run(uiat_eps, ["--preset", "paper", "--budget", "0.5"], capsys)
    assert out.count("budget: 0.50 of the full grid's trial-epochs") == 3
    assert "oneoff=True: 3 rows of 100 epochs, rung(s) at epoch 25" in out
    assert "note: --budget leaves sweep uiat-eps-paper-helpers whole" in out
    assert list(empty_cwd.iterdir()) == []


def test_pi_ablation_paper_costs_about_960_v100_hours(empty_cwd, capsys):
    out = dry_run(pi_ablation, ["--preset", "paper"], capsys)
    # 6 x AT+BiaMAT (56.5 h) + 6 x TRADES+BiaMAT (103 h), BiaMAT appendix Table 11.
    assert "GPU estimate: about 957 V100-hours" in out
    assert "56.5 h each" in out and "103 h each" in out
    assert "note: a run would stop here until the data is there: error: cifar10 (train) not found" in out
    assert "error: imagenet32 (train) not found" in out


def test_the_dry_run_says_what_difference_the_seeds_and_points_resolve(empty_cwd, capsys):
    # Table 13 on the paper preset with three seeds: 12 rows x 3 seeds, 10,000 points each. Two rows' means over
    # 30,000 point-evaluations each: 1.96 x sqrt(2 x 0.25 / 30,000) = 0.8 percentage points.
    out = dry_run(pi_ablation, ["--preset", "paper", "--seeds", "3"], capsys)
    assert "trials: 36" in out
    assert ("resolution: two rows of its table differ at 95% from about 0.8 percentage points of accuracy apart "
            "(10000 final points x 3 seed(s) per row;") in out
    # The main job: 128 points and one seed cannot tell rows within 12 points apart.
    assert "about 12.2 percentage points of accuracy apart (128 final points x 1 seed(s)" in dry_run(pi_ablation, [],
                                                                                                  capsys)


def log_pilot_sweep(uri: str, flips: dict[str, int], n: int = 1000) -> None:
    """A finished pi-ablation-like sweep named "pilot" with one seed per row; the row ``flips`` names is right on
    the reference row's points except ``count`` of them flipped (what the trials' final protocol logs per point)."""
    client = MlflowClient(uri)
    parent = client.create_run(experiment_id(client, "biamat"), run_name="pilot", tags={SWEEP_TAG: "pilot"})
    client.set_terminated(parent.info.run_id)
    rng = np.random.default_rng(0)
    indices = torch.from_numpy(rng.permutation(5 * n)[:n])
    reference = torch.from_numpy(rng.random(n) < 0.5)
    for row, count in flips.items():
        correct = reference.clone()
        correct[:count] = ~correct[:count]
        run = TrialRun.open(uri, "biamat", run_name=f"biamat {row} seed=0", params={"seed": 0}, tags={},
                            trial_id=row, parent_run_id=parent.info.run_id)
        run.log_points({"best/autoattack": correct}, indices)
        run.finish()


def test_the_resolution_is_measured_on_a_finished_sweeps_point_by_point_agreement(empty_cwd, capsys):
    uri = f"sqlite:///{empty_cwd / 'pilot.db'}"
    # Rows pi=0.5 and pi=0.6 disagree with pi=0.45 on 100 and 300 of 1000 points, and with each other on 200:
    # d = 0.2, and with 10,000 points x 3 seeds the paired half-width is 1.96 x sqrt(0.2 / 30,000) = 0.5 points,
    # below the 0.8 of the binomial worst case.
    log_pilot_sweep(uri, {"pi=0.45": 0, "pi=0.5": 100, "pi=0.6": 300})
    out = dry_run(pi_ablation, ["--preset", "paper", "--seeds", "3", "--tracking-uri", uri,
                                "--agreement-from", "pilot"], capsys)
    assert ("resolution: two rows of its table differ at 95% from about 0.5 percentage points of accuracy apart "
            "(10000 final points x 3 seed(s) per row; paired on the same points, as --stats tests them: the rows of "
            "sweep 'pilot' disagreed on 20.0% of their points under best/autoattack, 3 pair(s) of runs)") in out
    # Without the flag, a sweep of the dry run's own name is measured when the store has one; here none: the
    # worst case, and nothing is created.
    assert "binomial variance at 50%" in dry_run(pi_ablation, ["--preset", "paper", "--tracking-uri", uri], capsys)
    with pytest.raises(SystemExit, match="--agreement-from: no sweep named 'nope'"):
        dry_run(pi_ablation, ["--tracking-uri", uri, "--agreement-from", "nope"], capsys)
    assert not (empty_cwd / "mlflow.db").exists()


def test_imgnet100_main_results_cost_appendix_table_11s_wrn_16_10_hours(empty_cwd, capsys):
    out = dry_run(biamat_main_results, ["--preset", "paper", "--primary", "imgnet100"], capsys)
    # 2 x AT+BiaMAT on WRN-16-10 (196 h, BiaMAT appendix Table 11); the paper times no ImgNet100 TRADES run.
    assert "GPU estimate: about 392 V100-hours" in out and "196 h each" in out
    assert "no reference speed for: 2 x trades_biamat wrn-16-10 on imgnet100" in out

def test_a_search_prints_its_domains(empty_cwd, capsys):
    out = dry_run(uiat_search, ["--preset", "paper"], capsys)
    assert "lam ~ uniform(1, 8)" in out and "inv_step ~ loguniform(" in out
    assert "components=uag+fr+iam" in out


def test_merger_plans_before_its_extractor_sweep_exists(empty_cwd, capsys):
    out = dry_run(afs_merger, ["table2"], capsys)
    assert "note: no extractor sweep 'afs-extractors-smoke' yet" in out
    assert "planned with the paper's stack 000111111" in out
    assert list(empty_cwd.iterdir()) == []


@pytest.mark.parametrize("module, space_fn", [(pi_ablation, "search_space"), (uiat_eps, "trades_space"),
                                              (uiat_search, "search_space")])
def test_a_bad_value_still_fails(module, space_fn, empty_cwd, monkeypatch, capsys):
    real = getattr(module, space_fn)
    monkeypatch.setattr(module, space_fn, lambda *args: {**real(*args), "lr": -1})
    with pytest.raises(SystemExit, match=r"error: lr=-1.0 must be positive"):
        module.main(["--dry-run"])
    assert "trials:" not in capsys.readouterr().out


def test_measured_speeds_are_preferred_to_the_papers(tmp_path):
    (tmp_path / "h100.csv").write_text("device,method,model,min_per_epoch\nH100,at_biamat,wrn-28-10,10\n")
    trials = trial_configs(BiaMATConfig, pi_ablation.search_space("paper", 1))
    lines = cost_lines(trials, reference_speeds(tmp_path))
    assert lines[0] == "GPU estimate: about 100 H100-hours + 618 V100-hours, one GPU per trial"
    assert "measured on H100, h100.csv" in lines[1] and "BiaMAT appendix Table 11" in lines[2]


def test_a_method_no_paper_times_is_listed_once_with_the_reason(tmp_path):
    from trainables.methods.configs import MARTConfig

    trials = [MARTConfig.from_dict({"dataset": "cifar10", "model": model}) for model in ("resnet18", "wrn-34-10")]
    lines = cost_lines(trials, reference_speeds(tmp_path))
    assert lines == ["GPU estimate: none",
                     "no reference speed for: 1 x mart resnet18 on cifar10, 1 x mart wrn-34-10 on cifar10",
                     f"  mart: {NO_PUBLISHED_SPEED['mart']}"]


def test_a_real_search_opens_its_study_after_the_checks_and_before_ray(empty_cwd, monkeypatch):
    class StudyOpened(Exception):
        pass

    def build_search(*args, **kwargs):
        raise StudyOpened

    monkeypatch.setattr(optuna_search, "build_search", build_search)
    uiat_search.main(["--dry-run"])  # a dry run never opens it
    with pytest.raises(StudyOpened):  # and empty_cwd's ray.init would have raised first
        uiat_search.main([])
