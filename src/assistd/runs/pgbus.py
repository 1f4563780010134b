"""Runs across processes on PostgreSQL: LISTEN/NOTIFY wake-ups and cancels, and a run event log.

With PostgreSQL, API replicas and workers are separate processes: the one relaying a run's
stream is not necessarily the one executing it. So:

- the executor's events are appended to ``run_events`` by one writer task per process (batched:
  every event waiting is inserted in one transaction) and announced with ``NOTIFY
  assistd_events, '<run_id>'`` in that same transaction, so a notification never arrives before
  its rows are visible. Payloads are run ids only (NOTIFY's limit is 8000 bytes).
- a process relaying streams LISTENs on one dedicated connection; a notification for a run it
  relays makes it read that run's rows after the last it delivered, in order. When the run
  executes in the same process, its streams are fed from memory instead (no database round trip
  per event: with 200 streams that round trip cost ~1 s of lag at p99).
- ``assistd_wake`` (a run was queued) and ``assistd_cancel`` (``<run_id>``) reach every
  executor at once instead of on its next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.engine import make_url

from assistd.runs.events import RunEventBus, Subscription

log = logging.getLogger("assistd.pgbus")

WAKE = "assistd_wake"
CANCEL = "assistd_cancel"
EVENTS = "assistd_events"
INGEST = "assistd_ingest"  # vector-store files were queued (see assistd.ingest)
KEEP_EVENTS_SECONDS = 600.0


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresEventBus(RunEventBus):
    def __init__(self, url: str) -> None:
        super().__init__()
        self._dsn = asyncpg_dsn(url)
        self._pool: Any = None
        self._listener: Any = None
        self._pending: list[tuple[str, str, bytes]] = []
        self._has_pending = asyncio.Event()
        self._dirty: set[str] = set()
        self._has_dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.on_wake: Callable[[], None] | None = None
        self.on_ingest: Callable[[], None] | None = None
        self.on_cancel: Callable[[str], Awaitable[None]] | None = None
        self._spawned: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        import asyncpg

        self._pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=4)
        self._listener = await asyncpg.connect(self._dsn)
        await self._listener.add_listener(EVENTS, self._on_events)
        await self._listener.add_listener(WAKE, self._on_wake)
        await self._listener.add_listener(CANCEL, self._on_cancel)
        await self._listener.add_listener(INGEST, self._on_ingest)
        self._tasks = [
            asyncio.create_task(self._writer(), name="assistd-event-writer"),
            asyncio.create_task(self._deliverer(), name="assistd-event-deliverer"),
        ]

    async def close(self) -> None:
        # Flush what the executor published before stopping.
        for _ in range(100):
            if not self._pending:
                break
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._listener is not None:
            await self._listener.close()
        if self._pool is not None:
            await self._pool.close()

    # --- publishing (the executor) --------------------------------------------------------------

    def publish(self, run_id: str, event: str, data: dict[str, Any]) -> None:
        import orjson

        payload = orjson.dumps(data)
        # Streams relayed by this process get the event now, from memory; the log is for the others.
        for sub in self._subs.get(run_id, ()):
            sub.local = True
            sub.queue.put_nowait((event, payload))
        self._pending.append((run_id, event, payload))
        self._has_pending.set()

    async def _writer(self) -> None:
        while True:
            await self._has_pending.wait()
            self._has_pending.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            now = time.time()
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    await conn.executemany(
                        "INSERT INTO run_events (run_id, event, data, created_at) VALUES ($1, $2, $3, $4)",
                        [(rid, ev, data.decode(), now) for rid, ev, data in batch],
                    )
                    # One NOTIFY per batch: its payload lists the run ids (kept under NOTIFY's 8000 bytes).
                    ids = list(dict.fromkeys(rid for rid, _, _ in batch))
                    for i in range(0, len(ids), 200):
                        await conn.execute("SELECT pg_notify($1, $2)", EVENTS, ",".join(ids[i : i + 200]))
            except Exception:
                log.exception("could not write %d run events", len(batch))

    # --- relaying (streams) ---------------------------------------------------------------------

    async def attach(self, sub: Subscription, run_id: str) -> None:
        """Relay only events written after now (a resumed run has older ones)."""
        async with self._pool.acquire() as conn:
            sub.since = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM run_events WHERE run_id = $1", run_id)

    def _on_events(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        for run_id in payload.split(","):
            if self.has_subscribers(run_id):
                self._dirty.add(run_id)
                self._has_dirty.set()

    async def _deliverer(self) -> None:
        while True:
            await self._has_dirty.wait()
            self._has_dirty.clear()
            dirty, self._dirty = self._dirty, set()
            try:
                await self._deliver(dirty)
            except Exception:
                log.exception("could not relay events of %d runs", len(dirty))

    async def _deliver(self, run_ids: set[str]) -> None:
        """One query for every notified run, then each row to the streams that have not had it."""
        subs = {rid: [s for s in self._subs.get(rid, []) if not s.local] for rid in run_ids}
        subs = {rid: ss for rid, ss in subs.items() if ss}
        if not subs:
            return
        since = min(s.since for ss in subs.values() for s in ss)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT seq, run_id, event, data FROM run_events WHERE run_id = ANY($1::text[]) AND seq > $2 ORDER BY seq",
                list(subs),
                since,
            )
        for seq, run_id, event, data in rows:
            payload = data.encode()
            for sub in subs[run_id]:
                if seq > sub.since:
                    sub.queue.put_nowait((event, payload))
                    sub.since = seq

    # --- signals --------------------------------------------------------------------------------

    async def notify(self, channel: str, payload: str = "") -> None:
        async with self._pool.acquire() as conn:
            await conn.execute("SELECT pg_notify($1, $2)", channel, payload)

    def _on_wake(self, *_args: Any) -> None:
        if self.on_wake is not None:
            self.on_wake()

    def _on_ingest(self, *_args: Any) -> None:
        if self.on_ingest is not None:
            self.on_ingest()

    def _on_cancel(self, _conn: Any, _pid: int, _channel: str, run_id: str) -> None:
        if self.on_cancel is not None:
            task = asyncio.create_task(self.on_cancel(run_id))
            self._spawned.add(task)
            task.add_done_callback(self._spawned.discard)

    async def prune(self) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute("DELETE FROM run_events WHERE created_at < $1", time.time() - KEEP_EVENTS_SECONDS)
