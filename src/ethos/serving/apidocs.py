"""The API's documentation pages (Swagger UI at ``/docs``, ReDoc at ``/redoc``) with no CDN.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so on an air-gapped hospital network
``/docs`` is a blank page. The scripts and styles come instead from the ``fastapi-offline``
package (MIT; it ships Swagger UI 5 and ReDoc 2 as static files), mounted under
:data:`ASSETS_URL`; only its files are used, not its ``FastAPIOffline`` factory, so the app keeps
its own constructor. Without the package (an install without the ``serving`` extra) the pages
say what to install instead of loading nothing.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

log = logging.getLogger("ethos.serving")

ASSETS_URL = "/docs-assets"
ASSETS_PACKAGE = "fastapi_offline"
SWAGGER_JS, SWAGGER_CSS, REDOC_JS, FAVICON = (
    "swagger-ui-bundle.js",
    "swagger-ui.css",
    "redoc.standalone.js",
    "favicon.png",
)
SWAGGER_PARAMETERS = {"validatorUrl": None}
"""Swagger UI would otherwise offer to send the document to an online validator."""
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; frame-ancestors 'self'"
)
"""The pages may load from this server only. ReDoc's sidebar shows a logo from its vendor's CDN
(it hides the image when that fails): the browser refuses it here instead of trying the
network, and the inline start-up script FastAPI's Swagger page has is allowed."""


def assets_dir() -> Path | None:
    """The folder with the Swagger UI and ReDoc files, or None when the package is missing.

    Found without importing the package (it has no type information, and nothing of its code
    is needed); a folder lacking any of the four files counts as missing.
    """
    spec = importlib.util.find_spec(ASSETS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    wanted = (SWAGGER_JS, SWAGGER_CSS, REDOC_JS, FAVICON)
    return folder if all((folder / name).is_file() for name in wanted) else None


def _missing_page(title: str) -> HTMLResponse:
    return HTMLResponse(
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        "</head><body><h1>API documentation unavailable</h1><p>The page's scripts come from "
        "the Python package <code>fastapi-offline</code>, which is not installed: "
        "<code>pip install 'ethos[serving]'</code>. The OpenAPI document itself is at "
        "<a href='openapi.json'>/openapi.json</a>.</p></body></html>",
        status_code=503,
    )


def _local_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return page


def add_offline_docs(app: FastAPI, *, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Add ``/docs`` and ``/redoc`` served from local files to an app built with both set None.

    URLs are prefixed with the request's ``root_path``, so the pages work behind a reverse proxy
    that mounts the service under a path.
    """
    folder = assets_dir()
    if folder is None:
        log.warning("API docs pages disabled: the package fastapi-offline is not installed")
    else:
        app.mount(ASSETS_URL, StaticFiles(directory=folder), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url or f"{docs_url}/oauth2-redirect"

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        if folder is None:
            return _missing_page(f"{app.title} - Swagger UI")
        root = request.scope.get("root_path", "")
        return _local_only(
            get_swagger_ui_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} - Swagger UI",
                oauth2_redirect_url=f"{root}{redirect_url}",
                swagger_js_url=f"{root}{ASSETS_URL}/{SWAGGER_JS}",
                swagger_css_url=f"{root}{ASSETS_URL}/{SWAGGER_CSS}",
                swagger_favicon_url=f"{root}{ASSETS_URL}/{FAVICON}",
                swagger_ui_parameters=SWAGGER_PARAMETERS,
            )
        )

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        if folder is None:
            return _missing_page(f"{app.title} - ReDoc")
        root = request.scope.get("root_path", "")
        return _local_only(
            get_redoc_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_URL}/{REDOC_JS}",
                redoc_favicon_url=f"{root}{ASSETS_URL}/{FAVICON}",
                with_google_fonts=False,
            )
        )
