"""Helpers for run tests: SSE parsing, event-order assertions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from tests.spec import validate_event


async def stream_events(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], *, validate: bool = True, **kw: Any
) -> AsyncIterator[tuple[str, Any]]:
    """POST with stream:true; each event as it arrives, its data validated against the spec unless
    ``validate`` is false (the Assistants v1 dialect's shapes are not the spec's)."""
    async with client.stream("POST", path, json={**body, "stream": True}, **kw) as r:
        assert r.status_code == 200, await r.aread()
        assert r.headers["content-type"].startswith("text/event-stream")
        name = None
        async for line in r.aiter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                raw = line[5:].strip()
                data = raw if raw == "[DONE]" else orjson.loads(raw)
                assert name is not None
                if validate:
                    validate_event(name, data)
                yield name, data
                name = None


async def sse(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], *, validate: bool = True, **kw: Any
) -> list[tuple[str, Any]]:
    """POST with stream:true; every event, its data validated against the spec (see stream_events)."""
    return [event async for event in stream_events(client, path, body, validate=validate, **kw)]


def names(events: list[tuple[str, Any]]) -> list[str]:
    """Event names with runs of the same delta event collapsed to one ``name*``."""
    out: list[str] = []
    for name, _ in events:
        label = f"{name}*" if name.endswith(".delta") else name
        if label.endswith("*") and out and out[-1] == label:
            continue
        out.append(label)
    return out


TEXT_RUN = [
    "thread.run.step.created",
    "thread.run.step.in_progress",
    "thread.message.created",
    "thread.message.in_progress",
    "thread.message.delta*",
    "thread.message.completed",
    "thread.run.step.completed",
    "thread.run.completed",
    "done",
]
RUN_START = ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]


def text_of(events: list[tuple[str, Any]]) -> str:
    return "".join(
        part["text"]["value"]
        for name, data in events
        if name == "thread.message.delta"
        for part in data["delta"]["content"]
    )
