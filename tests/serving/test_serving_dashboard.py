"""The monitoring page: drawn with and without data, escaped, and opened in headless Chromium.

The traffic is synthetic (monitor_traffic.py): in-distribution first, then shifted, so drift
alerts are active when the page is drawn. One group is named like an attack, to show that names
sent by clients are text on the page, never markup.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from monitor_traffic import DRIFT_ALERTS, Clock, make_reference, observations, sample

from browser import FIGURE_BOXES, chromium_path, open_in_chromium
from ethos.governance.monitoring import MonitorThresholds
from ethos.serving.dashboard import lines, render_dashboard
from ethos.serving.monitor import Monitor

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
HOSTILE = "<script>alert(1)</script>"
MODEL = {
    "model_id": "compas-1234",
    "decision": "PASS",
    "decision_id": "ab" * 32,
    "policy": "criminal-justice",
    "welfare": 0.7134,
    "threshold": 0.6,
}
CHART_TITLES = [
    "PSI over time",
    "KS p-value over time",
    "positive rate over time",
    "embedding shift over time",
    "out-of-vocabulary rate over time",
    "positive rate by group over time",
    "feedback over time",
    "probability histogram",
]


def _render(monitor: Monitor, **model: Any) -> str:
    return render_dashboard(
        model={**MODEL, **model},
        snapshot=monitor.snapshot(),
        history=monitor.history(),
        alerts=monitor.alert_history,
        generated_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        thresholds=monitor.thresholds,
    )


@pytest.fixture(scope="module")
def drifted() -> Monitor:
    """400 in-distribution predictions, then 200 shifted ones; groups 'a' and a hostile name."""
    thresholds = MonitorThresholds(min_window=100, group_min=20, feedback_min=30)
    monitor = Monitor(make_reference(), thresholds, clock=Clock())
    rng = np.random.default_rng(3)
    for step in range(30):
        drawn = sample(rng, 20, shifted=step >= 20)
        drawn["groups"] = np.where(drawn["groups"] == "b", HOSTILE, drawn["groups"])
        served = observations(drawn)
        monitor.observe(served)
        for obs in served[:5]:  # some labels come back, a fifth of them wrong
            monitor.feedback(obs.prediction_id, obs.predicted_positive != (step % 5 == 0))
        monitor.check()
    assert {a.metric for a in monitor.active_alerts()} >= DRIFT_ALERTS
    return monitor


def test_an_empty_monitor_draws_a_page_that_says_so() -> None:
    page = _render(Monitor(make_reference(), clock=Clock()), model_id=None, decision=None)
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta http-equiv="refresh" content="10">' in page
    assert "Window too small to judge drift (0 of 150 predictions needed" in page
    assert "No active alert." not in page  # nothing could have been raised: not an all-clear
    assert page.count("no data yet") == 7  # every line chart, none of them broken
    assert page.count("<svg") == len(CHART_TITLES)
    assert "unknown model" in page and "n/a" in page
    assert "<script" not in page.lower()


def test_a_drifted_monitor_shows_its_alerts_charts_and_model(drifted: Monitor) -> None:
    page = _render(drifted)
    for metric in DRIFT_ALERTS:
        assert f"<strong>{metric}</strong>" in page
    for title in CHART_TITLES:
        assert f"<title>{title}</title>" in page
    assert "compas-1234" in page and "criminal-justice" in page and "0.7134" in page
    assert "no data yet" not in page
    assert not re.search(r"(src|href)=|@import|url\(", page)  # nothing to fetch


def _state_cells(page: str) -> dict[str, str]:
    """The 'Now' table's state column, by metric."""
    rows = re.findall(
        r"<tr><td>(\w+)</td><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td><td>([^<]*)</td>", page
    )
    return dict(rows)


def test_a_window_too_small_to_judge_is_not_an_all_clear() -> None:
    """Four shifted predictions in a 200 window: beyond the limits, but too few to judge."""
    monitor = Monitor(make_reference(), clock=Clock())
    monitor.observe(observations(sample(np.random.default_rng(1), 4, shifted=True)))
    assert monitor.check() == []
    snapshot = monitor.snapshot()
    assert snapshot.length_psi is not None and snapshot.length_psi > 0.2
    page = _render(monitor)
    assert "No active alert." not in page
    assert "Window too small to judge drift (4 of 150 predictions needed" in page
    assert "the window holds up to 200" in page
    states = _state_cells(page)
    assert states["length_psi"] == "too few to judge (4 of 150 predictions)"
    assert states["feedback_accuracy"] == "too few to judge (0 of 30 fed-back labels)"
    assert "beyond the limit" not in states.values()


