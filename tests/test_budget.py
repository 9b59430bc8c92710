"""Budgeted sweeps (``--budget``, launch/budget.py and launch/rungs.py): the plan a budget becomes, the synchronous
rungs that carry it out, and the tables that mark what they stopped."""

from __future__ import annotations

import pytest
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from test_benchmarks import load_script

from launch.budget import cost_fraction, landmark_epoch, plan_group
from launch.cli import run_parser
from launch.resume import BUDGET_TAG, check_same_settings
from launch.rungs import RungScheduler, group_of
from trainables.config import ConfigError, TrainConfig
from trainables.methods.configs import BiaMATConfig
from trainables.tracking import EPOCH_METRIC, RUNG_SCORE

fidelity = load_script("budget_fidelity")
# BiaMAT's AT recipe (appendix E): 100 epochs, decays at 60% and 90%, 5 warm-up epochs.
AT = BiaMATConfig(epochs=100, lr_milestones=(0.6, 0.9), warmup_epochs=5)


def test_the_schedule_rung_sits_right_after_the_first_decay_when_the_budget_pays_for_it():
    assert landmark_epoch(AT) == 61  # epochs 1-60 at 0.1
    plan = plan_group("variant=at", 6, AT, 0.8, "schedule")
    # (61 x 6 + 39 x 2) / 600 = 0.74: the smallest reduction factor (keep the most rows) that fits 0.8.
    assert (plan.rungs, plan.reduction) == ((61,), 3)
    assert plan.fraction == pytest.approx(0.74) == cost_fraction(6, 100, (61,), 3)
    assert "ranks before" not in plan.describe()


def test_a_smaller_budget_ranks_as_late_as_it_can_and_says_it_ranks_before_the_decay():
    plan = plan_group("variant=at", 6, AT, 0.25, "schedule")
    assert plan.fraction <= 0.25 and plan.rungs[0] > AT.warmup_epochs
    assert plan_group("variant=at", 6, AT, 0.25, "schedule").rungs == (10,)  # (10 x 6 + 90) / 600 = 0.25
    assert "ranks before the first LR decay (epoch 61)" in plan.describe()
    assert "--budget 0.68 --rungs schedule ranks right after it" in plan.describe()
    epochs = plan_group("variant=at", 6, AT, 0.25, "epochs")
    assert epochs.fraction <= 0.25 and epochs.reduction == 3
    assert all(b == 3 * a for a, b in zip(epochs.rungs, epochs.rungs[1:]))  # ASHA's geometric rungs


def test_a_decay_inside_the_warm_up_puts_the_schedule_rung_right_after_the_warm_up():
    early = BiaMATConfig(epochs=20, warmup_epochs=5, lr_milestones=(3,))  # decays in epoch 3, warm-up to epoch 5
    plan = plan_group("all trials", 4, early, 0.9, "schedule")
    assert plan.rungs == (6,) and "ranks before" not in plan.describe()


def test_a_budget_no_plan_meets_is_refused_with_the_smallest_that_works():
    with pytest.raises(ConfigError, match=r"pass --budget 0\.\d\d or more") as refused:
        plan_group("variant=at", 6, AT, 0.1, "schedule")
    smallest = float(str(refused.value).split("pass --budget ")[1].split()[0])
    assert plan_group("variant=at", 6, AT, smallest + 0.005, "schedule").fraction <= smallest + 0.005
    with pytest.raises(ConfigError, match="no epoch to rank at"):
        plan_group("all trials", 3, BiaMATConfig(epochs=4, warmup_epochs=3), 0.9, "schedule")


def rung_result(epoch: int, score: float) -> dict:
    return {EPOCH_METRIC: epoch - 1, "training_iteration": epoch, RUNG_SCORE: score}


def scheduler_of(trials: list, rungs=(2,), reduction=3, row_keys=None) -> tuple[RungScheduler, object]:
    group = group_of({}, ())
    scheduler = RungScheduler((), row_keys, {group: rungs}, {group: reduction}, {group: len(trials)})
    controller = fidelity._Controller(scheduler, trials)
    for trial in trials:
        scheduler.on_trial_add(controller, trial)
    return scheduler, controller


