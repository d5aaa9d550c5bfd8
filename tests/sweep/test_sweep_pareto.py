"""Pareto fronts and their step lines, on cases worked out by hand (ties, NaN, infinity)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethos.sweep.pareto import non_dominated, staircase

NAN, INF = math.nan, math.inf
ACC_GAP = [True, False]  # accuracy: larger is better; fairness gap: smaller is better


def test_accuracy_against_gap_by_hand() -> None:
    #        A           B           C           D           E
    points = [(0.8, 0.1), (0.7, 0.05), (0.7, 0.2), (0.9, 0.3), (0.6, 0.3)]
    # C is beaten by A (more accurate and fairer), E by A as well; A, B, D trade off.
    assert non_dominated(points, maximize=ACC_GAP).tolist() == [True, True, False, True, False]


def test_equal_points_are_all_on_the_front() -> None:
    points = [(0.8, 0.1), (0.8, 0.1), (0.7, 0.05)]
    assert non_dominated(points, maximize=ACC_GAP).tolist() == [True, True, True]


def test_a_tie_on_one_objective_and_worse_on_the_other_is_dominated() -> None:
    # same accuracy, larger gap: dominated; same gap, less accurate: dominated
    points = [(0.8, 0.1), (0.8, 0.2), (0.7, 0.1)]
    assert non_dominated(points, maximize=ACC_GAP).tolist() == [True, False, False]


def test_nan_is_never_on_the_front_and_dominates_nothing() -> None:
    # (nan, 0.0) would beat (0.5, 0.5) on the gap, but a run without accuracy cannot count
    points = [(NAN, 0.0), (0.5, 0.5), (0.4, NAN), (0.45, 0.6)]
    assert non_dominated(points, maximize=ACC_GAP).tolist() == [False, True, False, False]
    assert non_dominated([(NAN, NAN)], maximize=ACC_GAP).tolist() == [False]


def test_an_ineligible_point_is_never_on_the_front_and_dominates_nothing() -> None:
    # the constant model: accuracy at the majority rate and a "perfect" gap of 0 would beat B;
    # left out, it is off the front and B (which it would have dominated) is back on it
    points = [(0.70, 0.20), (0.55, 0.05), (0.60, 0.00)]
    assert non_dominated(points, maximize=ACC_GAP).tolist() == [True, False, True]
    eligible = [True, True, False]
    assert non_dominated(points, maximize=ACC_GAP, eligible=eligible).tolist() == [
        True,
        True,
        False,
    ]
    with pytest.raises(ValueError, match="one flag per point"):
        non_dominated(points, maximize=ACC_GAP, eligible=[True])


def test_infinite_epsilon_is_the_worst_privacy() -> None:
    # accuracy vs epsilon (smaller epsilon is more private)
    points = [(0.70, INF), (0.60, 1.0), (0.70, 8.0), (0.72, INF)]
    # (0.70, inf) loses to (0.70, 8); (0.72, inf) is the most accurate, so it stays
    assert non_dominated(points, maximize=[True, False]).tolist() == [False, True, True, True]
    assert non_dominated([(0.7, INF), (0.7, INF)], maximize=[True, False]).all()


def test_three_objectives_and_edge_shapes() -> None:
    points = [(1, 1, 1), (1, 1, 0), (0, 2, 0), (1, 1, 1)]
    assert non_dominated(points, maximize=[True, True, True]).tolist() == [True, False, True, True]
    assert non_dominated(np.empty((0, 2)), maximize=ACC_GAP).tolist() == []
    assert non_dominated([(0.3, 0.3)], maximize=ACC_GAP).tolist() == [True]
    with pytest.raises(ValueError, match="points, objectives"):
        non_dominated([0.1, 0.2], maximize=ACC_GAP)
    with pytest.raises(ValueError, match="maximize flags"):
        non_dominated([(0.1, 0.2)], maximize=[True])


def _dominates(a: tuple[float, ...], b: tuple[float, ...], maximize: list[bool]) -> bool:
    signed = [(x, y) if up else (-x, -y) for x, y, up in zip(a, b, maximize, strict=True)]
    return all(x >= y for x, y in signed) and any(x > y for x, y in signed)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.25, 0.5, 1.0, INF, NAN]),
            st.sampled_from([0.0, 0.1, 0.2, 0.3, INF, NAN]),
        ),
        max_size=12,
    ),
    st.lists(st.booleans(), min_size=2, max_size=2),
)
def test_matches_the_definition(points: list[tuple[float, float]], maximize: list[bool]) -> None:
    mask = non_dominated(np.array(points, dtype=float).reshape(-1, 2), maximize=maximize)
    valid = [p for p in points if not any(math.isnan(v) for v in p)]
    for point, on_front in zip(points, mask.tolist(), strict=True):
        expected = point in valid and not any(_dominates(q, point, maximize) for q in valid)
        if any(math.isnan(v) for v in point):
            expected = False
        assert on_front == expected, (point, points)


def test_staircase_for_a_min_x_max_y_front() -> None:
    # gap (x, smaller better) against accuracy (y, larger better); given out of order
    line = staircase([0.1, 0.2, 0.05], [0.6, 0.8, 0.5], maximize_x=False, maximize_y=True)
    assert line == [(0.05, 0.5), (0.1, 0.5), (0.1, 0.6), (0.2, 0.6), (0.2, 0.8)]


def test_staircase_for_a_max_max_front() -> None:
    line = staircase([1, 2, 3], [3, 2, 1], maximize_x=True, maximize_y=True)
    assert line == [(1, 3), (1, 2), (2, 2), (2, 1), (3, 1)]


def test_staircase_edges() -> None:
    assert staircase([], [], maximize_x=False, maximize_y=True) == []
    assert staircase([0.1], [0.7], maximize_x=False, maximize_y=True) == [(0.1, 0.7)]
    # duplicates collapse, NaN is dropped, infinity is a coordinate like any other
    line = staircase([1, 1, NAN, INF], [0.6, 0.6, 0.9, 0.7], maximize_x=False, maximize_y=True)
    assert line == [(1, 0.6), (INF, 0.6), (INF, 0.7)]
    with pytest.raises(ValueError, match="same length"):
        staircase([1, 2], [1], maximize_x=False, maximize_y=True)
