"""The stimulation gate: the single path from a controller's wish to a delivered pulse train.

Each control cycle the gate receives the controller's command and the sensor status. It switches
stimulation off in that same cycle when the sensor is faulty (or the command is not a number),
otherwise passes the command through :meth:`SafetyEnvelope.clamp` and delivers the nearest safe
pulse train. Every clamp, fault and recovery is appended to the audit sink.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ethos.neuro.audit import AuditSink
from ethos.neuro.faults import SensorStatus
from ethos.neuro.safety import OFF, SafetyEnvelope, StimCommand


@dataclass(frozen=True)
class BiphasicTrain:
    """What was delivered during one cycle: a charge-balanced biphasic pulse train.

    Each pulse is a cathodic phase of ``amplitude_ma`` for ``pulse_width_us``, a gap of
    ``interphase_gap_us``, then an anodic phase of the same amplitude and width; hence the net
    charge per pulse is exactly zero.
    """

    amplitude_ma: float
    pulse_width_us: float
    frequency_hz: float
    interphase_gap_us: float
    clamped: bool = False
    fault: tuple[str, ...] = ()

    @property
    def charge_uc(self) -> float:
        """Charge per phase in µC."""
        return self.amplitude_ma * self.pulse_width_us * 1e-3

    @property
    def cathodic_charge_uc(self) -> float:
        """Charge of the first (cathodic) phase, negative by convention."""
        return -self.charge_uc

    @property
    def anodic_charge_uc(self) -> float:
        """Charge of the second (anodic) phase."""
        return self.charge_uc

    @property
    def net_charge_uc(self) -> float:
        """Net charge per pulse: zero for a charge-balanced pulse."""
        return self.cathodic_charge_uc + self.anodic_charge_uc

    @property
    def on(self) -> bool:
        """True when any current flows."""
        return self.amplitude_ma > 0.0

    def charge_rate_uc_per_s(self) -> float:
        """Charge per phase times pulse rate: the delivered charge per second (one phase)."""
        return self.charge_uc * self.frequency_hz

    def command(self) -> StimCommand:
        """The train as a command, e.g. to re-check it against an envelope."""
        return StimCommand(self.amplitude_ma, self.pulse_width_us, self.frequency_hz)


class StimulationGate:
    """Owns the envelope, the last delivered amplitude and the fault state of one channel."""

    def __init__(self, envelope: SafetyEnvelope, sink: AuditSink, *, dt_s: float) -> None:
        self.envelope = envelope
        self.sink = sink
        self.dt_s = dt_s
        self.previous_amplitude_ma = 0.0
        self.in_fault = False
        self.n_clamped = 0
        self.n_fault_cycles = 0

    def _off(self, t_s: float, faults: tuple[str, ...], detail: dict[str, object]) -> BiphasicTrain:
        if not self.in_fault:
            self.sink.append("fault", {"t_s": t_s, "faults": list(faults), **detail})
        self.in_fault = True
        self.n_fault_cycles += 1
        self.previous_amplitude_ma = 0.0
        return BiphasicTrain(0.0, 0.0, 0.0, self.envelope.interphase_gap_us, fault=faults)

    def deliver(self, command: StimCommand, sensor: SensorStatus, *, t_s: float) -> BiphasicTrain:
        """Turn one cycle's command into the pulse train actually delivered."""
        if not sensor.ok:
            return self._off(t_s, sensor.faults, {"channels": list(sensor.channels)})
        values = (command.amplitude_ma, command.pulse_width_us, command.frequency_hz)
        amplitude_ma, pulse_width_us, frequency_hz = values
        # Each value finite and >= 0 (NaN fails a comparison; non-negatives with a finite sum
        # are each finite): one test per cycle instead of six.
        if not (
            amplitude_ma >= 0
            and pulse_width_us >= 0
            and frequency_hz >= 0
            and math.isfinite(amplitude_ma + pulse_width_us + frequency_hz)
        ):
            return self._off(t_s, ("invalid_command",), {"command": [str(v) for v in values]})
        if self.in_fault:
            self.in_fault = False
            self.sink.append("fault_cleared", {"t_s": t_s})
        safe = self.envelope.clamp(
            *values, previous_amplitude_ma=self.previous_amplitude_ma, dt_s=self.dt_s
        )
        clamped = command != safe and command.amplitude_ma > 0.0
        if clamped:
            self.n_clamped += 1
            self.sink.append(
                "clamp",
                {
                    "t_s": t_s,
                    "requested": [
                        command.amplitude_ma,
                        command.pulse_width_us,
                        command.frequency_hz,
                    ],
                    "delivered": [safe.amplitude_ma, safe.pulse_width_us, safe.frequency_hz],
                },
            )
        self.previous_amplitude_ma = safe.amplitude_ma
        if safe is OFF or safe.amplitude_ma == 0.0:
            return BiphasicTrain(0.0, 0.0, 0.0, self.envelope.interphase_gap_us, clamped=clamped)
        return BiphasicTrain(
            safe.amplitude_ma,
            safe.pulse_width_us,
            safe.frequency_hz,
            self.envelope.interphase_gap_us,
            clamped=clamped,
        )
