"""Run events: the exact sequences of CONTRACT §7, and the bus that carries them.

The executor publishes every event of a run (``thread.run.in_progress``, step and message
events, deltas, the terminal run event) to the bus; a streaming request subscribes *before* the
run can start (so it cannot miss an event), then relays what arrives as SSE. In one process the
bus is in memory. Events with no subscriber are dropped: nothing else reads them.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import orjson

from assistd.metrics import RELAY_LAG

_now = time.time
_lag = RELAY_LAG.observe

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


class EventQueue:
    """A subscription's events, in order: ``asyncio.Queue``'s ``put_nowait``, ``get_nowait`` and
    ``empty``, and :meth:`get` with a silence timeout that costs no timer per event.

    ``asyncio.wait_for(queue.get(), timeout)`` creates a task and a timer for every event it
    waits for; with 200 streams of 20 deltas a second that was ~7 % of the server's CPU. Here a
    wait is one future, and the silence timer is armed once and only moved when it fires early.

    Each event keeps when it was created (wall clock, ``at``: in the executing process, which may be
    another one); taking it out to write it records the relay lag (``assistd_stream_relay_lag_seconds``)."""

    __slots__ = ("_at", "_deadline", "_items", "_loop", "_timer", "_waiter")

    def __init__(self) -> None:
        self._items: collections.deque[Event] = collections.deque()
        self._at: collections.deque[float] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    def put_nowait(self, item: Event, at: float | None = None) -> None:
        self._items.append(item)
        self._at.append(_now() if at is None else at)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def get_nowait(self) -> Event:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._pop()

    def _pop(self) -> Event:
        _lag(_now() - self._at.popleft())
        return self._items.popleft()

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    async def get(self, silence: float) -> Event:
        """The next event; TimeoutError when none arrives within ``silence`` seconds."""
        if self._items:
            return self._pop()
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        self._deadline = loop.time() + silence
        if self._timer is not None and self._timer.when() > self._deadline:
            self._timer.cancel()  # a shorter wait than the armed one
            self._timer = None
        if self._timer is None:
            self._timer = loop.call_at(self._deadline, self._on_timer)
        waiter = self._waiter = loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None
        if not self._items:
            raise TimeoutError
        return self._pop()

    def _on_timer(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # nobody waits: the next get arms it again
        assert self._loop is not None
        if self._loop.time() >= self._deadline:
            waiter.set_result(None)  # woken with nothing: get raises TimeoutError
        else:  # the wait started after this timer was armed
            self._timer = self._loop.call_at(self._deadline, self._on_timer)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Subscription:
    def __init__(self) -> None:
        self.queue = EventQueue()
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
            sub.queue.close()
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

    def announce(self, run_id: str, event: str, data: dict[str, Any]) -> None:
        """An event from a request rather than the run's executor (see pgbus); here the same."""
        self.publish(run_id, event, data)

    def has_subscribers(self, run_id: str) -> bool:
        return bool(self._subs.get(run_id))

    def renew_sequence(self) -> None:
        """This process starts executing a run (see pgbus)."""

    def release_local(self, run_id: str) -> None:
        """This process no longer executes the run (see pgbus)."""

    async def attach(self, sub: Subscription, run_id: str) -> None:
        """Called once a subscription exists, before the run can move (see pgbus)."""

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass
