"""AFS's rule for choosing extractors from Delta_z (Liu & Zhao, Sec. 2.4 and Fig. 3), in one pure function.

Why here: the analysis marks the selected range on the Delta_z figure and the merger sweep (sweeps/afs_merger.py)
stacks it. Sweeps may import analysis, but analysis must not import trainables, so the rule lives on this side and
depends on nothing but the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise


def concave_range(eps: Sequence[float], delta_z: Sequence[float], tolerance: float = 0.0) -> list[float]:
    """The training eps of the longest run of consecutive extractors over which Delta_z is concave in eps.

    Sec. 2.4: a stack beats its members when ``sum_i lambda_i Delta_z_i < Delta_z`` of a member (Eq. 10), which
    concavity of Delta_z in the training eps provides; Fig. 3 drops the extractors below 3/255, where it is not
    concave. A run is concave when the slopes between neighbouring points never increase: every second divided
    difference is at most ``tolerance`` (> 0 absorbs estimation noise). Ties go to the run at larger eps (the more
    robust extractors). Two points are always concave, so the result has at least two eps when two are given.
    """
    if len(eps) != len(delta_z):
        raise ValueError(f"need one Delta_z per eps, got {len(eps)} eps and {len(delta_z)} values")
    points = sorted(zip(eps, delta_z))
    if len({e for e, _ in points}) != len(points):
        raise ValueError(f"eps values repeat: {sorted(eps)}; average repeated runs (seeds) first")
    if len(points) < 3:
        return [e for e, _ in points]
    slopes = [(z1 - z0) / (e1 - e0) for (e0, z0), (e1, z1) in pairwise(points)]
    # concave_at[i]: the curve bends down (or stays straight) at interior point i + 1.
    concave_at = [later - earlier <= tolerance for earlier, later in pairwise(slopes)]
    best_start, best_end, start = 0, 1, 0
    for end in range(1, len(points)):
        if end - 1 > start and not concave_at[end - 2]:
            start = end - 1  # point end-1 bends up: a concave run can only begin there
        if end - start >= best_end - best_start:  # >=: later runs win ties
            best_start, best_end = start, end
    return [e for e, _ in points[best_start : best_end + 1]]
