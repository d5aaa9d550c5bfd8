"""`/docs` and `/redoc` on an air-gapped network: headless Chromium that can reach nothing but the
server still renders the API's operations, because the pages' scripts come from the server.

Every request that leaves loopback is aborted and recorded; the pages must not even try one.
The screenshots are test artifacts in test-artifacts/ (git-ignored; printed, so a person can look).
"""

from __future__ import annotations

import re

from live_server import LiveServer

from browser import ARTIFACTS, open_in_chromium


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
    with open_in_chromium(f"{server.url}/docs", width=1200, offline=True) as visit:
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
    with open_in_chromium(f"{server.url}/redoc", width=1200, offline=True) as visit:
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
