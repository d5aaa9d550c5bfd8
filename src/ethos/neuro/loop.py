"""The closed loop: decoded intent → controller → safety gate → plant, scored by M.

Objective (what a run is judged by and what the gain optimiser maximises)::

    M = Σ_t C(t) · W_t  -  λ · Σ_t Q(t) · f(t) · Δt

* ``C(t)`` in [0, 1] is the plant's credit at cycle t against the user's *true* intent
  (FES: ``1 - |F - F*| / F*``, how close the force is to the one the user wants, zero force
  wanted at rest; aDBS: the fraction of pathological beta removed).
* ``W_t = Δt · w_move`` when the user truly intends to move and ``Δt · w_rest`` otherwise, in
  seconds: each moment counts by its duration, and moments of intended movement (the reason
  the device exists) weigh ``w_move / w_rest`` times more than rest.
* ``Q(t) · f(t) · Δt`` is the charge per phase delivered during the cycle (µC); ``λ``
  (``charge_cost_per_uc``) prices it: charge costs battery, and tissue exposure and fatigue grow
  with it.

A loop cannot be built without a :class:`~ethos.neuro.audit.ConsentRecord` covering exactly its
envelope; the consent record is appended to the audit sink first, and every run start,
parameter change, clamp, fault and run end after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ethos.neuro.audit import AuditSink, ConsentRecord
from ethos.neuro.controllers import Controller, describe
from ethos.neuro.errors import NeuroError
from ethos.neuro.faults import SensorFaultDetector
from ethos.neuro.gate import BiphasicTrain, StimulationGate
from ethos.neuro.intent import IntentSource
from ethos.neuro.plants import Plant
from ethos.neuro.safety import OFF, SafetyEnvelope, StimCommand


@dataclass(frozen=True)
class FaultInjection:
    """Corrupt the sensor from ``start_s`` to ``end_s`` with one of the detector's fault kinds."""

    start_s: float
    end_s: float
    kind: str

    def apply(self, block: NDArray[np.float64], samples_per_cycle: int) -> NDArray[np.float64]:
        """The corrupted copy of ``block``."""
        return corrupt(block, self.kind, samples_per_cycle)


def corrupt(block: NDArray[np.float64], kind: str, samples_per_cycle: int) -> NDArray[np.float64]:
    """A copy of ``block`` showing fault ``kind`` (nan, flat_line, saturation, missing_samples)."""
    x = np.array(block, dtype=float, copy=True)
    if kind == "nan":
        x[0, -1] = np.nan
    elif kind == "flat_line":
        x[min(1, x.shape[0] - 1), :] = 0.0
    elif kind == "saturation":
        x[0, 0] = 1.0
    elif kind == "missing_samples":
        x = x[:, : max(samples_per_cycle - 1, 0)]
    else:
        raise NeuroError(f"unknown fault kind {kind!r}; use nan, flat_line, saturation, "
                         "missing_samples")  # fmt: skip
    return x


@dataclass
class ObjectiveWeights:
    """The weights of M (see the module docstring)."""

    w_move: float = 1.0
    w_rest: float = 0.5
    charge_cost_per_uc: float = 0.002


