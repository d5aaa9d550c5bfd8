"""Offline simulation of motor-imagery EEG with MNE's forward model.

The head is MNE's three-layer spherical conductor fitted to a 10-20 montage. Three dipoles sit
in motor cortex, under C3 (left hand area, drives the right hand), C4 (right hand area, drives
the left hand) and Cz (medial foot area), each carrying a mu (≈10 Hz) and a beta (≈20 Hz)
rhythm. Imagined movement desynchronises the rhythm of the contralateral area
(event-related desynchronisation, ERD; Pfurtscheller & Lopes da Silva 1999, Clin Neurophysiol
110:1842): left hand → C4 source, right hand → C3 source, feet → Cz source, rest → none.
Background activity is pink (1/f) noise from randomly placed dipoles plus white sensor noise.

``snr_db`` is the ratio of motor-rhythm power to noise power at the sensors in the 8-30 Hz band
the decoders use; ``erd_fraction`` is the depth of the desynchronisation (0 removes every class
difference, which is how the tests check decoders fall to chance).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import mne
import numpy as np
from numpy.typing import NDArray
from scipy import signal

from ethos.neuro.data import CLASS_CODES, CLASSES, MotorImageryData
from ethos.neuro.errors import NeuroError

MOTOR_CHANNELS = (
    "Fz", "FC3", "FC1", "FCz", "FC2", "FC4", "C5", "C3", "C1", "Cz", "C2",
    "C4", "C6", "CP3", "CP1", "CPz", "CP2", "CP4", "P1", "Pz", "P2", "POz",
)  # fmt: skip
"""The 22 channels of BCI Competition IV 2a, all in the standard 10-20 montage."""

MONTAGE = (
    "colin27_1020" if "colin27_1020" in mne.channels.get_builtin_montages() else "standard_1020"
)
"""The standard 10-20 montage (MNE 1.13 renamed ``standard_1020`` to ``colin27_1020``)."""

_SOURCE_SITES = {"left_motor": "C3", "right_motor": "C4", "medial_motor": "Cz"}
_ERD_TARGET = {"left_hand": "right_motor", "right_hand": "left_motor", "feet": "medial_motor"}
_SIGNAL_RMS_V = 10e-6  # motor rhythms at the scalp: about 10 µV rms
_N_BACKGROUND = 24
_SENSOR_NOISE_SHARE = 0.2  # of the noise power, the rest is background brain activity


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate. Times in seconds from trial start; the cue comes at ``cue_s``."""

    n_subjects: int = 1
    trials_per_class: int = 20
    classes: tuple[str, ...] = ("left_hand", "right_hand")
    snr_db: float = 10.0
    erd_fraction: float = 0.7
    sfreq_hz: float = 250.0
    ch_names: tuple[str, ...] = MOTOR_CHANNELS
    trial_s: float = 6.0
    cue_s: float = 2.0
    imagery_s: float = 4.0
    seed: int = 0
    stim_channel: bool = False

    def __post_init__(self) -> None:
        where = "SimulationConfig"
        unknown = [c for c in self.classes if c not in CLASSES]
        if unknown or len(set(self.classes)) < 2:
            raise NeuroError(
                f"{where}: classes={list(self.classes)} must name at least two of {list(CLASSES)}",
                hint="e.g. classes=('left_hand', 'right_hand')",
            )
        if self.n_subjects < 1 or self.trials_per_class < 2:
            raise NeuroError(
                f"{where}: need n_subjects >= 1 and trials_per_class >= 2 "
                f"(got {self.n_subjects}, {self.trials_per_class})"
            )
        if not 0.0 <= self.erd_fraction < 1.0:
            raise NeuroError(f"{where}: erd_fraction={self.erd_fraction} must be in [0, 1)")
        if self.sfreq_hz < 100.0:
            raise NeuroError(
                f"{where}: sfreq_hz={self.sfreq_hz} is too low for 8-30 Hz rhythms",
                hint="use at least 100 Hz (250 Hz is typical)",
            )
        if self.cue_s + self.imagery_s > self.trial_s or self.cue_s < 0.5:
            raise NeuroError(f"{where}: cue_s + imagery_s must fit in trial_s, cue_s >= 0.5")
        missing = [c for c in ("C3", "C4", "Cz") if c not in self.ch_names]
        if missing:
            raise NeuroError(
                f"{where}: channels {missing} are required to see motor cortex",
                hint="keep C3, C4 and Cz in ch_names",
            )


