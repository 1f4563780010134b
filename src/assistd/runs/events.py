"""Run events: the exact sequences of CONTRACT §7, and the bus that carries them.

The executor publishes every event of a run (``thread.run.in_progress``, step and message
events, deltas, the terminal run event) to the bus; a streaming request subscribes *before* the
run can start (so it cannot miss an event), then relays what arrives as SSE. In one process the
bus is in memory. Events with no subscriber are dropped: nothing else reads them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import orjson

# A stream ends after one of these (then `done`); requires_action ends the stream but not the run.
STREAM_END: Final = frozenset(
    {
        "thread.run.completed",
        "thread.run.incomplete",
        "thread.run.failed",
        "thread.run.cancelled",
        "thread.run.expired",
        "thread.run.requires_action",
    }
)

Event = tuple[str, bytes]  # (event name, JSON data)


class Subscription:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.since = 0  # the last run_events row relayed (PostgreSQL)
        self.local = False  # fed in memory by this process's executor (PostgreSQL)

    def put(self, event: str, data: dict[str, Any]) -> None:
        self.queue.put_nowait((event, orjson.dumps(data)))


class RunEventBus:
    def __init__(self) -> None:
        self._subs: dict[str, list[Subscription]] = {}

    @contextmanager
    def subscribe(self, run_id: str) -> Iterator[Subscription]:
        sub = Subscription()
        self._subs.setdefault(run_id, []).append(sub)
        try:
            yield sub
        finally:
            subs = self._subs.get(run_id, [])
            if sub in subs:
                subs.remove(sub)
            if not subs:
                self._subs.pop(run_id, None)

    def publish(self, run_id: str, event: str, data: dict[str, Any], *, remote: bool = True) -> None:  # noqa: ARG002
        """Hand an event to the run's streams (``remote``: also to other processes', see pgbus;
        in one process there are no others)."""
        subs = self._subs.get(run_id)
        if not subs:
            return
        payload = orjson.dumps(data)
        for sub in subs:
            sub.queue.put_nowait((event, payload))

    def has_subscribers(self, run_id: str) -> bool:
        return bool(self._subs.get(run_id))

    def renew_sequence(self) -> None:
        """This process starts executing a run (see pgbus)."""

    async def attach(self, sub: Subscription, run_id: str) -> None:
        """Called once a subscription exists, before the run can move (see pgbus)."""

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass
