"""The stimulation safety envelope: published reference values and refusals."""

from __future__ import annotations

import math

import pytest

from ethos.neuro import NeuroError, SafetyEnvelope, cylinder_area_cm2, shannon_k

# Medtronic 3387/3389 DBS contact: 1.5 mm long, 1.27 mm diameter.
AREA_CM2 = cylinder_area_cm2(length_mm=1.5, diameter_mm=1.27)


def test_shannon_1992_reference_values() -> None:
    """Shannon RV, IEEE Trans Biomed Eng 39(4):424, 1992: k = log10(D) + log10(Q) <= 1.85."""
    assert pytest.approx(math.pi * 0.127 * 0.15) == AREA_CM2
    assert pytest.approx(0.0598, abs=1e-4) == AREA_CM2
    envelope = SafetyEnvelope(area_cm2=AREA_CM2)
    check = envelope.check(3.0, 90.0, 130.0)
    assert check.charge_uc == pytest.approx(0.27)
    assert check.density_uc_cm2 == pytest.approx(4.51, abs=0.01)
    assert check.k == pytest.approx(0.086, abs=0.001)
    assert check.allowed
    # Largest charge at k = 1.85 on this area: Q = sqrt(A * 10**1.85).
    only_shannon = math.sqrt(AREA_CM2 * 10**1.85)
    assert only_shannon == pytest.approx(2.06, abs=0.01)
    assert shannon_k(only_shannon, AREA_CM2) == pytest.approx(1.85)
    # 30 uC/cm2/phase allows Q = 30 * A; it binds first on this contact.
    assert pytest.approx(1.80, abs=0.01) == 30.0 * AREA_CM2
    assert envelope.max_charge_uc == pytest.approx(1.7954, abs=1e-3)


def test_k_limit_binds_when_density_is_looser() -> None:
    """On a large contact the density limit is looser than Shannon's; Q_max follows k."""
    envelope = SafetyEnvelope(area_cm2=1.0, max_amplitude_ma=50.0)
    assert envelope.max_charge_uc == pytest.approx(math.sqrt(10**1.85))
    width_us = 200.0
    limit_ma = envelope.max_charge_uc / (width_us * 1e-3)
    assert envelope.check(limit_ma * 0.99, width_us, 50).allowed
    refused = envelope.check(limit_ma * 1.05, width_us, 50)
    assert not refused.allowed
    assert any("Shannon k" in v for v in refused.violations)


def test_k_max_above_shannon_is_refused() -> None:
    with pytest.raises(NeuroError, match=r"k_max=1\.9 is above Shannon's limit 1\.85"):
        SafetyEnvelope(area_cm2=AREA_CM2, k_max=1.9)
    assert SafetyEnvelope(area_cm2=AREA_CM2, k_max=1.5).k_max == 1.5


def test_density_limit_cannot_be_raised() -> None:
    with pytest.raises(NeuroError, match="can only be tightened"):
        SafetyEnvelope(area_cm2=AREA_CM2, max_density_uc_cm2=45.0)


@pytest.mark.parametrize(
    ("amplitude", "width", "freq", "message"),
    [
        (-1.0, 90.0, 130.0, "amplitude_ma=-1.0 is negative"),
        (float("nan"), 90.0, 130.0, "amplitude_ma=nan is not a finite number"),
        (1.0, -5.0, 130.0, "pulse_width_us=-5.0 is negative"),
    ],
)
def test_malformed_commands_raise(
    amplitude: float, width: float, freq: float, message: str
) -> None:
    envelope = SafetyEnvelope(area_cm2=AREA_CM2)
    with pytest.raises(NeuroError, match=message):
        envelope.check(amplitude, width, freq)
    with pytest.raises(NeuroError, match=message):
        envelope.clamp(amplitude, width, freq)


def test_bad_area_is_refused() -> None:
    with pytest.raises(NeuroError, match=r"area_cm2=0\.0 must be a positive electrode area"):
        SafetyEnvelope(area_cm2=0.0)


def test_clamp_returns_nearest_allowed_command() -> None:
    envelope = SafetyEnvelope(area_cm2=AREA_CM2)
    clamped = envelope.clamp(20.0, 300.0, 400.0)
    assert clamped.pulse_width_us == 300.0
    assert clamped.frequency_hz == envelope.max_frequency_hz
    assert clamped.amplitude_ma == pytest.approx(envelope.max_charge_uc / 0.3)
    assert envelope.check(*_tuple(clamped)).allowed
    # An allowed command is returned unchanged.
    assert envelope.clamp(3.0, 90.0, 130.0) == envelope.clamp(3.0, 90.0, 130.0)
    assert _tuple(envelope.clamp(3.0, 90.0, 130.0)) == (3.0, 90.0, 130.0)
    # Too short a pulse is widened to the minimum width.
    assert envelope.clamp(1.0, 5.0, 130.0).pulse_width_us == envelope.min_pulse_width_us


def test_ramp_limits_rises_not_falls() -> None:
    envelope = SafetyEnvelope(area_cm2=AREA_CM2, max_ramp_ma_per_s=10.0)
    up = envelope.clamp(5.0, 90.0, 130.0, previous_amplitude_ma=1.0, dt_s=0.02)
    assert up.amplitude_ma == pytest.approx(1.2)
    assert not envelope.check(5.0, 90.0, 130.0, previous_amplitude_ma=1.0, dt_s=0.02).allowed
    down = envelope.clamp(0.5, 90.0, 130.0, previous_amplitude_ma=5.0, dt_s=0.02)
    assert down.amplitude_ma == 0.5


def test_repr_is_readable() -> None:
    envelope = SafetyEnvelope(area_cm2=AREA_CM2)
    assert "Q_max=1.795 µC" in repr(envelope)
    assert "allowed" in repr(envelope.check(3.0, 90.0, 130.0))


def _tuple(command: object) -> tuple[float, float, float]:
    return (command.amplitude_ma, command.pulse_width_us, command.frequency_hz)  # type: ignore[attr-defined]
