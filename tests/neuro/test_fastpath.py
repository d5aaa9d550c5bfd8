"""The closed loop's fast paths give the libraries' numbers: decoders, band-pass, fault check."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ethos.neuro import (
    DECODERS,
    MotorImageryData,
    NeuroError,
    StreamingDecoder,
    crop_windows,
    make_decoder,
)
from ethos.neuro.fastpath import compile_window_decoder, is_fast
from ethos.neuro.faults import SensorFaultDetector
from ethos.neuro.features import InputGuard
from ethos.neuro.loop import corrupt
from ethos.neuro.streaming import CausalBandPass

# The same arithmetic rearranged: only rounding differs. PyTorch runs the MLP in float32.
TOLERANCE = {"csp_lda": 1e-9, "tangent_space": 1e-9, "bandpower_mlp": 1e-5}


def _windows(data: MotorImageryData) -> tuple[np.ndarray, np.ndarray]:
    windows, index = crop_windows(data.X, data.sfreq_hz, window_s=1.0, step_s=0.5)
    return windows, data.y[index]


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_window_fast_path_matches_the_pipeline(name: str, high_snr: MotorImageryData) -> None:
    """Every registered decoder has a fast path, and it gives predict_proba's probabilities."""
    windows, labels = _windows(high_snr)
    params = {"n_steps": 20} if name == "bandpower_mlp" else {}
    decoder = make_decoder(name, **params).fit(windows, labels)
    fast = compile_window_decoder(decoder)
    assert is_fast(fast), f"{name} fell back to the generic path"
    expected = decoder.predict_proba(windows)
    got = np.array([fast(w) for w in windows])
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOLERANCE[name])
    # Scale-free: the decoder is as exact on a window 1000 times larger (volts vs millivolts).
    np.testing.assert_allclose(fast(windows[0] * 1e3), decoder.predict_proba(windows[:1] * 1e3)[0],
                               rtol=0, atol=TOLERANCE[name])  # fmt: skip
    with pytest.raises(NeuroError, match="decoder was fitted on 22 channels but got 21"):
        fast(windows[0, :21])


def test_unknown_pipelines_use_their_own_predict_proba(high_snr: MotorImageryData) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import FunctionTransformer

    windows, labels = _windows(high_snr)
    flat = FunctionTransformer(lambda x: np.log(np.var(x, axis=-1)))
    decoder = Pipeline([("guard", InputGuard()), ("var", flat), ("scale", StandardScaler()),
                        ("logreg", LogisticRegression())]).fit(windows, labels)  # fmt: skip
    generic = compile_window_decoder(decoder)
    assert not is_fast(generic)
    np.testing.assert_array_equal(generic(windows[3]), decoder.predict_proba(windows[3:4])[0])


def test_streaming_tangent_space_equals_offline_pyriemann(high_snr: MotorImageryData) -> None:
    """The closed loop's path (causal band-pass, sliding window, fast tangent space) reproduces
    filtering the whole stream with scipy and classifying each window with the pyRiemann pipeline.
    """
    windows, labels = _windows(high_snr)
    decoder = make_decoder("tangent_space").fit(windows, labels)
    stream = StreamingDecoder(decoder, n_channels=22, sfreq_hz=250.0, window_s=1.0, step_s=0.1)
    raw = np.concatenate(list(high_snr.X[:4]), axis=1)  # 4 trials back to back, 8 s
    predictions = []
    for start in range(0, raw.shape[1], 5):  # 20 ms blocks
        predictions += stream.push(raw[:, start : start + 5])
    filtered = signal.sosfilt(stream.sos, raw, axis=-1)
    ends = [round(p.t_s * 250.0) for p in predictions]
    assert ends[:3] == [250, 275, 300] and len(ends) == (raw.shape[1] - 250) // 25 + 1
    offline = decoder.predict_proba(np.stack([filtered[:, e - 250 : e] for e in ends]))
    np.testing.assert_allclose(np.array([p.proba for p in predictions]), offline, rtol=0,
                               atol=1e-9)  # fmt: skip


def test_block_band_pass_equals_sosfilt() -> None:
    """Blocks of uneven length, carried state: the same samples as one sosfilt over the stream."""
    sos = signal.butter(4, [8.0, 30.0], btype="bandpass", fs=250.0, output="sos")
    rng = np.random.default_rng(0)
    x = 20e-6 * rng.standard_normal((22, 3000)) + 1e-3  # with a DC offset, as amplifiers have
    band_pass = CausalBandPass(sos, 22)
    cuts = np.cumsum(rng.integers(1, 60, size=200))
    pieces = np.split(x, cuts[cuts < x.shape[1]], axis=1)
    got = np.concatenate([band_pass(p) for p in pieces], axis=1)
    expected = signal.sosfilt(sos, x, axis=-1)
    assert np.abs(got - expected).max() <= 1e-12 * np.abs(expected).max()
    band_pass.reset()
    np.testing.assert_allclose(band_pass(x[:, :100]), expected[:, :100], rtol=0,
                               atol=1e-12 * np.abs(expected).max())  # fmt: skip


def test_fault_check_fast_path_agrees_with_the_full_check() -> None:
    """Healthy, faulty and borderline blocks: the per-cycle check says what the full one says."""
    detector = SensorFaultDetector(n_channels=22, samples_per_cycle=5)
    rng = np.random.default_rng(1)
    blocks = []
    for _ in range(200):
        block = 10e-6 * rng.standard_normal((22, 5))
        kind = rng.choice(["none", "nan", "flat_line", "saturation", "missing_samples", "inf",
                           "near_flat", "near_rail"])  # fmt: skip
        if kind == "inf":
            block[rng.integers(22), rng.integers(5)] = -np.inf
        elif kind == "near_flat":  # std within 1e-6 of the 1e-8 V threshold, either side
            row = rng.standard_normal(5)
            block[3] = (row - row.mean()) / row.std() * 1e-8 * (1 + rng.uniform(-2e-6, 2e-6))
        elif kind == "near_rail":
            block[0, 0] = detector.saturation_v * (1 + rng.choice([-1e-12, 0.0, 1e-12]))
        elif kind != "none":
            block = corrupt(block, str(kind), 5)
        blocks.append(block)
    statuses = [detector.check(block) for block in blocks]
    assert statuses == [detector._full_check(block) for block in blocks]
    assert {f for s in statuses for f in s.faults} == {"nan", "flat_line", "saturation",
                                                       "missing_samples"}  # fmt: skip
    assert sum(s.ok for s in statuses) > 30