@functools.lru_cache(maxsize=8)
def _forward(ch_names: tuple[str, ...], sfreq_hz: float) -> tuple[mne.Info, NDArray[np.float64]]:
    """Info with montage, and the gain (n_channels, n_sources) of fixed-orientation dipoles.

    Motor dipoles point radially outward; background dipoles have random orientations.
    Computed once per channel set (the forward solution is the slow part).
    """
    info = mne.create_info(list(ch_names), sfreq_hz, "eeg")
    info.set_montage(MONTAGE)
    sphere = mne.make_sphere_model("auto", "auto", info, verbose=False)
    r0 = np.asarray(sphere["r0"])
    radius_m = float(sphere.radius)
    positions = info.get_montage().get_positions()["ch_pos"]
    rr, nn = [], []
    for site in _SOURCE_SITES.values():
        direction = np.asarray(positions[site]) - r0
        direction /= np.linalg.norm(direction)
        rr.append(r0 + 0.75 * radius_m * direction)
        nn.append(direction)
    rng = np.random.default_rng(12345)  # fixed: the anatomy is the same for every subject
    while len(rr) < len(_SOURCE_SITES) + _N_BACKGROUND:
        point = rng.uniform(-1, 1, 3)
        if 0.2 < np.linalg.norm(point) < 0.8 and point[2] > -0.2:
            rr.append(r0 + radius_m * point)
            orientation = rng.normal(size=3)
            nn.append(orientation / np.linalg.norm(orientation))
    rr_arr, nn_arr = np.array(rr), np.array(nn)
    src = mne.setup_volume_source_space(
        pos={"rr": rr_arr, "nn": nn_arr}, sphere=sphere, verbose=False
    )
    fwd = mne.make_forward_solution(info, trans=None, src=src, bem=sphere, eeg=True, meg=False,
                                    verbose=False)  # fmt: skip
    if fwd["nsource"] != len(rr_arr):
        raise NeuroError("simulation: a source fell outside the head model")  # pragma: no cover
    gain_xyz = fwd["sol"]["data"].reshape(len(ch_names), -1, 3)
    gain = np.einsum("csk,sk->cs", gain_xyz, nn_arr)
    return info, gain


def _bandlimited(rng: np.random.Generator, n: int, lo_hz: float, hi_hz: float, sfreq_hz: float,
                 ) -> NDArray[np.float64]:  # fmt: skip
    sos = signal.butter(4, [lo_hz, hi_hz], btype="bandpass", fs=sfreq_hz, output="sos")
    x = signal.sosfiltfilt(sos, rng.standard_normal(n))
    return np.asarray(x / x.std())


def _pink(rng: np.random.Generator, shape: tuple[int, int], sfreq_hz: float) -> NDArray[np.float64]:
    spectrum = np.fft.rfft(rng.standard_normal(shape), axis=-1)
    freqs = np.fft.rfftfreq(shape[-1], 1.0 / sfreq_hz)
    spectrum *= 1.0 / np.sqrt(np.maximum(freqs, 1.0))
    x = np.fft.irfft(spectrum, n=shape[-1], axis=-1)
    return np.asarray(x / x.std(axis=-1, keepdims=True))


def _band_power(x: NDArray[np.float64], sfreq_hz: float) -> float:
    sos = signal.butter(4, [8.0, 30.0], btype="bandpass", fs=sfreq_hz, output="sos")
    return float(np.mean(signal.sosfiltfilt(sos, x, axis=-1) ** 2))