def test_a_judged_window_without_alerts_says_no_active_alert() -> None:
    monitor = Monitor(make_reference(), MonitorThresholds(min_window=100), clock=Clock())
    monitor.observe(observations(sample(np.random.default_rng(2), 160)))
    assert monitor.check() == []
    page = _render(monitor)
    assert "No active alert." in page and "too small to judge" not in page
    assert _state_cells(page)["length_psi"] == "ok"


@pytest.mark.parametrize(
    ("welfare", "threshold", "decision", "shown"),
    [
        (0.7134, 0.6, "PASS", "0.7134 (policy threshold 0.6: met)"),
        (
            0.1615,
            0.65,
            "REVIEW",
            "0.1615 (policy threshold 0.65: not met, so the gate cannot decide PASS)",
        ),
        (None, None, "PASS", "n/a (policy threshold n/a)"),
    ],
)
def test_w_is_shown_against_its_threshold_and_apart_from_the_decision(
    welfare: float | None, threshold: float | None, decision: str, shown: str
) -> None:
    page = _render(
        Monitor(make_reference(), clock=Clock()),
        welfare=welfare,
        threshold=threshold,
        decision=decision,
    )
    assert f"<th>policy score W</th><td>{shown}</td>" in page
    assert f">{decision}</span>" in page  # the decision is its own row, as the gate made it
    assert "PASS at" not in page


@pytest.mark.parametrize(
    ("card", "says"),
    [
        (None, "none in the run directory"),
        (
            {"available": True, "html": "card.html", "matches_served_decision": True},
            "card.html; describes the decision being served",
        ),
        (
            {"available": True, "html": "card.html", "stale": "card"},
            "describes an earlier gate decision (run `ethos card` again)",
        ),
        (
            {"available": True, "html": "card.html", "stale": "server"},
            "restart `ethos serve` to serve under it",
        ),
    ],
)
def test_the_model_card_row_says_whether_the_card_is_current(
    card: dict[str, Any] | None, says: str
) -> None:
    page = _render(Monitor(make_reference(), clock=Clock()), card=card)
    assert "<th>model card</th>" in page and says in page


def test_every_client_string_is_escaped(drifted: Monitor) -> None:
    page = _render(drifted, model_id=HOSTILE, policy='"><img src=x onerror=alert(1)>')
    assert HOSTILE not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page.lower()
    assert not re.search(r"<[^>]*\son\w+=", page)  # no event-handler attribute anywhere


def test_a_missing_value_breaks_a_line_and_a_lone_point_is_a_dot() -> None:
    chart = lines("t", [1.0, 2.0, 3.0, 4.0], {"s": [0.1, None, 0.3, 0.4]}, [("limit", 0.2)])
    assert chart.count("<circle") == 1 and chart.count("<path") == 1
    assert 'class="limit"' in chart and "limit 0.2" in chart


def test_the_dashboard_renders_in_headless_chromium(drifted: Monitor, tmp_path: Path) -> None:
    chromium_path()  # skip before anything is drawn when the browser is missing
    path = tmp_path / "dashboard.html"
    path.write_text(_render(drifted), encoding="utf-8")
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "serving-dashboard.png"
    with open_in_chromium(path.as_uri()) as visit:
        page = visit.page
        dialogs: list[str] = []
        page.on("dialog", lambda d: dialogs.append(d.message))
        alert_box = page.locator(".active-alert").filter(has_text="embedding_shift")
        assert alert_box.is_visible()
        alert_text = alert_box.inner_text()
        figures = page.eval_on_selector_all("figure.chart svg", FIGURE_BOXES)
        legend_texts = page.eval_on_selector_all("svg text", "els => els.map(e => e.textContent)")
        scripts = page.evaluate("document.scripts.length")
        page.screenshot(path=str(screenshot), full_page=True)
    assert visit.problems == [] and dialogs == [] and scripts == 0
    assert visit.requests == [path.as_uri()]  # self-contained: nothing else is fetched
    assert "input embeddings moved" in alert_text and "limit 0.25" in alert_text
    assert [f["title"] for f in figures] == CHART_TITLES
    for figure in figures:
        assert figure["w"] > 300 and figure["h"] > 150, figure
        assert figure["marks"] > 0, figure
    assert HOSTILE in legend_texts  # the hostile group is shown, as text
    assert screenshot.stat().st_size > 20_000
