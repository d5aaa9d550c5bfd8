"""What the monitor sees of served traffic, and what it is compared with.

The reference is the run's own test part, pushed through the served model once at start-up: the
same tokenizer lengths, out-of-vocabulary rates, embeddings and positive-class scores that live
traffic produces, so a shift means the inputs changed, not the measuring. Alerts are raised by the
thresholds in the run's policy (its ``monitoring:`` section), written to the serving database and
to the server log, and shown on `/v1/alerts`, `/metrics` and `/dashboard`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ethos.errors import EthosError
from ethos.governance.monitoring import MonitorThresholds
from ethos.rundir import RunDir
from ethos.serving.drift import oov_rate
from ethos.serving.model import ServedModel
from ethos.serving.monitor import Alert, Monitor, Observation, Reference, rule_statuses
from ethos.serving.store import ServingStore

log = logging.getLogger("ethos.serving")

CHECK_EVERY = 20
"""Observations between alert checks (a check recomputes the window's statistics)."""
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
        self._since_check = 0
        self._lock = threading.Lock()

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
        attribute = model.thresholds_attribute or next(iter(config.data.sensitive), None)
        groups = None
        if attribute is not None and attribute in test.groups.columns:
            groups = {attribute: [str(test.groups[attribute].iloc[i]) for i in keep]}
        probs: list[float] = []
        embeddings: list[np.ndarray] = []
        for start in range(0, len(texts), 64):
            chunk = texts[start : start + 64]
            predictions, embedded = model.predict_and_embed(chunk)
            probs.extend(p.probabilities[model.label_names[-1]] for p in predictions)
            embeddings.append(embedded)
        reference = Reference.from_arrays(
            lengths=model.token_lengths(texts),
            oov=[oov_rate(t, model.tokenizer_vocab) for t in texts],
            embeddings=np.concatenate(embeddings) if embeddings else np.zeros((0, 1)),
            positive_probs=probs,
            groups=groups,
        )
        return cls(Monitor(reference, _thresholds(run)), model, store, group_attribute=attribute)

    def observe(self, items: Sequence[Any], predictions: Sequence[Any], embeddings: Any) -> None:
        """Called from the batch thread after each forward pass."""
        texts = [item.text for item in items]
        lengths = self.model.token_lengths(texts)
        positive = self.model.label_names[-1]
        self.monitor.observe(
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
        with self._lock:
            self._since_check += len(items)
            due = self._since_check >= CHECK_EVERY
            if due:
                self._since_check = 0
        if due:
            self.check()

    def feedback(self, prediction_id: str, label: str) -> bool:
        return self.monitor.feedback(prediction_id, label == self.model.label_names[-1])

    def check(self) -> list[Alert]:
        """New alerts, recorded in the database."""
        raised = self.monitor.check()
        for alert in raised:  # the monitor has written each to the server log already
            if self.store is not None:
                self.store.log_alert(alert.metric, alert.value, alert.threshold, alert.message)
        return raised

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
        return self.monitor.gauges()

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
