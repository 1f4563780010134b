"""Assistants v1 (``OpenAI-Beta: assistants=v1``), as OpenAI served it before v2.

Its own routes (``assistants``, ``threads``, ``runs``), mounted in a small app of their own:
``V1Dispatch`` hands it every /assistants and /threads request whose ``OpenAI-Beta`` header asks
for v1, after ``AccessMiddleware`` has authenticated it. Each route translates the v1 body into a
v2 body (``protocol``), calls the v2 service or endpoint, and renders the v2 objects in v1 shapes
(``render``; the ``file_ids`` mapping is in ``files``).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from assistd.auth import BETA_PATHS, beta_version
from assistd.errors import register_error_handlers


def build_app(state: State) -> FastAPI:
    """The v1 routes, sharing the main app's ``state`` (and so its AppState)."""
    from assistd.dialects.v1 import assistants, runs, threads

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state = state
    register_error_handlers(app)
    for r in (assistants.router, runs.router, threads.router):  # runs first: POST /threads/runs
        app.include_router(r, prefix="/v1")
    return app


class V1Dispatch:
    """Sends v1 requests to the v1 app; everything else goes on to the v2 routes."""

    def __init__(self, app: ASGIApp, v1_app: ASGIApp) -> None:
        self.app = app
        self.v1_app = v1_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(BETA_PATHS):
            header = next((v for k, v in scope["headers"] if k == b"openai-beta"), None)
            if beta_version(header.decode("latin-1") if header is not None else None) == "v1":
                await self.v1_app(scope, receive, send)
                return
        await self.app(scope, receive, send)
