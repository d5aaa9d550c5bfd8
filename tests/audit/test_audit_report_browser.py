"""The audit of a real run, and its report opened in real headless Chromium.

The browser test needs the Debian `chromium` package and the `playwright` Python package (see
tests/browser.py); without them it is skipped locally and fails under CI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from browser import FIGURE_BOXES, chromium_path, open_in_chromium
from ethos import RunConfig
from ethos.audit.registry import CHECKS
from ethos.audit.runner import audit_run
from ethos.rundir import RunDir
from ethos.training import train

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunDir, dict[str, object]]:
    config = RunConfig.model_validate(
        {
            "data": {
                "source": "compas",
                "sample": 400,
                "min_group_size": 1,
                "include_sensitive_in_text": True,
            },
            "model": {"max_length": 40},
            "train": {"epochs": 1, "batch_size": 16, "max_steps": 6, "learning_rate": 1e-4},
            "output_dir": str(tmp_path_factory.mktemp("runs")),
        }
    )
    run = train(config, quiet=True)
    result = audit_run(run)
    return run, result.audit


def test_run_audit_writes_every_registered_section(
    audited: tuple[RunDir, dict[str, object]],
) -> None:
    run, _ = audited
    folder = run.path / "audit"
    assert sorted(p.name for p in folder.iterdir()) == ["audit.json", "report.html"]
    on_disk = json.loads((folder / "audit.json").read_text())
    # A check named parent.child (privacy.dp_audit) is nested in its parent's section.
    assert {name.split(".")[0] for name in CHECKS} | {"meta", "summary"} == set(on_disk)
    assert on_disk["privacy"]["dp_audit"] == {
        "applicable": False,
        "reason": "the run was trained without canaries (train.canaries), so there is nothing "
        "to audit",
    }
    assert on_disk["meta"]["run_id"] == run.manifest["run_id"]
    assert on_disk["meta"]["rows"] == len(run.predictions().query("split == 'test'"))
    assert set(on_disk["fairness"]) >= {"race", "sex", "age_cat"}
    assert set(on_disk["meta"]["seconds"]) == {"load", *CHECKS}


def test_report_renders_in_headless_chromium(audited: tuple[RunDir, dict[str, object]]) -> None:
    chromium_path()  # skip before anything is opened when the browser is missing
    run, _ = audited
    report = run.path / "audit" / "report.html"
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "audit-report.png"
    with open_in_chromium(report.as_uri()) as visit:
        figures = visit.page.eval_on_selector_all("figure.chart svg", FIGURE_BOXES)
        visit.page.screenshot(path=str(screenshot), full_page=True)
    assert visit.problems == []
    assert visit.requests == [report.as_uri()]  # self-contained: nothing else is fetched
    titles = [f["title"] for f in figures]
    assert any(t.startswith("rates by race") for t in titles)
    assert "reliability diagram" in titles
    for figure in figures:
        assert figure["w"] > 100 and figure["h"] > 50, figure
        assert figure["marks"] > 0, figure
    assert screenshot.stat().st_size > 20_000
