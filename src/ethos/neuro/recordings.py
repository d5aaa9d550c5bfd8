"""Recorded EEG: read EDF/BDF/GDF/FIF with MNE, find the cues, band-pass, cut epochs.

Events come either from annotations whose description is a class name (what EDF+ and FIF files
carry, and what the simulator writes) or from a stim channel whose codes map to classes
(:data:`~ethos.neuro.data.CLASS_CODES` by default). Signals are band-passed 8-30 Hz (mu and beta,
where motor imagery shows; Pfurtscheller & Neuper 2001) before epoching.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import mne
import numpy as np

from ethos.neuro.data import CLASS_CODES, CLASSES, MotorImageryData
from ethos.neuro.errors import NeuroError

SUFFIXES = (".edf", ".bdf", ".gdf", ".fif", ".fif.gz")
EventSource = Literal["auto", "annotations", "stim"]


def read_recording(
    path: str | Path,
    *,
    event_source: EventSource = "auto",
    event_id: Mapping[str, int] | None = None,
    stim_channel: str | None = None,
    tmin_s: float = 0.5,
    tmax_s: float = 2.5,
    l_freq_hz: float = 8.0,
    h_freq_hz: float = 30.0,
) -> MotorImageryData:
    """Load a recording and return band-passed epochs of the motor-imagery classes it contains."""
    path = Path(path)
    if not path.is_file():
        raise NeuroError(f"recording {path} does not exist", hint="check the path")
    name = path.name.lower()
    if not name.endswith(SUFFIXES):
        raise NeuroError(
            f"recording {path}: unsupported file type; ethos reads {', '.join(SUFFIXES)}",
            hint="convert with MNE (e.g. raw.save('x_raw.fif')) or export to EDF",
        )
    try:
        raw = mne.io.read_raw(path, preload=True, verbose="ERROR")
    except Exception as exc:  # MNE raises many types for a corrupt file; all mean the same here
        raise NeuroError(
            f"recording {path} could not be read as {path.suffix.upper().lstrip('.')}: "
            f"{type(exc).__name__}: {exc}",
            hint="check the file is complete and really in that format",
        ) from exc
    return epochs_from_raw(
        raw,
        event_source=event_source,
        event_id=event_id,
        stim_channel=stim_channel,
        tmin_s=tmin_s,
        tmax_s=tmax_s,
        l_freq_hz=l_freq_hz,
        h_freq_hz=h_freq_hz,
        subject=path.stem,
        source=str(path),
    )


def epochs_from_raw(
    raw: mne.io.BaseRaw,
    *,
    event_source: EventSource = "auto",
    event_id: Mapping[str, int] | None = None,
    stim_channel: str | None = None,
    tmin_s: float = 0.5,
    tmax_s: float = 2.5,
    l_freq_hz: float = 8.0,
    h_freq_hz: float = 30.0,
    subject: str = "subject",
    source: str = "raw",
) -> MotorImageryData:
    """Band-pass the EEG channels of ``raw`` and cut epochs around each motor-imagery cue."""
    where = f"recording {source}"
    if tmax_s <= tmin_s:
        raise NeuroError(f"{where}: tmax_s={tmax_s} must exceed tmin_s={tmin_s}")
    picks = mne.pick_types(raw.info, eeg=True)
    if len(picks) == 0:
        raise NeuroError(
            f"{where}: no EEG channels", hint="set channel types with set_channel_types"
        )
    data = raw.get_data(picks=picks)
    if not np.isfinite(data).all():
        raise NeuroError(
            f"{where}: the EEG contains NaN or infinite samples",
            hint="interpolate or drop the bad segments before decoding",
        )
    codes = dict(event_id) if event_id is not None else dict(CLASS_CODES)
    unknown = [name for name in codes if name not in CLASSES]
    if unknown:
        raise NeuroError(f"{where}: unknown classes {unknown} in event_id; use {list(CLASSES)}")
    events = _find_events(raw, event_source, codes, stim_channel, where)
    present = {name: code for name, code in codes.items() if code in set(events[:, 2].tolist())}
    if not present:
        raise NeuroError(
            f"{where}: no events of the classes {sorted(codes)}; empty epochs",
            hint="check the annotation descriptions or pass event_id={'left_hand': 769, ...}",
        )
    raw = raw.copy().pick(picks).filter(l_freq_hz, h_freq_hz, verbose="ERROR")
    epochs = mne.Epochs(
        raw, events, present, tmin=tmin_s, tmax=tmax_s, baseline=None, preload=True,
        on_missing="ignore", verbose="ERROR",
    )  # fmt: skip
    if len(epochs) == 0:
        raise NeuroError(
            f"{where}: every epoch {tmin_s}..{tmax_s} s around the cues fell outside the data; "
            "empty epochs",
            hint="shorten the window or check the event times",
        )
    return MotorImageryData(epochs=epochs, subject=subject, source=source)


def _find_events(
    raw: mne.io.BaseRaw,
    event_source: EventSource,
    codes: dict[str, int],
    stim_channel: str | None,
    where: str,
) -> np.ndarray:
    stim_picks = mne.pick_types(raw.info, stim=True)
    if event_source == "auto":
        has_class_annotations = any(d in codes for d in raw.annotations.description)
        event_source = "annotations" if has_class_annotations or not len(stim_picks) else "stim"
    if event_source == "annotations":
        wanted = {d: codes[d] for d in set(raw.annotations.description) if d in codes}
        if not wanted:
            found = sorted(set(raw.annotations.description))[:10]
            raise NeuroError(
                f"{where}: no annotation names a class (found {found}); empty epochs",
                hint=f"annotation descriptions must be among {sorted(codes)}, or use stim events",
            )
        events, _ = mne.events_from_annotations(raw, event_id=wanted, verbose="ERROR")
        return np.asarray(events)
    if event_source == "stim":
        channel = stim_channel or (raw.ch_names[stim_picks[0]] if len(stim_picks) else None)
        if channel is None or channel not in raw.ch_names:
            raise NeuroError(
                f"{where}: no stim channel {stim_channel or ''} to read events from",
                hint="use event_source='annotations' or name the channel with stim_channel",
            )
        return np.asarray(mne.find_events(raw, stim_channel=channel, verbose="ERROR"))
    raise NeuroError(f"{where}: event_source={event_source!r}; use auto, annotations or stim")