@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [2, 5, 0, 3, 1, 4]])
def test_a_rung_waits_for_its_group_then_keeps_the_best_rows_whatever_their_order(order):
    trials = [fidelity._Trial(f"t{i}", {"pi": i}) for i in range(6)]
    scheduler, controller = scheduler_of(trials)
    actions = {}
    for i in order:
        actions[i] = scheduler.on_trial_result(controller, trials[i], rung_result(2, score=i / 10))
        if actions[i] == TrialScheduler.PAUSE:
            trials[i].status = "PAUSED"
    last = order[-1]
    assert all(actions[i] == TrialScheduler.PAUSE for i in order[:-1])  # nobody decided before all were there
    # 6 rows // 3 = 2 go on: the two best scores (rows 4 and 5); the paused losers are stopped, the winners released.
    assert actions[last] == (TrialScheduler.CONTINUE if last in (4, 5) else TrialScheduler.STOP)
    assert {t.trial_id for t in trials if t.status == "TERMINATED"} == {f"t{i}" for i in range(4)} - {f"t{last}"}
    assert scheduler.released >= {"t4", "t5"} - {f"t{last}"}
    assert scheduler.choose_trial_to_run(controller).trial_id in {"t4", "t5"} - {f"t{last}"} or last in (4, 5)


def test_a_rows_seeds_go_on_or_stop_together_by_their_mean():
    # Row 1's seeds score 0.9 and 0.1 (mean 0.5), row 2's 0.6 and 0.6, row 3's 0.2 and 0.2: with reduction 3, one
    # row of the three goes on, row 2, although the single best trial is one of row 1's.
    scores = {(1, 0): 0.9, (1, 1): 0.1, (2, 0): 0.6, (2, 1): 0.6, (3, 0): 0.2, (3, 1): 0.2}
    trials = [fidelity._Trial(f"p{pi}s{seed}", {"pi": pi, "seed": seed}) for pi, seed in scores]
    scheduler, controller = scheduler_of(trials, row_keys=("pi",))
    for trial in trials:
        action = scheduler.on_trial_result(controller, trial, rung_result(2, scores[trial.config["pi"],
                                                                              trial.config["seed"]]))
        trial.status = "PAUSED" if action == TrialScheduler.PAUSE else trial.status
    assert scheduler.cut == {"p1s0", "p1s1", "p3s0", "p3s1"}


def test_a_trial_that_fails_before_its_rung_does_not_hold_the_rung_up():
    trials = [fidelity._Trial(f"t{i}", {}) for i in range(3)]
    scheduler, controller = scheduler_of(trials, reduction=2)
    assert scheduler.on_trial_result(controller, trials[0], rung_result(2, 0.3)) == TrialScheduler.PAUSE
    trials[0].status = "PAUSED"
    scheduler.on_trial_error(controller, trials[1])  # failed for good after epoch 1
    # The rung now has all it will get: t2's 0.5 beats t0's 0.3, and 2 // 2 = 1 goes on.
    assert scheduler.on_trial_result(controller, trials[2], rung_result(2, 0.5)) == TrialScheduler.CONTINUE
    assert trials[0].status == "TERMINATED" and scheduler.cut == {"t0"}
    # Tune re-adds a trial it retries: it is waited for again.
    scheduler.on_trial_add(controller, trials[1])
    assert "t1" not in scheduler.ended


def test_a_resumed_sweeps_rung_waits_for_no_trial_restored_past_it():
    """After --resume the scheduler starts empty: a trial restored past the rung and one stopped there before the
    interruption must not hold the rung up (it would wait for reports that never come)."""
    trials = [fidelity._Trial(f"t{i}", {}) for i in range(3)]
    trials[0].last_result = {EPOCH_METRIC: 3}  # trained epochs 1-4: past the rung after epoch 2
    trials[1].last_result, trials[1].status = {EPOCH_METRIC: 1, RUNG_SCORE: 0.2}, "TERMINATED"  # stopped there
    trials[2].last_result = {EPOCH_METRIC: 0}  # one epoch in
    scheduler, controller = scheduler_of(trials, reduction=3)
    assert scheduler.on_trial_result(controller, trials[2], rung_result(2, 0.5)) == TrialScheduler.CONTINUE
    assert scheduler.on_trial_result(controller, trials[0], {EPOCH_METRIC: 4}) == TrialScheduler.CONTINUE


def test_tunes_asha_on_the_same_rung_keeps_more_than_a_synchronous_rung():
    """ASHA decides each trial as it arrives, so rows that arrive in rising order all go on; the synchronous rung
    keeps 8 // 4 = 2, the best two, whatever the order. Replayed on curves that rise with the row."""
    epochs = 8
    grid = fidelity.Grid(curves={row: {e: row / 10 + e / 100 for e in range(1, epochs + 1)} for row in range(8)},
                         final={row: row / 10 for row in range(8)}, config=TrainConfig(epochs=epochs))
    group = group_of({}, ())
    for seed in range(3):
        synchronous = RungScheduler((), None, {group: (2,)}, {group: 4}, {group: 8})
        trained = fidelity.replay(grid, synchronous, {2}, seed=seed)
        assert sorted(trained.values()) == [2] * 6 + [8] * 2 and trained[7] == trained[6] == 8
        assert fidelity.ranking(grid, trained)[:2] == [7, 6]
    asha = ASHAScheduler(time_attr="training_iteration", metric="score", mode="max", max_t=epochs, grace_period=2,
                         reduction_factor=4)
    trials = [fidelity._Trial(str(row), {"row": row}) for row in range(8)]
    for trial in trials:
        asha.on_trial_add(None, trial)
    at_rung = [asha.on_trial_result(None, trial, {"training_iteration": 2, "score": grid.curves[row][2]})
               for row, trial in enumerate(trials)]
    assert at_rung == [TrialScheduler.CONTINUE] * 8


