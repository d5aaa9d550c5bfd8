"""Tune controller gains on the simulated plant to maximise the objective M.

Nelder-Mead (scipy) over the logarithm of the gains, so gains stay positive and the search
moves in ratios. Every candidate is scored on the same seeds (common random numbers: the
comparison between candidates is not blurred by different noise), each episode in a private
in-memory sink because it is a simulation, not stimulation of a person; the outcome is appended
to the loop's own sink as a ``tuning`` record and the adopted gains as a ``parameter_change``.
Report the tuned gains on *other* seeds than the ones tuned on (see the tests).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from ethos.neuro.audit import InMemoryAuditSink
from ethos.neuro.intent import IntentSource
from ethos.neuro.loop import ClosedLoop


@dataclass(frozen=True)
class TuningResult:
    """Gains before and after, and M on the tuning seeds."""

    initial_gains: dict[str, float]
    tuned_gains: dict[str, float]
    initial_objective: float
    tuned_objective: float
    n_evaluations: int

    def __repr__(self) -> str:
        fmt = lambda g: ", ".join(f"{k}={v:.4g}" for k, v in g.items())  # noqa: E731
        return (
            f"<TuningResult M {self.initial_objective:.3f} → {self.tuned_objective:.3f} "
            f"in {self.n_evaluations} evaluations | {fmt(self.initial_gains)} → "
            f"{fmt(self.tuned_gains)}>"
        )


def mean_objective(loop: ClosedLoop, source: IntentSource, *, duration_s: float,
                   seeds: Sequence[int]) -> float:  # fmt: skip
    """Average M of the loop's present settings over ``seeds``."""
    return float(np.mean([loop.run(source, duration_s=duration_s, seed=s).objective
                          for s in seeds]))  # fmt: skip


def tune_gains(
    loop: ClosedLoop,
    make_source: Callable[[], IntentSource],
    *,
    names: Sequence[str] = ("kp", "ki", "kd"),
    duration_s: float = 30.0,
    seeds: Sequence[int] = (0,),
    max_evaluations: int = 60,
    floor: float = 1e-3,
) -> TuningResult:
    """Maximise M over the named gains, then adopt the best ones on ``loop`` (recorded)."""
    initial = loop.controller.params()
    start = np.array([math.log(max(initial[n], floor)) for n in names])
    trial = ClosedLoop(
        loop.plant, loop.controller, loop.envelope, consent=loop.consent,
        sink=InMemoryAuditSink(), dt_s=loop.dt_s, pulse_width_us=loop.pulse_width_us,
        frequency_hz=loop.frequency_hz, n_channels=loop.detector.n_channels,
        sfreq_hz=loop.detector.samples_per_cycle / loop.dt_s, weights=loop.weights,
    )  # fmt: skip
    source = make_source()

    def negative_m(log_gains: np.ndarray) -> float:
        gains = {n: float(math.exp(v)) for n, v in zip(names, log_gains, strict=True)}
        trial.controller.set_params(**gains)
        return -mean_objective(trial, source, duration_s=duration_s, seeds=seeds)

    initial_m = -negative_m(start)
    # Initial simplex: each gain up by a factor e, a step large enough to leave flat regions.
    simplex = np.vstack([start] + [start + np.eye(len(names))[i] for i in range(len(names))])
    result = optimize.minimize(
        negative_m, start, method="Nelder-Mead",
        options={"maxfev": max_evaluations, "initial_simplex": simplex, "xatol": 0.05,
                 "fatol": 1e-3},
    )  # fmt: skip
    best = result.x if -result.fun >= initial_m else start
    tuned = {n: float(math.exp(v)) for n, v in zip(names, best, strict=True)}
    loop.controller.set_params(**initial)  # the trial loop shares it; restore, then change openly
    outcome = TuningResult(initial, {**initial, **tuned}, initial_m, max(-result.fun, initial_m),
                           int(result.nfev) + 1)  # fmt: skip
    loop.sink.append(
        "tuning",
        {"method": "Nelder-Mead on log gains", "seeds": list(seeds), "duration_s": duration_s,
         "evaluations": outcome.n_evaluations, "M_before": initial_m,
         "M_after": outcome.tuned_objective},
    )  # fmt: skip
    loop.set_params(reason="tuned to maximise M on the simulated plant", **tuned)
    return outcome
