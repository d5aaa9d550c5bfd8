"""Figures for the reports (matplotlib's object API, no pyplot state, no display needed)."""

from __future__ import annotations

import mne
import numpy as np
from matplotlib.figure import Figure
from numpy.typing import NDArray
from scipy import signal

from ethos.neuro.data import MotorImageryData
from ethos.neuro.loop import LoopTrace


def plot_class_spectra(data: MotorImageryData, channels: tuple[str, ...] = ("C3", "Cz", "C4"),
                       ) -> Figure:  # fmt: skip
    """Mean power spectrum per class at the motor channels: ERD shows as a lower mu/beta peak."""
    figure = Figure(figsize=(10, 3))
    axes = figure.subplots(1, len(channels), sharey=True)
    freqs, psd = signal.welch(data.X, fs=data.sfreq_hz, nperseg=int(data.sfreq_hz), axis=-1)
    for ax, channel in zip(np.atleast_1d(axes), channels, strict=False):
        if channel not in data.ch_names:
            continue
        index = data.ch_names.index(channel)
        for label, name in enumerate(data.class_names):
            mean = psd[data.y == label, index].mean(axis=0) * 1e12
            ax.semilogy(freqs, mean, label=name)
        ax.set_xlim(4, 35)
        ax.set_title(channel)
        ax.set_xlabel("frequency (Hz)")
    np.atleast_1d(axes)[0].set_ylabel("power (µV²/Hz)")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    return figure


def plot_csp_patterns(patterns: NDArray[np.float64], info: mne.Info, n: int = 4) -> Figure:
    """The leading CSP patterns as topomaps (patterns, not filters: Haufe et al. 2014)."""
    n = min(n, patterns.shape[0])
    figure = Figure(figsize=(2.4 * n, 2.6))
    axes = np.atleast_1d(figure.subplots(1, n))
    for k, ax in enumerate(axes):
        mne.viz.plot_topomap(patterns[k], info, axes=ax, show=False, contours=0)
        ax.set_title(f"CSP {k + 1}")
    return figure


def plot_confusion(confusion: NDArray[np.int64], class_names: tuple[str, ...]) -> Figure:
    """Confusion matrix of out-of-fold predictions, counts in the cells."""
    figure = Figure(figsize=(4, 3.5))
    ax = figure.subplots()
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(class_names)), class_names, rotation=30, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (i, j), count in np.ndenumerate(confusion):
        ax.text(j, i, str(count), ha="center", va="center")
    return figure


def plot_loop(trace: LoopTrace, title: str = "") -> Figure:
    """Intent, plant output, credit C(t), stimulation amplitude against its envelope limit."""
    figure = Figure(figsize=(10, 8))
    axes = figure.subplots(4, 1, sharex=True)
    t = trace.t_s
    axes[0].plot(t, trace.true_intent, label="true intent", color="k")
    axes[0].plot(t, trace.decoded_intent, label="decoded intent", color="tab:orange")
    axes[0].set_ylabel("intent")
    axes[0].legend(fontsize=8, loc="upper right")
    axes[1].plot(t, trace.measurement, label=f"measured ({trace.measurement_unit})")
    axes[1].plot(t, trace.target, label="target for true intent", ls="--", color="k")
    axes[1].legend(fontsize=8, loc="upper right")
    axes[2].plot(t, trace.credit, color="tab:green")
    axes[2].set_ylabel("C(t)")
    limit_ma = np.where(trace.pulse_width_us > 0,
                        trace.envelope.max_charge_uc / np.maximum(trace.pulse_width_us, 1e-9) * 1e3,
                        np.nan)  # fmt: skip
    limit_ma = np.minimum(limit_ma, trace.envelope.max_amplitude_ma)
    axes[3].plot(t, trace.amplitude_ma, label="delivered amplitude (mA)")
    axes[3].plot(t, limit_ma, color="tab:red", ls=":", label="envelope limit at this width")
    if trace.fault.any():
        axes[3].fill_between(t, 0, trace.envelope.max_amplitude_ma, where=trace.fault,
                             color="tab:red", alpha=0.15, label="sensor fault: off")  # fmt: skip
    axes[3].set_ylabel("mA")
    axes[3].set_xlabel("time (s)")
    axes[3].legend(fontsize=8, loc="upper right")
    figure.suptitle(title or f"M = {trace.objective:.2f}")
    return figure
