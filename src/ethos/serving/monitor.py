"""Monitoring of a served model: rolling windows compared with the run's test set, and alerts.

The reference (:class:`Reference`) is what the model saw when it was audited: input lengths,
out-of-vocabulary rates, embedding mean and spread, positive-class probabilities and decisions,
per-group positive rates. The :class:`Monitor` reads the last ``window`` predictions and the last
``window`` fed-back labels from its :class:`Windows`, turns them into one :class:`MonitorSnapshot`
of statistics (drift.py computes each), and compares it with the policy's
:class:`MonitorThresholds`. An alert is raised when a statistic crosses its limit, kept while it
stays crossed (not raised again), and cleared when it comes back; every raise and clear is
logged, once. The windows live in this process (:class:`MemoryWindows`) or, for a server with
several workers or replicas, in the serving database (``observe.SharedWindows``), so that all of
them fill one window and share one set of alerts.

Everything here works on numbers and arrays the app hands in; the model is never touched, so the
monitor can be tested, and replayed from logs, without one.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ethos.errors import EthosError
from ethos.governance.monitoring import MonitorThresholds
from ethos.serving import drift

__all__ = [
    "Alert",
    "Labelled",
    "MemoryWindows",
    "Monitor",
    "MonitorSnapshot",
    "MonitorThresholds",
    "Observation",
    "Reference",
    "ReferenceFileError",
    "RuleStatus",
    "WindowData",
    "Windows",
    "rule_statuses",
]

log = logging.getLogger(__name__)

REFERENCE_FORMAT = "ethos.monitor.reference/1"
PROBABILITY_BINS = 10


class ReferenceFileError(EthosError):
    """A cached reference file that cannot be read back."""


def _floats(values: ArrayLike) -> NDArray[np.float64]:
    return np.asarray(values, dtype=float).ravel()


@dataclass(frozen=True, eq=False)
class Reference:
    """The test set's distributions, the baseline every window is compared with.

    ``lengths`` are tokens per input, ``oov_rates`` the per-input out-of-vocabulary word rates
    (drift.oov_rate), ``embedding_mean``/``embedding_std`` the per-dimension mean and standard
    deviation of the input embeddings, ``positive_probs`` the positive-class probabilities.
    ``group_positive_rates`` maps attribute → group → share of positive decisions;
    ``accuracy`` is the test accuracy when labels were given.
    """

    lengths: NDArray[np.float64]
    oov_rates: NDArray[np.float64]
    embedding_mean: NDArray[np.float64]
    embedding_std: NDArray[np.float64]
    positive_probs: NDArray[np.float64]
    positive_rate: float
    group_positive_rates: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    accuracy: float | None = None

    @property
    def n(self) -> int:
        return len(self.positive_probs)

    @classmethod
    def from_arrays(
        cls,
        lengths: ArrayLike,
        oov: ArrayLike,
        embeddings: ArrayLike,
        positive_probs: ArrayLike,
        groups: Mapping[str, Sequence[str]] | None = None,
        labels: ArrayLike | None = None,
        *,
        predicted_positive: ArrayLike | None = None,
    ) -> Reference:
        """Summarise the test set's per-row arrays (all of one length n).

        ``embeddings`` is (n, d); ``groups`` maps an attribute to each row's group; ``labels``
        are the true classes as booleans (positive = True). Decisions are
        ``predicted_positive`` when given (a run with per-group thresholds decides so), else
        probability ≥ 0.5.
        """
        probs = _floats(positive_probs)
        n = len(probs)
        if n == 0:
            raise ValueError("a reference needs at least one test row")
        emb = np.asarray(embeddings, dtype=float).reshape(n, -1)
        decided = (
            probs >= 0.5
            if predicted_positive is None
            else np.asarray(predicted_positive, dtype=bool).ravel()
        )
        length_values, oov_values = _floats(lengths), _floats(oov)
        for name, values in (
            ("lengths", length_values),
            ("oov", oov_values),
            ("decisions", decided),
        ):
            if len(values) != n:
                raise ValueError(f"{name} has {len(values)} rows, positive_probs {n}")
        rates: dict[str, dict[str, float]] = {}
        for attribute, members in (groups or {}).items():
            labels_of = np.asarray([str(g) for g in members])
            if len(labels_of) != n:
                raise ValueError(f"groups['{attribute}'] has {len(labels_of)} rows, not {n}")
            rates[str(attribute)] = {
                str(g): float(decided[labels_of == g].mean()) for g in np.unique(labels_of)
            }
        accuracy = None
        if labels is not None:
            truth = np.asarray(labels, dtype=bool).ravel()
            accuracy = float((truth == decided).mean())
        return cls(
            lengths=length_values,
            oov_rates=oov_values,
            embedding_mean=emb.mean(axis=0),
            embedding_std=emb.std(axis=0),
            positive_probs=probs,
            positive_rate=float(decided.mean()),
            group_positive_rates=rates,
            accuracy=accuracy,
        )

    def group_rate(self, group: str) -> float | None:
        """The test set's positive rate of ``group`` under whichever attribute has it."""
        for by_group in self.group_positive_rates.values():
            if group in by_group:
                return by_group[group]
        return None

    def to_json(self) -> str:
        """A JSON document the app caches in the run directory (arrays as lists)."""
        return json.dumps(
            {
                "format": REFERENCE_FORMAT,
                "lengths": self.lengths.tolist(),
                "oov_rates": self.oov_rates.tolist(),
                "embedding_mean": self.embedding_mean.tolist(),
                "embedding_std": self.embedding_std.tolist(),
                "positive_probs": self.positive_probs.tolist(),
                "positive_rate": self.positive_rate,
                "group_positive_rates": {k: dict(v) for k, v in self.group_positive_rates.items()},
                "accuracy": self.accuracy,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Reference:
        try:
            raw = json.loads(text)
            if raw.get("format") != REFERENCE_FORMAT:
                raise ValueError(f"format is {raw.get('format')!r}, not {REFERENCE_FORMAT!r}")
            return cls(
                lengths=_floats(raw["lengths"]),
                oov_rates=_floats(raw["oov_rates"]),
                embedding_mean=_floats(raw["embedding_mean"]),
                embedding_std=_floats(raw["embedding_std"]),
                positive_probs=_floats(raw["positive_probs"]),
                positive_rate=float(raw["positive_rate"]),
                group_positive_rates={
                    str(a): {str(g): float(r) for g, r in rates.items()}
                    for a, rates in raw.get("group_positive_rates", {}).items()
                },
                accuracy=None if raw.get("accuracy") is None else float(raw["accuracy"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ReferenceFileError(
                f"the monitoring reference cannot be read: {exc}",
                hint="delete the cached file; the server rebuilds it from the run's test set",
            ) from None

    def __repr__(self) -> str:
        groups = sum(len(v) for v in self.group_positive_rates.values())
        accuracy = "n/a" if self.accuracy is None else f"{self.accuracy:.3f}"
        return (
            f"<Reference n={self.n} positive_rate={self.positive_rate:.3f} "
            f"mean_length={self.lengths.mean():.1f} tokens "
            f"embedding_dim={self.embedding_mean.shape[0]} groups={groups} accuracy={accuracy}>"
        )


@dataclass(frozen=True, eq=False)
class Observation:
    """One served prediction as the monitor sees it: its input's summary and its output."""

    prediction_id: str
    length: int
    oov_rate: float
    embedding: NDArray[np.float64]
    positive_prob: float
    predicted_positive: bool
    group: str | None = None


@dataclass(frozen=True)
class Alert:
    """A statistic that crossed its limit, from ``created_at`` (epoch seconds) until cleared."""

    metric: str
    value: float
    threshold: float
    message: str
    created_at: float
    cleared_at: float | None = None

    @property
    def created_utc(self) -> str:
        return _utc(self.created_at)

    def to_dict(self) -> dict[str, Any]:
        cleared = None if self.cleared_at is None else _utc(self.cleared_at)
        return {**asdict(self), "created_utc": self.created_utc, "cleared_utc": cleared}


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class MonitorSnapshot:
    """Every monitored statistic at one moment; None where there is not enough data yet.

    Drift statistics compare the window of the last ``n`` predictions with the reference;
    ``*_delta`` are window minus reference. Feedback statistics use the last ``feedback_n``
    fed-back labels and need ``feedback_min`` of them.
    """

    created_at: float
    n: int
    observed_total: int
    probability_psi: float | None = None
    probability_ks: float | None = None
    probability_ks_pvalue: float | None = None
    probability_histogram: tuple[float, ...] = ()
    reference_probability_histogram: tuple[float, ...] = ()
    length_psi: float | None = None
    mean_length: float | None = None
    oov_rate: float | None = None
    oov_rate_delta: float | None = None
    embedding_shift: float | None = None
    positive_rate: float | None = None
    reference_positive_rate: float | None = None
    positive_rate_delta: float | None = None
    group_positive_rates: Mapping[str, float] = field(default_factory=dict)
    group_counts: Mapping[str, int] = field(default_factory=dict)
    group_positive_rate_gap: float | None = None
    feedback_n: int = 0
    feedback_accuracy: float | None = None
    reference_accuracy: float | None = None
    feedback_fairness_gap: float | None = None
    window_size: int = 0
    """Predictions the window holds at most (the policy's ``monitoring.window``)."""
    min_window: int = 0
    """Predictions the window needs before drift is judged (no drift alert before)."""
    feedback_min: int = 0
    """Fed-back labels needed before feedback is judged."""

    @property
    def created_utc(self) -> str:
        return _utc(self.created_at)

    @property
    def drift_judged(self) -> bool:
        """Whether the window is large enough for a drift alert to mean anything."""
        return self.n >= self.min_window

    @property
    def feedback_judged(self) -> bool:
        return self.feedback_n >= self.feedback_min

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN-free: missing values are None)."""
        out = asdict(self)
        out["created_utc"] = self.created_utc
        return out


@dataclass(frozen=True)
class _Rule:
    """One alerting rule: the snapshot field, its limit's name, and which side is bad."""

    metric: str
    limit: str
    above: bool  # True: alert when value > limit; False: when value < limit
    what: str

    def value(self, snapshot: MonitorSnapshot) -> float | None:
        value = getattr(snapshot, self.metric)
        if value is None:
            return None
        return abs(value) if self.metric == "positive_rate_delta" else float(value)


RULES = (
    _Rule("probability_psi", "psi_max", True, "output probabilities drifted (PSI)"),
    _Rule("probability_ks_pvalue", "ks_pvalue_min", False, "output probabilities drifted (KS)"),
    _Rule("length_psi", "length_psi_max", True, "input lengths drifted (PSI)"),
    _Rule("oov_rate_delta", "oov_rate_delta_max", True, "more out-of-vocabulary words"),
    _Rule("embedding_shift", "embedding_shift_max", True, "input embeddings moved"),
    _Rule("positive_rate_delta", "positive_rate_delta_max", True, "positive rate changed"),
    _Rule(
        "group_positive_rate_gap",
        "group_positive_rate_gap_max",
        True,
        "positive rates differ between groups",
    ),
    _Rule("feedback_accuracy", "feedback_accuracy_min", False, "accuracy on feedback fell"),
    _Rule(
        "feedback_fairness_gap",
        "feedback_fairness_gap_max",
        True,
        "error rates on feedback differ between groups",
    ),
)
"""Every alert the monitor can raise; the metric is a MonitorSnapshot field."""

RuleState = Literal["ok", "beyond the limit", "too few to judge", "not computed"]


@dataclass(frozen=True)
class RuleStatus:
    """Where one rule stands on a snapshot, so an empty-looking state is never read as 'ok'.

    ``too few to judge`` when the window (or the feedback) holds fewer than ``needed`` of
    ``unit`` (its value may still be shown, but it is mostly sampling noise and raises no
    alert); ``not computed`` when there is enough data but no value (fewer than two groups
    qualify, say); otherwise ``beyond the limit`` (an alert is, or on the next check will be,
    active) or ``ok``.
    """

    metric: str
    what: str
    value: float | None
    limit: float
    above: bool
    state: RuleState
    count: int
    needed: int
    unit: str

    @property
    def description(self) -> str:
        """The state for a person: the counts when there are too few to judge."""
        if self.state == "too few to judge":
            return f"too few to judge ({self.count} of {self.needed} {self.unit})"
        return self.state

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "description": self.description}


def rule_statuses(snapshot: MonitorSnapshot, thresholds: MonitorThresholds) -> list[RuleStatus]:
    """Every rule's state on ``snapshot``: the single judgement both alerts and pages use."""
    out = []
    for rule in RULES:
        value = rule.value(snapshot)
        limit = float(getattr(thresholds, rule.limit))
        if rule.metric in _DRIFT:
            count, needed, unit = snapshot.n, thresholds.min_window, "predictions"
        else:
            count, needed, unit = snapshot.feedback_n, thresholds.feedback_min, "fed-back labels"
        state: RuleState
        if count < needed:
            state = "too few to judge"
        elif value is None:
            state = "not computed"
        elif value > limit if rule.above else value < limit:
            state = "beyond the limit"
        else:
            state = "ok"
        out.append(
            RuleStatus(rule.metric, rule.what, value, limit, rule.above, state, count, needed, unit)
        )
    return out


@dataclass(frozen=True)
class Labelled:
    """A fed-back label beside what the model decided for that prediction."""

    predicted_positive: bool
    true_positive: bool
    group: str | None


@dataclass(frozen=True)
class WindowData:
    """What one check reads from a :class:`Windows`: the newest observations and labels.

    Both oldest first and at most ``window`` long; ``observed_total`` counts every observation
    ever added; ``version`` changes whenever an observation or a label is added (so a check
    knows whether there is anything new to draw).
    """

    observations: Sequence[Observation]
    labelled: Sequence[Labelled]
    observed_total: int
    version: Hashable


class Windows(Protocol):
    """Where a :class:`Monitor` keeps its observations, labels and alerts.

    :class:`MemoryWindows` keeps them in this process; ``ethos.serving.observe.SharedWindows``
    in the serving database, so that every worker and replica of a model adds to, and checks,
    one window and raises each alert once. The monitor's statistics and rules do not depend on
    which.
    """

    def add(self, observations: Sequence[Observation], at: float) -> list[int]:
        """Record observations; their positions (1, 2, ... in order of arrival, shared by
        everyone adding to these windows; gaps allowed)."""
        ...

    def label(self, prediction_id: str, true_positive: bool, at: float) -> bool:
        """Attach a true label to a held observation (replacing an earlier one); False when
        the observation is not held."""
        ...

    def read(self, window: int) -> WindowData:
        """The newest ``window`` observations and most recently labelled ``window`` ones."""
        ...

    def trim(self) -> None:
        """Forget observations too old to matter (called after each check)."""
        ...

    def active(self) -> dict[str, Alert]:
        """Active alerts by metric."""
        ...

    def open(self, alert: Alert) -> bool:
        """Make ``alert`` active; False when its metric already has an active alert."""
        ...

    def close(self, metric: str, at: float) -> Alert | None:
        """Clear ``metric``'s active alert; the cleared alert, or None when none was active."""
        ...

    def history(self) -> list[Alert]:
        """Recent alerts, active and cleared, oldest first (bounded)."""
        ...


class MemoryWindows:
    """Windows in this process: right for one process, and for tests and replays.

    Keeps the last ``window`` observations, the last ``window`` labels, the last ``remember``
    predictions' decisions (so feedback can find them) and the last ``alert_history_size``
    alerts. Thread-safe.
    """

    def __init__(self, window: int, *, remember: int = 10_000, alert_history_size: int = 200):
        self._lock = threading.Lock()
        self._window: deque[Observation] = deque(maxlen=window)
        self._labels: OrderedDict[str, Labelled] = OrderedDict()
        self._label_limit = window
        self._recent: OrderedDict[str, tuple[bool, str | None]] = OrderedDict()
        self._remember = remember
        self._observed = 0
        self._labels_added = 0
        self._active: dict[str, Alert] = {}
        self._alerts: deque[Alert] = deque(maxlen=alert_history_size)

    def add(self, observations: Sequence[Observation], at: float) -> list[int]:
        with self._lock:
            positions = []
            for obs in observations:
                self._window.append(obs)
                self._recent[obs.prediction_id] = (bool(obs.predicted_positive), obs.group)
                self._recent.move_to_end(obs.prediction_id)
                while len(self._recent) > self._remember:
                    self._recent.popitem(last=False)
                self._observed += 1
                positions.append(self._observed)
            return positions

    def label(self, prediction_id: str, true_positive: bool, at: float) -> bool:
        with self._lock:
            remembered = self._recent.get(prediction_id)
            if remembered is None:
                return False
            predicted, group = remembered
            self._labels[prediction_id] = Labelled(predicted, bool(true_positive), group)
            self._labels.move_to_end(prediction_id)
            while len(self._labels) > self._label_limit:
                self._labels.popitem(last=False)
            self._labels_added += 1
            return True

    def read(self, window: int) -> WindowData:
        with self._lock:
            return WindowData(
                observations=list(self._window)[-window:],
                labelled=list(self._labels.values())[-window:],
                observed_total=self._observed,
                version=(self._observed, self._labels_added),
            )

    def trim(self) -> None:
        """Nothing to do: every collection here is bounded as it grows."""

    def active(self) -> dict[str, Alert]:
        with self._lock:
            return dict(self._active)

    def open(self, alert: Alert) -> bool:
        with self._lock:
            if alert.metric in self._active:
                return False
            self._active[alert.metric] = alert
            self._alerts.append(alert)
            return True

    def close(self, metric: str, at: float) -> Alert | None:
        with self._lock:
            active = self._active.pop(metric, None)
            if active is None:
                return None
            cleared = replace(active, cleared_at=at)
            self._alerts = deque(
                (cleared if a is active else a for a in self._alerts), maxlen=self._alerts.maxlen
            )
            return cleared

    def history(self) -> list[Alert]:
        with self._lock:
            return list(self._alerts)

    def __repr__(self) -> str:
        with self._lock:
            return (
                f"MemoryWindows({len(self._window)} observations, {len(self._labels)} labels, "
                f"{self._observed} observed, active alerts {sorted(self._active)})"
            )


class Monitor:
    """Rolling windows of served predictions and fed-back labels, checked against thresholds.

    Thread-safe: the app calls it from request handlers and the batching worker at once.
    ``observe`` adds predictions (and, with ``check_every``, runs a check whenever the windows'
    shared count of observations passes a multiple of it, so alerts need no caller to check),
    ``feedback`` adds a true label for a held prediction, ``check`` compares the current
    statistics with the thresholds. ``windows`` holds the data and the active alerts (default:
    :class:`MemoryWindows` in this process, with ``remember`` and ``alert_history_size``);
    ``history`` keeps up to ``history_size`` snapshots of this process's checks (one per
    check that saw new data) for the dashboard.
    """

    def __init__(
        self,
        reference: Reference,
        thresholds: MonitorThresholds | None = None,
        *,
        clock: Callable[[], float] = time.time,
        check_every: int | None = None,
        history_size: int = 500,
        alert_history_size: int = 200,
        remember: int = 10_000,
        windows: Windows | None = None,
    ) -> None:
        self.reference = reference
        self.thresholds = thresholds or MonitorThresholds()
        self.clock = clock
        self.check_every = check_every
        self.windows: Windows = windows or MemoryWindows(
            self.thresholds.window, remember=remember, alert_history_size=alert_history_size
        )
        self._lock = threading.RLock()
        self._version_at_last_history: Hashable = None
        self._history: deque[MonitorSnapshot] = deque(maxlen=history_size)
        self._length_edges = drift.quantile_edges(reference.lengths)
        # PSI of probabilities on the reference's deciles (equal reference share per bin: the
        # least sampling noise); the histogram shown on the dashboard uses fixed tenths of [0, 1].
        self._probability_psi_edges = drift.quantile_edges(reference.positive_probs)
        self._probability_edges = drift.probability_edges(PROBABILITY_BINS)
        self._reference_histogram = tuple(
            drift.bin_shares(reference.positive_probs, self._probability_edges).tolist()
        )

    def observe(self, observations: Iterable[Observation]) -> list[Alert]:
        """Add served predictions to the window; returns alerts newly raised by this call."""
        return self.check() if self.record(observations) else []

    def record(self, observations: Iterable[Observation]) -> bool:
        """Add served predictions without checking; whether a check is due (see ``check_every``).

        Due when the added positions include a multiple of ``check_every``. Positions are shared
        by everyone adding to the same windows, so with N workers a check runs about every
        ``check_every`` observations in all (by whichever worker passed the mark), not every
        ``check_every`` observations of each worker.
        """
        positions = self.windows.add(list(observations), self.clock())
        every = self.check_every
        return every is not None and any(p % every == 0 for p in positions)

    def feedback(self, prediction_id: str, true_label_positive: bool) -> bool:
        """Record the true label of a served prediction.

        False when the prediction is not held (older than the windows remember, or never
        served to this model). A second label for the same prediction replaces the first, so a
        correction does not count twice.
        """
        return self.windows.label(prediction_id, bool(true_label_positive), self.clock())

    def snapshot(self) -> MonitorSnapshot:
        """Every statistic of the current windows (see MonitorSnapshot)."""
        return self._snapshot(self.windows.read(self.thresholds.window))

    def _snapshot(self, data: WindowData) -> MonitorSnapshot:
        window, labelled = list(data.observations), list(data.labelled)
        ref, t = self.reference, self.thresholds
        now = self.clock()
        feedback = {
            **self._feedback_stats(labelled),
            "window_size": t.window,
            "min_window": t.min_window,
            "feedback_min": t.feedback_min,
        }
        if not window:
            return MonitorSnapshot(
                created_at=now,
                n=0,
                observed_total=data.observed_total,
                reference_probability_histogram=self._reference_histogram,
                reference_positive_rate=ref.positive_rate,
                reference_accuracy=ref.accuracy,
                **feedback,
            )
        probs = np.array([o.positive_prob for o in window], dtype=float)
        lengths = np.array([o.length for o in window], dtype=float)
        oov = float(np.mean([o.oov_rate for o in window]))
        decided = np.array([o.predicted_positive for o in window], dtype=bool)
        ks, pvalue = drift.ks_statistic(ref.positive_probs, probs)
        by_group: dict[str, list[bool]] = {}
        for o in window:
            if o.group is not None:
                by_group.setdefault(o.group, []).append(bool(o.predicted_positive))
        counts = {g: len(v) for g, v in sorted(by_group.items())}
        rates = {g: float(np.mean(v)) for g, v in sorted(by_group.items()) if len(v) >= t.group_min}
        return MonitorSnapshot(
            created_at=now,
            n=len(window),
            observed_total=data.observed_total,
            probability_psi=drift.population_stability_index(
                ref.positive_probs, probs, edges=self._probability_psi_edges
            ),
            probability_ks=ks,
            probability_ks_pvalue=pvalue,
            probability_histogram=tuple(drift.bin_shares(probs, self._probability_edges).tolist()),
            reference_probability_histogram=self._reference_histogram,
            length_psi=drift.population_stability_index(
                ref.lengths, lengths, edges=self._length_edges
            ),
            mean_length=float(lengths.mean()),
            oov_rate=oov,
            oov_rate_delta=oov - float(ref.oov_rates.mean()),
            embedding_shift=drift.embedding_mean_shift(
                ref.embedding_mean,
                ref.embedding_std,
                np.stack([np.asarray(o.embedding, dtype=float).ravel() for o in window]),
            ),
            positive_rate=float(decided.mean()),
            reference_positive_rate=ref.positive_rate,
            positive_rate_delta=float(decided.mean()) - ref.positive_rate,
            group_positive_rates=rates,
            group_counts=counts,
            group_positive_rate_gap=drift.rate_gap(list(rates.values()))
            if len(rates) > 1
            else None,
            reference_accuracy=ref.accuracy,
            **feedback,
        )

    def _feedback_stats(self, labelled: Sequence[Labelled]) -> dict[str, Any]:
        t = self.thresholds
        if len(labelled) < t.feedback_min:
            return {"feedback_n": len(labelled)}
        accuracy = float(np.mean([x.predicted_positive == x.true_positive for x in labelled]))
        return {
            "feedback_n": len(labelled),
            "feedback_accuracy": accuracy,
            "feedback_fairness_gap": _error_rate_gap(
                labelled,
                t.feedback_group_min,
                with_fpr=t.feedback_fairness_metric == "equalized_odds",
            ),
        }

    def check(self) -> list[Alert]:
        """Compare the current statistics with the thresholds; returns alerts newly raised here.

        A statistic that crosses its limit raises one alert, which stays active (and is not
        raised again) until the statistic comes back, when it is cleared. Nothing is raised
        while the window holds fewer than ``min_window`` predictions, and a statistic that
        cannot be computed yet (None) neither raises nor clears. With shared windows several
        processes may see the same crossing; the windows let exactly one of them raise the
        alert (and log it), and one clear it.
        """
        with self._lock:
            data = self.windows.read(self.thresholds.window)
            snap = self._snapshot(data)
            has_data = bool(data.observations or data.labelled)
            if has_data and data.version != self._version_at_last_history:
                self._history.append(snap)  # a poll without new data draws no new point
                self._version_at_last_history = data.version
            active = self.windows.active()
            raised: list[Alert] = []
            for rule, status in zip(RULES, rule_statuses(snap, self.thresholds), strict=True):
                if status.value is None or status.state == "too few to judge":
                    continue
                crossed = status.state == "beyond the limit"
                if crossed and rule.metric not in active:
                    alert = self._raise(rule, status.value, status.limit, snap)
                    if alert is not None:
                        raised.append(alert)
                elif not crossed and rule.metric in active:
                    self._clear(rule.metric, status.value, status.limit, snap.created_at)
            self.windows.trim()
            return raised

    def _raise(
        self, rule: _Rule, value: float, limit: float, snap: MonitorSnapshot
    ) -> Alert | None:
        alert = Alert(
            metric=rule.metric,
            value=value,
            threshold=limit,
            message=_message(rule, value, limit, snap),
            created_at=snap.created_at,
        )
        if not self.windows.open(alert):
            return None  # another process raised it since this check read the active alerts
        log.warning("monitoring alert: %s", alert.message)
        return alert

    def _clear(self, metric: str, value: float, limit: float, at: float) -> None:
        if self.windows.close(metric, at) is not None:
            log.info("monitoring alert cleared: %s is %.4g (limit %.4g)", metric, value, limit)

    def active_alerts(self) -> list[Alert]:
        """Alerts raised and not yet cleared, oldest first."""
        return sorted(self.windows.active().values(), key=lambda a: a.created_at)

    @property
    def alert_history(self) -> list[Alert]:
        """Recent alerts, active and cleared, oldest first (bounded); a copy."""
        return self.windows.history()

    def history(self) -> list[MonitorSnapshot]:
        """Snapshots of this process's checks, oldest first (bounded), for the dashboard."""
        with self._lock:
            return list(self._history)

    def gauges(self) -> dict[str, float]:
        """Flat numbers for Prometheus gauges; NaN where a statistic is not computed yet.

        Names are valid Prometheus metric names. Per-group positive rates are
        ``ethos_monitor_group_positive_rate_<group>`` with the group reduced to [a-z0-9_] (only
        groups with ``group_min`` predictions in the window, so their number stays bounded);
        ``ethos_monitor_alert_<metric>`` is 1 while that alert is active.
        """
        snap = self.snapshot()
        out: dict[str, float] = {
            "ethos_monitor_window_n": float(snap.n),
            "ethos_monitor_min_window": float(snap.min_window),
            "ethos_monitor_window_judged": float(snap.drift_judged),
            "ethos_monitor_observed_total": float(snap.observed_total),
            "ethos_monitor_feedback_n": float(snap.feedback_n),
        }
        for name in (
            "probability_psi",
            "probability_ks",
            "probability_ks_pvalue",
            "length_psi",
            "mean_length",
            "oov_rate",
            "oov_rate_delta",
            "embedding_shift",
            "positive_rate",
            "positive_rate_delta",
            "group_positive_rate_gap",
            "feedback_accuracy",
            "feedback_fairness_gap",
        ):
            value = getattr(snap, name)
            out[f"ethos_monitor_{name}"] = math.nan if value is None else float(value)
        for group, rate in snap.group_positive_rates.items():
            out[f"ethos_monitor_group_positive_rate_{_slug(group)}"] = rate
        active = {a.metric for a in self.active_alerts()}
        out["ethos_monitor_alerts_active"] = float(len(active))
        for rule in RULES:
            out[f"ethos_monitor_alert_{rule.metric}"] = float(rule.metric in active)
        return out

    def __repr__(self) -> str:
        return f"<Monitor window={self.thresholds.window} windows={self.windows!r}>"


_DRIFT = {r.metric for r in RULES if not r.metric.startswith("feedback_")}
"""Rules that wait for min_window predictions; feedback rules wait for feedback_min labels."""


def _message(rule: _Rule, value: float, limit: float, snap: MonitorSnapshot) -> str:
    side = "above" if rule.above else "below"
    base = f"{rule.what}: {rule.metric} = {value:.4g}, {side} the limit {limit:.4g}"
    if rule.metric == "positive_rate_delta" and snap.positive_rate is not None:
        base += (
            f"; {snap.positive_rate:.3f} now, {snap.reference_positive_rate:.3f} on the test set"
        )
    if rule.metric.startswith("feedback_"):
        return f"{base} (last {snap.feedback_n} fed-back labels)"
    return f"{base} (last {snap.n} predictions)"


def _error_rate_gap(labelled: Sequence[Labelled], minimum: int, *, with_fpr: bool) -> float | None:
    """Range of true-positive rates (and false-positive rates, for equalized odds) between groups.

    Written here rather than with fairlearn's ``equalized_odds_difference`` because a group must
    have ``minimum`` positives (negatives) for its TPR (FPR) to count, and a rate with too few
    cases is left out instead of entering the gap as noise. None while fewer than two groups
    qualify for every rate used.
    """
    tpr: list[float] = []
    fpr: list[float] = []
    groups = sorted({x.group for x in labelled if x.group is not None})
    for group in groups:
        rows = [x for x in labelled if x.group == group]
        positives = [x.predicted_positive for x in rows if x.true_positive]
        negatives = [x.predicted_positive for x in rows if not x.true_positive]
        if len(positives) >= minimum:
            tpr.append(float(np.mean(positives)))
        if len(negatives) >= minimum:
            fpr.append(float(np.mean(negatives)))
    gaps = [drift.rate_gap(tpr)] if len(tpr) > 1 else []
    if with_fpr and len(fpr) > 1:
        gaps.append(drift.rate_gap(fpr))
    return max(gaps) if gaps else None


def _slug(group: str) -> str:
    cleaned = "".join(c if c.isascii() and c.isalnum() else "_" for c in group.lower())
    return cleaned[:40] or "_"
