"""The stimulation safety envelope: the one place stimulation limits live.

Every stimulation command in ethos passes through :class:`SafetyEnvelope` (via
:class:`~ethos.neuro.gate.StimulationGate`) before it can reach a plant or a device. Pulses are
biphasic and charge balanced: a cathodic phase followed, after an inter-phase gap, by an anodic
phase of equal amplitude and width, so the net charge per pulse is zero.

Formulas (per phase):

* charge ``Q [µC] = I [mA] · PW [µs] · 1e-3``  (mA·µs = nC);
* charge density ``D [µC/cm²] = Q / A``, A the geometric electrode area in cm²;
* Shannon's criterion ``k = log10(D) + log10(Q)``; tissue damage was not seen below
  ``k = 1.85`` (Shannon RV, "A model of safe levels for electrical stimulation",
  IEEE Trans Biomed Eng 39(4):424-426, 1992; McCreery et al. 1990 data). Rearranged, the largest
  safe charge on area A is ``Q_max = sqrt(A · 10**k)``.
* the density limit ``D ≤ 30 µC/cm²/phase`` (the conventional limit for platinum macro-electrodes,
  e.g. the Medtronic 3387/3389 DBS lead labelling; Kuncel & Grill 2004), i.e. ``Q ≤ 30 · A``.

Both limits are configurable only *downwards*: a caller can be more conservative than the
published limits but never less, so raising ``k_max`` above 1.85 or ``max_density_uc_cm2`` above
30 raises :class:`~ethos.neuro.errors.NeuroError`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

from ethos.neuro.errors import NeuroError

SHANNON_K_MAX = 1.85
"""Shannon (1992): no tissue damage observed below k = 1.85."""
DENSITY_LIMIT_UC_CM2 = 30.0
"""Conventional charge-density limit per phase for platinum macro-electrodes."""


def charge_per_phase_uc(amplitude_ma: float, pulse_width_us: float) -> float:
    """Charge per phase ``Q = I · PW`` in µC (mA · µs = nC, hence the factor 1e-3)."""
    return amplitude_ma * pulse_width_us * 1e-3


def shannon_k(charge_uc: float, area_cm2: float) -> float:
    """Shannon's k = log10(D) + log10(Q) with D = Q / A (Shannon 1992); -inf for zero charge."""
    if charge_uc <= 0.0:
        return -math.inf
    return math.log10(charge_uc / area_cm2) + math.log10(charge_uc)


def cylinder_area_cm2(length_mm: float, diameter_mm: float) -> float:
    """Lateral area of a cylindrical contact, π · d · L, in cm² (a DBS ring contact)."""
    return math.pi * (diameter_mm / 10.0) * (length_mm / 10.0)


@dataclass(frozen=True)
class StimCommand:
    """A requested biphasic pulse train: amplitude and width of each phase, pulse rate."""

    amplitude_ma: float
    pulse_width_us: float
    frequency_hz: float

    @property
    def charge_uc(self) -> float:
        """Charge per phase in µC."""
        return charge_per_phase_uc(self.amplitude_ma, self.pulse_width_us)


OFF = StimCommand(0.0, 0.0, 0.0)
"""No stimulation."""


@dataclass(frozen=True)
class SafetyCheck:
    """The verdict on one command: its charge, density, k, and which limits it breaks."""

    command: StimCommand
    charge_uc: float
    density_uc_cm2: float
    k: float
    violations: tuple[str, ...]

    @property
    def allowed(self) -> bool:
        """True when the command breaks no limit."""
        return not self.violations

    def __repr__(self) -> str:
        verdict = "allowed" if self.allowed else "REFUSED: " + "; ".join(self.violations)
        return (
            f"<SafetyCheck {self.command.amplitude_ma:.3g} mA, "
            f"{self.command.pulse_width_us:.3g} µs, {self.command.frequency_hz:.3g} Hz | "
            f"Q={self.charge_uc:.4g} µC, D={self.density_uc_cm2:.4g} µC/cm², k={self.k:.3f} | "
            f"{verdict}>"
        )


