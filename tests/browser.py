"""Open a self-contained HTML page in the system's headless Chromium, for the page tests.

The browser tests need the Debian `chromium` package (the Makefile's test set-up installs it) and
the `playwright` Python package, which drives that system browser (nothing is downloaded). Without
them a test is skipped locally and fails under CI, where they must be present.

Imported as ``from browser import open_in_chromium`` (pytest puts ``tests/`` on the path, as the
folder of the top-level conftest.py).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

FIGURE_BOXES = """els => els.map(e => {
    const box = e.getBoundingClientRect();
    return {w: box.width, h: box.height,
            marks: e.querySelectorAll('rect, path, circle').length,
            dots: e.querySelectorAll('circle > title').length,
            bars: e.querySelectorAll('rect').length,
            title: e.querySelector('title').textContent};
})"""
"""For ``page.eval_on_selector_all("figure.chart svg", FIGURE_BOXES)``: each chart's drawn size,
its marks (all shapes; circles with a tooltip; rectangles) and its title."""


@dataclass
class Visit:
    """An open page, and what happened while it loaded: console errors and every request."""

    page: Any
    problems: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


def chromium_path() -> str:
    """The system Chromium, or skip (fail under CI) when it or playwright is missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = None
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have Debian chromium and the playwright package")
        pytest.skip("needs Debian chromium and playwright (make system-packages)")
    return path


@contextmanager
def open_in_chromium(
    url: str,
    *,
    width: int = 1100,
    height: int = 900,
    http_credentials: dict[str, str] | None = None,
) -> Iterator[Visit]:
    """Load ``url`` in headless Chromium; the page stays open inside the ``with`` block.

    ``http_credentials`` (username, password) answer an HTTP Basic challenge, as a person would
    in the browser's login prompt.
    """
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(
                viewport={"width": width, "height": height},
                http_credentials=http_credentials,  # type: ignore[arg-type]
            )
            visit = Visit(page)
            page.on(
                "console", lambda m: visit.problems.append(m.text) if m.type == "error" else None
            )
            page.on("pageerror", lambda e: visit.problems.append(str(e)))
            page.on("request", lambda r: visit.requests.append(r.url))
            page.goto(url)
            yield visit
        finally:
            browser.close()