@dataclass
class LoopTrace:
    """Everything one run did, cycle by cycle, and its score."""

    t_s: NDArray[np.float64]
    true_intent: NDArray[np.float64]
    decoded_intent: NDArray[np.float64]
    target: NDArray[np.float64]
    measurement: NDArray[np.float64]
    amplitude_ma: NDArray[np.float64]
    pulse_width_us: NDArray[np.float64]
    frequency_hz: NDArray[np.float64]
    credit: NDArray[np.float64]
    weight_s: NDArray[np.float64]
    fault: NDArray[np.bool_]
    clamped: NDArray[np.bool_]
    weights: ObjectiveWeights
    envelope: SafetyEnvelope
    measurement_unit: str
    controller: dict[str, Any] = field(default_factory=dict)

    @property
    def charge_uc(self) -> NDArray[np.float64]:
        """Charge per phase of each cycle's pulses."""
        return self.amplitude_ma * self.pulse_width_us * 1e-3

    @property
    def delivered_charge_uc(self) -> float:
        """Total charge per phase delivered: Σ Q·f·Δt."""
        dt = self.weight_s / np.where(self.true_intent > 0.5, self.weights.w_move,
                                      self.weights.w_rest)  # fmt: skip
        return float(np.sum(self.charge_uc * self.frequency_hz * dt))

    @property
    def benefit(self) -> float:
        """Σ C(t)·W_t in seconds of fully served intent."""
        return float(np.sum(self.credit * self.weight_s))

    @property
    def objective(self) -> float:
        """M = Σ C(t)·W_t - λ·delivered charge."""
        return self.benefit - self.weights.charge_cost_per_uc * self.delivered_charge_uc

    def summary(self) -> dict[str, Any]:
        """Scalars for tables and JSON."""
        return {
            "M": round(self.objective, 4),
            "benefit_s": round(self.benefit, 4),
            "charge_uc": round(self.delivered_charge_uc, 2),
            "cycles": int(self.t_s.size),
            "fault_cycles": int(self.fault.sum()),
            "clamped_cycles": int(self.clamped.sum()),
            **self.controller,
        }

    def __repr__(self) -> str:
        return (
            f"<LoopTrace {self.t_s.size} cycles, {self.t_s[-1] if self.t_s.size else 0:.1f} s | "
            f"M={self.objective:.3f} (benefit {self.benefit:.3f} s, charge "
            f"{self.delivered_charge_uc:.1f} µC) | faults {int(self.fault.sum())} cycles, "
            f"clamped {int(self.clamped.sum())} | {self.controller.get('controller', '')}>"
        )


