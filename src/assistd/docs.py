"""``/docs``: the API's Swagger UI, served from this server, with no CDN.

FastAPI's own ``/docs`` page loads Swagger UI from a CDN, so it is blank offline. The same UI is
served here from the files the PyPI package ``fastapi-offline`` ships (Swagger UI 5, which reads
the OpenAPI 3.1 document FastAPI generates); nothing it loads comes from another origin, and its
spec validator (a call to validator.swagger.io) is off.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
PREFIX = "/docs/assets"


def mount_docs(app: FastAPI) -> None:
    """``GET /docs`` and its assets under ``/docs/assets`` (create the app with ``docs_url=None``)."""
    app.mount(PREFIX, StaticFiles(directory=ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - API reference",
            swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )
