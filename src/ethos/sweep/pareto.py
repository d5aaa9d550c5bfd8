"""Pareto fronts: the points no other point beats on every objective at once.

Point *a* dominates point *b* when *a* is at least as good as *b* on every objective and strictly
better on one (Deb, *Multi-Objective Optimization Using Evolutionary Algorithms*, 2001, def. 2.5).
The front is the set of non-dominated points. Conventions:

* ties: equal points do not dominate each other, so all copies of a front point are on the front;
* NaN: a point with a NaN objective (a failed run, a metric the audit could not compute) is neither
  on the front nor dominates anything;
* infinity is an ordinary, extreme value (ε = ∞, the non-private run, is the worst privacy);
* ineligible points (``eligible`` false: a model that is not informative, whose fairness gap of
  0 only says it treats everyone alike by deciding nothing) are treated like NaN: never on the
  front, and they dominate nothing, so they cannot push an informative run off it.

Written by hand because it is ten lines of numpy: O(n²) comparisons, which is nothing for the
tens of points a sweep trains.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
from numpy.typing import ArrayLike, NDArray


def non_dominated(
    values: ArrayLike, *, maximize: Sequence[bool], eligible: ArrayLike | None = None
) -> NDArray[np.bool_]:
    """Mask of the Pareto-optimal rows of ``values`` (n points x d objectives).

    ``maximize[j]`` says whether larger is better for objective ``j``; ``eligible`` (one bool per
    point, default all) leaves points out of the comparison altogether.
    """
    points = np.asarray(values, dtype=float)
    if points.ndim != 2:
        raise ValueError(f"values must be (points, objectives), got shape {points.shape}")
    if len(maximize) != points.shape[1]:
        raise ValueError(f"{points.shape[1]} objectives but {len(maximize)} maximize flags")
    signed = points * np.where(np.asarray(maximize, dtype=bool), 1.0, -1.0)  # larger is better
    valid = ~np.isnan(signed).any(axis=1)
    if eligible is not None:
        allowed = np.asarray(eligible, dtype=bool)
        if allowed.shape != (len(points),):
            raise ValueError(f"eligible must hold one flag per point ({len(points)})")
        valid &= allowed
    candidates = signed[valid]
    front = np.zeros(len(points), dtype=bool)
    for row in np.flatnonzero(valid):
        at_least = (candidates >= signed[row]).all(axis=1)
        better = (candidates > signed[row]).any(axis=1)
        front[row] = not (at_least & better).any()
    return front


def staircase(
    x: ArrayLike, y: ArrayLike, *, maximize_x: bool, maximize_y: bool
) -> list[tuple[float, float]]:
    """The step line through a 2-D front: the edge of the region its points dominate.

    ``x`` and ``y`` hold the front's points (any order). Sorted by ``x``, consecutive points
    ``p`` and ``q`` are joined through the corner that takes the worse ``x`` and the worse ``y``
    of the two, so the line never claims a trade-off no point achieves.
    """
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError("x and y must be 1-D and of the same length")
    keep = ~(np.isnan(xs) | np.isnan(ys))
    order = np.lexsort((ys[keep], xs[keep]))
    pts = list(dict.fromkeys(zip(xs[keep][order].tolist(), ys[keep][order].tolist(), strict=True)))
    if not pts:
        return []
    worse_x = min if maximize_x else max
    worse_y = min if maximize_y else max
    line = [pts[0]]
    for (px, py), (qx, qy) in pairwise(pts):
        corner = (worse_x(px, qx), worse_y(py, qy))
        if corner not in ((px, py), (qx, qy)):
            line.append(corner)
        line.append((qx, qy))
    return line
