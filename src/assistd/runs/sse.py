"""Relaying a run's events as Server-Sent Events (sse-starlette).

Framing per CONTRACT §7: ``event: <name>`` / ``data: <json>``, a terminal run event, then
``event: done`` / ``data: [DONE]``. Comment lines keep the connection alive while the model is
silent. The response is independent of the run: a client that disconnects stops only the relay.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from typing import Any

from sse_starlette import EventSourceResponse

from assistd.runs.events import STREAM_END, Subscription


def event_stream(
    subscription: AbstractContextManager[Subscription],
    sub: Subscription,
    *,
    keepalive_seconds: float,
    on_close: Callable[[], None] | None = None,
) -> EventSourceResponse:
    async def relay() -> AsyncIterator[dict[str, Any]]:
        try:
            while True:
                name, data = await sub.queue.get()
                yield {"event": name, "data": data.decode()}
                if name in STREAM_END:
                    break
            yield {"event": "done", "data": "[DONE]"}
        finally:
            subscription.__exit__(None, None, None)
            if on_close is not None:
                on_close()

    return EventSourceResponse(
        relay(),
        ping=keepalive_seconds,
        sep="\n",
        headers={"Cache-Control": "no-cache"},
    )
