"""Reweighing makes label and group independent under the weights (Kamiran & Calders 2012)."""

from __future__ import annotations

import numpy as np
import pytest

from ethos.datasets import compas
from ethos.training.reweighing import reweighing_weights


def _weighted_rates(
    labels: np.ndarray, groups: np.ndarray, weights: np.ndarray
) -> dict[str, float]:
    return {
        g: float(weights[(groups == g) & (labels == 1)].sum() / weights[groups == g].sum())
        for g in np.unique(groups)
    }


def test_weighted_label_rate_is_equal_across_compas_races() -> None:
    frame = compas()
    labels = frame["two_year_recid"].to_numpy()
    groups = frame["race"].astype(str).to_numpy()
    raw = _weighted_rates(labels, groups, np.ones(len(labels)))
    assert max(raw.values()) - min(raw.values()) > 0.1  # the data are not balanced to begin with
    weights = reweighing_weights(labels, groups)
    rates = _weighted_rates(labels, groups, weights)
    overall = labels.mean()
    for rate in rates.values():
        assert rate == pytest.approx(overall, abs=1e-12)
    assert weights.mean() == pytest.approx(1.0, abs=1e-12)  # the loss keeps its scale
    for g in np.unique(groups):  # and every group keeps its share of the data
        assert weights[groups == g].sum() == pytest.approx((groups == g).sum(), rel=1e-12)


def test_hand_worked_cell_weights() -> None:
    # group a: 3 positives, 1 negative; group b: 1 positive, 3 negatives (n = 8).
    labels = np.array([1, 1, 1, 0, 1, 0, 0, 0])
    groups = np.array(["a"] * 4 + ["b"] * 4)
    weights = reweighing_weights(labels, groups)
    # w(a, 1) = P(a) P(1) / P(a, 1) = 0.5 * 0.5 / (3/8) = 2/3; w(a, 0) = 0.25 / (1/8) = 2.
    assert weights.tolist() == pytest.approx([2 / 3] * 3 + [2.0] + [2.0] + [2 / 3] * 3)


def test_multiclass_and_degenerate_inputs() -> None:
    labels = np.array([0, 1, 2, 2, 1, 0, 2, 2])
    groups = np.array(["x", "x", "x", "x", "y", "y", "y", "y"])
    weights = reweighing_weights(labels, groups)
    for y in (0, 1, 2):
        rates = [weights[(groups == g) & (labels == y)].sum() / 4 for g in ("x", "y")]
        assert rates[0] == pytest.approx(rates[1])
    assert reweighing_weights(np.array([], dtype=int), np.array([])).shape == (0,)
    one_group = reweighing_weights(np.array([0, 1, 1]), np.array(["g", "g", "g"]))
    assert one_group.tolist() == pytest.approx([1.0, 1.0, 1.0])
