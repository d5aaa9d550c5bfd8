"""The regulation model Y = W X: exact recovery, NNLS sign, uncertainty bands, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ethos.genome import GenomeError, RegulationModel, random_weights, simulate_expression


@pytest.mark.parametrize("method", ["ols", "nnls"])
def test_zero_noise_recovers_planted_w_to_1e_8(method: str) -> None:
    w = random_weights(12, 5, nonnegative=method == "nnls", seed=3)
    x, y = simulate_expression(w, n_samples=40, noise_sd=0.0, seed=4)
    estimate = RegulationModel(method).fit(x, y).weights_  # type: ignore[arg-type]
    assert np.linalg.norm(estimate - w) / np.linalg.norm(w) < 1e-8


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    genes=st.integers(1, 6),
    regulators=st.integers(1, 5),
    samples=st.integers(1, 30),
    noise=st.sampled_from([0.0, 0.5, 5.0]),
)
def test_nnls_never_returns_a_negative_entry(
    seed: int, genes: int, regulators: int, samples: int, noise: float
) -> None:
    w = random_weights(genes, regulators, nonnegative=False, seed=seed)  # signs the fit cannot have
    x, y = simulate_expression(w, n_samples=samples, noise_sd=noise, seed=seed + 1)
    assert (RegulationModel("nnls").fit(x, y).weights_ >= 0).all()


def test_ridge_shrinks_towards_zero_and_tends_to_ols() -> None:
    w = random_weights(6, 4, seed=1)
    x, y = simulate_expression(w, n_samples=50, noise_sd=0.1, seed=2)
    ols = RegulationModel("ols").fit(x, y).weights_
    tiny = RegulationModel("ridge", alpha=1e-9).fit(x, y).weights_
    large = RegulationModel("ridge", alpha=1e4).fit(x, y).weights_
    assert np.allclose(tiny, ols, atol=1e-6)
    assert np.linalg.norm(large) < np.linalg.norm(ols)


def test_analytic_band_covers_the_true_effect_about_95_percent() -> None:
    w = random_weights(10, 3, seed=5)
    delta = np.array([1.0, -0.5, 0.0])
    truth = w @ delta
    covered = total = 0
    for trial in range(60):
        x, y = simulate_expression(w, n_samples=25, noise_sd=0.3, seed=100 + trial)
        effect = RegulationModel("ols").fit(x, y).predict_edit(delta)
        covered += int(((effect.lower <= truth) & (truth <= effect.upper)).sum())
        total += truth.size
    assert 0.90 <= covered / total <= 0.99


def test_bootstrap_band_brackets_the_estimate_for_every_method() -> None:
    w = random_weights(5, 3, nonnegative=True, seed=8)
    x, y = simulate_expression(w, n_samples=30, noise_sd=0.2, seed=9)
    for method in ("ols", "ridge", "nnls"):
        model = RegulationModel(method, alpha=0.1).fit(x, y)  # type: ignore[arg-type]
        effect = model.predict_edit([0.0, 1.0, 0.0], interval="bootstrap", n_boot=50, seed=1)
        assert effect.interval == "bootstrap"
        assert (effect.lower <= effect.upper).all()
        assert np.allclose(effect.delta_y, model.weights_[:, 1])
    assert "5 genes" in repr(effect) and "ridge" not in repr(model)


def test_user_errors_are_explained() -> None:
    x, y = simulate_expression(random_weights(3, 4, seed=0), n_samples=10, seed=0)
    with pytest.raises(GenomeError, match=r"X has 10 samples \(columns\) but Y has 9"):
        RegulationModel().fit(x, y[:, :9])
    with pytest.raises(GenomeError, match="rank 3 < 4 regulators") as err:
        RegulationModel().fit(x[:, :3], y[:, :3])
    assert "ridge" in str(err.value)
    model = RegulationModel().fit(x, y)
    with pytest.raises(GenomeError, match="the edit changes 2 regulators; the model has 4"):
        model.predict_edit([1.0, 2.0])
    with pytest.raises(GenomeError, match="unknown regulation method 'lasso'"):
        RegulationModel("lasso").fit(x, y)  # type: ignore[arg-type]
    with pytest.raises(GenomeError, match="not fitted yet"):
        RegulationModel().predict(x)
    with pytest.raises(GenomeError, match="NaN or infinite"):
        RegulationModel().fit(np.full_like(x, np.nan), y)
