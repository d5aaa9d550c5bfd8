"""`/docs` and `/redoc` on an air-gapped network: headless Chromium that can reach nothing but the
server still renders the API's operations, because the pages' scripts come from the server.

Every request that leaves loopback is aborted and recorded; the pages must not even try one.
The screenshots are test artifacts in test-artifacts/ (git-ignored; printed, so a person can look).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from live_server import LiveServer

from browser import chromium_path

LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass
class OfflineVisit:
    page: Any
    blocked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@contextmanager
def offline_chromium(url: str) -> Iterator[OfflineVisit]:
    """Open ``url`` in headless Chromium whose only reachable host is loopback.

    The route is set on the browser context before the page exists, so the first request is
    already filtered (tests/browser.py's ``open_in_chromium`` navigates before it yields).
    """
    from playwright.sync_api import Route, sync_playwright

    executable = chromium_path()
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1200, "height": 900})
            visit = OfflineVisit(page=None)

            def only_loopback(route: Route) -> None:
                request_url = route.request.url
                host = urlsplit(request_url).hostname or ""
                if request_url.startswith(("data:", "blob:")) or host in LOOPBACK:
                    route.continue_()
                else:
                    visit.blocked.append(request_url)
                    route.abort("internetdisconnected")

            context.route("**/*", only_loopback)
            page = context.new_page()
            page.on(
                "console", lambda m: visit.problems.append(m.text) if m.type == "error" else None
            )
            page.on("pageerror", lambda e: visit.problems.append(str(e)))
            visit.page = page
            page.goto(url)
            yield visit
        finally:
            browser.close()


def test_the_docs_pages_name_only_assets_the_server_has(server: LiveServer) -> None:
    with server.client() as client:
        for path in ("/docs", "/redoc"):
            page = client.get(path)
            assert page.status_code == 200, page.text
            assert "default-src 'self'" in page.headers["content-security-policy"]
            assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
            assert assets, page.text
            assert not [a for a in assets if a.startswith(("http:", "https:", "//"))], assets
            for asset in assets:
                served = client.get(asset)
                assert served.status_code == 200, asset
                assert len(served.content) > 1000, asset
        assert "openapi" in client.get("/openapi.json").json()


def test_swagger_ui_renders_the_operations_with_no_network(server: LiveServer) -> None:
    with offline_chromium(f"{server.url}/docs") as visit:
        page = visit.page
        predict = page.locator('.opblock-summary-path[data-path="/v1/predict"]')
        predict.wait_for(state="visible", timeout=30_000)
        paths = page.eval_on_selector_all(
            ".opblock-summary-path", "els => els.map(e => e.getAttribute('data-path'))"
        )
        title = page.locator(".info .title").first.inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        screenshot = ARTIFACTS / "serving-docs-offline.png"
        page.screenshot(path=str(screenshot), full_page=True)
    print(f"Swagger UI screenshot: {screenshot}")
    assert visit.blocked == []  # it did not even try to reach a CDN
    assert visit.problems == []
    assert {"/v1/predict", "/v1/explain", "/v1/feedback", "/v1/model"} <= set(paths)
    assert "ethos model service" in title
    assert screenshot.stat().st_size > 20_000


def test_redoc_renders_the_operations_with_no_network(server: LiveServer) -> None:
    with offline_chromium(f"{server.url}/redoc") as visit:
        page = visit.page
        page.get_by_text("/v1/predict", exact=True).first.wait_for(state="attached", timeout=30_000)
        text = page.inner_text("body")
        ARTIFACTS.mkdir(exist_ok=True)
        screenshot = ARTIFACTS / "serving-redoc-offline.png"
        page.screenshot(path=str(screenshot))
    print(f"ReDoc screenshot: {screenshot}")
    assert visit.blocked == []
    # ReDoc's sidebar logo comes from its vendor's CDN: the page's policy refuses it (and ReDoc
    # then hides it); nothing else may be refused or fail
    assert all("cdn.redoc.ly" in p for p in visit.problems), visit.problems
    assert "Decide one or more inputs" in text  # predict's description, rendered by ReDoc
    assert screenshot.stat().st_size > 20_000
