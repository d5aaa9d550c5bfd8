"""Scikit-learn transformers shared by the decoders: input validation and band power.

:class:`InputGuard` is the first step of every decoder pipeline, so every decoder rejects NaN
signals, wrong shapes and a changed channel count with the same clear message.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import signal
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ethos.neuro.errors import NeuroError

BANDS_HZ = ((8.0, 12.0), (12.0, 16.0), (16.0, 20.0), (20.0, 24.0), (24.0, 30.0))
"""Mu and beta sub-bands for band-power features."""


def validate_signals(X: Any, *, where: str) -> NDArray[np.float64]:
    """Return X as float64 (n_epochs, n_channels, n_times) or raise a NeuroError saying why."""
    try:
        x = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise NeuroError(f"{where}: signals are not numeric ({exc})") from exc
    if x.ndim != 3:
        raise NeuroError(
            f"{where}: signals have shape {x.shape}; expected (n_epochs, n_channels, n_times)",
            hint="pass MotorImageryData.X, or add an epoch axis with x[None]",
        )
    if x.shape[0] == 0 or x.shape[2] < 2:
        raise NeuroError(f"{where}: empty epochs (shape {x.shape})", hint="check the event times")
    if not np.isfinite(x).all():
        n_bad = int((~np.isfinite(x).all(axis=(1, 2))).sum())
        raise NeuroError(
            f"{where}: signals contain NaN or infinite values ({n_bad} epochs affected)",
            hint="drop or interpolate bad epochs before decoding",
        )
    return x


class InputGuard(BaseEstimator, TransformerMixin):
    """Validates signals and remembers the channel count seen in ``fit``; passes data through."""

    def fit(self, X: Any, y: Any = None) -> InputGuard:
        """Record the number of channels."""
        self.n_channels_ = validate_signals(X, where="decoder.fit").shape[1]
        return self

    def transform(self, X: Any) -> NDArray[np.float64]:
        """Check X against the fitted channel count and return it as float64."""
        check_is_fitted(self, "n_channels_")
        x = validate_signals(X, where="decoder.predict")
        if x.shape[1] != self.n_channels_:
            raise NeuroError(
                f"decoder was fitted on {self.n_channels_} channels but got {x.shape[1]}",
                hint="pick the same channels, in the same order, as in training",
            )
        return x


class BandPower(BaseEstimator, TransformerMixin):
    """Log band power per channel and band from Welch's periodogram, shape (n, ch·bands).

    Log power because band power is roughly log-normal across trials and ERD is multiplicative.
    """

    def __init__(
        self, sfreq_hz: float = 250.0, bands_hz: tuple[tuple[float, float], ...] = BANDS_HZ
    ):
        self.sfreq_hz = sfreq_hz
        self.bands_hz = bands_hz

    def fit(self, X: Any, y: Any = None) -> BandPower:
        """Stateless; present for the scikit-learn contract."""
        return self

    def transform(self, X: Any) -> NDArray[np.float64]:
        """Features of shape (n_epochs, n_channels * n_bands)."""
        x = np.asarray(X, dtype=np.float64)
        nperseg = min(x.shape[-1], int(self.sfreq_hz))
        freqs, psd = signal.welch(x, fs=self.sfreq_hz, nperseg=nperseg, axis=-1)
        powers = []
        for lo, hi in self.bands_hz:
            mask = (freqs >= lo) & (freqs < hi)
            if not mask.any():
                raise NeuroError(
                    f"BandPower: band {lo}-{hi} Hz has no frequency bin at "
                    f"{self.sfreq_hz} Hz with {x.shape[-1]} samples",
                    hint="use longer windows",
                )
            powers.append(psd[..., mask].mean(axis=-1))
        # 1e-30 V²/Hz floor: log of an exactly flat channel stays finite.
        return np.log(np.stack(powers, axis=-1) + 1e-30).reshape(x.shape[0], -1)
