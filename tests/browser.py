"""Open a self-contained HTML page in the system's headless Chromium, for the page tests.

The browser tests need the Debian `chromium` package (the Makefile's test set-up installs it) and
the `playwright` Python package, which drives that system browser (nothing is downloaded). Without
them a test is skipped locally and fails under CI, where they must be present.

Imported as ``from browser import open_in_chromium`` (pytest puts ``tests/`` on the path, as the
folder of the top-level conftest.py). ``open_in_chromium(url, offline=True)`` is the air-gapped
browser: only loopback answers, and every other request is aborted and recorded.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
"""Where browser tests leave screenshots for a person to look at (git-ignored)."""
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}

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
    """An open page, and what happened while it loaded: console errors, every request, and (when
    offline) the requests that were aborted because they left loopback."""

    page: Any
    problems: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)


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
    offline: bool = False,
) -> Iterator[Visit]:
    """Load ``url`` in headless Chromium; the page stays open inside the ``with`` block.

    ``http_credentials`` (username, password) answer an HTTP Basic challenge, as a person would
    in the browser's login prompt. ``offline`` lets only loopback, local files, ``data:`` and
    ``blob:`` through: the filter is set on the browser context before the page exists, so even
    the first request passes it, and what it aborts is in ``visit.blocked``.
    """
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            context = browser.new_context(
                viewport={"width": width, "height": height},
                http_credentials=http_credentials,  # type: ignore[arg-type]
            )
            visit = Visit(page=None)
            if offline:
                context.route("**/*", lambda route: _only_loopback(route, visit.blocked))
            page = visit.page = context.new_page()
            page.on(
                "console", lambda m: visit.problems.append(m.text) if m.type == "error" else None
            )
            page.on("pageerror", lambda e: visit.problems.append(str(e)))
            page.on("request", lambda r: visit.requests.append(r.url))
            page.goto(url)
            yield visit
        finally:
            browser.close()


def _only_loopback(route: Any, blocked: list[str]) -> None:
    """Let a request to loopback, a local file or a data:/blob: URL through; abort and record
    any other (it would have left the machine)."""
    url = route.request.url
    if url.startswith(("data:", "blob:", "file:")) or (urlsplit(url).hostname or "") in LOOPBACK:
        route.continue_()
    else:
        blocked.append(url)
        route.abort("internetdisconnected")
