"""``create_app(settings)``: the ASGI application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.responses import Response

from assistd import __version__
from assistd.assistants.router import router as assistants_router
from assistd.catalog.router import router as catalog_router
from assistd.catalog.service import log_upstreams
from assistd.config import Settings
from assistd.dialects.azure import AzureMiddleware
from assistd.dialects.v1 import V1Dispatch
from assistd.dialects.v1 import build_app as build_v1_app
from assistd.docs import mount_docs
from assistd.errors import register_error_handlers
from assistd.files.router import router as files_router
from assistd.gctune import tune_after_startup
from assistd.http import json_response
from assistd.messages.router import router as messages_router
from assistd.metrics import endpoint as metrics_endpoint
from assistd.metrics.http import RouteScope
from assistd.middleware import AccessMiddleware, RequestIdMiddleware
from assistd.playground.router import mount_playground
from assistd.projects.router import router as projects_router
from assistd.runs.router import router as runs_router
from assistd.state import AppState
from assistd.threads.router import router as threads_router
from assistd.uploads.router import router as uploads_router
from assistd.vector_stores.router import router as vector_stores_router

log = logging.getLogger("assistd")


def create_app(settings: Settings, state: AppState | None = None) -> FastAPI:
    """Build the app. With ``state`` given (tests, benchmarks) the caller owns its lifecycle."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if state is not None:
            app.state.assistd = state
            yield
            return
        own = await AppState.start(settings)
        app.state.assistd = own
        if not await own.auth._any_keys():
            log.warning(
                "no API keys exist: running in local single-user mode (any bearer token is accepted). "
                "Create one with `assistd keys create --project NAME` to require keys."
            )
            if settings.host not in ("127.0.0.1", "localhost", "::1"):
                log.warning(
                    "listening on %s without API keys: anyone who can reach port %d can use this server and "
                    "its data. Set ASSISTD_API_KEY, or create a key, unless only this host can reach the port.",
                    settings.host,
                    settings.port,
                )
        tune_after_startup()
        own.spawn(log_upstreams(own.llm))
        try:
            yield
        finally:
            await own.stop()

    app = FastAPI(
        title="assistd",
        version=__version__,
        summary="OpenAI Assistants API v2, self-hosted",
        lifespan=lifespan,
        docs_url=None,  # served by mount_docs, without a CDN
        redoc_url=None,
    )
    if state is not None:
        app.state.assistd = state
    register_error_handlers(app)
    mount_docs(app)
    # innermost first: v1 requests leave for the v1 routes once authenticated; the Azure wire is
    # rewritten onto /v1 before authentication.
    app.add_middleware(V1Dispatch, v1_app=build_v1_app(app.state))
    app.add_middleware(AccessMiddleware)
    app.add_middleware(RouteScope)  # inside the Azure rewrite (a copy of the scope): see metrics/http.py
    app.add_middleware(AzureMiddleware)
    app.add_middleware(RequestIdMiddleware)  # added last: the outermost

    @app.get("/health", include_in_schema=False)
    @app.get("/v1/health", include_in_schema=False)
    async def health() -> object:
        return json_response({"status": "ok", "version": __version__})

    metrics_allow = metrics_endpoint.parse_allow(settings.metrics_allow)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        """Prometheus metrics (see assistd.metrics.endpoint for who may read them)."""
        status, ctype, body = await metrics_endpoint.answer(
            request.app.state.assistd,
            metrics_allow,
            request.client.host if request.client else None,
            request.headers.get("authorization"),
            request.headers.get("api-key"),
        )
        return Response(body, status_code=status, media_type=ctype)

    # runs before threads: POST /threads/runs must not match POST /threads/{thread_id}
    for r in (
        assistants_router,
        runs_router,
        threads_router,
        messages_router,
        files_router,
        uploads_router,
        vector_stores_router,
        catalog_router,
        projects_router,
    ):
        app.include_router(r, prefix="/v1")
    mount_playground(app)  # the web UI at /playground, and / leading to it
    return app
