"""``--set KEY=VALUE``: a preset run with some constants changed, validated, shown by ``--dry-run`` and recorded."""

from __future__ import annotations

import argparse

import pytest

from launch.cli import run_parser
from launch.overrides import Override, apply_overrides, parse_override
from sweeps import baselines, biamat_search, pi_ablation


def test_values_are_json_where_they_parse_else_strings():
    parsed = [parse_override(text) for text in
              ("epochs=15", "lr=0.1", "nesterov=true", "lr_milestones=[0.5, 0.75]", "model=resnet18", 'name="15"',
               "eps=8/255", "note=a=b")]
    assert [o.value for o in parsed] == [15, 0.1, True, [0.5, 0.75], "resnet18", "15", 8 / 255, "a=b"]
    assert parsed[0] == Override("epochs", 15, "15")
    for bad in ("epochs", "=3"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected KEY=VALUE"):
            parse_override(bad)
    args = run_parser("x", ["smoke"]).parse_args(["--set", "epochs=3", "--set", "model=tiny-cnn-3"])
    assert [o.key for o in args.overrides] == ["epochs", "model"]
    assert run_parser("x", ["smoke"]).parse_args([]).overrides is None


def test_only_constants_can_be_set():
    space = pi_ablation.search_space("smoke", seeds=2)
    changed = apply_overrides(space, [parse_override("epochs=7"), parse_override("train_n=64")])
    assert (changed["epochs"], changed["train_n"], space["train_n"]) == (7, 64, 1024)  # a copy: the preset is kept
    with pytest.raises(ValueError, match="pi is a grid axis of this sweep .0.45, 0.5"):
        apply_overrides(space, [parse_override("pi=0.5")])
    with pytest.raises(ValueError, match=r"seed is a grid axis .* \(--seeds sets how many seeds\)"):
        apply_overrides(space, [parse_override("seed=3")])
    with pytest.raises(ValueError, match="given twice"):
        apply_overrides(space, [parse_override("epochs=7"), parse_override("epochs=8")])


def dry_run(main, argv: list[str], capsys) -> str:
    main(["--dry-run", *argv])
    return capsys.readouterr().out


def test_a_dry_run_shows_the_set_value(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert "epochs=4" in dry_run(pi_ablation.main, [], capsys)
    out = dry_run(pi_ablation.main, ["--set", "epochs=5", "--set", "model=tiny-cnn-3"], capsys)
    assert "epochs=5" in out and "model=tiny-cnn-3" in out and "epochs=4" not in out and "trials: 12" in out
    assert list(tmp_path.iterdir()) == []  # a dry run writes nothing


def test_any_field_of_the_trials_config_can_be_set_and_a_radius_takes_its_step_along(tmp_path, monkeypatch,
                                                                                       capsys):
    monkeypatch.chdir(tmp_path)
    assert "autoattack_n" not in baselines.SMOKE and "eps" not in baselines.SMOKE  # the config's defaults apply
    out = dry_run(baselines.main, ["--set", "eps=16/255", "--set", "autoattack_n=100"], capsys)
    # The smoke preset steps 3/255 at the config's 8/255, so 6/255 at 16/255; the line says so before the plan.
    assert out.startswith("attack_step=6/255: the step follows the radius set")
    assert all(f" {value} " in out.replace("\n", " ") + " "
               for value in ("eps=16/255", "attack_step=6/255", "autoattack_n=100")), out
    chosen = dry_run(baselines.main, ["--set", "eps=16/255", "--set", "attack_step=2/255"], capsys)
    assert "attack_step=2/255" in chosen and "follows" not in chosen
    space = apply_overrides({"inv_eps": 4 / 255, "inv_step": 1 / 255}, [parse_override("inv_eps=2/255")])
    assert space["inv_step"] == pytest.approx(0.5 / 255)  # UIAT's eps' and its step, the same rule


def test_bad_keys_and_values_are_refused_before_ray_starts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def refused(main, *argv: str) -> str:
        with pytest.raises(SystemExit) as info:
            main(["--storage-path", str(tmp_path / "ray"), "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
                  *argv])
        assert list(tmp_path.iterdir()) == []  # no Tune folder, no MLflow store
        return str(info.value)

    message = refused(pi_ablation.main, "--set", "epoch=3")
    assert message.startswith("error: --set epoch: the trials of this sweep have no 'epoch' (did you mean epochs?); "
                              "the keys --set can change: alpha,") and "epochs, eps, eval_every" in message
    assert " seed," not in message and " pi," not in message  # grid axes are not settable
    assert refused(pi_ablation.main, "--set", "epochs=-1") == "error: epochs=-1 must be at least 1"
    assert "must be" in refused(baselines.main, "--set", "lr=-0.1")
    assert "unknown model 'resnet-18'" in refused(baselines.main, "--set", "model=resnet-18")
    searched = refused(biamat_search.main, "--set", "alpha=0.5")
    assert "alpha is searched by this sweep" in searched and "epochs" in searched


def test_a_multi_sweep_script_sets_each_key_where_it_exists_and_checks_all_before_ray(tmp_path, monkeypatch, capsys):
    """uiat_comparison.py runs four sweeps: a UIAT-only key reaches UIAT's sweep alone, a shared key every sweep, and
    a key no sweep has, or a value one sweep refuses, stops the script before the first sweep starts."""
    from sweeps import uiat_comparison

    monkeypatch.chdir(tmp_path)
    uiat_comparison.main(["--dry-run", "--set", "oneoff_epoch=2", "--set", "epochs=4"])
    plans = capsys.readouterr().out.split("sweep '")[1:]
    assert [plan.split("'")[0] for plan in plans] == ["uiat-comparison-smoke-baselines", "uiat-comparison-smoke-mart",
                                                       "uiat-comparison-smoke-hat", "uiat-comparison-smoke"]
    assert all("epochs=4" in plan for plan in plans)
    assert ["oneoff_epoch=2" in plan for plan in plans] == [False, False, False, True]
    with pytest.raises(SystemExit, match=r"error: --set not_a_key: no sweep of this script has 'not_a_key'"):
        uiat_comparison.main(["--set", "not_a_key=1"])
    with pytest.raises(SystemExit, match=r"error: oneoff_epoch=7 leaves no epoch"):  # UIAT's sweep refuses it
        uiat_comparison.main(["--set", "oneoff_epoch=7", "--set", "epochs=3"])
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written
