"""The Azure OpenAI wire: ``{endpoint}/openai/<path>?api-version=<version>`` and ``api-key``.

Every ``/v1/<path>`` route is also served as ``/openai/<path>``. The ``api-version`` query
parameter is required there, as on Azure, and chooses the Assistants dialect (Azure spoke it
whatever ``OpenAI-Beta`` said): ``2024-02-15-preview`` to ``2024-04-01-preview`` speak v1 bodies,
``2024-05-01-preview`` and every later version speak v2. The request goes on as ``/v1/<path>``
with that ``OpenAI-Beta`` header, so nothing past this middleware knows it came from Azure.

The ``api-key`` header is accepted as the API key on every path (Azure's SDKs send it instead
of ``Authorization``). The ``model`` is Azure's deployment name: routes apply to it as to any model.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from assistd.errors import error_body
from assistd.middleware import send_json

PREFIX = "/openai"
V1_VERSIONS = ("2024-02-15-preview", "2024-03-01-preview", "2024-04-01-preview")
FIRST_V2 = "2024-05-01"
_VERSION = re.compile(r"^(\d{4}-\d{2}-\d{2})(-preview)?$")
ACCEPTED = (
    f"{', '.join(V1_VERSIONS)} (Assistants v1), or {FIRST_V2}-preview or any later "
    "YYYY-MM-DD or YYYY-MM-DD-preview version (Assistants v2)"
)


def dialect_of(version: str) -> str | None:
    """``v1`` or ``v2`` for a supported ``api-version``; None for an unknown one."""
    if version in V1_VERSIONS:
        return "v1"
    m = _VERSION.match(version)
    return "v2" if m is not None and m.group(1) >= FIRST_V2 else None


class AzureMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope["headers"])
        api_key = next((v for k, v in headers if k == b"api-key"), None)
        if api_key is not None and not any(k == b"authorization" for k, _ in headers):
            headers.append((b"authorization", b"Bearer " + api_key.strip()))
        path: str = scope["path"]
        if path == PREFIX or path.startswith(PREFIX + "/"):
            version = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))).get("api-version")
            dialect = dialect_of(version) if version else None
            if dialect is None:
                await send_json(send, 400, _version_error(version))
                return
            path = "/v1" + path[len(PREFIX) :]
            headers = [(k, v) for k, v in headers if k != b"openai-beta"]
            headers.append((b"openai-beta", f"assistants={dialect}".encode()))
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app({**scope, "headers": headers}, receive, send)


def _version_error(version: str | None) -> dict[str, object]:
    if not version:
        message = f"Missing required query parameter 'api-version'. Supported versions: {ACCEPTED}."
        return error_body(message, "invalid_request_error", "api-version", "missing_required_parameter")
    message = f"Unsupported api-version '{version}'. Supported versions: {ACCEPTED}."
    return error_body(message, "invalid_request_error", "api-version", "invalid_value")
