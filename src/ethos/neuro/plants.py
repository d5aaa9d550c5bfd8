"""Plant models the closed loop is simulated on: an FES-driven muscle and adaptive DBS.

Both are deliberately small, documented, lumped models: enough to show whether a controller
tracks, saves charge and fails safe, not a substitute for a patient.

Each plant exposes ``step(train, intent, dt_s) -> measurement`` (the sensor reading after one
control cycle), ``target(intent)`` (the setpoint a controller should reach for that intent) and
``credit(intent) -> C(t)`` in [0, 1] (how well the present state serves the user's *true*
intent; the closed loop's objective weights and sums it).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ethos.neuro.gate import BiphasicTrain


class Plant(Protocol):
    """What the closed loop needs from a simulated body part."""

    measurement_unit: str

    def reset(self, rng: np.random.Generator) -> None:
        """Return to the rested initial state."""
        ...

    def step(self, train: BiphasicTrain, intent: float, dt_s: float) -> float:
        """Apply one cycle of stimulation; return the new sensor measurement."""
        ...

    def target(self, intent: float) -> float:
        """The measurement a controller should aim at when the user's intent is ``intent``."""
        ...

    def credit(self, intent: float) -> float:
        """C(t) in [0, 1] for the present state, judged against the true intent."""
        ...


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@dataclass
class FESMuscle:
    """A muscle driven by functional electrical stimulation.

    * Recruitment, the fraction of motor units a pulse of charge Q excites, is sigmoid in Q
      (Durfee & MacLean 1989, "Methods for estimating isometric recruitment curves of
      electrically stimulated muscle", IEEE TBME 36:654), shifted so that r(0) = 0:
      ``r(Q) = (sig((Q - q50)/s) - sig(-q50/s)) / (1 - sig(-q50/s))``.
    * Force-frequency: ``g(f) = (f/f_half)² / (1 + (f/f_half)²)`` (fused tetanus with rising rate).
    * Activation follows ``r·g`` with first-order dynamics, ``τ_act da/dt = r·g - a``.
    * Fatigue (Riener, Quintern & Schmidt 1996, J Biomech 29:1157): fitness φ decays towards
      ``φ_min`` while active and recovers while resting,
      ``dφ/dt = (φ_min - φ)·a/τ_fat + (1 - φ)(1 - a)/τ_rec``.
    * Isometric force ``F = F_max · a · φ`` in newtons, measured with Gaussian noise.

    Intent 1 asks for ``target_force_n``; intent 0 for no force.
    """

    max_force_n: float = 100.0
    target_force_n: float = 40.0
    q50_uc: float = 0.8
    slope_uc: float = 0.12
    f_half_hz: float = 15.0
    tau_activation_s: float = 0.08
    tau_fatigue_s: float = 40.0
    tau_recovery_s: float = 60.0
    fitness_min: float = 0.3
    noise_n: float = 0.5
    measurement_unit: str = "N"
    activation: float = field(default=0.0, init=False)
    fitness: float = field(default=1.0, init=False)
    force_n: float = field(default=0.0, init=False)
    _rng: np.random.Generator = field(default_factory=np.random.default_rng, init=False,
                                      repr=False)  # fmt: skip

    def reset(self, rng: np.random.Generator) -> None:
        """Rested muscle, no force."""
        self.activation, self.fitness, self.force_n = 0.0, 1.0, 0.0
        self._rng = rng

    def recruitment(self, charge_uc: float) -> float:
        """Fraction of motor units recruited by a pulse of ``charge_uc`` per phase."""
        floor = _sigmoid(-self.q50_uc / self.slope_uc)
        return max(0.0, (_sigmoid((charge_uc - self.q50_uc) / self.slope_uc) - floor) / (1 - floor))

    def frequency_factor(self, frequency_hz: float) -> float:
        """Relative force of a train at ``frequency_hz``."""
        ratio2 = (frequency_hz / self.f_half_hz) ** 2
        return ratio2 / (1.0 + ratio2)

    def amplitude_for_force(self, force_n: float, pulse_width_us: float, frequency_hz: float,
                            ) -> float:  # fmt: skip
        """Amplitude (mA) that gives ``force_n`` at steady state in a rested muscle."""
        level = force_n / (self.max_force_n * self.frequency_factor(frequency_hz))
        floor = _sigmoid(-self.q50_uc / self.slope_uc)
        s = min(max(level * (1 - floor) + floor, 1e-9), 1 - 1e-9)
        charge_uc = self.q50_uc + self.slope_uc * math.log(s / (1 - s))
        return max(charge_uc, 0.0) / (pulse_width_us * 1e-3)

    def step(self, train: BiphasicTrain, intent: float, dt_s: float) -> float:
        """Advance one cycle (exact exponential update of the linear parts)."""
        drive = self.recruitment(train.charge_uc) * self.frequency_factor(train.frequency_hz)
        self.activation += (drive - self.activation) * (1 - math.exp(-dt_s / self.tau_activation_s))
        a = self.activation
        d_fitness = (self.fitness_min - self.fitness) * a / self.tau_fatigue_s + (
            1 - self.fitness
        ) * (1 - a) / self.tau_recovery_s
        self.fitness = min(1.0, max(self.fitness_min, self.fitness + d_fitness * dt_s))
        self.force_n = self.max_force_n * a * self.fitness
        return self.force_n + self.noise_n * float(self._rng.standard_normal())

    def target(self, intent: float) -> float:
        """Desired force in N."""
        return intent * self.target_force_n

    def credit(self, intent: float) -> float:
        """``C = max(0, 1 - |F - F*| / F*)`` with F* the force the true intent asks for."""
        error = abs(self.force_n - self.target(intent))
        return max(0.0, 1.0 - error / self.target_force_n)


