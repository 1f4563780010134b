"""What the v1 routes share: building v2 bodies, re-rendering v2 responses, in-memory pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from sse_starlette import EventSourceResponse
from starlette.responses import Response

from assistd.errors import validation_error_to_api_error
from assistd.http import JSONResponse, json_response
from assistd.pagination import ListQuery

B = TypeVar("B", bound=BaseModel)


def v2_body(model: type[B], data: dict[str, Any]) -> B:
    """A v2 request body from translated v1 fields (JSON mode, as if it came over the wire)."""
    try:
        return model.model_validate_json(orjson.dumps(data))
    except ValidationError as exc:
        raise validation_error_to_api_error(exc.errors(), data) from None


def rerender(resp: Response, render: Callable[[Any], Any]) -> JSONResponse:
    """A v2 JSON response in the dialect's shape; status and ``openai-*`` headers kept."""
    headers = {k: v for k, v in resp.headers.items() if k.startswith("openai-")}
    return json_response(render(orjson.loads(bytes(resp.body))), resp.status_code, headers or None)


def restream(resp: Response, render: Callable[[str, Any], Any]) -> Response:
    """A v2 event stream with every event's data re-rendered (the frames are whole per chunk)."""
    assert isinstance(resp, EventSourceResponse)
    source = resp.body_iterator

    async def frames() -> AsyncIterator[bytes]:
        async for chunk in source:
            data = chunk if isinstance(chunk, bytes) else str(chunk).encode()
            yield b"".join(_frame(f, render) for f in data.split(b"\n\n") if f)

    resp.body_iterator = frames()
    return resp


def _frame(frame: bytes, render: Callable[[str, Any], Any]) -> bytes:
    name = payload = None
    for line in frame.split(b"\n"):
        if line.startswith(b"event: "):
            name = line[7:].decode()
        elif line.startswith(b"data: "):
            payload = line[6:]
    if name is None or payload is None or payload == b"[DONE]":
        return frame + b"\n\n"
    return b"event: %s\ndata: %s\n\n" % (name.encode(), orjson.dumps(render(name, orjson.loads(payload))))


def page(items: list[dict[str, Any]], query: ListQuery) -> dict[str, Any]:
    """A list envelope over a short list already in ascending order (cursors are object ids)."""
    ordered = items if query.order == "asc" else items[::-1]
    ids = [o["id"] for o in ordered]
    if query.after in ids:
        ordered = ordered[ids.index(query.after) + 1 :]
    ids = [o["id"] for o in ordered]
    before = query.before in ids
    if before:
        ordered = ordered[: ids.index(query.before)]
    data = ordered[-query.limit :] if before else ordered[: query.limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(ordered) > query.limit,
    }
