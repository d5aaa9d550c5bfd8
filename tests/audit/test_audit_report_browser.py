"""The audit of a real run, and its report opened in real headless Chromium.

The browser test needs the Debian `chromium` package (the Makefile's test set-up installs it) and
the `playwright` Python package, which drives that system browser (nothing is downloaded). Without
them the test is skipped locally and fails under CI, where they must be present.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from ethos import RunConfig
from ethos.audit.protocol import CHECKS
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
    assert set(CHECKS) | {"meta", "summary"} == set(on_disk)
    assert on_disk["meta"]["run_id"] == run.manifest["run_id"]
    assert on_disk["meta"]["rows"] == len(run.predictions().query("split == 'test'"))
    assert set(on_disk["fairness"]) >= {"race", "sex", "age_cat"}
    assert set(on_disk["meta"]["seconds"]) == {"load", *CHECKS}


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_in_headless_chromium(audited: tuple[RunDir, dict[str, object]]) -> None:
    browser_path = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None  # type: ignore[assignment]
    if browser_path is None or sync_playwright is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have Debian chromium and the playwright package")
        pytest.skip("needs Debian chromium and playwright (make system-packages)")
    run, _ = audited
    report = run.path / "audit" / "report.html"
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "audit-report.png"
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(report.as_uri())
        figures = page.eval_on_selector_all(
            "figure.chart svg",
            """els => els.map(e => {
                const box = e.getBoundingClientRect();
                return {w: box.width, h: box.height,
                        marks: e.querySelectorAll('rect, path, circle').length,
                        title: e.querySelector('title').textContent};
            })""",
        )
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    assert problems == []
    assert requests == [report.as_uri()]  # self-contained: nothing else is fetched
    titles = [f["title"] for f in figures]
    assert any(t.startswith("rates by race") for t in titles)
    assert "reliability diagram" in titles
    for figure in figures:
        assert figure["w"] > 100 and figure["h"] > 50, figure
        assert figure["marks"] > 0, figure
    assert screenshot.stat().st_size > 20_000
