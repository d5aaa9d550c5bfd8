"""Streaming decoding for the closed loop: classify a sliding window as samples arrive.

Samples come in blocks (one control cycle each). The decoder keeps a causal band-pass filter
(4th-order Butterworth, 8-30 Hz, second-order sections with carried state, so no sample is ever
filtered twice and no future sample is used) and the last ``window_s`` seconds; every ``step_s``
seconds (the decoding hop: 100 ms, five 20 ms control cycles, by default) it classifies the window
ending at that sample. The decoder should be trained on windows of the same length (see
:func:`crop_windows`).

Between decisions a block is only checked and queued; the queued samples are filtered, with the
carried state, when the next decision needs them, which gives the same samples as filtering each
block on arrival (the filter is causal and runs sample by sample either way) in a fifth of the
calls. The filter itself is :class:`CausalBandPass`, and classification goes through
:func:`~ethos.neuro.fastpath.compile_window_decoder`: the same numbers as ``scipy.signal.sosfilt``
and the fitted pipeline's ``predict_proba``, without their per-call overhead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import linalg, signal

from ethos.neuro.errors import NeuroError
from ethos.neuro.fastpath import compile_window_decoder


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


class CausalBandPass:
    """A cascade of second-order sections run over blocks of samples with carried state.

    The same output as ``scipy.signal.sosfilt(sos, x, zi=...)`` called block after block (to
    rounding; ``tests/neuro/test_fastpath.py`` pins it to 1e-12 relative), computed as one matrix
    product per block. The cascade (transposed direct form II per section, as scipy runs it) is
    the linear state-space system ``s' = A s + B u``, ``y = C s + D u`` with ``2·n_sections``
    states; over a block of L samples, ``[y_1..y_L, s_L] = [s_0, u_1..u_L] @ M_L`` where ``M_L``
    holds ``C A^k`` (initial-state response), the Toeplitz matrix of the impulse response
    (input response), ``A^L`` and ``A^(L-1-j) B`` (next state). Written by hand because scipy's
    per-call validation costs ten times the arithmetic on a 22 x 25 block; ``M_L`` is built once
    per block length.
    """

    def __init__(self, sos: NDArray[np.float64], n_channels: int) -> None:
        self.sos = np.asarray(sos, dtype=np.float64)
        self.n_channels = n_channels
        n_states = 2 * self.sos.shape[0]
        self._a = np.zeros((n_states, n_states))
        self._c = np.zeros(n_states)
        for i in range(n_states):
            state = np.zeros(n_states)
            state[i] = 1.0
            self._c[i], self._a[:, i] = self._step(state, 0.0)
        self._d, self._b = self._step(np.zeros(n_states), 1.0)
        self._maps: dict[int, NDArray[np.float64]] = {}
        self.reset()

    def _step(self, state: NDArray[np.float64], u: float) -> tuple[float, NDArray[np.float64]]:
        """One sample through the cascade: (output, next state); defines A, B, C, D."""
        z = state.reshape(-1, 2).copy()
        x = u
        for k, (b0, b1, b2, _, a1, a2) in enumerate(self.sos):
            y = b0 * x + z[k, 0]
            z[k, 0] = b1 * x - a1 * y + z[k, 1]
            z[k, 1] = b2 * x - a2 * y
            x = y
        return float(x), z.ravel()

    def _map(self, n: int) -> NDArray[np.float64]:
        if n not in self._maps:
            if len(self._maps) >= 8:  # block lengths are few (first window, then the hop)
                self._maps.clear()
            n_states = self._a.shape[0]
            powers = [np.eye(n_states)]
            for _ in range(n):
                powers.append(self._a @ powers[-1])
            observe = np.array([self._c @ powers[k] for k in range(n)])  # (n, states)
            impulse = np.array([self._d] + [self._c @ powers[k] @ self._b for k in range(n - 1)])
            toeplitz = linalg.toeplitz(impulse, np.zeros(n))  # [k, j] = h[k - j]
            control = np.array([powers[n - 1 - j] @ self._b for j in range(n)])  # (n, states)
            self._maps[n] = np.block([[observe.T, powers[n].T], [toeplitz.T, control]])
        return self._maps[n]

    def reset(self) -> None:
        """Zero the filter state (as after a long silence)."""
        self.state = np.zeros((self.n_channels, self._a.shape[0]))

    def __call__(self, block: NDArray[np.float64]) -> NDArray[np.float64]:
        """Filter ``block`` (n_channels, n_samples), continuing from the previous block."""
        n = block.shape[1]
        out = np.concatenate([self.state, block], axis=1) @ self._map(n)
        self.state = out[:, n:]
        return out[:, :n]


class StreamingDecoder:
    """Feeds a fitted decoder a sliding window of causally band-passed samples.

    The decoder's fast path is compiled here, from its parameters as fitted now: build a new
    streaming decoder after refitting it.
    """

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
        self.window_proba = compile_window_decoder(decoder)
        self.n_channels = n_channels
        self.sfreq_hz = sfreq_hz
        self.window_samples = round(window_s * sfreq_hz)
        self.step_samples = max(round(step_s * sfreq_hz), 1)
        self.sos = signal.butter(4, [l_freq_hz, h_freq_hz], btype="bandpass", fs=sfreq_hz,
                                 output="sos")  # fmt: skip
        self.band_pass = CausalBandPass(self.sos, n_channels)
        self.reset()

    def reset(self) -> None:
        """Forget all samples and the filter state."""
        self.band_pass.reset()
        self._buffer = np.zeros((self.n_channels, self.window_samples))
        self._pending: list[NDArray[np.float64]] = []
        self._n_pending = 0
        self._n_filtered = 0
        self._next_decision = self.window_samples

    def push(self, block: NDArray[np.float64]) -> list[WindowPrediction]:
        """Add a block (n_channels, n_samples) in volts; return the predictions it completed.

        A prediction is made at every sample count ``window + j·step`` (j = 0, 1, ...), on the
        window ending at that sample; ``t_s`` is that sample's time since the start.
        """
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
        if x.shape[1]:
            self._pending.append(x)
            self._n_pending += x.shape[1]
        predictions = []
        while self._n_filtered + self._n_pending >= self._next_decision:
            queued = (self._pending[0] if len(self._pending) == 1
                      else np.concatenate(self._pending, axis=1))  # fmt: skip
            take = self._next_decision - self._n_filtered
            filtered = self.band_pass(queued[:, :take])
            rest = queued[:, take:]
            self._pending = [rest] if rest.shape[1] else []
            self._n_pending = rest.shape[1]
            self._n_filtered += take
            if take >= self.window_samples:
                self._buffer = filtered[:, -self.window_samples :]
            else:
                self._buffer = np.concatenate([self._buffer[:, take:], filtered], axis=1)
            proba = self.window_proba(self._buffer)
            label = int(self.decoder.classes_[proba.argmax()])
            predictions.append(WindowPrediction(self._n_filtered / self.sfreq_hz, label, proba))
            self._next_decision += self.step_samples
        return predictions
