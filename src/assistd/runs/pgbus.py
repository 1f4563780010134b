"""Runs across processes on PostgreSQL: LISTEN/NOTIFY wake-ups and cancels, and a run event log.

With PostgreSQL, API replicas and workers are separate processes: the one relaying a run's
stream is not necessarily the one executing it. So:

- the executor's events are appended to ``run_events`` by one writer task per process (batched:
  every event waiting is inserted in one transaction) and announced with ``NOTIFY
  assistd_events`` in that same transaction, so a notification never arrives before its rows
  are visible. The notification carries the events themselves (``[seq, run_id, event, at, data]``,
  ``at`` being when the executor published it, for the relay-lag metric; payloads under NOTIFY's
  8000 bytes); an event too big for it is announced without its data.
- a process relaying streams LISTENs on one dedicated connection and hands the notified events of
  the runs it relays straight to their streams (no query per event); a run with an event that
  did not fit is read from the table after the last event delivered, in order. When the run
  executes in the same process, its streams are fed from memory instead (no database round trip
  per event: with 200 streams that round trip cost ~1 s of lag at p99).
- ``assistd_wake`` (a run was queued) and ``assistd_cancel`` (``<run_id>``) reach every
  executor at once instead of on its next poll.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from assistd.db import budget
from assistd.db.budget import asyncpg_dsn
from assistd.runs.events import RunEventBus, Subscription

log = logging.getLogger("assistd.pgbus")

WAKE = "assistd_wake"
CANCEL = "assistd_cancel"
EVENTS = "assistd_events"
INGEST = "assistd_ingest"  # vector-store files were queued (see assistd.ingest)
KEEP_EVENTS_SECONDS = 600.0


_NEXT_SEQS = "SELECT nextval(pg_get_serial_sequence('run_events', 'seq')) FROM generate_series(1, $1)"
# One statement, so one implicit transaction: the rows and their notifications commit together.
_PUBLISH = """
WITH ins AS (
    INSERT INTO run_events (seq, run_id, event, data, created_at)
    SELECT s, r, e, d, $5 FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS t(s, r, e, d)
)
SELECT pg_notify($6, p) FROM unnest($7::text[]) AS p
"""
BATCH_WINDOW_SECONDS = 0.002
"""How long the writer lets events gather once one is pending: with 200 streams, 450 statements a
second instead of 1,300, a third less CPU for the worker's writes and PostgreSQL's commits."""
SEQUENCE_STOCK = 512
"""Sequence values a writer draws per round trip (see renew_sequence for when it draws early)."""
NOTIFY_LIMIT = 7900  # bytes; PostgreSQL refuses payloads of 8000 or more
# Run events only feed live streams (the run's state is in ``runs``, written with normal commits):
# their commits need not wait for the WAL to reach the disk.
_BUS_SETTINGS = {"synchronous_commit": "off"}


def notify_payloads(seqs: list[int], batch: list[tuple[str, str, bytes, float]]) -> list[str]:
    """The batch's events as NOTIFY payloads, each under the limit: a first line listing the run
    ids it carries (so a process relaying none of them skips the rest unparsed), then one line per
    event, ``seq<TAB>run_id<TAB>event<TAB>at<TAB>data``, ``at`` the Unix time it was published and
    data the event's JSON as published (JSON from orjson has no raw tab or newline), so the receiver
    hands it on without parsing it. An event too big for a payload has empty data: read it from
    the table."""
    payloads: list[str] = []
    lines: list[bytes] = []
    runs: dict[str, None] = {}
    size = 0

    def flush() -> None:
        payloads.append((",".join(runs).encode() + b"\n" + b"\n".join(lines)).decode())

    for seq, (run_id, event, data, at) in zip(seqs, batch, strict=True):
        head = b"%d\t%s\t%s\t%.4f\t" % (seq, run_id.encode(), event.encode(), at)
        line = head + data
        if len(line) + len(run_id) + 2 > NOTIFY_LIMIT:
            line = head
        extra = len(line) + 1 + (0 if run_id in runs else len(run_id) + 1)
        if lines and size + extra > NOTIFY_LIMIT:
            flush()
            lines, runs, size = [], {}, 0
            extra = len(line) + 1 + len(run_id) + 1
        lines.append(line)
        runs[run_id] = None
        size += extra
    if lines:
        flush()
    return payloads


def payload_runs(payload: str) -> list[str]:
    """The run ids a payload carries events of (its first line), without parsing the events."""
    return payload[: payload.index("\n")].split(",")


def parse_payload(payload: str) -> list[tuple[str, list[tuple[int, str, bytes | None, float]]]]:
    """``notify_payloads`` read back: per run (in order of appearance), its events in order."""
    runs: dict[str, list[tuple[int, str, bytes | None, float]]] = {}
    for line in payload[payload.index("\n") + 1 :].split("\n"):
        seq, run_id, event, at, data = line.split("\t", 4)
        runs.setdefault(run_id, []).append((int(seq), event, data.encode() if data else None, float(at)))
    return list(runs.items())


class PostgresEventBus(RunEventBus):
    def __init__(
        self, url: str, *, relay: bool = True, pool_size: int = 2, connect_wait_seconds: float = 120.0
    ) -> None:
        """``relay``: LISTEN for run events (a process serving streams). Without it (``assistd
        worker``) the process only publishes, and is not sent every event of every run back.
        ``pool_size``: its share of the connection budget besides LISTEN and the writer (db/budget.py)."""
        super().__init__()
        self._url = url
        self._dsn = asyncpg_dsn(url)
        self._pool_size = pool_size
        self._wait = connect_wait_seconds
        self._relay = relay
        self._pool: Any = None
        self._listener: Any = None
        self._pending: list[tuple[str, str, bytes, float]] = []
        self._stock: collections.deque[int] = collections.deque()  # sequence values to give out
        self._renew_stock = True
        self._has_pending = asyncio.Event()
        self._dirty: set[str] = set()
        self._fetching: set[str] = set()
        self._has_dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.on_wake: Callable[[], None] | None = None
        self.on_ingest: Callable[[], None] | None = None
        self.on_cancel: Callable[[str], Coroutine[Any, Any, None]] | None = None
        self._spawned: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        import asyncpg

        self._pool = await asyncpg.create_pool(
            self._dsn,
            min_size=0,
            max_size=self._pool_size,
            server_settings=_BUS_SETTINGS,
            connect=budget.connector(self._url, self._wait),
            max_inactive_connection_lifetime=budget.IDLE_SECONDS,
        )
        self._listener = await budget.connect(self._dsn, wait_seconds=self._wait)
        if self._relay:
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

    def publish(self, run_id: str, event: str, data: dict[str, Any], *, remote: bool = True) -> None:
        """Streams relayed by this process get the event now, from memory; with ``remote`` it also
        goes to the log and the other processes. A run created and executed by this process (the
        executor adopted it from the creating request) can only be streamed here until it rests:
        its executor publishes with ``remote=False`` (no log row, no NOTIFY)."""
        import orjson

        payload, at = orjson.dumps(data), time.time()
        for sub in self._subs.get(run_id, ()):
            sub.local = True
            sub.queue.put_nowait((event, payload), at)
        if remote:
            self._pending.append((run_id, event, payload, at))
            self._has_pending.set()

    def announce(self, run_id: str, event: str, data: dict[str, Any]) -> None:
        """An event about a run from a request, not from its executor (``thread.run.cancelling``, a
        deleted thread's ``error``): streams fed in memory by this process's executor get it in
        memory; every other stream, here or in another process, through the log, after the events
        already published (``publish`` would mark this process's streams as fed in memory, and they
        would stop relaying the events of the worker that executes the run)."""
        import orjson

        payload, at = orjson.dumps(data), time.time()
        for sub in self._subs.get(run_id, ()):
            if sub.local:
                sub.queue.put_nowait((event, payload), at)
        self._renew_stock = True
        self._pending.append((run_id, event, payload, at))
        self._has_pending.set()

    def renew_sequence(self) -> None:
        """This process starts executing a run: events it publishes from now on take sequence values
        drawn after now, not from its stock (drawn earlier), so that they come after every event of
        the run published elsewhere before it was handed here."""
        self._renew_stock = True

    def release_local(self, run_id: str) -> None:
        """This process lost the run to another executor (its lease lapsed, the run was taken up
        elsewhere): its streams here were fed from memory, they now relay the run's new executor."""
        for sub in self._subs.get(run_id, ()):
            sub.local = False

    async def _writer(self) -> None:
        """Writes and announces the pending events, a batch at a time, on a connection of its own
        (a pooled one would be reset, one more round trip, after every batch), closed after 10 s
        without events. A batch that fails is written again (after a pause): a stream never
        silently misses an event of a run whose executor lives."""
        conn: Any = None
        pause = 0.0
        try:
            while True:
                if conn is not None and not self._pending:
                    try:
                        await asyncio.wait_for(self._has_pending.wait(), budget.IDLE_SECONDS)
                    except TimeoutError:
                        conn.terminate()  # idle: give the connection back to the server
                        conn = None
                        continue
                await self._has_pending.wait()
                if pause:
                    await asyncio.sleep(pause)
                elif BATCH_WINDOW_SECONDS:
                    # Let the events of this instant gather: fewer, bigger statements (each one a
                    # socket write and a commit) for a little latency.
                    await asyncio.sleep(BATCH_WINDOW_SECONDS)
                self._has_pending.clear()
                batch, self._pending = self._pending, []
                if not batch:
                    continue
                try:
                    if conn is None or conn.is_closed():
                        conn = await budget.connect(self._dsn, wait_seconds=self._wait, server_settings=_BUS_SETTINGS)
                    # Sequence values (increasing, so in order per run) from a stock drawn one
                    # round trip at a time, then the rows and their notifications (carrying the
                    # events) in one statement.
                    if self._renew_stock or len(self._stock) < len(batch):
                        self._renew_stock = False
                        n = max(len(batch), SEQUENCE_STOCK)
                        self._stock = collections.deque(r[0] for r in await conn.fetch(_NEXT_SEQS, n))
                    seqs = [self._stock.popleft() for _ in batch]
                    await conn.execute(
                        _PUBLISH,
                        seqs,
                        [rid for rid, _, _, _ in batch],
                        [ev for _, ev, _, _ in batch],
                        [data.decode() for _, _, data, _ in batch],
                        time.time(),
                        EVENTS,
                        notify_payloads(seqs, batch),
                    )
                    pause = 0.0
                except Exception as exc:
                    pause = min(max(pause * 2, 0.1), 2.0)
                    log.warning("could not write %d run events (%s); trying again in %.1f s", len(batch), exc, pause)
                    self._pending = batch + self._pending  # in order, before what came meanwhile
                    self._renew_stock = True
                    self._has_pending.set()
                    if conn is not None:
                        conn.terminate()
                        conn = None
        finally:
            if conn is not None:
                conn.terminate()

    # --- relaying (streams) ---------------------------------------------------------------------

    async def attach(self, sub: Subscription, run_id: str) -> None:
        """Relay only events written after now (a resumed run has older ones)."""
        async with self._pool.acquire() as conn:
            sub.since = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM run_events WHERE run_id = $1", run_id)

    def _on_events(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        # Most notifications are of runs nobody here relays from the table (this process's own
        # runs reach their streams from memory): skip those without parsing them.
        if not any(s for rid in payload_runs(payload) for s in self._subs.get(rid, ()) if not s.local):
            return
        for run_id, events in parse_payload(payload):
            subs = [s for s in self._subs.get(run_id, ()) if not s.local]
            if not subs:
                continue
            if run_id in self._dirty or run_id in self._fetching or any(data is None for _, _, data, _ in events):
                # An event too big to ride along (or a fetch under way): read the table, in order.
                self._dirty.add(run_id)
                self._has_dirty.set()
                continue
            for seq, event, data, at in events:
                assert data is not None  # events without their data were left to the table read above
                for sub in subs:
                    if seq > sub.since:
                        sub.queue.put_nowait((event, data), at)
                        sub.since = seq

    async def _deliverer(self) -> None:
        while True:
            await self._has_dirty.wait()
            self._has_dirty.clear()
            dirty, self._dirty = self._dirty, set()
            self._fetching = dirty
            try:
                await self._deliver(dirty)
            except Exception:
                log.exception("could not relay events of %d runs", len(dirty))
            finally:
                self._fetching = set()

    async def _deliver(self, run_ids: set[str]) -> None:
        """One query for every notified run, then each row to the streams that have not had it."""
        subs = {rid: [s for s in self._subs.get(rid, []) if not s.local] for rid in run_ids}
        subs = {rid: ss for rid, ss in subs.items() if ss}
        if not subs:
            return
        since = min(s.since for ss in subs.values() for s in ss)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT seq, run_id, event, data, created_at FROM run_events WHERE run_id = ANY($1::text[]) "
                "AND seq > $2 ORDER BY seq",
                list(subs),
                since,
            )
        for seq, run_id, event, data, written_at in rows:  # written a moment after it was published
            payload = data.encode()
            for sub in subs[run_id]:
                if seq > sub.since:
                    sub.queue.put_nowait((event, payload), written_at)
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
