"""Pure-ASGI middleware.

- ``RequestIdMiddleware`` (outermost): ``x-request-id`` on every response (and in the log lines
  of everything the request does), URL and JSON-size checks, a last-resort 500 that never leaks
  internals, and the request's metrics (counted and timed when its response starts).
- ``AccessMiddleware``: authenticates every ``/v1`` request, puts its project in the scope's
  state, and enforces the ``OpenAI-Beta`` header on /assistants and /threads. Done here rather
  than as per-route dependencies: it runs once per request whatever the route (an unknown route
  is a 401 without a key, as on OpenAI), and costs a fraction of FastAPI's dependency
  resolution on the hot path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import orjson
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistd.auth import check_beta
from assistd.errors import APIError, error_body
from assistd.ids import random_token
from assistd.logs import request_id_var
from assistd.metrics.http import observe_request

log = logging.getLogger("assistd.http")


async def send_json(send: Send, status: int, body: dict[str, object]) -> None:
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp, max_json_bytes: int = 32 * 1024 * 1024) -> None:
        self.app = app
        self.max_json_bytes = max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        root_path = scope.get("root_path", "")
        rid = "req_" + random_token(32)
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id_var.set(rid)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message).append("x-request-id", rid)
                observe_request(scope, root_path, message["status"], t0)
            await send(message)

        try:
            await self._call(scope, receive, send_with_id, rid, lambda: started)
        finally:
            request_id_var.reset(token)

    async def _call(
        self, scope: Scope, receive: Receive, send_with_id: Send, rid: str, started: Callable[[], bool]
    ) -> None:
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b"").lower():
            await send_json(
                send_with_id,
                400,
                error_body(
                    "Invalid URL: NUL characters are not allowed in paths or query parameters.",
                    "invalid_request_error",
                ),
            )
            return
        if self._json_too_large(scope):
            await send_json(
                send_with_id,
                413,
                error_body(
                    f"Request body too large: the limit for JSON bodies is {self.max_json_bytes} bytes.",
                    "invalid_request_error",
                ),
            )
            return
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error (request %s)", rid)
            if started():
                raise
            await send_json(
                send_with_id,
                500,
                error_body(
                    "The server had an error while processing your request. Sorry about that! "
                    f"You can retry your request, or report the request ID {rid} if the error persists.",
                    "server_error",
                ),
            )

    def _json_too_large(self, scope: Scope) -> bool:
        ctype = b""
        length = 0
        for k, v in scope.get("headers", ()):
            if k == b"content-type":
                ctype = v
            elif k == b"content-length":
                try:
                    length = int(v)
                except ValueError:
                    return False
        return length > self.max_json_bytes and not ctype.startswith(b"multipart/")


class AccessMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/v1/") or path == "/v1/health":
            await self.app(scope, receive, send)
            return
        authorization = beta = None
        for k, v in scope["headers"]:
            if k == b"authorization":
                authorization = v.decode("latin-1")
            elif k == b"openai-beta":
                beta = v.decode("latin-1")
        state = scope["app"].state.assistd
        try:
            project = await state.auth.project_for(authorization)
            check_beta(path, beta)
        except APIError as exc:
            await send_json(send, exc.status_code, exc.body())
            return
        scope.setdefault("state", {})["project_id"] = project
        await self.app(scope, receive, send)
