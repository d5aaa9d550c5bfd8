"""Sensor fault detection: the conditions under which stimulation must stop.

A closed loop that acts on a broken sensor acts on noise. Each control cycle the detector looks
at the block of samples that arrived and reports any of: ``nan`` (NaN or inf), ``missing_samples``
(fewer samples than one cycle should bring), ``flat_line`` (a channel whose standard deviation
is below ``flat_std_v``: a disconnected or shorted electrode), ``saturation`` (a sample at or
beyond the amplifier's range). Any fault switches stimulation off in that same cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ethos.neuro.errors import NeuroError

FAULT_KINDS = ("nan", "missing_samples", "flat_line", "saturation")
_MARGIN = 1.0 + 1e-6  # variances this close to the flat-line threshold get the full check


@dataclass(frozen=True)
class SensorStatus:
    """The outcome of one check: which faults, if any, and on which channels."""

    faults: tuple[str, ...] = ()
    channels: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the block is usable."""
        return not self.faults

    def __repr__(self) -> str:
        if self.ok:
            return "<SensorStatus ok>"
        return f"<SensorStatus FAULT {','.join(self.faults)} on channels {list(self.channels)}>"


HEALTHY = SensorStatus()
"""The status of a block with no fault."""


@dataclass(frozen=True)
class SensorFaultDetector:
    """Checks one control cycle's block of samples, shape (n_channels, n_samples), in volts.

    Defaults suit scalp EEG: a typical amplifier range of ±0.4 V is far from a ±1 mV working
    range, so ``saturation_v`` is set lower (5 mV) to catch railed or clipped channels, and a real
    scalp channel never has a standard deviation below 0.01 µV.
    """

    n_channels: int
    samples_per_cycle: int
    saturation_v: float = 5e-3
    flat_std_v: float = 1e-8

    def __post_init__(self) -> None:
        if self.n_channels < 1 or self.samples_per_cycle < 2:
            raise NeuroError(
                f"SensorFaultDetector: n_channels={self.n_channels}, samples_per_cycle="
                f"{self.samples_per_cycle}; need at least 1 channel and 2 samples per cycle",
                hint="raise the sampling rate or the control cycle length",
            )

    def check(self, block: ArrayLike) -> SensorStatus:
        """Report the faults in ``block``; a block of the wrong channel count is an error.

        Runs every control cycle, so a healthy block is cleared with two reductions: the largest
        magnitude (below saturation, hence also finite) and the row variances (each above the
        flat-line threshold with a margin). Anything else, or anything close, takes the full
        check, which names every fault and channel.
        """
        x = np.asarray(block, dtype=float)
        if x.ndim != 2 or x.shape[0] != self.n_channels:
            raise NeuroError(
                f"sensor block has shape {x.shape}; expected ({self.n_channels}, n_samples)",
                hint="pass one cycle of samples as channels x samples",
            )
        n = x.shape[1]
        # The largest magnitude is NaN or inf when any sample is, which fails the comparison.
        if n >= self.samples_per_cycle and np.abs(x).max() < self.saturation_v:
            centred = x - x.sum(axis=1, keepdims=True) / n
            scatter = np.einsum("ij,ij->i", centred, centred)  # n x each row's variance
            if scatter.min() > _MARGIN * n * self.flat_std_v**2:
                return HEALTHY
        return self._full_check(x)

    def _full_check(self, x: np.ndarray) -> SensorStatus:
        faults: list[str] = []
        bad: set[int] = set()
        finite = np.isfinite(x)
        if not finite.all():
            faults.append("nan")
            bad.update(np.flatnonzero(~finite.all(axis=1)).tolist())
        if x.shape[1] < self.samples_per_cycle:
            faults.append("missing_samples")
        rows_finite = finite.all(axis=1)
        if x.shape[1] >= 2 and rows_finite.any():
            std_v = np.full(x.shape[0], np.inf)
            std_v[rows_finite] = x[rows_finite].std(axis=1)
            flat_rows = np.flatnonzero(std_v < self.flat_std_v)
            if flat_rows.size:
                faults.append("flat_line")
                bad.update(flat_rows.tolist())
        railed = np.abs(np.where(finite, x, 0.0)) >= self.saturation_v
        if railed.any():
            faults.append("saturation")
            bad.update(np.flatnonzero(railed.any(axis=1)).tolist())
        return SensorStatus(tuple(faults), tuple(sorted(bad)))
