"""Sweep points whose model is not informative: marked, and never on a Pareto front.

Built from constructed points and documents (nothing trains): the issue-22 model predicts the
majority class for every row, so its fairness gap is 0.000 and, by accuracy and gap alone, it
would sit on the accuracy/fairness front and push honest runs off it.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from ethos.sweep import runner
from ethos.sweep.grid import parse_grid
from ethos.sweep.page import render_page
from ethos.sweep.runner import SweepPoint, SweepResult, sweep_document


def _point(index: int, accuracy: float, gap: float, informative: bool | None) -> SweepPoint:
    return SweepPoint(
        index=index,
        values={"seed": index + 1},
        label=f"seed={index + 1}",
        status="done",
        run_id=f"run-{index}",
        run_dir=f"runs/run-{index}",
        accuracy=accuracy,
        fairness_gap=gap,
        epsilon=8.0 - index,
        welfare=0.5,
        decision="FAIL" if informative is False else "REVIEW",
        informative=informative,
    )


def _result(points: list[SweepPoint]) -> SweepResult:
    return SweepResult(
        path=Path("."),
        grid=parse_grid(["seed=[1,2,3]"]),
        policy="criminal-justice",
        threshold=0.6,
        gap_metric="fairness.race.disparities.equalized_odds_difference.value",
        points=points,
    )


def _points() -> list[SweepPoint]:
    # #1 accurate but unfair; #2 fair-ish; #3 the constant model: majority accuracy, gap 0, and
    # the smallest ε, so it would dominate #2 on both fronts
    return [
        _point(0, 0.70, 0.20, True),
        _point(1, 0.56, 0.05, True),
        _point(2, 0.60, 0.00, False),
    ]


def test_a_point_that_is_not_informative_is_on_no_front() -> None:
    points = _points()
    runner.mark_fronts(points)
    assert points[2].fronts == []
    assert points[1].fronts == ["accuracy_vs_fairness_gap", "accuracy_vs_epsilon"]
    assert points[0].fronts == ["accuracy_vs_fairness_gap", "accuracy_vs_epsilon"]
    # the same points with the verdict unknown (an audit from before the check): #3 counts again
    unknown = _points()
    unknown[2].informative = None
    runner.mark_fronts(unknown)
    assert "accuracy_vs_fairness_gap" in unknown[2].fronts
    assert "accuracy_vs_fairness_gap" not in unknown[1].fronts


def test_sweep_json_and_the_summary_line_carry_the_verdict() -> None:
    document = sweep_document(_result(_points()), created="t", source="c.yaml")
    assert [p["informative"] for p in document["points"]] == [True, True, False]
    assert 2 not in document["fronts"]["accuracy_vs_fairness_gap"]
    assert 2 not in document["fronts"]["accuracy_vs_epsilon"]
    assert _points()[2].summary().endswith("[not informative: kept off the Pareto fronts]")
    assert "!" in repr(_result(_points())).splitlines()[3]
    json.dumps(document, allow_nan=False)


def test_the_verdict_is_read_from_the_audit() -> None:
    assert runner.informative({"informativeness": {"informative": False}}) is False
    assert runner.informative({"informativeness": {"informative": True}}) is True
    assert runner.informative({"fairness": {}}) is None


def _circles(page: str, chart_title: str) -> list[str]:
    chart = re.search(rf"<svg[^>]*><title>{chart_title}</title>.*?</svg>", page, re.S)
    assert chart is not None, chart_title
    return re.findall(r"<circle[^>]*>(?:<title>[^<]*</title>)?</circle>", chart.group(0))


def test_the_page_marks_it_and_never_rings_it_even_if_sweep_json_says_so() -> None:
    document: dict[str, Any] = sweep_document(_result(_points()), created="t", source="c.yaml")
    # a hand-edited or older sweep.json that put it on the front is not believed
    document["points"][2]["fronts"] = ["accuracy_vs_fairness_gap", "accuracy_vs_epsilon"]
    page = render_page(document)
    for title in ("accuracy vs fairness gap", "accuracy vs epsilon"):
        dots = _circles(page, title)
        [hollow] = [d for d in dots if 'class="not-informative"' in d]
        assert "#3 seed=3" in hollow and "not informative" in hollow
        assert 'stroke-width="2.5"' not in hollow  # no front ring
        ringed = [d for d in dots if 'stroke-width="2.5"' in d]
        assert len(ringed) == 2 and all("#3 " not in d for d in ringed)
        assert "Pareto front (2 runs)" in page
    rows = re.findall(r"<tr>(.*?)</tr>", page.split("class='points'")[1], re.S)
    last = rows[-1]
    assert "<b>no: not informative</b>" in last and "none (not informative)" in last
    assert "seed=3 · W 0.50 · not informative" in page  # the chart label
    assert not math.isnan(document["points"][2]["fairness_gap"])
