"""Streaming decoding for the closed loop: classify a sliding window as samples arrive.

Samples come in blocks (one control cycle each). The decoder keeps a causal band-pass filter
(4th-order Butterworth, 8-30 Hz, second-order sections with carried state, so no sample is ever
filtered twice and no future sample is used) and a ring buffer of the last ``window_s`` seconds;
every ``step_s`` seconds it classifies the window with a fitted decoder. The decoder should be
trained on windows of the same length (see :func:`crop_windows`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import signal

from ethos.neuro.errors import NeuroError


@dataclass(frozen=True)
class WindowPrediction:
    """One classification: when (end of window, s since start), label and class probabilities."""

    t_s: float
    label: int
    proba: NDArray[np.float64]


def crop_windows(
    X: NDArray[np.float64],
    sfreq_hz: float,
    window_s: float,
    step_s: float,
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Cut every epoch into windows of ``window_s``; returns windows and their epoch index."""
    n = round(window_s * sfreq_hz)
    step = round(step_s * sfreq_hz)
    if n > X.shape[-1]:
        raise NeuroError(f"crop_windows: a {window_s} s window is longer than the epochs")
    starts = range(0, X.shape[-1] - n + 1, max(step, 1))
    windows = np.stack([X[:, :, s : s + n] for s in starts], axis=1)
    index = np.repeat(np.arange(X.shape[0]), windows.shape[1])
    return windows.reshape(-1, X.shape[1], n), index


class StreamingDecoder:
    """Feeds a fitted decoder a sliding window of causally band-passed samples."""

    def __init__(
        self,
        decoder: Any,
        *,
        n_channels: int,
        sfreq_hz: float,
        window_s: float = 1.0,
        step_s: float = 0.1,
        l_freq_hz: float = 8.0,
        h_freq_hz: float = 30.0,
    ) -> None:
        if not hasattr(decoder, "classes_"):
            raise NeuroError(
                "StreamingDecoder: the decoder is not fitted", hint="call decoder.fit(X, y) first"
            )
        self.decoder = decoder
        self.n_channels = n_channels
        self.sfreq_hz = sfreq_hz
        self.window_samples = round(window_s * sfreq_hz)
        self.step_samples = max(round(step_s * sfreq_hz), 1)
        self.sos = signal.butter(4, [l_freq_hz, h_freq_hz], btype="bandpass", fs=sfreq_hz,
                                 output="sos")  # fmt: skip
        self.reset()

    def reset(self) -> None:
        """Forget all samples and the filter state."""
        self._zi = np.zeros((self.sos.shape[0], self.n_channels, 2))
        self._buffer = np.zeros((self.n_channels, self.window_samples))
        self._filled = 0
        self._since_last = 0
        self._n_seen = 0

    def push(self, block: NDArray[np.float64]) -> list[WindowPrediction]:
        """Add a block (n_channels, n_samples) in volts; return the predictions it completed."""
        x = np.asarray(block, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] != self.n_channels:
            raise NeuroError(
                f"StreamingDecoder.push: block has shape {x.shape}; expected "
                f"({self.n_channels}, n_samples)"
            )
        if not np.isfinite(x).all():
            raise NeuroError(
                "StreamingDecoder.push: block contains NaN or inf",
                hint="check the sensor first (SensorFaultDetector) and skip faulty blocks",
            )
        filtered, self._zi = signal.sosfilt(self.sos, x, axis=-1, zi=self._zi)
        predictions = []
        for start in range(0, filtered.shape[1], self.step_samples):
            chunk = filtered[:, start : start + self.step_samples]
            k = chunk.shape[1]
            self._buffer = np.roll(self._buffer, -k, axis=1)
            self._buffer[:, -k:] = chunk
            self._filled = min(self._filled + k, self.window_samples)
            self._since_last += k
            self._n_seen += k
            if self._filled == self.window_samples and self._since_last >= self.step_samples:
                self._since_last = 0
                proba = self.decoder.predict_proba(self._buffer[None])[0]
                predictions.append(
                    WindowPrediction(
                        self._n_seen / self.sfreq_hz, int(self.decoder.classes_[proba.argmax()]),
                        proba,
                    )
                )  # fmt: skip
        return predictions