def test_the_budget_flags_refuse_what_cannot_be_a_budget(capsys):
    parser = run_parser("", ["smoke"])
    for bad in (["--budget", "0"], ["--budget", "1.5"], ["--budget", "x"], ["--budget", "0.5", "--budget-hours", "9"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
    assert parser.parse_args(["--budget", "1"]).budget == 1.0


def test_resume_holds_a_sweep_to_the_budget_it_was_started_with():
    recorded = {"preset": "smoke", BUDGET_TAG: "0.5 schedule"}
    check_same_settings("s", recorded, {"preset": "smoke", BUDGET_TAG: "0.5 schedule"}, False)
    with pytest.raises(SystemExit, match="started with --budget 0.5 --rungs schedule, this command gives no --budget"):
        check_same_settings("s", recorded, {"preset": "smoke"}, False)
    with pytest.raises(SystemExit, match="started with no --budget, this command gives --budget 0.25 --rungs epochs"):
        check_same_settings("s", {"preset": "smoke"}, {"preset": "smoke", BUDGET_TAG: "0.25 epochs"}, False)


def test_rung_epochs_are_increasing_epochs_before_the_last():
    assert TrainConfig(epochs=10, rung_epochs=(3, 6)).rung_epochs == (3, 6)
    for bad in ((6, 3), (3, 3), (0,), (10,)):
        with pytest.raises(ConfigError, match="rung_epochs"):
            TrainConfig(epochs=10, rung_epochs=bad)


def test_the_store_reader_names_what_the_trials_and_launcher_write():
    from runstore import reader
    from trainables import tracking

    for name in ("RUNG_SCORE", "STOPPED_EARLY", "END_REASON_TAG"):
        assert getattr(reader, name) == getattr(tracking, name)


def test_a_trial_stopped_at_a_rung_before_a_signal_stays_stopped_early(tmp_path):
    """Tune will not resume a trial a rung stopped, so a Ctrl+C that came later must not mark its run interrupted
    (which --resume would never reopen, and a table would count as KILLED)."""
    from mlflow.tracking import MlflowClient

    from launch.mlflow_runs import close_child_runs

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp_id = client.create_experiment("e")
    parent = client.create_run(exp_id, tags={"sweep": "s"}).info.run_id
    runs = {trial: client.create_run(exp_id, tags={"sweep_run_id": parent, "trial_id": trial}).info.run_id
            for trial in ("cut", "cut_off")}
    close_child_runs(client, exp_id, parent, [], interrupted=True, stopped={"cut"})
    ended = {trial: client.get_run(run_id) for trial, run_id in runs.items()}
    assert {trial: (run.info.status, run.data.tags["end_reason"]) for trial, run in ended.items()} == {
        "cut": ("KILLED", "stopped_early"), "cut_off": ("KILLED", "interrupted")}


def test_the_fidelity_measure_scores_a_ranking_that_holds_from_the_rung_to_the_end_as_perfect():
    """Grids whose rows keep their order from the first epoch to the final protocol: a budget keeps the whole ranking
    and the best row, and the full grid of the next repeat agrees with this one; a budget no plan meets is a note."""
    epochs = 8
    grids = [fidelity.Grid(curves={row: {e: row / 10 + e / 100 + seed / 1000 for e in range(1, epochs + 1)}
                                   for row in range(8)},
                           final={row: row / 10 + seed / 1000 for row in range(8)}, config=TrainConfig(epochs=epochs))
             for seed in range(3)]
    budgeted = fidelity.measure(grids, "schedule", 0.5)
    assert budgeted["cost"] <= 0.5 and budgeted["best_survives"] == 1
    assert budgeted["tau"] == pytest.approx(1.0) and budgeted["tau_min"] == pytest.approx(1.0)
    assert fidelity.measure(grids, fidelity.REFERENCE, 1.0)["tau"] == pytest.approx(1.0)
    assert "pass --budget" in fidelity.measure(grids, "schedule", 0.05)["note"]
