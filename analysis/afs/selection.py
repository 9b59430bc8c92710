"""AFS's rule for choosing extractors from Delta_z (Liu & Zhao, Sec. 2.4 and Fig. 3), in one pure function.

Why here: the analysis marks the selected range on the Delta_z figure and the merger sweep (sweeps/afs_merger.py)
stacks it. Sweeps may import analysis, but analysis must not import trainables, so the rule lives on this side and
depends on nothing but the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

# A bend counts as convex only when the slope rises by more than this fraction of the curve's largest |slope|.
CONVEX_TOLERANCE = 0.05


def concave_range(eps: Sequence[float], delta_z: Sequence[float],
                  tolerance: float = CONVEX_TOLERANCE) -> list[float]:
    """The training eps of the longest run of consecutive extractors over which Delta_z is concave in eps.

    Sec. 2.4: a stack beats its members when ``sum_i lambda_i Delta_z_i < Delta_z`` of a member (Eq. 10), which
    concavity of Delta_z in the training eps provides; Fig. 3 drops the extractors below 3/255, where Delta_z falls
    steeply and convexly. A run is concave when the slopes between neighbouring points never rise by more than
    ``tolerance`` times the largest |slope| of the whole curve.

    Why a relative tolerance: Delta_z is an estimate (a trained network, a PGD with random starts), and with a
    tolerance of 0 a bend in the nearly straight part of the curve flips on noise alone, which changes the stack.
    Relative to the largest |slope| (on the paper's curve, the steep drop from the standard network), the rule is
    scale-free: multiplying Delta_z (another model's logit scale) or eps (255ths or pixel units) by a constant does
    not change the pick. With evenly spaced eps, errors of at most ``d`` per point move a slope change by at most
    ``4 d / spacing``, so errors below about a quarter of the tolerance times the largest drop between neighbours
    cannot make a straight or concave bend convex, nor one whose slope rises by more than about twice the tolerance
    concave. The cost: a convex bend below the tolerance (the default 5 %) counts as straight.

    Ties go to the run at larger eps (the more robust extractors). Two points are always concave, so the result has
    at least two eps when two are given; a curve convex beyond the tolerance at every bend gives its last two.
    """
    if len(eps) != len(delta_z):
        raise ValueError(f"need one Delta_z per eps, got {len(eps)} eps and {len(delta_z)} values")
    points = sorted(zip(eps, delta_z))
    if len({e for e, _ in points}) != len(points):
        raise ValueError(f"eps values repeat: {sorted(eps)}; average repeated runs (seeds) first")
    if len(points) < 3:
        return [e for e, _ in points]
    slopes = [(z1 - z0) / (e1 - e0) for (e0, z0), (e1, z1) in pairwise(points)]
    allowed = tolerance * max(abs(s) for s in slopes)
    # concave_at[i]: the curve bends down, stays straight or rises within the tolerance at interior point i + 1.
    concave_at = [later - earlier <= allowed for earlier, later in pairwise(slopes)]
    best_start, best_end, start = 0, 1, 0
    for end in range(1, len(points)):
        if end - 1 > start and not concave_at[end - 2]:
            start = end - 1  # point end-1 bends up: a concave run can only begin there
        if end - start >= best_end - best_start:  # >=: later runs win ties
            best_start, best_end = start, end
    return [e for e, _ in points[best_start : best_end + 1]]
