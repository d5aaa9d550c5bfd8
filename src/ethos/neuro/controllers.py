"""Controllers: from (decoded intent, measurement) to a requested stimulation amplitude.

Every controller answers ``command(intent, target, measurement, dt_s) -> amplitude_ma`` and
exposes its tunable settings through ``params()`` / ``set_params(**)``, so the closed loop can
append every change to the audit sink. Requests are *wishes*: the safety envelope decides what
is delivered.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ethos.neuro.errors import NeuroError


class Controller(Protocol):
    """The closed loop's view of a controller."""

    def command(self, intent: float, target: float, measurement: float, dt_s: float) -> float:
        """Requested amplitude in mA for this cycle."""
        ...

    def reset(self) -> None:
        """Clear internal state (integrator, memory), e.g. after a sensor fault."""
        ...

    def params(self) -> dict[str, float]:
        """Tunable settings."""
        ...

    def set_params(self, **params: float) -> None:
        """Change tunable settings (the loop records every change)."""
        ...


class _Params:
    """``params``/``set_params`` over a dataclass's public tunable fields."""

    _tunable: tuple[str, ...] = ()

    def params(self) -> dict[str, float]:
        """Tunable settings."""
        return {k: float(v) for k, v in asdict(self).items() if k in self._tunable}  # type: ignore[call-overload]

    def set_params(self, **params: float) -> None:
        """Change tunable settings; unknown names and non-finite values are refused."""
        for name, value in params.items():
            if name not in self._tunable:
                raise NeuroError(
                    f"{type(self).__name__}: unknown parameter {name!r}",
                    hint=f"tunable parameters are {list(self._tunable)}",
                )
            if not math.isfinite(value):
                raise NeuroError(f"{type(self).__name__}: {name}={value!r} is not finite")
            setattr(self, name, float(value))


@dataclass
class PID(_Params):
    """PID on the error ``target - measurement`` with output limits and anti-windup.

    ``u = kp·e + ki·∫e dt + kd·de/dt``, clipped to ``[0, max_output_ma]``. Anti-windup by
    conditional integration (Åström & Hägglund, *Advanced PID Control*, 2006, §3.5): the
    integrator stops accumulating while the output is saturated and the error would drive it
    further into saturation, so it cannot wind up during long saturations (e.g. while the envelope
    caps the charge or a fault holds stimulation off). The derivative acts on the measurement,
    not the error, so setpoint steps do not kick. Gains are in mA per measurement unit. The
    defaults are a cautious hand-set start, meant to be tuned (:mod:`ethos.neuro.tuning`).
    """

    kp: float = 0.05
    ki: float = 0.05
    kd: float = 0.001
    max_output_ma: float = 10.0
    _tunable: tuple[str, ...] = field(default=("kp", "ki", "kd"), init=False, repr=False)
    _integral: float = field(default=0.0, init=False, repr=False)
    _previous: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("kp", "ki", "kd"):
            if getattr(self, name) < 0 or not math.isfinite(getattr(self, name)):
                raise NeuroError(f"PID: {name}={getattr(self, name)!r} must be finite and >= 0")

    def reset(self) -> None:
        """Zero the integrator and forget the last measurement."""
        self._integral, self._previous = 0.0, None

    def command(self, intent: float, target: float, measurement: float, dt_s: float) -> float:
        """One PID update."""
        error = target - measurement
        derivative = 0.0 if self._previous is None else -(measurement - self._previous) / dt_s
        self._previous = measurement
        unsaturated = self.kp * error + self.ki * self._integral + self.kd * derivative
        pushing_high = unsaturated >= self.max_output_ma and error > 0
        pushing_low = unsaturated <= 0.0 and error < 0
        if not (pushing_high or pushing_low):
            self._integral += error * dt_s
        output = self.kp * error + self.ki * self._integral + self.kd * derivative
        return min(max(output, 0.0), self.max_output_ma)


@dataclass
class BetaThreshold(_Params):
    """Adaptive DBS: stimulate at ``amplitude_ma`` while beta exceeds a threshold.

    After Little et al. 2013 (Ann Neurol 74:449): stimulation switches on when smoothed beta
    power crosses ``threshold`` and off when it falls back (the envelope's ramp limit supplies the
    gradual onset). Decoded movement intent lowers the threshold by ``intent_drop`` (relative),
    because beta should fall further when the user wants to move.
    """

    threshold: float = 0.7
    amplitude_ma: float = 3.0
    intent_drop: float = 0.3
    smoothing_s: float = 0.1
    _tunable: tuple[str, ...] = field(
        default=("threshold", "amplitude_ma", "intent_drop"), init=False, repr=False
    )
    _smoothed: float | None = field(default=None, init=False, repr=False)

    def reset(self) -> None:
        """Forget the smoothed beta."""
        self._smoothed = None

    def command(self, intent: float, target: float, measurement: float, dt_s: float) -> float:
        """On/off decision on exponentially smoothed beta."""
        alpha = 1 - math.exp(-dt_s / self.smoothing_s)
        previous = measurement if self._smoothed is None else self._smoothed
        self._smoothed = previous + alpha * (measurement - previous)
        level = self.threshold * (1 - self.intent_drop * min(max(intent, 0.0), 1.0))
        return self.amplitude_ma if self._smoothed > level else 0.0


@dataclass
class FixedStimulation(_Params):
    """Open loop: the same amplitude every cycle, whatever the intent or measurement."""

    amplitude_ma: float = 3.0
    _tunable: tuple[str, ...] = field(default=("amplitude_ma",), init=False, repr=False)

    def reset(self) -> None:
        """Stateless."""

    def command(self, intent: float, target: float, measurement: float, dt_s: float) -> float:
        """Always ``amplitude_ma``."""
        return self.amplitude_ma


def describe(controller: Any) -> dict[str, Any]:
    """Name and settings of a controller, for the audit sink and reports."""
    return {"controller": type(controller).__name__, **controller.params()}