@dataclass
class AdaptiveDBS:
    """Subthalamic beta power under deep brain stimulation (arbitrary units, 1 = untreated).

    * Untreated beta fluctuates as bursts: ``b_untreated = b0 · exp(x)``, x an
      Ornstein-Uhlenbeck process (time constant ``tau_burst_s``), matching the bursty beta of
      Parkinson's disease (Tinkhauser et al. 2017, Ann Neurol 82:2).
    * Intended movement desynchronises beta by ``movement_drop`` (Kühn et al. 2004, Brain 127).
    * Stimulation suppresses beta after a lag ``lag_s`` (Kühn et al. 2008, J Neurosci 28:6165,
      report suppression within hundreds of ms) in proportion to a saturating function of the
      delivered charge rate: ``u = depth · (1 - exp(-Q·f / rate_ref))``.
    * Beta relaxes to ``b_untreated · (1 - u)`` with time constant ``tau_beta_s``.

    Credit ``C = 1`` when beta is at or below ``healthy_beta``, falling linearly to 0 at the
    untreated level: the fraction of pathological beta removed.
    """

    baseline_beta: float = 1.0
    healthy_beta: float = 0.5
    movement_drop: float = 0.3
    depth: float = 0.7
    rate_ref_uc_per_s: float = 15.0
    lag_s: float = 0.2
    tau_beta_s: float = 0.15
    tau_burst_s: float = 0.4
    burst_sd: float = 0.35
    measurement_unit: str = "a.u."
    beta: float = field(default=1.0, init=False)
    _x: float = field(default=0.0, init=False, repr=False)
    _delay: deque[float] = field(default_factory=deque, init=False, repr=False)
    _rng: np.random.Generator = field(default_factory=np.random.default_rng, init=False,
                                      repr=False)  # fmt: skip

    def reset(self, rng: np.random.Generator) -> None:
        """Untreated state, empty stimulation history."""
        self.beta, self._x, self._delay, self._rng = self.baseline_beta, 0.0, deque(), rng

    def step(self, train: BiphasicTrain, intent: float, dt_s: float) -> float:
        """Advance one cycle; returns the measured beta power."""
        n_lag = max(round(self.lag_s / dt_s), 1)
        self._delay.append(train.charge_rate_uc_per_s())
        rate = self._delay.popleft() if len(self._delay) > n_lag else 0.0
        decay = math.exp(-dt_s / self.tau_burst_s)
        self._x = self._x * decay + self.burst_sd * math.sqrt(1 - decay**2) * float(
            self._rng.standard_normal()
        )
        untreated = self.baseline_beta * math.exp(self._x) * (1 - self.movement_drop * intent)
        suppression = self.depth * (1 - math.exp(-rate / self.rate_ref_uc_per_s))
        goal = untreated * (1 - suppression)
        self.beta += (goal - self.beta) * (1 - math.exp(-dt_s / self.tau_beta_s))
        return self.beta

    def target(self, intent: float) -> float:
        """The healthy beta level (lower during intended movement)."""
        return self.healthy_beta * (1 - self.movement_drop * intent)

    def credit(self, intent: float) -> float:
        """Fraction of pathological beta removed, in [0, 1]."""
        span = self.baseline_beta - self.healthy_beta
        return min(1.0, max(0.0, (self.baseline_beta - self.beta) / span))