def simulate_raw(
    config: SimulationConfig, *, subject: int = 0, trial_classes: Sequence[str] | None = None
) -> mne.io.RawArray:
    """One subject's continuous recording, cues as annotations (and a stim channel if asked).

    ``trial_classes`` fixes the order of trials (for closed-loop scenarios); by default every
    class appears ``trials_per_class`` times in random order. Each annotation starts at the cue
    and lasts ``imagery_s``; its description is the class name.
    """
    rng = np.random.default_rng([config.seed, subject])
    if trial_classes is None:
        order = np.repeat(np.array(config.classes), config.trials_per_class)
        trial_classes = list(rng.permutation(order))
    bad = [c for c in trial_classes if c not in CLASSES]
    if bad:
        raise NeuroError(f"simulate_raw: unknown classes {sorted(set(bad))}; use {list(CLASSES)}")
    sfreq = config.sfreq_hz
    info, gain = _forward(tuple(config.ch_names), sfreq)
    n_trial = round(config.trial_s * sfreq)
    n = n_trial * len(trial_classes)

    # Subject-specific rhythm frequencies and strengths.
    mu_hz = rng.uniform(9.5, 11.5)
    beta_hz = rng.uniform(18.0, 23.0)
    n_motor = len(_SOURCE_SITES)
    motor = np.empty((n_motor, n))
    for i in range(n_motor):
        strength = rng.uniform(0.8, 1.2)
        mu = _bandlimited(rng, n, mu_hz - 1.5, mu_hz + 1.5, sfreq)
        beta = _bandlimited(rng, n, beta_hz - 2.0, beta_hz + 2.0, sfreq)
        motor[i] = strength * (mu + 0.6 * beta)

    # Event-related desynchronisation: a smooth dip during imagery on the contralateral source.
    envelope = np.ones((n_motor, n))
    ramp = int(0.5 * sfreq)
    n_imagery = round(config.imagery_s * sfreq)
    window = np.ones(n_imagery)
    taper = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp))
    window[:ramp], window[-ramp:] = taper, taper[::-1]
    names = list(_SOURCE_SITES)
    onsets = []
    for trial, cls in enumerate(trial_classes):
        start = trial * n_trial + round(config.cue_s * sfreq)
        onsets.append(start)
        if cls in _ERD_TARGET:
            envelope[names.index(_ERD_TARGET[cls]), start : start + n_imagery] -= (
                config.erd_fraction * window
            )
    signal_v = gain[:, :n_motor] @ (motor * envelope)
    signal_v *= _SIGNAL_RMS_V / np.sqrt(np.mean(signal_v**2))

    background = gain[:, n_motor:] @ _pink(rng, (gain.shape[1] - n_motor, n), sfreq)
    sensor = rng.standard_normal((len(config.ch_names), n))
    # Scale noise so that in-band signal power / in-band noise power = 10**(snr_db / 10).
    target_noise = _band_power(signal_v, sfreq) / 10.0 ** (config.snr_db / 10.0)
    background *= np.sqrt((1 - _SENSOR_NOISE_SHARE) * target_noise / _band_power(background, sfreq))
    sensor *= np.sqrt(_SENSOR_NOISE_SHARE * target_noise / _band_power(sensor, sfreq))
    data = signal_v + background + sensor

    raw_info = info.copy()
    if config.stim_channel:
        stim = np.zeros((1, n))
        stim[0, onsets] = [CLASS_CODES[c] for c in trial_classes]
        data = np.vstack([data, stim])
        raw_info = mne.create_info([*list(config.ch_names), "STI"], sfreq,
                                   ["eeg"] * len(config.ch_names) + ["stim"])  # fmt: skip
        raw_info.set_montage(MONTAGE)
    raw = mne.io.RawArray(data, raw_info, verbose=False)
    raw.set_annotations(
        mne.Annotations(
            onset=np.array(onsets) / sfreq,
            duration=[config.imagery_s] * len(onsets),
            description=list(trial_classes),
        )
    )
    return raw


def simulate_motor_imagery(
    config: SimulationConfig, *, tmin_s: float = 0.5, tmax_s: float = 2.5
) -> list[MotorImageryData]:
    """Simulate every subject and cut band-passed (8-30 Hz) epochs ``tmin_s..tmax_s`` after cue."""
    from ethos.neuro.recordings import epochs_from_raw

    sessions = []
    for subject in range(config.n_subjects):
        raw = simulate_raw(config, subject=subject)
        sessions.append(
            epochs_from_raw(
                raw,
                event_source="annotations",
                tmin_s=tmin_s,
                tmax_s=tmax_s,
                subject=f"sub-{subject + 1:02d}",
                source=f"simulated (snr {config.snr_db:g} dB, erd {config.erd_fraction:g})",
            )
        )
    return sessions
