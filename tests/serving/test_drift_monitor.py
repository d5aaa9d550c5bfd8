"""The monitor on seeded synthetic traffic: quiet in distribution, loud when shifted, and back.

The traffic (monitor_traffic.py) is drawn from the reference laws (no alert) or shifted ones;
wrong labels are fed back for the accuracy alert. No model is involved. The behaviour tests run
twice: with the windows in this process, and with the windows in a SQLite serving database
(``SharedWindows``, what `ethos serve` uses), which must not change a single alert. Tests at the
end show what only shared windows do: several monitors ("processes") on one database fill one
window and raise and clear each alert once, also on PostgreSQL and under concurrent checks.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from monitor_traffic import DIM, DRIFT_ALERTS, Clock, feed, make_reference, observations, sample

from ethos.governance.monitoring import MonitorThresholds
from ethos.governance.policy import PolicyError, load_policy, policy_text
from ethos.serving import drift
from ethos.serving.monitor import (
    RULES,
    Monitor,
    Observation,
    Reference,
    ReferenceFileError,
    rule_statuses,
)
from ethos.serving.observe import SharedWindows, decode_embedding, encode_embedding
from ethos.serving.store import ServingStore

MakeMonitor = Callable[..., Monitor]


@pytest.fixture(scope="module")
def reference() -> Reference:
    return make_reference()


@pytest.fixture(params=["memory", "shared"])
def make_monitor(
    request: pytest.FixtureRequest, reference: Reference, tmp_path: Path
) -> Iterator[MakeMonitor]:
    """Monitors on the reference, their windows in this process or in a SQLite database."""
    stores: list[ServingStore] = []

    def make(thresholds: MonitorThresholds | None = None, **options: Any) -> Monitor:
        if request.param == "shared":
            store = ServingStore(tmp_path / "serving.db")
            stores.append(store)
            options["windows"] = SharedWindows(store, "model-under-test")
        return Monitor(reference, thresholds, clock=Clock(), **options)

    yield make
    for store in stores:
        store.close()


def test_reference_summarises_the_test_set(reference: Reference) -> None:
    assert reference.n == 2000
    assert reference.embedding_mean.shape == reference.embedding_std.shape == (DIM,)
    assert reference.positive_rate == pytest.approx(float((reference.positive_probs >= 0.5).mean()))
    assert set(reference.group_positive_rates["race"]) == {"a", "b"}
    assert reference.group_rate("a") == reference.group_positive_rates["race"]["a"]
    assert reference.group_rate("nobody") is None
    assert reference.accuracy is not None and 0.6 < reference.accuracy < 0.8
    assert "Reference n=2000" in repr(reference)


def test_reference_round_trips_through_json_and_refuses_a_broken_file(
    reference: Reference, tmp_path: Path
) -> None:
    path = tmp_path / "reference.json"
    path.write_text(reference.to_json())
    again = Reference.from_json(path.read_text())
    np.testing.assert_allclose(again.positive_probs, reference.positive_probs)
    np.testing.assert_allclose(again.embedding_std, reference.embedding_std)
    assert again.group_positive_rates == reference.group_positive_rates
    assert again.accuracy == reference.accuracy
    with pytest.raises(ReferenceFileError, match="cannot be read"):
        Reference.from_json('{"format": "something else"}')
    with pytest.raises(ReferenceFileError, match="cannot be read"):
        Reference.from_json("not json")


def test_reference_rejects_arrays_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="lengths has 2 rows"):
        Reference.from_arrays([1, 2], [0, 0, 0], np.zeros((3, 2)), [0.1, 0.2, 0.3])


def test_in_distribution_traffic_raises_nothing(make_monitor: MakeMonitor) -> None:
    monitor = make_monitor(MonitorThresholds())
    raised = feed(monitor, np.random.default_rng(1), 600)
    snap = monitor.snapshot()
    assert raised == [] and monitor.active_alerts() == []
    assert snap.n == 200 and snap.observed_total == 600
    assert snap.probability_psi is not None and snap.probability_psi < 0.1
    assert snap.length_psi is not None and snap.length_psi < 0.1
    assert snap.embedding_shift is not None and snap.embedding_shift < 0.15
    assert snap.oov_rate_delta is not None and abs(snap.oov_rate_delta) < 0.02
    assert snap.positive_rate_delta is not None and abs(snap.positive_rate_delta) < 0.1
    assert set(snap.group_positive_rates) == {"a", "b"}
    assert snap.feedback_accuracy is None  # no labels yet


def test_shifted_inputs_raise_each_drift_alert_once_and_clear_when_traffic_returns(
    make_monitor: MakeMonitor,
) -> None:
    rng = np.random.default_rng(2)
    t = MonitorThresholds()
    monitor = make_monitor(t)
    assert feed(monitor, rng, 200) == []

    raised = feed(monitor, rng, 200, shifted=True)
    assert {a.metric for a in raised} == DRIFT_ALERTS
    assert len(raised) == len(DRIFT_ALERTS)  # raised once each, not at every check
    by_metric = {a.metric: a for a in raised}
    assert by_metric["probability_psi"].value > t.psi_max
    assert by_metric["probability_ks_pvalue"].value < t.ks_pvalue_min
    assert by_metric["length_psi"].value > t.length_psi_max
    assert by_metric["oov_rate_delta"].value > t.oov_rate_delta_max
    assert by_metric["embedding_shift"].value > t.embedding_shift_max
    assert by_metric["positive_rate_delta"].value > t.positive_rate_delta_max
    for alert in raised:
        assert alert.metric in alert.message and "limit" in alert.message
        assert alert.threshold == getattr(
            t, next(r.limit for r in RULES if r.metric == alert.metric)
        )
    snap = monitor.snapshot()
    assert snap.embedding_shift is not None and snap.embedding_shift > 0.5

    assert feed(monitor, rng, 100, shifted=True) == []  # still crossed: not raised again
    assert {a.metric for a in monitor.active_alerts()} == DRIFT_ALERTS
    gauges = monitor.gauges()
    assert gauges["ethos_monitor_alert_embedding_shift"] == 1.0
    assert gauges["ethos_monitor_alerts_active"] == len(DRIFT_ALERTS)

    assert feed(monitor, rng, 400) == []
    assert monitor.active_alerts() == []
    history = monitor.alert_history
    assert {a.metric for a in history} == DRIFT_ALERTS and len(history) == len(DRIFT_ALERTS)
    assert all(a.cleared_at is not None and a.cleared_at > a.created_at for a in history)
    assert monitor.gauges()["ethos_monitor_alerts_active"] == 0.0

    raised_again = feed(monitor, rng, 200, shifted=True)  # a new crossing is a new alert
    assert {a.metric for a in raised_again} == DRIFT_ALERTS
    assert len(monitor.alert_history) == 2 * len(DRIFT_ALERTS)


def test_no_alert_before_the_window_holds_min_window_predictions(
    make_monitor: MakeMonitor,
) -> None:
    monitor = make_monitor(MonitorThresholds(min_window=50))
    monitor.observe(observations(sample(np.random.default_rng(3), 40, shifted=True)))
    assert monitor.check() == []
    snap = monitor.snapshot()
    assert snap.probability_psi is not None  # measured, only not judged
    assert not snap.drift_judged and (snap.n, snap.min_window, snap.window_size) == (40, 50, 200)
    assert monitor.gauges()["ethos_monitor_window_judged"] == 0.0
    states = {s.metric: s for s in rule_statuses(snap, monitor.thresholds)}
    # beyond their limits already, but said to be too few to judge, never "ok" or an alert
    assert snap.length_psi is not None and snap.length_psi > monitor.thresholds.length_psi_max
    assert {states[m].state for m in DRIFT_ALERTS} == {"too few to judge"}
    assert states["length_psi"].description == "too few to judge (40 of 50 predictions)"
    assert states["feedback_accuracy"].description == ("too few to judge (0 of 30 fed-back labels)")
    monitor.observe(observations(sample(np.random.default_rng(4), 20, shifted=True)))
    assert {a.metric for a in monitor.check()} == DRIFT_ALERTS
    snap = monitor.snapshot()
    assert snap.drift_judged and monitor.gauges()["ethos_monitor_window_judged"] == 1.0
    states = {s.metric: s for s in rule_statuses(snap, monitor.thresholds)}
    assert {states[m].state for m in DRIFT_ALERTS} == {"beyond the limit"}
    # enough predictions, but neither group has group_min (50) of the 60: no gap to judge
    assert states["group_positive_rate_gap"].state == "not computed"


def test_observe_can_check_by_itself(make_monitor: MakeMonitor) -> None:
    monitor = make_monitor(check_every=25)
    rng = np.random.default_rng(5)
    raised = []
    for _ in range(10):  # batches of 20: a check in each batch that passes a multiple of 25
        raised.extend(monitor.observe(observations(sample(rng, 20, shifted=True))))
    assert {a.metric for a in raised} == DRIFT_ALERTS  # from the check at 150 (min_window)
    assert len(raised) == len(DRIFT_ALERTS)
    assert [s.observed_total for s in monitor.history()] == [40, 60, 80, 100, 140, 160, 180, 200]


def test_wrong_feedback_raises_the_accuracy_alert(make_monitor: MakeMonitor) -> None:
    t = MonitorThresholds(feedback_min=30, feedback_accuracy_min=0.6)
    monitor = make_monitor(t)
    served = observations(sample(np.random.default_rng(6), 100))
    monitor.observe(served)
    for obs in served[:29]:
        assert monitor.feedback(obs.prediction_id, not obs.predicted_positive)
    assert monitor.check() == []  # 29 labels: not judged yet
    assert monitor.snapshot().feedback_accuracy is None
    assert monitor.feedback(served[29].prediction_id, not served[29].predicted_positive)
    raised = monitor.check()
    assert [a.metric for a in raised] == ["feedback_accuracy"]
    assert raised[0].value == 0.0 and "30 fed-back labels" in raised[0].message
    # corrections replace a label instead of adding one; right labels bring accuracy back
    for obs in served[:30]:
        monitor.feedback(obs.prediction_id, obs.predicted_positive)
    assert monitor.snapshot().feedback_n == 30
    assert monitor.snapshot().feedback_accuracy == 1.0
    assert monitor.check() == [] and monitor.active_alerts() == []


def test_feedback_for_an_unknown_or_forgotten_prediction_is_refused(reference: Reference) -> None:
    monitor = Monitor(reference, clock=Clock(), remember=5)
    served = observations(sample(np.random.default_rng(7), 10))
    monitor.observe(served)
    assert not monitor.feedback("never-served", True)
    assert not monitor.feedback(served[0].prediction_id, True)  # older than the last 5
    assert monitor.feedback(served[-1].prediction_id, True)


def test_a_gap_between_group_positive_rates_raises_an_alert(make_monitor: MakeMonitor) -> None:
    rng = np.random.default_rng(8)
    t = MonitorThresholds()
    monitor = make_monitor(t)
    raised = feed(monitor, rng, 200, group_bias=0.3)
    assert "group_positive_rate_gap" in {a.metric for a in raised}
    snap = monitor.snapshot()
    assert snap.group_positive_rate_gap is not None
    assert snap.group_positive_rate_gap > t.group_positive_rate_gap_max
    rates = snap.group_positive_rates
    assert rates["a"] - rates["b"] == pytest.approx(snap.group_positive_rate_gap)
    gauges = monitor.gauges()
    assert gauges["ethos_monitor_group_positive_rate_a"] == rates["a"]
    assert gauges["ethos_monitor_group_positive_rate_gap"] == snap.group_positive_rate_gap


def test_unequal_error_rates_on_feedback_raise_the_fairness_alert(
    make_monitor: MakeMonitor,
) -> None:
    t = MonitorThresholds(feedback_group_min=10, feedback_min=30)
    monitor = make_monitor(t)
    served = observations(sample(np.random.default_rng(9), 200))
    monitor.observe(served)
    # Every fed-back label is positive. Group a gets labels only where the model said positive,
    # so TPR(a) = 1; group b gets labels for every case, so TPR(b) is the share the model
    # decided positive (about 0.3 under Beta(2, 3)). No negatives: FPR does not enter the gap.
    for obs in served:
        if obs.group == "a" and obs.predicted_positive:
            monitor.feedback(obs.prediction_id, True)  # TPR(a) = 1
        elif obs.group == "b":
            monitor.feedback(obs.prediction_id, True)  # TPR(b) = share decided positive
    snap = monitor.snapshot()
    assert snap.feedback_fairness_gap is not None and snap.feedback_fairness_gap > 0.5
    assert "feedback_fairness_gap" in {a.metric for a in monitor.check()}


def test_history_grows_only_with_new_data_and_is_bounded(make_monitor: MakeMonitor) -> None:
    monitor = make_monitor(history_size=3)
    monitor.check()
    assert monitor.history() == []  # nothing observed: a poll adds no point
    rng = np.random.default_rng(10)
    for _ in range(5):
        monitor.observe(observations(sample(rng, 10)))
        monitor.check()
        monitor.check()  # polling twice without new data adds one point, not two
    history = monitor.history()
    assert len(history) == 3
    assert [s.observed_total for s in history] == [30, 40, 50]
    assert history[0].created_at < history[-1].created_at


def test_concurrent_observers_lose_nothing(make_monitor: MakeMonitor) -> None:
    monitor = make_monitor(MonitorThresholds(window=1000))
    batches = [observations(sample(np.random.default_rng(20 + i), 50)) for i in range(8)]

    def serve(batch: list[Observation]) -> None:
        for start in range(0, len(batch), 5):
            monitor.observe(batch[start : start + 5])
            monitor.check()

    threads = [threading.Thread(target=serve, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert monitor.snapshot().n == monitor.snapshot().observed_total == 400


def test_gauges_are_valid_prometheus_names_even_for_hostile_groups(
    make_monitor: MakeMonitor,
) -> None:
    monitor = make_monitor(MonitorThresholds(group_min=1))
    drawn = sample(np.random.default_rng(11), 10)
    drawn["groups"] = np.array(["<script>alert(1)</script>"] * 10)
    monitor.observe(observations(drawn))
    gauges = monitor.gauges()
    assert all(re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name) for name in gauges)
    assert "ethos_monitor_group_positive_rate__script_alert_1___script_" in gauges
    assert np.isnan(gauges["ethos_monitor_feedback_accuracy"])


def test_snapshot_of_an_empty_monitor(make_monitor: MakeMonitor, reference: Reference) -> None:
    snap = make_monitor().snapshot()
    assert snap.n == 0 and snap.probability_psi is None and snap.feedback_accuracy is None
    assert snap.reference_positive_rate == reference.positive_rate
    assert snap.to_dict()["created_utc"].startswith("2023-11-14T")


@pytest.mark.parametrize("name", ["credit", "criminal-justice", "medical"])
def test_bundled_policies_set_monitoring_limits(name: str, reference: Reference) -> None:
    policy = load_policy(name)
    assert policy.monitoring is not None
    assert "monitoring:" in policy_text(name)
    monitor = Monitor(reference, policy.monitoring, clock=Clock())
    assert monitor.thresholds.window == policy.monitoring.window


def test_a_policy_with_a_wrong_monitoring_section_is_refused(tmp_path: Path) -> None:
    raw = yaml.safe_load(policy_text("credit"))
    raw["monitoring"] = {"psi_maximum": 0.3}
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(PolicyError, match=r"monitoring\.psi_maximum: unknown key"):
        load_policy(path)
    raw["monitoring"] = {"window": 40, "min_window": 50}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(PolicyError, match=r"min_window \(50\) is larger than window \(40\)"):
        load_policy(path)
    del raw["monitoring"]
    path.write_text(yaml.safe_dump(raw))
    assert load_policy(path).monitoring is None


# -- what only shared windows do -----------------------------------------------------------


def _processes(
    url: str | Path, reference: Reference, n: int, thresholds: MonitorThresholds | None = None
) -> list[Monitor]:
    """``n`` monitors of one model, each with its own store on ``url``: n worker processes."""
    return [
        Monitor(
            reference,
            thresholds,
            clock=Clock(),
            windows=SharedWindows(ServingStore(url), "model-under-test"),
        )
        for _ in range(n)
    ]


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "serving.db")
    return str(request.getfixturevalue("postgres_url"))


def _close(monitors: list[Monitor]) -> None:
    for monitor in monitors:
        assert isinstance(monitor.windows, SharedWindows)
        monitor.windows._store.close()


def test_processes_sharing_a_database_judge_one_window_and_alert_once(
    shared_url: str, reference: Reference, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ethos.serving.monitor")
    t = MonitorThresholds(window=100, min_window=80, feedback_min=30)
    first, second = monitors = _processes(shared_url, reference, 2, thresholds=t)
    try:
        rng = np.random.default_rng(12)
        raised: list[str] = []
        for step in range(6):  # 60 shifted predictions each: neither alone has min_window
            for monitor in monitors:
                monitor.observe(observations(sample(rng, 10, shifted=True)))
                raised.extend(a.metric for a in monitor.check())
            assert len(raised) == 0 or step >= 3  # 80 in the shared window only from step 3
        assert sorted(raised) == sorted(DRIFT_ALERTS)  # once each, by whichever saw it first
        assert first.snapshot().n == second.snapshot().n == 100
        assert first.snapshot().observed_total == 120
        assert {a.metric for a in second.active_alerts()} == DRIFT_ALERTS
        # feedback sent to the other process counts for a prediction this one served
        served = observations(sample(rng, 40))
        first.observe(served)
        assert all(second.feedback(o.prediction_id, not o.predicted_positive) for o in served[:30])
        assert first.snapshot().feedback_accuracy == 0.0
        assert not second.feedback("never-served", True)
        for _ in range(8):  # back in distribution: the drift alerts clear
            for monitor in monitors:
                monitor.observe(observations(sample(rng, 10)))
                monitor.check()
        assert {a.metric for a in first.active_alerts()} == {"feedback_accuracy"}
        # Each raise and each clear happened once across both: one log line per stored row
        # (while the window turned over, an alert may have cleared and come back).
        history = second.alert_history
        assert {a.metric for a in history} == DRIFT_ALERTS | {"feedback_accuracy"}
        raised_logs = [m for m in caplog.messages if m.startswith("monitoring alert:")]
        cleared_logs = [m for m in caplog.messages if m.startswith("monitoring alert cleared")]
        assert len(raised_logs) == len(history)
        assert len(cleared_logs) == sum(a.cleared_at is not None for a in history)
    finally:
        _close(monitors)


def test_concurrent_checks_of_one_crossing_raise_and_clear_each_alert_once(
    shared_url: str, reference: Reference, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ethos.serving.monitor")
    monitors = _processes(shared_url, reference, 6)
    try:
        rng = np.random.default_rng(13)
        monitors[0].observe(observations(sample(rng, 200, shifted=True)))
        raised: list[str] = []
        lock = threading.Lock()

        def check_together(monitor: Monitor, barrier: threading.Barrier) -> None:
            barrier.wait()
            found = [a.metric for a in monitor.check()]
            with lock:
                raised.extend(found)

        def all_at_once() -> None:
            barrier = threading.Barrier(len(monitors))
            threads = [threading.Thread(target=check_together, args=(m, barrier)) for m in monitors]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        all_at_once()
        assert sorted(raised) == sorted(DRIFT_ALERTS)
        assert sum("monitoring alert:" in m for m in caplog.messages) == len(DRIFT_ALERTS)
        monitors[1].observe(observations(sample(rng, 200)))
        all_at_once()
        cleared = [m for m in caplog.messages if m.startswith("monitoring alert cleared")]
        assert len(cleared) == len(DRIFT_ALERTS)
        assert monitors[5].active_alerts() == []
    finally:
        _close(monitors)


def test_old_observations_are_trimmed_but_still_counted(
    reference: Reference, tmp_path: Path
) -> None:
    with ServingStore(tmp_path / "serving.db") as store:
        monitor = Monitor(reference, clock=Clock(), windows=SharedWindows(store, "m", keep=50))
        served = [observations(sample(np.random.default_rng(14), 10)) for _ in range(12)]
        for batch in served:
            monitor.observe(batch)
            monitor.check()
        window = store.observation_window("m", 1000)
        assert 50 <= window.retained <= 55  # trimmed back to 50 once 56 are held
        assert window.total == monitor.snapshot().observed_total == 120
        assert not monitor.feedback(served[0][0].prediction_id, True)  # trimmed away
        assert monitor.feedback(served[-1][0].prediction_id, True)
        assert store.observation_window("other model", 10).total == 0


def test_float16_embeddings_move_the_shift_statistic_far_less_than_sampling_noise() -> None:
    """Transformer embeddings have a large common component; here the mean is 10 spreads from
    zero, which makes float16's relative rounding weigh the most on the statistic."""
    rng = np.random.default_rng(15)
    dim = 384
    offset = rng.normal(size=dim) * 10
    reference = rng.normal(loc=offset, size=(2000, dim))
    mean, spread = reference.mean(axis=0), reference.std(axis=0)
    for shift in (0.0, 0.3):
        window = rng.normal(loc=offset + shift, size=(200, dim))
        stored = np.stack([decode_embedding(encode_embedding(row)) for row in window])
        exact = drift.embedding_mean_shift(mean, spread, window)
        rounded = drift.embedding_mean_shift(mean, spread, stored)
        assert abs(rounded - exact) < 1e-4  # sampling noise alone is about 1/sqrt(200) = 0.07
    assert len(encode_embedding(window[0])) == 2 * dim
    huge = decode_embedding(encode_embedding(np.array([1e9, -1e9, np.float32(1.5)])))
    assert np.isfinite(huge).all() and huge[2] == 1.5