class ClosedLoop:
    """One stimulation channel under a consented envelope, driving a plant from intent."""

    def __init__(
        self,
        plant: Plant,
        controller: Controller,
        envelope: SafetyEnvelope,
        *,
        consent: ConsentRecord,
        sink: AuditSink,
        dt_s: float = 0.02,
        pulse_width_us: float = 200.0,
        frequency_hz: float = 40.0,
        n_channels: int = 22,
        sfreq_hz: float = 250.0,
        weights: ObjectiveWeights | None = None,
    ) -> None:
        if not isinstance(consent, ConsentRecord):
            raise NeuroError(
                "ClosedLoop: a ConsentRecord naming who authorised the envelope is required",
                hint="ConsentRecord.for_envelope(envelope, authorised_by='...')",
            )
        if not consent.covers(envelope):
            changed = sorted(
                k for k, v in envelope.parameters().items() if consent.envelope.get(k) != v
            )
            raise NeuroError(
                f"ClosedLoop: the consent by {consent.authorised_by} does not cover this envelope "
                f"(differs in {changed})",
                hint="obtain consent for the envelope actually used",
            )
        samples = int(dt_s * sfreq_hz)
        self.plant = plant
        self.controller = controller
        self.envelope = envelope
        self.consent = consent
        self.sink = sink
        self.dt_s = dt_s
        self.pulse_width_us = pulse_width_us
        self.frequency_hz = frequency_hz
        self.weights = weights or ObjectiveWeights()
        self.detector = SensorFaultDetector(n_channels=n_channels, samples_per_cycle=samples)
        self.gate = StimulationGate(envelope, sink, dt_s=dt_s)
        self.measurement = 0.0
        sink.append("consent", {**consent.payload(), "configuration": self.configuration()})

    def configuration(self) -> dict[str, Any]:
        """What this loop will do, as its consent record names it."""
        return {
            "plant": type(self.plant).__name__,
            **describe(self.controller),
            "pulse_width_us": self.pulse_width_us,
            "frequency_hz": self.frequency_hz,
            "dt_s": self.dt_s,
            "sensor_channels": self.detector.n_channels,
            "samples_per_cycle": self.detector.samples_per_cycle,
        }

    def set_params(self, *, reason: str = "", **params: float) -> None:
        """Change controller settings, appending the change to the audit sink first."""
        before = self.controller.params()
        self.controller.set_params(**params)
        self.sink.append(
            "parameter_change",
            {"controller": type(self.controller).__name__, "before": before,
             "after": self.controller.params(), "reason": reason},
        )  # fmt: skip

    def cycle(self, t_s: float, decoded_intent: float, block_v: NDArray[np.float64],
              ) -> BiphasicTrain:  # fmt: skip
        """One control cycle without the plant: check sensor, ask controller, gate the command."""
        status = self.detector.check(block_v)
        if not status.ok:
            self.controller.reset()  # nothing accumulated from bad data survives the fault
            return self.gate.deliver(OFF, status, t_s=t_s)
        target = self.plant.target(decoded_intent)
        amplitude = self.controller.command(decoded_intent, target, self.measurement, self.dt_s)
        command = StimCommand(amplitude, self.pulse_width_us, self.frequency_hz)
        return self.gate.deliver(command, status, t_s=t_s)

    def run(self, source: IntentSource, *, duration_s: float, seed: int = 0,
            faults: tuple[FaultInjection, ...] = ()) -> LoopTrace:  # fmt: skip
        """Simulate ``duration_s`` seconds; returns the trace with M."""
        n = round(duration_s / self.dt_s)
        rng = np.random.default_rng(seed)
        source.reset(seed)
        self.plant.reset(rng)
        self.controller.reset()
        self.measurement = 0.0
        self.gate.previous_amplitude_ma = 0.0
        self.sink.append("run_start", {"seed": seed, "duration_s": duration_s,
                                       "dt_s": self.dt_s, **describe(self.controller)})  # fmt: skip
        names = ("t", "true", "dec", "target", "meas", "amp", "pw", "f", "credit", "w")
        cols: dict[str, list[float]] = {k: [] for k in names}
        fault: list[bool] = []
        clamped: list[bool] = []
        # Bound methods, looked up once: this loop runs 50 times per simulated second.
        t_, true_, dec_, target_, meas_, amp_, pw_, f_, credit_, w_ = (
            cols[k].append for k in names
        )
        samples = self.detector.samples_per_cycle
        plant, weights = self.plant, self.weights
        for i in range(n):
            t = i * self.dt_s
            sample = source.next(t, self.dt_s)
            block = sample.block_v
            for injection in faults:
                if injection.start_s <= t < injection.end_s:
                    block = injection.apply(block, samples)
            train = self.cycle(t, sample.decoded_intent, block)
            self.measurement = plant.step(train, sample.true_intent, self.dt_s)
            true_intent = sample.true_intent
            t_(t)
            true_(true_intent)
            dec_(sample.decoded_intent)
            target_(plant.target(true_intent))
            meas_(self.measurement)
            amp_(train.amplitude_ma)
            pw_(train.pulse_width_us)
            f_(train.frequency_hz)
            credit_(plant.credit(true_intent))
            w_((weights.w_move if true_intent > 0.5 else weights.w_rest) * self.dt_s)
            fault.append(bool(train.fault))
            clamped.append(train.clamped)
        arrays = {k: np.asarray(v, dtype=np.float64) for k, v in cols.items()}
        trace = LoopTrace(
            t_s=arrays["t"], true_intent=arrays["true"], decoded_intent=arrays["dec"],
            target=arrays["target"], measurement=arrays["meas"], amplitude_ma=arrays["amp"],
            pulse_width_us=arrays["pw"], frequency_hz=arrays["f"], credit=arrays["credit"],
            weight_s=arrays["w"], fault=np.asarray(fault, dtype=bool),
            clamped=np.asarray(clamped, dtype=bool), weights=self.weights,
            envelope=self.envelope, measurement_unit=self.plant.measurement_unit,
            controller=describe(self.controller),
        )  # fmt: skip
        self.sink.append("run_end", {"seed": seed, **trace.summary()})
        return trace
