"""The decoder family: one contract over every registered decoder, then the science."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from ethos.neuro import (
    DECODERS,
    Decoder,
    MotorImageryData,
    NeuroError,
    StreamingDecoder,
    crop_windows,
    evaluate_decoder,
    make_decoder,
)


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_decoder_contract(name: str, high_snr: MotorImageryData) -> None:
    """What every decoder must do; adding a decoder adds a case here automatically."""
    X, y = high_snr.X, high_snr.y
    decoder = make_decoder(name)
    assert clone(decoder).get_params().keys() == decoder.get_params().keys()
    with pytest.raises(Exception, match=r"not fitted|NotFitted"):
        decoder.predict(X[:2])
    fitted = decoder.fit(X[::2], y[::2])
    assert isinstance(fitted, Decoder)
    assert list(fitted.classes_) == [0, 1]
    proba = fitted.predict_proba(X[1::2])
    assert proba.shape == (20, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert (fitted.predict(X[1::2]) == y[1::2]).mean() >= 0.8
    # One window at a time, as the streaming decoder calls it.
    assert fitted.predict_proba(X[:1]).shape == (1, 2)

    bad = X[1::2].copy()
    bad[0, 3, 10] = np.nan
    with pytest.raises(NeuroError, match=r"signals contain NaN or infinite values \(1 epochs"):
        fitted.predict(bad)
    with pytest.raises(NeuroError, match="decoder was fitted on 22 channels but got 21"):
        fitted.predict(X[:, :21])
    with pytest.raises(NeuroError, match=r"expected \(n_epochs, n_channels, n_times\)"):
        fitted.predict(X[0])
    with pytest.raises(NeuroError, match="empty epochs"):
        fitted.predict(X[:0])


def test_unknown_decoder() -> None:
    with pytest.raises(NeuroError, match="unknown decoder 'eegnet'"):
        make_decoder("eegnet")


@pytest.mark.parametrize("name", ["csp_lda", "tangent_space"])
def test_high_snr_decoding_is_accurate(name: str, high_snr: MotorImageryData) -> None:
    result = evaluate_decoder(make_decoder(name), high_snr.X, high_snr.y, name=name,
                              class_names=high_snr.class_names)  # fmt: skip
    assert result.accuracy >= 0.9, result
    assert result.kappa >= 0.8
    assert result.roc_auc >= 0.9
    assert result.confusion.sum() == len(high_snr)
    assert len(result.fold_accuracies) == 5


def _permutation_p(name: str, data: MotorImageryData, n_permutations: int) -> float:
    result = evaluate_decoder(make_decoder(name), data.X, data.y, name=name,
                              n_permutations=n_permutations, seed=0)  # fmt: skip
    assert result.permutation_p is not None
    return result.permutation_p


@pytest.mark.parametrize("name", ["csp_lda", "tangent_space"])
def test_permutation_test_separates_signal_from_none(
    name: str, high_snr: MotorImageryData, no_signal: MotorImageryData
) -> None:
    """Ojala & Garriga 2010: significant with ERD, not significant (chance) with zero ERD.

    20 permutations keep the default run fast (smallest attainable p = 1/21 < 0.05).
    """
    if name == "csp_lda":  # the significant side once: refits are the slow part of the suite
        assert _permutation_p(name, high_snr, 20) < 0.05
    p_null = _permutation_p(name, no_signal, 20)
    assert p_null >= 0.05, p_null


@pytest.mark.slow
@pytest.mark.parametrize("name", ["csp_lda", "tangent_space"])
def test_no_class_signal_is_at_chance_200_permutations(
    name: str, no_signal: MotorImageryData
) -> None:
    result = evaluate_decoder(make_decoder(name), no_signal.X, no_signal.y, n_permutations=200)
    assert result.permutation_p is not None and result.permutation_p >= 0.05, result
    assert abs(result.accuracy - 0.5) < 0.2


def test_evaluation_input_errors(high_snr: MotorImageryData) -> None:
    with pytest.raises(NeuroError, match="smallest class has 3 epochs, fewer than 5 folds"):
        evaluate_decoder(make_decoder("csp_lda"), high_snr.X[:6], np.array([0, 1, 0, 1, 0, 1]))


def test_streaming_decoder_follows_imagery(high_snr: MotorImageryData) -> None:
    """Trained on 1 s windows, the streaming decoder classifies concatenated trials correctly."""
    windows, index = crop_windows(high_snr.X, high_snr.sfreq_hz, window_s=1.0, step_s=0.25)
    decoder = make_decoder("csp_lda").fit(windows, high_snr.y[index])
    stream = StreamingDecoder(decoder, n_channels=22, sfreq_hz=250.0, window_s=1.0, step_s=0.1)
    correct = []
    for trial in range(10):
        stream.reset()
        predictions = []
        for start in range(0, 501, 5):
            predictions += stream.push(high_snr.X[trial, :, start : start + 5])
        assert predictions, "a 2 s trial yields sliding-window predictions"
        correct.append(predictions[-1].label == high_snr.y[trial])
    assert np.mean(correct) >= 0.8
    with pytest.raises(NeuroError, match="block contains NaN"):
        stream.push(np.full((22, 5), np.nan))
    with pytest.raises(NeuroError, match=r"expected \(22, n_samples\)"):
        stream.push(np.zeros((21, 5)))