@dataclass(frozen=True)
class SafetyEnvelope:
    """Limits for one electrode; :meth:`check` judges a command, :meth:`clamp` repairs it.

    ``max_ramp_ma_per_s`` bounds how fast amplitude may *rise* between consecutive commands
    (abrupt onsets are painful with FES and can provoke side effects with DBS); it applies only
    when the caller passes the previous amplitude and the time since it. Lowering the amplitude,
    switching off included, is never limited: it is never the unsafe direction.
    """

    area_cm2: float
    k_max: float = SHANNON_K_MAX
    max_density_uc_cm2: float = DENSITY_LIMIT_UC_CM2
    max_amplitude_ma: float = 10.0
    min_pulse_width_us: float = 20.0
    max_pulse_width_us: float = 500.0
    min_frequency_hz: float = 1.0
    max_frequency_hz: float = 250.0
    max_ramp_ma_per_s: float = 20.0
    interphase_gap_us: float = 50.0

    def __post_init__(self) -> None:
        where = "SafetyEnvelope"
        if not (math.isfinite(self.area_cm2) and self.area_cm2 > 0):
            raise NeuroError(
                f"{where}: area_cm2={self.area_cm2!r} must be a positive electrode area in cm²",
                hint="a DBS contact 1.5 mm long, 1.27 mm wide has cylinder_area_cm2(1.5, 1.27)",
            )
        if not self.k_max <= SHANNON_K_MAX:
            raise NeuroError(
                f"{where}: k_max={self.k_max!r} is above Shannon's limit {SHANNON_K_MAX}; "
                "the safety envelope can only be tightened, never loosened",
                hint=f"use k_max <= {SHANNON_K_MAX}",
            )
        if not 0 < self.max_density_uc_cm2 <= DENSITY_LIMIT_UC_CM2:
            raise NeuroError(
                f"{where}: max_density_uc_cm2={self.max_density_uc_cm2!r} must be in "
                f"(0, {DENSITY_LIMIT_UC_CM2}] µC/cm²/phase; the limit can only be tightened",
                hint=f"use a value <= {DENSITY_LIMIT_UC_CM2}",
            )
        positives = {
            "max_amplitude_ma": self.max_amplitude_ma,
            "min_pulse_width_us": self.min_pulse_width_us,
            "max_pulse_width_us": self.max_pulse_width_us,
            "min_frequency_hz": self.min_frequency_hz,
            "max_frequency_hz": self.max_frequency_hz,
            "max_ramp_ma_per_s": self.max_ramp_ma_per_s,
        }
        for name, value in positives.items():
            if not (math.isfinite(value) and value > 0):
                raise NeuroError(f"{where}: {name}={value!r} must be a positive finite number")
        if self.interphase_gap_us < 0 or not math.isfinite(self.interphase_gap_us):
            raise NeuroError(f"{where}: interphase_gap_us={self.interphase_gap_us!r} must be >= 0")
        if self.min_pulse_width_us > self.max_pulse_width_us:
            raise NeuroError(f"{where}: min_pulse_width_us exceeds max_pulse_width_us")
        if self.min_frequency_hz > self.max_frequency_hz:
            raise NeuroError(f"{where}: min_frequency_hz exceeds max_frequency_hz")
        if self._pulse_period_us(self.max_pulse_width_us) * self.max_frequency_hz > 1e6:
            raise NeuroError(
                f"{where}: a {self.max_pulse_width_us} µs biphasic pulse does not fit in one "
                f"period at {self.max_frequency_hz} Hz",
                hint="lower max_pulse_width_us or max_frequency_hz",
            )

    # ---- derived limits -------------------------------------------------------------------
    @cached_property
    def max_charge_uc(self) -> float:
        """Largest charge per phase allowed by both Shannon's k and the density limit."""
        shannon = math.sqrt(self.area_cm2 * 10.0**self.k_max)
        density = self.max_density_uc_cm2 * self.area_cm2
        return min(shannon, density)

    def _pulse_period_us(self, pulse_width_us: float) -> float:
        return 2.0 * pulse_width_us + self.interphase_gap_us

    def parameters(self) -> dict[str, Any]:
        """The envelope as a plain dict: what a consent record authorises."""
        return asdict(self)

    # ---- judging --------------------------------------------------------------------------
    def check(
        self,
        amplitude_ma: float,
        pulse_width_us: float,
        frequency_hz: float,
        *,
        previous_amplitude_ma: float | None = None,
        dt_s: float | None = None,
    ) -> SafetyCheck:
        """Judge a command; a zero amplitude (stimulation off) is always allowed.

        Raises NeuroError for inputs that are not a command at all (NaN, negative values):
        pulse amplitude is a magnitude, the biphasic shape supplies both polarities.
        """
        command = _validated(amplitude_ma, pulse_width_us, frequency_hz)
        charge = command.charge_uc
        density = charge / self.area_cm2
        k = shannon_k(charge, self.area_cm2)
        if command.amplitude_ma == 0.0:
            return SafetyCheck(command, 0.0, 0.0, -math.inf, ())
        eps = 1e-9
        broken: list[str] = []
        if command.amplitude_ma > self.max_amplitude_ma + eps:
            broken.append(f"amplitude {command.amplitude_ma:.4g} > {self.max_amplitude_ma} mA")
        if not (
            self.min_pulse_width_us - eps <= command.pulse_width_us <= self.max_pulse_width_us + eps
        ):
            broken.append(
                f"pulse width {command.pulse_width_us:.4g} outside "
                f"[{self.min_pulse_width_us}, {self.max_pulse_width_us}] µs"
            )
        if not self.min_frequency_hz - eps <= command.frequency_hz <= self.max_frequency_hz + eps:
            broken.append(
                f"frequency {command.frequency_hz:.4g} outside "
                f"[{self.min_frequency_hz}, {self.max_frequency_hz}] Hz"
            )
        if self._pulse_period_us(command.pulse_width_us) * command.frequency_hz > 1e6 + eps:
            broken.append("biphasic pulse longer than the pulse period")
        if k > self.k_max + eps:
            broken.append(f"Shannon k {k:.3f} > {self.k_max}")
        if density > self.max_density_uc_cm2 * (1 + eps):
            broken.append(f"density {density:.4g} > {self.max_density_uc_cm2} µC/cm²")
        if previous_amplitude_ma is not None and dt_s is not None:
            step = command.amplitude_ma - previous_amplitude_ma
            if step > self.max_ramp_ma_per_s * dt_s + eps:
                broken.append(
                    f"amplitude rise {step:.4g} mA in {dt_s:.4g} s exceeds "
                    f"{self.max_ramp_ma_per_s} mA/s"
                )
        return SafetyCheck(command, charge, density, k, tuple(broken))

    def clamp(
        self,
        amplitude_ma: float,
        pulse_width_us: float,
        frequency_hz: float,
        *,
        previous_amplitude_ma: float | None = None,
        dt_s: float | None = None,
    ) -> StimCommand:
        """The nearest allowed command.

        Pulse width and frequency are clipped to their ranges (frequency further lowered until
        the biphasic pulse fits its period); the amplitude is then reduced, at that pulse width,
        until every limit holds: maximum amplitude, charge ``Q_max / PW`` and the ramp from the
        previous amplitude. Reducing amplitude rather than width keeps the train's timing, which
        the controller and the patient feel, and moves the least along the controlled axis.
        A rise faster than ``max_ramp_ma_per_s`` is cut to the ramp; a fall is kept.
        """
        command = _validated(amplitude_ma, pulse_width_us, frequency_hz)
        if command.amplitude_ma == 0.0:
            return OFF
        width = min(max(command.pulse_width_us, self.min_pulse_width_us), self.max_pulse_width_us)
        freq = min(max(command.frequency_hz, self.min_frequency_hz), self.max_frequency_hz)
        freq = min(freq, 1e6 / self._pulse_period_us(width))
        amp = min(command.amplitude_ma, self.max_amplitude_ma)
        # 1 - 1e-12 keeps the clamped charge strictly inside the limit despite rounding.
        amp = min(amp, self.max_charge_uc / (width * 1e-3) * (1 - 1e-12))
        if previous_amplitude_ma is not None and dt_s is not None:
            amp = min(amp, max(previous_amplitude_ma, 0.0) + self.max_ramp_ma_per_s * dt_s)
        return StimCommand(amp, width, freq) if amp > 0 else OFF

    def __repr__(self) -> str:
        return (
            f"<SafetyEnvelope area={self.area_cm2:.4g} cm², k_max={self.k_max}, "
            f"D_max={self.max_density_uc_cm2} µC/cm², Q_max={self.max_charge_uc:.4g} µC, "
            f"I≤{self.max_amplitude_ma} mA, PW∈[{self.min_pulse_width_us}, "
            f"{self.max_pulse_width_us}] µs, f∈[{self.min_frequency_hz}, {self.max_frequency_hz}]"
            f" Hz, ramp≤{self.max_ramp_ma_per_s} mA/s>"
        )


def _validated(amplitude_ma: float, pulse_width_us: float, frequency_hz: float) -> StimCommand:
    # The common case in one test: non-negative, and a finite sum of non-negatives means each
    # is finite (NaN fails the comparisons). Anything else gets the named error below.
    if (
        amplitude_ma >= 0
        and pulse_width_us >= 0
        and frequency_hz >= 0
        and math.isfinite(amplitude_ma + pulse_width_us + frequency_hz)
    ):
        return StimCommand(float(amplitude_ma), float(pulse_width_us), float(frequency_hz))
    values = {
        "amplitude_ma": amplitude_ma,
        "pulse_width_us": pulse_width_us,
        "frequency_hz": frequency_hz,
    }
    for name, value in values.items():
        if not math.isfinite(value):
            raise NeuroError(
                f"stimulation command: {name}={value!r} is not a finite number",
                hint="a controller produced NaN/inf; switch stimulation off instead",
            )
        if value < 0:
            raise NeuroError(
                f"stimulation command: {name}={value!r} is negative",
                hint="give the magnitude; pulses are biphasic, so both polarities are delivered",
            )
    return StimCommand(float(amplitude_ma), float(pulse_width_us), float(frequency_hz))
