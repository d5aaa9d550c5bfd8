"""Sources of user intent for the closed loop: what the user wants, and what the BCI decoded.

Each control cycle an intent source yields the *true* intent (0 = rest, 1 = move; used only to
score the loop), the *decoded* intent in [0, 1] (what the controller sees) and the block of EEG
samples that arrived (what the fault detector checks).

* :class:`SurrogateIntent` models the decoder statistically: each decision is right with
  probability ``accuracy`` (take it from :func:`~ethos.neuro.evaluation.evaluate_decoder`) and
  the decisions are exponentially smoothed. It is cheap enough to tune gains on.
* :class:`EEGIntent` runs a real :class:`~ethos.neuro.streaming.StreamingDecoder` over
  simulated EEG in which the user imagines moving whenever the true intent is 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from ethos.neuro.errors import NeuroError
from ethos.neuro.simulate import SimulationConfig, simulate_raw
from ethos.neuro.streaming import StreamingDecoder


@dataclass(frozen=True)
class IntentSample:
    """One cycle's intent and raw samples."""

    true_intent: float
    decoded_intent: float
    block_v: NDArray[np.float64]


class IntentSource(Protocol):
    """Yields one :class:`IntentSample` per control cycle."""

    def reset(self, seed: int) -> None:
        """Start a new episode."""
        ...

    def next(self, t_s: float, dt_s: float) -> IntentSample:
        """The sample for the cycle ending at ``t_s + dt_s``."""
        ...


def block_schedule(rng: np.random.Generator, duration_s: float, *, min_s: float = 2.0,
                   max_s: float = 5.0) -> list[tuple[float, float]]:  # fmt: skip
    """Alternating rest/move blocks of random length: (start_s, intent) pairs from rest."""
    schedule, t, intent = [], 0.0, 0.0
    while t < duration_s:
        schedule.append((t, intent))
        t += rng.uniform(min_s, max_s)
        intent = 1.0 - intent
    return schedule


def _intent_at(schedule: list[tuple[float, float]], t_s: float) -> float:
    value = 0.0
    for start, intent in schedule:
        if start > t_s:
            break
        value = intent
    return value


class SurrogateIntent:
    """Decoder modelled by its accuracy; EEG blocks are white noise at scalp amplitude."""

    def __init__(
        self,
        *,
        accuracy: float = 0.85,
        smoothing_s: float = 0.3,
        duration_s: float = 30.0,
        n_channels: int = 22,
        sfreq_hz: float = 250.0,
        noise_v: float = 10e-6,
    ) -> None:
        if not 0.0 <= accuracy <= 1.0:
            raise NeuroError(f"SurrogateIntent: accuracy={accuracy} must be in [0, 1]")
        self.accuracy = accuracy
        self.smoothing_s = smoothing_s
        self.duration_s = duration_s
        self.n_channels = n_channels
        self.sfreq_hz = sfreq_hz
        self.noise_v = noise_v
        self.reset(0)

    def reset(self, seed: int) -> None:
        """New schedule and decoder noise for this seed."""
        self._rng = np.random.default_rng(seed)
        self.schedule = block_schedule(self._rng, self.duration_s)
        self._smoothed = 0.0
        self._carry = 0.0

    def next(self, t_s: float, dt_s: float) -> IntentSample:
        """Draw one decision, smooth it, and make this cycle's EEG block."""
        true = _intent_at(self.schedule, t_s)
        correct = self._rng.random() < self.accuracy
        decision = true if correct else 1.0 - true
        self._smoothed += (decision - self._smoothed) * (1 - math.exp(-dt_s / self.smoothing_s))
        exact = dt_s * self.sfreq_hz + self._carry
        n = int(exact)
        self._carry = exact - n
        block = self.noise_v * self._rng.standard_normal((self.n_channels, n))
        return IntentSample(true, self._smoothed, block)


class EEGIntent:
    """Simulated EEG (rest vs imagined ``move_class``) streamed through a fitted decoder.

    The decoded intent is the smoothed probability of ``move_class`` over the decoder's
    sliding-window predictions; between predictions it holds its last value.
    """

    def __init__(self, decoder: StreamingDecoder, *, move_label: int, config: SimulationConfig,
                 duration_s: float = 30.0, move_class: str = "right_hand",
                 smoothing_s: float = 0.3) -> None:  # fmt: skip
        self.decoder = decoder
        self.move_label = move_label
        self.config = config
        self.duration_s = duration_s
        self.move_class = move_class
        self.smoothing_s = smoothing_s
        self.reset(0)

    def reset(self, seed: int) -> None:
        """Simulate a fresh recording: alternating rest and imagery trials."""
        n_trials = max(math.ceil(self.duration_s / self.config.trial_s), 1)
        classes = [self.move_class if i % 2 else "rest" for i in range(n_trials)]
        raw = simulate_raw(self.config, subject=seed + 1000, trial_classes=classes)
        self.data_v = raw.get_data(picks="eeg")
        sfreq = self.config.sfreq_hz
        truth = np.zeros(self.data_v.shape[1])
        for onset, duration, desc in zip(raw.annotations.onset, raw.annotations.duration,
                                         raw.annotations.description, strict=True):  # fmt: skip
            if desc == self.move_class:
                truth[int(onset * sfreq) : int((onset + duration) * sfreq)] = 1.0
        self.truth = truth
        self.decoder.reset()
        self._position = 0
        self._smoothed = 0.0
        self._carry = 0.0

    def next(self, t_s: float, dt_s: float) -> IntentSample:
        """Stream the next block through the decoder."""
        exact = dt_s * self.config.sfreq_hz + self._carry
        n = int(exact)
        self._carry = exact - n
        start = self._position % self.data_v.shape[1]
        block = self.data_v[:, start : start + n]
        self._position += n
        predictions = self.decoder.push(block) if block.shape[1] else []
        for prediction in predictions:
            p_move = float(prediction.proba[self.move_label])
            step = self.decoder.step_samples / self.config.sfreq_hz
            self._smoothed += (p_move - self._smoothed) * (1 - math.exp(-step / self.smoothing_s))
        true = float(self.truth[min(start + n, self.truth.size - 1)])
        return IntentSample(true, self._smoothed, block)
