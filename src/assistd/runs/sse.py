"""Relaying a run's events as Server-Sent Events (sse-starlette).

Framing per CONTRACT §7: ``event: <name>`` / ``data: <json>``, a terminal run event, then
``event: done`` / ``data: [DONE]``. Comment lines keep the connection alive while the model is
silent. The response is independent of the run: a client that disconnects stops only the relay.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Final

import orjson
from sse_starlette import EventSourceResponse

from assistd import metrics
from assistd.runs.events import STREAM_END, Subscription

if TYPE_CHECKING:
    from starlette.types import Message, Send

# (event name, run object) if the run rests (terminal or requires_action), ("error", an error
# envelope) if it is gone, else None
RestingCheck = Callable[[], Awaitable[tuple[str, dict[str, Any]] | None]]
# Stream-level faults (CONTRACT §7 "The error event"): sent wrapped, the form every SDK raises.
ERROR: Final = "error"
_END: Final = STREAM_END | {ERROR}


def run_gone(run_id: str) -> dict[str, Any]:
    """The ``error`` event's data for a run deleted with its thread while it was streamed."""
    message = f"Run {run_id} no longer exists: its thread was deleted."
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}


async def relay_events(
    sub: Subscription, *, resting: RestingCheck | None, watch_seconds: float
) -> AsyncIterator[list[tuple[str, bytes]]]:
    """The subscription's events up to a terminal run event, then ``done``, in batches: every event
    already waiting is sent with the first (one write instead of many when a stream falls behind;
    nothing waits for a batch to fill)."""
    while True:
        try:
            first = await sub.queue.get(watch_seconds)
        except TimeoutError:
            # Watchdog: after a silence, ask the database whether the run already rests.
            # An event lost between processes must not leave the client waiting forever.
            ended = await resting() if resting is not None else None
            if ended is None:
                continue
            # what the check queued first (the run's messages as they ended), then its end
            batch = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
            yield [*batch, (ended[0], orjson.dumps(ended[1])), DONE]
            return
        batch = [first]
        while first[0] not in _END and not sub.queue.empty():
            first = sub.queue.get_nowait()
            batch.append(first)
        if first[0] in _END:
            batch.append(DONE)
            yield batch
            return
        yield batch


DONE: Final = ("done", b"[DONE]")


def encode(batch: list[tuple[str, bytes]]) -> bytes:
    """SSE frames: ``event: <name>`` / ``data: <json>`` (the JSON is one line: orjson never breaks it)."""
    return b"".join(b"event: %s\ndata: %s\n\n" % (name.encode(), data) for name, data in batch)


class _EventSourceResponse(EventSourceResponse):
    """sse-starlette's response, writing without a cancel scope when no send timeout is set (ours
    never is): sse-starlette opens one per write even then, and with 200 streams those scopes
    (anyio finding its backend, asyncio.current_task) were ~5% of the server's CPU."""

    async def _send_with_timeout(self, send: Send, message: Message) -> None:
        if self.send_timeout is None:
            await send(message)
        else:
            await super()._send_with_timeout(send, message)


def event_stream(
    subscription: AbstractContextManager[Subscription],
    sub: Subscription,
    *,
    keepalive_seconds: float,
    resting: RestingCheck | None = None,
    watch_seconds: float = 5.0,
    on_close: Callable[[], None] | None = None,
) -> EventSourceResponse:
    async def relay() -> AsyncIterator[bytes]:
        metrics.stream_opened()
        try:
            async for batch in relay_events(sub, resting=resting, watch_seconds=watch_seconds):
                yield encode(batch)
        finally:
            metrics.stream_closed()
            subscription.__exit__(None, None, None)
            if on_close is not None:
                on_close()

    return _EventSourceResponse(
        relay(),
        ping=keepalive_seconds,
        sep="\n",
        headers={"Cache-Control": "no-cache"},
    )
