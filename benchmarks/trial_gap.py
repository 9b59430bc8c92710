"""What a new worker per trial costs: the main job (``sweeps/pi_ablation.py``'s smoke preset) with Tune's reused
workers (the default) and with ``--fresh-workers``, back to back, each in a fresh folder with its own MLflow store.

    python benchmarks/trial_gap.py                 # both modes once, then the table
    python benchmarks/trial_gap.py --repeats 2     # A B A B: reused, fresh, reused, fresh

The gap is read from MLflow, not timed here: a trial's run is opened once its worker has imported torch and MLflow,
loaded the data and built the model, and closed when its last epoch is logged. With C trials at a time (C = the CPUs
Ray has, one per trial), the k-th trial to start (k > C) started when the (k-C)-th to end had ended, so its gap is
``start[k] - end[k - C]`` over the sorted start and end times: what the next trial waited for a worker and its
set-up. Wall time is the whole command's, Ray's start and the table at the end included.

Measured (2 cores of an AMD EPYC, no GPU, torch 2.14.1, ray 2.60.0; 12 trials, 2 at a time; one run of each mode,
back to back, on an otherwise idle machine, 2026-12-06):

=======================================  ========  ============  ===========
mode                                     wall (s)  mean gap (s)  max gap (s)
=======================================  ========  ============  ===========
fresh workers                            233       7.23          8.18
reused workers, data loaded per trial    196       1.29          1.32
fresh workers                            241       7.53          9.23
reused workers, built-in sets kept       200       0.04          0.05
=======================================  ========  ============  ===========

The first two rows are one run of this script before a reused worker kept the built-in data sets loaded
(``trainables.datasets``: half a second of the 1.3 s gap was generating them again, most of the rest BiaMAT's
auxiliary set); the last two one run after. The wall time of the whole command falls by 16-17 %: Ray's start and
the trials' own epochs are the rest.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SWEEP = "pi-ablation-smoke"


def run_main_job(folder: Path, fresh: bool) -> float:
    """The main job in ``folder``; returns its wall time in seconds."""
    command = [sys.executable, str(ROOT / "sweeps" / "pi_ablation.py"), *(["--fresh-workers"] if fresh else [])]
    started = time.perf_counter()
    subprocess.run(command, cwd=folder, check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}"})
    return time.perf_counter() - started


def gaps(folder: Path, concurrent: int) -> list[float]:
    """Seconds between a trial's end and the start of the trial that took its place (module docstring)."""
    from runstore.reader import load_sweep

    runs = load_sweep(SWEEP, tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    infos = [runs.client.get_run(run_id).info for run_id in runs.runs["run_id"]]
    return paired_gaps([info.start_time / 1000 for info in infos], [info.end_time / 1000 for info in infos],
                       concurrent)


def paired_gaps(starts: list[float], ends: list[float], concurrent: int) -> list[float]:
    """``start[k] - end[k - C]`` over the sorted times: the k-th trial to start took the place of the (k-C)-th to
    end."""
    return [start - end for start, end in zip(sorted(starts)[concurrent:], sorted(ends))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each mode, alternating (default 1)")
    parser.add_argument("--concurrent", type=int, default=2, help="trials at a time: the CPUs Ray has (default 2)")
    args = parser.parse_args(argv)
    rows = []
    for _ in range(args.repeats):
        for fresh in (False, True):
            with tempfile.TemporaryDirectory() as folder:
                wall = run_main_job(Path(folder), fresh)
                waited = gaps(Path(folder), args.concurrent)
            rows.append(("fresh workers" if fresh else "reused workers", wall, waited))
            print(f"{rows[-1][0]}: {wall:.0f} s, gaps {', '.join(f'{g:.1f}' for g in waited)} s", flush=True)
    print(f"\n{'mode':<16} {'wall (s)':>9} {'mean gap (s)':>13} {'max gap (s)':>12}")
    for mode, wall, waited in rows:
        print(f"{mode:<16} {wall:>9.0f} {sum(waited) / len(waited):>13.2f} {max(waited):>12.2f}")
    reused = [wall for mode, wall, _ in rows if mode == "reused workers"]
    fresh_walls = [wall for mode, wall, _ in rows if mode == "fresh workers"]
    print(f"wall time, reused / fresh: {sum(reused) / sum(fresh_walls):.3f}")


if __name__ == "__main__":
    main()
