"""What the monitor sees of served traffic, and what it is compared with.

The reference is the run's own test part, pushed through the served model once at start-up: the
same tokenizer lengths, out-of-vocabulary rates, embeddings and positive-class scores that live
traffic produces, so a shift means the inputs changed, not the measuring. It is computed in each
process (it is deterministic). The traffic is not: every worker and replica writes what it served
to the serving database (:class:`SharedWindows`), and every check reads the last ``window``
observations of all of them, so N processes judge one window instead of N windows of 1/N of the
traffic. Alerts are raised by the thresholds in the run's policy (its ``monitoring:`` section),
once across processes (one active row per metric in the database), written to the server log of
the process that raised it, and shown on `/v1/alerts`, `/metrics` and `/dashboard`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ethos.errors import EthosError
from ethos.governance.monitoring import MonitorThresholds
from ethos.rundir import RunDir
from ethos.serving.drift import oov_rate
from ethos.serving.monitor import (
    Alert,
    Labelled,
    Monitor,
    Observation,
    Reference,
    WindowData,
    rule_statuses,
)
from ethos.serving.store import AlertRecord, ObservationRow, ServingStore, StoreError

if TYPE_CHECKING:  # the model's libraries are not needed to replay or test the monitor
    from ethos.serving.model import ServedModel

log = logging.getLogger("ethos.serving")

CHECK_EVERY = 20
"""Observations between alert checks (a check recomputes the window's statistics), counted over
every process sharing the window: whichever worker's observations pass a multiple checks."""
KEEP_OBSERVATIONS = 10_000
"""Observations of a model kept in the database (for windows and late feedback) at least; the
oldest are deleted once there are a tenth more."""
FLOAT16_MAX = float(np.finfo(np.float16).max)
REFERENCE_ROWS = 2000
"""Test rows the reference is built from at most (start-up time grows with it)."""


def _thresholds(run: RunDir) -> MonitorThresholds:
    """The run's policy's ``monitoring:`` section; defaults where the policy has none."""
    from ethos.governance.policy import load_policy

    try:
        decision = run.decision() or {}
        policy = load_policy(decision["policy_source"])
    except (OSError, KeyError, ValueError, EthosError) as exc:
        log.warning("monitoring with default thresholds: the run's policy is unreadable (%s)", exc)
        return MonitorThresholds()
    return policy.monitoring or MonitorThresholds()


def encode_embedding(vector: ArrayLike) -> bytes:
    """An embedding as little-endian float16 bytes (2 bytes a dimension; 768 for MiniLM's 384).

    Why float16 and not a projection: the monitor's embedding statistic is the distance of the
    window's mean from the reference mean in reference spreads. float16 keeps every dimension
    with a relative rounding error of at most 2**-11 (0.05 %), which moves that statistic by far
    less than its sampling noise (about 1/sqrt(window): 0.07 at 200): by under 1e-5 for 384-wide
    embeddings whose mean lies 10 spreads from zero (tests/serving/test_drift_monitor.py). A
    random projection to a few dimensions would change the statistic itself, and float32
    doubles the bytes for nothing the statistic can see.
    Values beyond float16's range are clipped to it rather than becoming infinite.
    """
    values = np.asarray(vector, dtype=np.float32).ravel()
    return np.clip(values, -FLOAT16_MAX, FLOAT16_MAX).astype("<f2").tobytes()


def decode_embedding(raw: bytes) -> NDArray[np.float64]:
    """The embedding :func:`encode_embedding` stored, as float64."""
    return np.frombuffer(raw, dtype="<f2").astype(np.float64)


def _utc_datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _alert(record: AlertRecord) -> Alert:
    return Alert(
        metric=record.metric,
        value=math.nan if record.value is None else record.value,
        threshold=math.nan if record.threshold is None else record.threshold,
        message=record.message,
        created_at=record.created_at.timestamp(),
        cleared_at=None if record.cleared_at is None else record.cleared_at.timestamp(),
    )


class SharedWindows:
    """A monitor's windows and alerts in the serving database, shared by every process serving
    ``model_id`` on it (see :class:`ethos.serving.monitor.Windows`).

    Each observation is one compact row (length, OOV rate, positive probability, decision,
    group, float16 embedding; the fed-back label joins it later); positions are the rows' ids.
    At most about ``keep`` observations are kept (:data:`KEEP_OBSERVATIONS`).
    """

    def __init__(
        self,
        store: ServingStore,
        model_id: str,
        *,
        keep: int = KEEP_OBSERVATIONS,
        alert_history_size: int = 200,
    ) -> None:
        self._store = store
        self._model_id = model_id
        self._keep = keep
        self._alert_history_size = alert_history_size
        self._retained = 0

    def add(self, observations: Sequence[Observation], at: float) -> list[int]:
        rows = [
            ObservationRow(
                prediction_id=o.prediction_id,
                length=int(o.length),
                oov_rate=float(o.oov_rate),
                positive_prob=float(o.positive_prob),
                predicted_positive=bool(o.predicted_positive),
                group=o.group,
                embedding=encode_embedding(o.embedding),
            )
            for o in observations
        ]
        return self._store.add_observations(self._model_id, rows, at)

    def label(self, prediction_id: str, true_positive: bool, at: float) -> bool:
        return self._store.label_observation(self._model_id, prediction_id, true_positive, at)

    def read(self, window: int) -> WindowData:
        found = self._store.observation_window(self._model_id, window)
        self._retained = found.retained
        return WindowData(
            observations=[
                Observation(
                    prediction_id=row.prediction_id,
                    length=row.length,
                    oov_rate=row.oov_rate,
                    embedding=decode_embedding(row.embedding),
                    positive_prob=row.positive_prob,
                    predicted_positive=row.predicted_positive,
                    group=row.group,
                )
                for row in found.observations
            ],
            labelled=[
                Labelled(x.predicted_positive, x.true_positive, x.group) for x in found.labelled
            ],
            observed_total=found.total,
            version=found.version,
        )

    def trim(self) -> None:
        """Delete the oldest observations once a tenth more than ``keep`` are held (so the
        delete runs once per ``keep / 10`` observations, not at every check)."""
        if self._retained > self._keep + max(1, self._keep // 10):
            self._store.trim_observations(self._model_id, self._keep)
            self._retained = self._keep

    def active(self) -> dict[str, Alert]:
        return {r.metric: _alert(r) for r in self._store.active_alerts(self._model_id)}

    def open(self, alert: Alert) -> bool:
        record = self._store.raise_alert(
            self._model_id,
            alert.metric,
            alert.value,
            alert.threshold,
            alert.message,
            _utc_datetime(alert.created_at),
        )
        return record is not None

    def close(self, metric: str, at: float) -> Alert | None:
        record = self._store.clear_alert(self._model_id, metric, _utc_datetime(at))
        return None if record is None else _alert(record)

    def history(self) -> list[Alert]:
        records = self._store.alerts(self._alert_history_size, model_id=self._model_id)
        return [_alert(r) for r in reversed(records)]

    def __repr__(self) -> str:
        return f"SharedWindows({self._model_id!r} in {self._store.url})"


def shared_monitor(
    reference: Reference, thresholds: MonitorThresholds, store: ServingStore | None, model_id: str
) -> Monitor:
    """The served model's monitor: windows shared through ``store`` (in this process without
    one), checked every :data:`CHECK_EVERY` observations of all processes together."""
    windows = None if store is None else SharedWindows(store, model_id)
    return Monitor(reference, thresholds, check_every=CHECK_EVERY, windows=windows)


def served_attribute(thresholds_attribute: str | None, sensitive: Sequence[str]) -> str | None:
    """The attribute whose group a served prediction carries (logged, monitored, and what
    `ethos retrain` can learn from): the per-group thresholds' attribute, which decisions need,
    else the run's first sensitive attribute."""
    return thresholds_attribute or next(iter(sensitive), None)


class DriftFeed:
    """Feeds the monitor from the batch thread and answers the monitoring endpoints."""

    def __init__(
        self,
        monitor: Monitor,
        model: ServedModel,
        store: ServingStore | None,
        *,
        group_attribute: str | None,
    ) -> None:
        self.monitor = monitor
        self.model = model
        self.store = store
        self.group_attribute = group_attribute
        self._gauge_names: list[str] = []

    @classmethod
    def for_run(cls, run: RunDir, model: ServedModel, store: ServingStore | None) -> DriftFeed:
        config = run.config
        try:
            # Fingerprint-checked: a changed data file must not become the drift reference.
            test = run.dataset("test", max_length=config.model.max_length)
        except EthosError as exc:
            raise EthosError(
                "the monitor's reference is the run's test part, which cannot be used: "
                f"{exc.message}",
                hint=exc.hint
                or "serve from where the run's data is reachable (as for `ethos audit`)",
            ) from None
        keep = np.arange(min(len(test), REFERENCE_ROWS))
        texts = [test.texts[i] for i in keep]
        # A reader of (question, passage) pairs is scored on its pairs, as it was tested.
        pairs = None if test.text_pairs is None else [test.text_pairs[i] for i in keep]
        attribute = served_attribute(model.thresholds_attribute, config.data.sensitive)
        groups = None
        if attribute is not None and attribute in test.groups.columns:
            groups = {attribute: [str(test.groups[attribute].iloc[i]) for i in keep]}
        probs: list[float] = []
        embeddings: list[np.ndarray] = []
        for start in range(0, len(texts), 64):
            chunk = texts[start : start + 64]
            pair_chunk = None if pairs is None else pairs[start : start + 64]
            predictions, embedded = model.predict_and_embed(chunk, pairs=pair_chunk)
            probs.extend(p.probabilities[model.label_names[-1]] for p in predictions)
            embeddings.append(embedded)
        reference = Reference.from_arrays(
            lengths=model.token_lengths(texts),
            oov=[oov_rate(t, model.tokenizer_vocab) for t in texts],
            embeddings=np.concatenate(embeddings) if embeddings else np.zeros((0, 1)),
            positive_probs=probs,
            groups=groups,
        )
        monitor = shared_monitor(reference, _thresholds(run), store, model.model_id)
        return cls(monitor, model, store, group_attribute=attribute)

    def observe(self, items: Sequence[Any], predictions: Sequence[Any], embeddings: Any) -> None:
        """Called from the batch thread after each forward pass.

        Recording the batch may raise :class:`~ethos.serving.store.StoreUnavailable`: the batch
        then fails and its requests are answered 503, so nothing is served that the monitor
        did not see. A check that fails after the batch was recorded is only logged (the next
        check catches up).
        """
        texts = [item.text for item in items]
        lengths = self.model.token_lengths(texts)
        positive = self.model.label_names[-1]
        due = self.monitor.record(
            [
                Observation(
                    prediction_id=item.key,
                    length=length,
                    oov_rate=oov_rate(item.text, self.model.tokenizer_vocab),
                    embedding=np.asarray(embedding, dtype=np.float32),
                    positive_prob=float(p.probabilities[positive]),
                    predicted_positive=p.label == positive,
                    group=item.group,
                )
                for item, p, embedding, length in zip(
                    items, predictions, embeddings, lengths, strict=True
                )
            ]
        )
        if due:
            try:
                self.check()
            except StoreError as exc:
                log.warning("monitoring check skipped: %s", exc.message)

    def feedback(self, prediction_id: str, label: str) -> bool:
        return self.monitor.feedback(prediction_id, label == self.model.label_names[-1])

    def check(self) -> list[Alert]:
        """Alerts newly raised by this process (in the database, and logged, already)."""
        return self.monitor.check()

    def alerts(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
        """Active alerts, recent alerts, and what the monitor can judge yet (see ``state``)."""
        self.check()
        return (
            [_alert_json(a) for a in self.monitor.active_alerts()],
            [_alert_json(a) for a in list(self.monitor.alert_history)[-100:]],
            self.state(),
        )

    def state(self) -> dict[str, Any]:
        """The window's fill and each rule's state, so an empty alert list is not misread.

        No drift alert is raised until the window holds ``min_window`` predictions (and no
        feedback alert before ``feedback_min`` labels): until then "no alert" means "too few to
        judge", which this says explicitly.
        """
        snap = self.monitor.snapshot()
        return {
            "window_n": snap.n,
            "window_size": snap.window_size,
            "min_window": snap.min_window,
            "drift_judged": snap.drift_judged,
            "feedback_n": snap.feedback_n,
            "feedback_min": snap.feedback_min,
            "feedback_judged": snap.feedback_judged,
            "rules": [
                {
                    "metric": s.metric,
                    "value": s.value if s.value is None or np.isfinite(s.value) else None,
                    "limit": s.limit,
                    "state": s.state,
                    "description": s.description,
                }
                for s in rule_statuses(snap, self.monitor.thresholds)
            ],
        }

    def gauges(self) -> dict[str, float]:
        """The monitor's gauges; every one NaN (unknown) while the database does not answer,
        so /metrics still serves the request counters that show the outage."""
        try:
            gauges = self.monitor.gauges()
        except StoreError as exc:
            log.warning("monitoring gauges unknown: %s", exc.message)
            return dict.fromkeys(self._gauge_names, math.nan)
        self._gauge_names = list(gauges)
        return gauges

    def dashboard(self, model_info: dict[str, Any]) -> str:
        from ethos.serving.dashboard import render_dashboard

        self.check()
        return render_dashboard(
            model=model_info,
            snapshot=self.monitor.snapshot(),
            history=self.monitor.history(),
            alerts=list(self.monitor.alert_history),
            generated_at=datetime.now(UTC),
            thresholds=self.monitor.thresholds,
        )


class NotMonitored:
    """The monitoring endpoints of a run drift monitoring does not apply to.

    A causal LM's answers are texts: there are no class probabilities, decisions or reference
    embeddings of a test part to compare a window with, and no label to feed back. The alerts,
    gauges and dashboard say so instead of failing; nothing is recorded.
    """

    def __init__(self, model_id: str, reason: str) -> None:
        self.model_id = model_id
        self.reason = reason

    def feedback(self, prediction_id: str, label: str) -> bool:
        return False

    def check(self) -> list[Alert]:
        return []

    def alerts(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
        return [], [], self.state()

    def state(self) -> dict[str, Any]:
        return {
            "window_n": 0,
            "window_size": 0,
            "min_window": 0,
            "drift_judged": False,
            "feedback_n": 0,
            "feedback_min": 0,
            "feedback_judged": False,
            "rules": [],
            "applicable": False,
            "note": self.reason,
        }

    def gauges(self) -> dict[str, float]:
        return {}

    def dashboard(self, model_info: dict[str, Any]) -> str:
        from ethos.serving.dashboard import render_not_monitored

        return render_not_monitored(
            model=model_info, reason=self.reason, generated_at=datetime.now(UTC)
        )


GENERATION_NOT_MONITORED = (
    "drift monitoring is not applicable to generation: a causal LM answers with text, so there "
    "are no class probabilities, decisions or reference embeddings to compare, and no labels to "
    "feed back. Its requests are still logged (masked) and counted in /metrics."
)


def _alert_json(alert: Alert) -> dict[str, Any]:
    created = alert.created_at
    stamp = (
        created.isoformat()
        if isinstance(created, datetime)
        else datetime.fromtimestamp(float(created), UTC).isoformat()
    )
    value = None if alert.value is None or not np.isfinite(alert.value) else float(alert.value)
    return {
        "metric": alert.metric,
        "value": value,
        "threshold": alert.threshold,
        "message": alert.message,
        "created_utc": stamp,
    }
