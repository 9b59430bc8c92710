"""AFS Tables 4 and 5 and Fig. 1: the other methods the paper compares with, trained on this runtime with their
authors' recipes: FAT for TRADES [20] and TLA [11] (CIFAR-10), LBGAT+TRADES [4] (CIFAR-10 and CIFAR-100).

    python sweeps/afs_comparison.py                                   # smoke: synthetic data, tiny CNNs, ~4 min
    python sweeps/afs_comparison.py --preset paper                    # CIFAR-10: FAT for TRADES, LBGAT+TRADES, TLA
    python sweeps/afs_comparison.py --preset paper --primary cifar100  # CIFAR-100 (Table 5): LBGAT+TRADES
    python analysis/afs_tables.py tradeoff --sweep afs-table3-paper --other-sweep afs-comparison-cifar10-paper-fat \\
        --other-sweep afs-comparison-cifar10-paper-lbgat --other-sweep afs-comparison-cifar10-paper-tla

Sec. 3.4: "The results listed at the bottom part of the table are our implementations. Other results are cited from
original papers. All the methods are evaluated with the WRN-34-10 network architecture." The cited rows are trained
here, each with its authors' code's defaults (trainables/methods/fat.py, lbgat.py, tla.py), as four sweeps:

- ``NAME-fat``: FAT for TRADES (``FAT_for_TRADES.py``): WRN-34-10, 85 epochs, batch 128, SGD momentum 0.9, LR 0.1
  decayed x0.1 at epoch 75 (the code's second decay, at 90, is past the end), weight decay 2e-4, beta 6, early-stopped
  PGD-10 of step 0.007 at eps 0.031 on the KL from x + 0.001 N(0, 1) clipped to [0, 1], in eval mode, tau 0, 1, 2, 3
  from epochs 1, 31, 51, 71. Table 4 only (Table 5 has no FAT row). AFS does not name FAT's variant; FAT for TRADES
  is the one its code trains on WRN-34-10 (``FAT.py``'s default is WRN-32-10).
- ``NAME-lbgat``: LBGAT+TRADES (``train_lbgat_cifar100.py``): WRN-34-10 with a ResNet-18 natural teacher
  (the teacher of ``sh/train_lbgat0_cifar100.sh``: ``-teacher_model ResNet18_cifar``), 100 epochs, batch 128, LR 0.1
  decayed x0.1 at epochs 76 and 91, weight decay 2e-4, beta 6 (the script's default and the README's "LBGAT6" models,
  60.64 / 29.33 on CIFAR-100, the row AFS cites at 60.43 / 29.34; beta 0 is plain LBGAT), TRADES' attack (10 steps of
  0.007 at eps 0.031 from x + 0.001 N(0, 1), eval mode).

Both are tested by AFS's protocol (clean, PGD-10, PGD-20 and AutoAttack on the whole test set) at their training
eps 0.031 (AFS's own rows: 8/255 = 0.0314), and keep the model of their last epoch, which their code evaluates. Not
reproduced: LBGAT's first epoch at LR 0.02 (the runtime's schedules have no one-epoch warm-up; the rest of the
schedule is the code's).
- ``NAME-tla-source`` then ``NAME-tla``: TLA [11] (Mao et al., ``train_update_fast_triplet.py`` with
  ``config_cifar.json``; trainables/methods/tla.py) fine-tunes Madry et al.'s adversarially trained network, which
  the first sweep trains by Madry et al.'s recipe (their CIFAR-10 code's config: WRN-34-10, 80,000 steps of batch
  128 = 205 epochs, LR 0.1 decayed x0.1 after 40,000 and 60,000 steps = from epochs 103 and 154, weight decay 2e-4,
  PGD of step 2/255 at 8/255 from a uniform start, crafted in train mode; 7 steps, their paper's training adversary
  and TLA's, where the repository's config.json says 10; the last epoch's model). The second fine-tunes each of
  those networks (one per seed) by TLA's configuration: batch 50, 80,000 steps = 80 epochs, LR 0.1 decayed x0.1
  after 1,000 and 5,000 steps = from epochs 2 and 6, weight decay 2e-4, PGD-7 of step 2/255 at 8/255 from a uniform
  start in eval mode, triplet weight 2, margin 0.03, feature penalty 1e-3, hard negatives from 500 clean images per
  step. Table 4 only; tested at eps 8/255. Not reproduced: the code keeps its best checkpoint by PGD-20 of step
  1/255 on its first 500 test images, checked every 2,000 steps from step 0 (the source network itself among
  them); here the best fine-tuned epoch by PGD-7 on 1,000 test points every 2 epochs. The runtime's WRN-34-10 (ReLU,
  1x1-convolution shortcuts, weight decay on every parameter) for the codes' variant (leaky ReLU 0.1, per-image
  standardisation, pooled zero-padded shortcuts, decay on the weights only).
Cost: FAT for TRADES at most TRADES' 11 passes per image and epoch (fewer once points stop early) for 85 epochs;
LBGAT+TRADES TRADES' cost plus a ResNet-18 for 100 epochs; TLA's source PGD-AT's 8 passes for 205 epochs, then
about 20 passes per image for 80 epochs at batch 50 (PGD-7, 4 training passes, the 500-image pool in eval mode).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from launch.cli import parse_primary_args
from launch.space import Derived, grid
from sweeps.afs_presets import PRESETS as AFS_PRESETS

# AFS's final protocol, on every trial (sweeps/afs_presets.py); the smoke preset's on its own data.
PROTOCOL = {key: AFS_PRESETS["paper"][key] for key in ("final_n", "final_attacks", "autoattack_n")}
SHARED: dict[str, dict[str, Any]] = {
    # AFS's smoke data and protocol, so that its smoke mergers' table takes these rows.
    "smoke": {**{key: AFS_PRESETS["smoke"][key] for key in ("dataset", "train_n", "model", "eval_n", "final_n",
                                                            "final_attacks")},
              "batch_size": 32, "lr": 0.1, "attack_steps": 3, "attack_step": 0.014},
    "paper": {"dataset": "cifar10", "model": "wrn-34-10", "batch_size": 128, "lr": 0.1, "momentum": 0.9,
              "weight_decay": 2e-4, "attack_steps": 10, "attack_step": 0.007, "select_on": "test", "eval_n": 1000,
              "eval_every": 1, "eval_from": 1, **PROTOCOL},
}
# The TRADES attack both methods craft with: KL to the clean prediction, in eval mode, eps 0.031.
TRADES_ATTACK = {"eps": 0.031, "attack_bn": "eval", "beta": 6.0}
FAT = {"variant": "trades", "attack_start": "normal_clamped", **TRADES_ATTACK, "tau": 0, "omega": 0.0}
LBGAT = {"attack_start": "normal", **TRADES_ATTACK}
SCHEDULES: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {"fat": {"epochs": 2, "lr_milestones": [], "tau_milestones": [2]},
              "lbgat": {"epochs": 2, "lr_milestones": [], "teacher_model": "tiny-cnn"}},
    "paper": {"fat": {"epochs": 85, "lr_milestones": [75], "tau_milestones": [31, 51, 71]},
              "lbgat": {"epochs": 100, "lr_milestones": [76, 91], "teacher_model": "resnet18"}},
}
# TLA's source network, Madry et al.'s recipe (their CIFAR-10 code's config.json), and TLA's own (config_cifar.json):
# both at 8/255, PGD-7 of step 2/255 from a uniform start (Madry et al.'s paper; their config.json says 10 steps).
MADRY_ATTACK = {"eps": 8 / 255, "attack_step": 2 / 255, "attack_steps": 7, "attack_start": "uniform"}
TLA_SOURCE = {"smoke": {"training": "pgd_at", "attack_bn": "train", "epochs": 2, "lr_milestones": []},
              "paper": {**MADRY_ATTACK, "training": "pgd_at", "attack_bn": "train", "epochs": 205,
                        "lr_milestones": [103, 154]}}
TLA = {"smoke": {"attack_bn": "eval", "epochs": 2, "lr_milestones": [], "eval_every": 1},
       "paper": {**MADRY_ATTACK, "attack_bn": "eval", "batch_size": 50, "epochs": 80, "lr_milestones": [2, 6],
                 "eval_every": 2, "triplet_weight": 2.0, "margin": 0.03, "feature_penalty": 1e-3,
                 "negative_pool": 10, "positive_noise": 8 / 255}}
# Table 4 (CIFAR-10) has the three methods; Table 5 (CIFAR-100) LBGAT+TRADES alone.
METHODS = {"smoke": ("fat", "lbgat", "tla"), "cifar10": ("fat", "lbgat", "tla"), "cifar100": ("lbgat",)}
PRIMARIES = ["cifar10", "cifar100"]


def on_primary(preset: str, primary: str) -> dict[str, Any]:
    return SHARED[preset] if preset == "smoke" else {**SHARED[preset], "dataset": primary}


def search_space(method: str, preset: str, seeds: int, primary: str = "cifar10") -> dict:
    own = FAT if method == "fat" else LBGAT
    # The model of the last epoch (a --set of epochs moves it), as the authors' code keeps.
    return {**on_primary(preset, primary), **own, **SCHEDULES[preset][method],
            "keep_epoch": Derived(lambda config: config["epochs"]), "seed": grid(list(range(seeds)))}


def tla_source_space(preset: str, seeds: int) -> dict:
    """PGD-AT by Madry et al.'s recipe, the network TLA fine-tunes: its last epoch's model (which step their released
    checkpoint is from is not stated)."""
    return {**on_primary(preset, "cifar10"), **TLA_SOURCE[preset],
            "keep_epoch": Derived(lambda config: config["epochs"]), "seed": grid(list(range(seeds)))}


def tla_space(preset: str, seeds: int, sources: dict[int, str]) -> dict:
    """TLA from the source network of each seed (``sources``: seed -> run id; "" before the sources exist, a
    placeholder the checks take), its best checkpoint kept, evaluated from epoch 2 (the code's first check after
    2,000 steps) every ``eval_every``."""
    return {**on_primary(preset, "cifar10"), **TLA[preset], "seed": grid(list(range(seeds))),
            "init_from": Derived(lambda config: sources[config["seed"]]),
            "eval_from": Derived(lambda config: min(2, config["epochs"]))}


def tla_sources(args, sweep: str, seeds: int) -> dict[int, str]:
    """The finished source runs of ``sweep``, by seed."""
    from runstore.reader import load_sweep

    runs = load_sweep(sweep, tracking_uri=args.tracking_uri).runs
    found = {int(seed): run_id for run_id, seed in zip(runs["run_id"], runs["params.seed"], strict=True)}
    missing = sorted(set(range(seeds)) - set(found))
    if missing:
        raise SystemExit(f"error: sweep {sweep} holds no finished source run of seed(s) {missing}: rerun this command "
                         f"with --resume --name {args.name or '<name>'}")
    return found


def main(argv: list[str] | None = None) -> None:
    args = parse_primary_args(__doc__, SHARED, PRIMARIES, argv)
    # Imported once the arguments are parsed, so that --help and a bad flag answer at once (launch/cli.py).
    from launch.run import args_for_later_sweep, prepare_sweeps, run_sweep
    from launch.sweep import Sweep
    from trainables.methods.configs import TLAConfig

    preset, primary, seeds = args.preset, args.primary, args.seeds
    suffix = "smoke" if preset == "smoke" else f"{primary}-{preset}"
    name = args.name or f"afs-comparison-{suffix}"
    methods = METHODS["smoke" if preset == "smoke" else primary]
    names = {method: f"{name}-{method}" for method in methods}
    spaces = {m: search_space(m, preset, seeds, primary) for m in methods if m != "tla"}
    sweeps = {names[m]: Sweep.of(m, family="afs-comparison", name_keys=("seed",), param_space=space)
              for m, space in spaces.items()}
    source = f"{name}-tla-source"

    def tla_sweep(sources: dict[int, str]) -> Sweep:
        return Sweep.of("tla", family="afs-comparison", name_keys=("seed",), param_space=tla_space(preset, seeds,
                                                                                                    sources))

    if "tla" in methods:
        print(f"note: sweep {names['tla']} fine-tunes the network {source} trains for each seed; until then its plan "
              "shows no init_from")
        sweeps[source] = Sweep.of("baseline", family="afs-comparison", name_keys=("seed",),
                                  param_space=tla_source_space(preset, seeds))
        sweeps[names["tla"]] = tla_sweep(dict.fromkeys(range(seeds), ""))
    original = args
    prepared = prepare_sweeps(sweeps, args)
    if prepared is None:  # a dry run
        return
    sweeps, args = prepared

    def report() -> None:
        from analysis.afs.tables import tradeoff
        from analysis.render import emit
        from runstore.reader import load_sweep

        emit(tradeoff(None, None, [load_sweep(n, tracking_uri=args.tracking_uri) for n in names.values()]))

    merger = {"smoke": "afs-table3-smoke", "cifar10": "afs-table3-paper", "cifar100": "afs-default-paper-cifar100"}[
        "smoke" if preset == "smoke" else primary]
    others = " ".join(f"--other-sweep {n}" for n in names.values())
    steps = [f"analysis/afs_tables.py tradeoff --sweep {merger} {others}",
             f"analysis/afs_tables.py scatter --sweep {merger} {others} --out fig1.png"]
    for method in methods:
        last = method == methods[-1]
        if method != "tla":
            run_sweep(sweeps[names[method]], args, names[method], report=report if last else None,
                      next_steps=steps if last else ())
            continue
        run_sweep(sweeps[source], args, source)
        # The fine-tuning takes the --set keys TLA has, init_from excepted (the sources give it).
        own = {field.name for field in dataclasses.fields(TLAConfig)} - {"init_from"}
        skipped = {o.key for o in getattr(original, "overrides", None) or []} - own
        later = args_for_later_sweep(original, args, skipped)
        # One row per seed, so --budget left it whole above (prepare_sweeps' note); prepared again alone, the same.
        later.budget = later.budget_hours = None
        run_sweep(tla_sweep(tla_sources(args, source, seeds)), later, names[method], report=report, next_steps=steps)


if __name__ == "__main__":
    main()
