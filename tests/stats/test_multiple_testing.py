"""Benjamini-Hochberg: reference values from statsmodels' ``multipletests(method="fdr_bh")``."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from ethos.stats.multiple_testing import bh_adjusted, by_adjusted, reject


def _vectors() -> list[np.ndarray]:
    rng = np.random.default_rng(17)
    uniform = rng.random(50)
    mixed = np.concatenate([rng.random(30) * 1e-4, rng.random(70)])
    ties = np.round(rng.random(40), 1)  # many exact ties
    edges = np.array([0.0, 0.0, 1.0, 1.0, 0.5, 0.01, 0.04, 1.0, 0.0])
    return [uniform, mixed, ties, edges, np.array([0.03]), np.ones(5), np.zeros(4)]


@pytest.mark.parametrize("case", range(7))
def test_bh_matches_statsmodels_fdr_bh(case: int) -> None:
    p = _vectors()[case]
    expected_reject, expected_adjusted, _, _ = multipletests(p, alpha=0.1, method="fdr_bh")
    np.testing.assert_allclose(bh_adjusted(p), expected_adjusted, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(reject(p, fdr=0.1), expected_reject)


@pytest.mark.parametrize("case", range(7))
def test_by_matches_statsmodels_fdr_by(case: int) -> None:
    p = _vectors()[case]
    expected_reject, expected_adjusted, _, _ = multipletests(p, alpha=0.1, method="fdr_by")
    np.testing.assert_allclose(by_adjusted(p), expected_adjusted, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(reject(p, fdr=0.1, dependence="arbitrary"), expected_reject)


def test_bh_adjusted_is_monotone_in_the_raw_p_values_and_capped_at_one() -> None:
    p = np.random.default_rng(3).random(200)
    adjusted = bh_adjusted(p)
    order = np.argsort(p)
    assert np.all(np.diff(adjusted[order]) >= 0)
    assert adjusted.max() <= 1.0
    assert np.all(adjusted >= p)


def test_bh_of_nothing_is_nothing() -> None:
    assert bh_adjusted([]).shape == (0,)
    assert reject([], fdr=0.05).shape == (0,)


@pytest.mark.parametrize("bad", [[0.1, np.nan], [1.2], [-0.1], [[0.1, 0.2]]])
def test_bh_refuses_values_that_are_not_p_values(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        bh_adjusted(bad)


def test_reject_refuses_an_fdr_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="fdr"):
        reject([0.1], fdr=1.5)
