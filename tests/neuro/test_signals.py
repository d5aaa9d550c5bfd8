"""Simulated and recorded EEG: physiology of the simulation, file round trips, bad files."""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pytest

from ethos.neuro import (
    MotorImageryData,
    NeuroError,
    SimulationConfig,
    epochs_from_raw,
    read_recording,
    simulate_raw,
)

SMALL = SimulationConfig(trials_per_class=4, classes=("left_hand", "right_hand", "feet", "rest"))


def _mu_power(data: MotorImageryData, channel: str, label: str) -> float:
    x = data.X[:, data.ch_names.index(channel)][data.y == data.class_names.index(label)]
    return float(np.mean(x**2))


def test_imagery_desynchronises_the_contralateral_hemisphere(high_snr: MotorImageryData) -> None:
    """Pfurtscheller & Lopes da Silva 1999: right-hand imagery lowers mu over C3, left over C4."""
    assert high_snr.class_names == ("left_hand", "right_hand")
    assert _mu_power(high_snr, "C3", "right_hand") < 0.7 * _mu_power(high_snr, "C3", "left_hand")
    assert _mu_power(high_snr, "C4", "left_hand") < 0.7 * _mu_power(high_snr, "C4", "right_hand")


def test_simulation_is_a_readable_mne_object(high_snr: MotorImageryData) -> None:
    assert high_snr.X.shape == (40, 22, 501)
    assert high_snr.sfreq_hz == 250.0
    assert "40 epochs x 22 ch x 501 samples @ 250 Hz" in repr(high_snr)
    assert "left_hand:20, right_hand:20" in repr(high_snr)
    assert high_snr.info.get_montage() is not None
    assert np.abs(high_snr.X).max() < 1e-3, "signals are in volts, tens of microvolts"


def test_config_is_validated() -> None:
    with pytest.raises(NeuroError, match="must name at least two of"):
        SimulationConfig(classes=("left_hand", "jump"))
    with pytest.raises(NeuroError, match="too low for 8-30 Hz"):
        SimulationConfig(sfreq_hz=50.0)


def test_fif_round_trip_with_annotations(tmp_path: Path) -> None:
    raw = simulate_raw(SMALL)
    path = tmp_path / "sub-01_raw.fif"
    raw.save(path, verbose="ERROR")
    data = read_recording(path)
    assert data.class_names == ("left_hand", "right_hand", "feet", "rest")
    assert len(data) == 16
    assert data.X.shape[1] == 22
    np.testing.assert_allclose(data.X, epochs_from_raw(raw).X, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize(("fmt", "min_correlation"), [("edf", 0.99), ("bdf", 0.9999)])
def test_edf_and_bdf_round_trip_with_annotations(
    fmt: str, min_correlation: float, tmp_path: Path
) -> None:
    """Written by MNE's exporter (edfio), read back by read_recording: the same epochs.

    EDF stores 16-bit integers, BDF 24-bit: the signal survives to within that quantisation.
    (GDF has no writer in MNE or edfio, so GDF files are read by the same code, untested here.)
    """
    raw = simulate_raw(SMALL)
    path = tmp_path / f"sub-01.{fmt}"
    mne.export.export_raw(path, raw, fmt=fmt, verbose="ERROR")
    data = read_recording(path)
    assert len(data) == 16
    assert sorted(data.class_names) == sorted(SMALL.classes)
    direct = epochs_from_raw(raw)
    assert data.X.shape == direct.X.shape
    assert np.corrcoef(direct.X.ravel(), data.X.ravel())[0, 1] > min_correlation


def test_events_from_a_stim_channel() -> None:
    config = SimulationConfig(trials_per_class=3, stim_channel=True)
    raw = simulate_raw(config)
    raw.set_annotations(None)
    data = epochs_from_raw(raw, event_source="stim")
    assert len(data) == 6
    assert data.class_names == ("left_hand", "right_hand")
    assert "STI" not in data.ch_names


def test_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.edf"
    path.write_bytes(b"this is not an EDF file" * 10)
    with pytest.raises(NeuroError, match=r"broken.edf could not be read as EDF"):
        read_recording(path)


def test_unsupported_and_missing_files(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n")
    with pytest.raises(NeuroError, match="unsupported file type"):
        read_recording(path)
    with pytest.raises(NeuroError, match="does not exist"):
        read_recording(tmp_path / "missing.fif")


def test_no_class_events_means_empty_epochs() -> None:
    raw = simulate_raw(SMALL)
    raw.set_annotations(mne.Annotations([1.0], [1.0], ["blink"]))
    with pytest.raises(NeuroError, match=r"no annotation names a class \(found \['blink'\]\)"):
        epochs_from_raw(raw)


def test_epochs_outside_the_data_are_empty() -> None:
    raw = simulate_raw(SMALL)
    with pytest.raises(NeuroError, match="fell outside the data; empty epochs"):
        epochs_from_raw(raw, tmin_s=1000.0, tmax_s=1001.0)


def test_nan_in_a_recording_is_refused() -> None:
    raw = simulate_raw(SMALL)
    raw._data[3, 100] = np.nan
    with pytest.raises(NeuroError, match="contains NaN or infinite samples"):
        epochs_from_raw(raw)
