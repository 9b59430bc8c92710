"""The generated images that UIAT Table 4 and BiaMAT Table 10 train with (``extra_data``), shared by their presets.

The 1M DDPM-generated images of Rebuffi et al. 2021, published with their code
(github.com/deepmind/deepmind-research/tree/master/adversarial_robustness, "Generated datasets") in the .npz form
npz:PATH reads (image uint8 (N, 32, 32, 3), label). Not Wang et al. 2023's sets: those come from an EDM, not a DDPM.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from trainables.dataset_names import data_root

if TYPE_CHECKING:
    from launch.sweep import Sweep

DDPM_FILES = {"cifar10": "cifar10_ddpm.npz", "cifar100": "cifar100_ddpm.npz"}
DDPM_URL = "https://storage.googleapis.com/dm-adversarial-robustness/"


def ddpm_data(dataset: str, root: str | None) -> str:
    """The ``extra_data`` name of ``dataset``'s DDPM file under the data root, as an absolute path (Ray runs trials
    in other directories)."""
    return f"npz:{data_root(root).resolve() / DDPM_FILES[dataset]}"


def missing_ddpm(names: Iterable[str]) -> list[str]:
    """For each ``extra_data`` among ``names`` that is a DDPM file (by its file name) and is not there: what is missing
    and where to get it."""
    paths = dict.fromkeys(Path(name.removeprefix("npz:")) for name in names if name.startswith("npz:"))
    return [f"{path} is missing: the sweep trains with the 1M DDPM-generated images of Rebuffi et al. 2021; download "
            f"{DDPM_URL}{path.name} (1M 32x32 images, about 3.1 GB; linked from github.com/deepmind/deepmind-research/"
            "tree/master/adversarial_robustness) into the data root (--data-root, else $ADVSWEEP_DATA, else ./data)"
            for path in paths if path.name in DDPM_FILES.values() and not path.is_file()]


def require_ddpm(sweeps: Mapping[str, Sweep], args: argparse.Namespace) -> None:
    """Stop before the checks, naming each missing DDPM file among the trials' ``extra_data`` (``sweeps`` as they will
    run, --set applied) and where to download it; a dry run notes them and goes on."""
    from launch.checks import trial_configs

    names = [cfg.extra_data for sweep in sweeps.values() for cfg in trial_configs(sweep.config_cls, sweep.param_space)]
    missing = missing_ddpm(names)
    if missing and not args.dry_run:
        raise SystemExit(f"error: {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    for line in missing:
        print(f"note: {line}")
