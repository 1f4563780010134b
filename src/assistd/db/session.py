"""Engine and sessions.

SQLite: WAL, ``busy_timeout`` and ``BEGIN IMMEDIATE`` for writers, so concurrent writers queue
instead of failing or losing updates; inside one process writers also take an ``asyncio.Lock``
so they wait in order instead of spinning on the busy handler. Readers use a deferred ``BEGIN``
and, thanks to WAL, never block writers.

PostgreSQL: asyncpg, READ COMMITTED; the process's connections, all pools together, stay within
a budget, idle ones close, and a server out of connection slots delays work (db/budget.py).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry, NullPool
from sqlalchemy.util import queue as sqla_queue

from assistd.db import budget
from assistd.db.fastread import FastReader, PostgresFastReader, SQLiteFastReader

log = logging.getLogger("assistd.db")

_IMMEDIATE = "assistd_begin_immediate"
_NO_BEGIN = "assistd_no_begin"


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class RetainingQueuePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's queue pool, except that an overflow connection is kept for reuse (up to
    ``pool_size + max_overflow`` connections in all, as before) instead of being closed the moment
    it is returned while ``pool_size`` others are idle; kept ones are closed after
    ``SPARE_IDLE_SECONDS`` unused (checked whenever the pool hands out or takes back one).

    Under load (50 concurrent API requests plus the executor's writes), the plain pool closed and
    reopened a PostgreSQL connection for every second run: a server process forked, a TLS probe,
    authentication and asyncpg's type setup each time. Measured with ``log_connections``: 290
    connections for 520 runs before, ~45 after."""

    SPARE_IDLE_SECONDS = budget.IDLE_SECONDS
    slot_wait_seconds = 120.0  # see _do_get
    # SQLAlchemy names a pool's logger after its class's module; under ``assistd`` it would inherit
    # the servers' INFO level and print "Pool disposed" / "Pool recreating" lines at every shutdown.
    _sqla_logger_namespace = "sqlalchemy.pool.impl.RetainingQueuePool"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._spare: collections.deque[tuple[ConnectionPoolEntry, float]] = collections.deque()

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        if self._pool.full():
            self._spare.append((record, time.monotonic()))  # still counted as overflow
            self._close_stale_spares()
            return
        super()._do_return_conn(record)

    def _do_get(self) -> ConnectionPoolEntry:
        if self._spare:
            record, _ = self._spare.pop()  # the most recently used
            self._close_stale_spares()
            return record
        started, pause, attempt = 0.0, budget.BACKOFF_START, 0
        while True:
            try:
                record = super()._do_get()
            except Exception as exc:
                # The server has no slot for a new connection: wait for one of this pool's own to
                # come back, or for a slot (tried again after a pause, doubling), up to
                # ``slot_wait_seconds``; the request or run that needs it is delayed, not failed.
                if not budget.no_slot(exc):
                    raise
                t = time.monotonic()
                started = started or t
                if t - started >= self.slot_wait_seconds:
                    raise
                attempt += 1
                budget.connection_wait(str(getattr(exc, "orig", None) or exc), attempt)
                if self._spare:
                    record, _ = self._spare.pop()
                else:
                    try:
                        record = self._pool.get(True, pause)
                    except sqla_queue.Empty:
                        pause = min(pause * 2, budget.BACKOFF_MAX)
                        continue
            if attempt:
                budget.connection_waited(time.monotonic() - started)
            return record

    def close_idle(self) -> None:
        """Close the spares unused for ``SPARE_IDLE_SECONDS`` (called periodically: an idle pool sees
        no check-out or return that would do it). Runs in SQLAlchemy's greenlet (``greenlet_spawn``)."""
        self._close_stale_spares()

    def _close_stale_spares(self) -> None:
        # short of server slots: idle spares go sooner, so that this process's other pools get them
        idle = min(self.SPARE_IDLE_SECONDS, 1.0) if budget.short_of_slots() else self.SPARE_IDLE_SECONDS
        cutoff = time.monotonic() - idle
        while self._spare and self._spare[0][1] < cutoff:
            record, _ = self._spare.popleft()
            try:
                record.close()
            finally:
                self._dec_overflow()

    def dispose(self) -> None:
        while self._spare:
            record, _ = self._spare.popleft()
            record.close()
        super().dispose()

    def status(self) -> str:
        return f"{super().status()} Spare overflow connections: {len(self._spare)}"


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    null_pool: bool = False,
    inline: bool = False,
    max_connections: int | None = None,
    connect_wait_seconds: float = 120.0,
) -> AsyncEngine:
    """The engine for ``url``; on SQLite with ``inline``, sqlite3 runs on the loop's thread (db/inline.py).
    PostgreSQL: at most ``max_connections`` (default 3 × ``pool_size``), one kept when idle, the
    others closed after 10 s unused; connections are opened with ``budget.connect``."""
    parsed = make_url(url)
    # orjson for JSON columns: several times faster than the stdlib on every row read.
    kwargs: dict[str, Any] = {"json_serializer": _dumps, "json_deserializer": orjson.loads}
    if parsed.get_backend_name() == "sqlite":
        from assistd.db import sqlite  # registers the dialect

        driver = sqlite.INLINE_DRIVER if inline else sqlite.DRIVER
        url = parsed.set(drivername=f"sqlite+{driver}").render_as_string(hide_password=False)
        kwargs["connect_args"] = {"timeout": 30}
        if null_pool:
            kwargs["poolclass"] = NullPool
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
        engine = create_async_engine(url, **kwargs)
        # A wait on the inline engine would block the loop: it can only be another process
        # (writers here take Database's lock), so it gets a short one.
        _configure_sqlite(engine, busy_ms=2000 if inline else 30000)
        return engine
    kwargs["async_creator"] = budget.creator(url, connect_wait_seconds if null_pool else 0.0)
    if null_pool:
        kwargs["poolclass"] = NullPool
    else:
        if max_connections is None:
            max_connections = pool_size * 3
        else:
            pool_size = 1
        kwargs.update(
            poolclass=RetainingQueuePool,
            pool_size=pool_size,
            max_overflow=max(max_connections - pool_size, 0),
            pool_pre_ping=False,
            # a check-out waits while the server has no slot (see budget.connect), then a little more
            pool_timeout=connect_wait_seconds + 30,
        )
    engine = create_async_engine(url, **kwargs)
    if isinstance(engine.sync_engine.pool, RetainingQueuePool):
        engine.sync_engine.pool.slot_wait_seconds = connect_wait_seconds
    return engine


def _configure_sqlite(engine: AsyncEngine, busy_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy (not the driver) decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        options = conn.get_execution_options()
        if options.get(_NO_BEGIN):
            return  # read-only session: each statement is its own implicit transaction
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(_IMMEDIATE) else "BEGIN")


class WriterLock:
    """SQLite's one writer at a time, in two queues: urgent waiters are served first, then the
    others, each queue in arrival order."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: collections.deque[asyncio.Future[None]] = collections.deque()
        self._normal: collections.deque[asyncio.Future[None]] = collections.deque()

    @asynccontextmanager
    async def hold(self, urgent: bool = False) -> AsyncIterator[None]:
        if self._held or self._urgent or self._normal:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            (self._urgent if urgent else self._normal).append(waiter)
            try:
                await waiter  # the releasing holder hands the lock over: _held stays True
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._release()  # handed over just as we were cancelled: pass it on
                else:
                    with contextlib.suppress(ValueError):
                        (self._urgent if urgent else self._normal).remove(waiter)
                raise
        else:
            self._held = True
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        for queue in (self._urgent, self._normal):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return
        self._held = False


class Database:
    """The engine, a sessionmaker and the SQLite writer lock, built once per process."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_connections: int = 20,
        connect_wait_seconds: float = 120.0,
        fast_reads: bool = True,
    ) -> None:
        self.url = url
        self.pool_size = pool_size
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        # PostgreSQL: the process's share of the server's connections (db/budget.py)
        self.budget = None if self.is_sqlite else budget.split(max_connections, fast_reads=fast_reads)
        self.connect_wait_seconds = connect_wait_seconds
        main = None if self.budget is None else self.budget.main
        self.engine = create_engine(
            url, pool_size=pool_size, max_connections=main, connect_wait_seconds=connect_wait_seconds
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        # Read-only sessions: no BEGIN on SQLite, AUTOCOMMIT on PostgreSQL, set on the engine so
        # a connection is only checked out if the session actually runs a statement.
        read_options: dict[str, Any] = {_NO_BEGIN: True} if self.is_sqlite else {"isolation_level": "AUTOCOMMIT"}
        self.read_sessionmaker = async_sessionmaker(
            self.engine.execution_options(**read_options), expire_on_commit=False, autoflush=False
        )
        self._write_lock = WriterLock() if self.is_sqlite else None
        # SQLite: short statements (API requests, the executor) run on the loop's thread.
        self.inline_sessionmaker, self.inline_read_sessionmaker = self.sessionmaker, self.read_sessionmaker
        self.inline_engine: AsyncEngine | None = None
        # PostgreSQL: urgent writers (the executor's) get a small pool of their own, so that a burst
        # of API requests holding every connection of the main pool does not delay a stream's events.
        self.urgent_engine: AsyncEngine | None = None
        self.urgent_sessionmaker = self.sessionmaker
        if self.budget is not None:
            self.urgent_engine = create_engine(
                url, max_connections=self.budget.urgent, connect_wait_seconds=connect_wait_seconds
            )
            self.urgent_sessionmaker = async_sessionmaker(self.urgent_engine, expire_on_commit=False, autoflush=False)
        if self.is_sqlite:
            self.inline_engine = create_engine(url, pool_size=pool_size, inline=True)
            self.inline_sessionmaker = async_sessionmaker(self.inline_engine, expire_on_commit=False, autoflush=False)
            self.inline_read_sessionmaker = async_sessionmaker(
                self.inline_engine.execution_options(**read_options), expire_on_commit=False, autoflush=False
            )
        self.fast: FastReader | None = None
        self._housekeeping: asyncio.Task[None] | None = None

    async def start_fast_reader(self) -> None:
        """Hot read statements straight on the driver (see db/fastread.py)."""
        if self.is_sqlite:
            path = make_url(self.url).database
            if path and path != ":memory:":
                self.fast = SQLiteFastReader(path, self.engine.dialect)
        else:
            assert self.budget is not None
            self.fast = await PostgresFastReader.connect(
                self.url, self.engine.dialect, max(self.budget.fast, 1), self.connect_wait_seconds
            )

    def start_housekeeping(self) -> None:
        """PostgreSQL: close pooled connections idle for 10 s, also while nothing uses the pools."""
        if self.budget is not None and self._housekeeping is None:
            self._housekeeping = asyncio.create_task(self._close_idle(), name="assistd-db-idle")

    async def _close_idle(self) -> None:
        from sqlalchemy.util import greenlet_spawn

        while True:
            await asyncio.sleep(budget.IDLE_SECONDS / 4)
            for engine in (self.engine, self.urgent_engine):
                pool = engine.sync_engine.pool if engine is not None else None
                if isinstance(pool, RetainingQueuePool):
                    try:
                        await greenlet_spawn(pool.close_idle)
                    except Exception:
                        log.exception("closing idle database connections failed")

    @asynccontextmanager
    async def session(
        self, *, write: bool = False, inline: bool = False, urgent: bool = False
    ) -> AsyncIterator[AsyncSession]:
        """A session: with ``write`` one transaction, committed on success and rolled back on
        error; without, a read-only session whose statements run without BEGIN/COMMIT (each one
        sees committed data; a read of several statements is not one snapshot).

        ``inline`` (SQLite): sqlite3 runs on the loop's thread, for short statements only; bulk
        reads and writes leave it off so that they never stall the loop.

        ``urgent`` (SQLite writers): go before writers that are not, e.g. the executor's writes that
        a stream's next event waits for, ahead of a burst of API requests."""
        if write and self._write_lock is not None:
            async with self._write_lock.hold(urgent), self._session(write=True, inline=inline) as s:
                yield s
        else:
            async with self._session(write=write, inline=inline, urgent=urgent and write) as s:
                yield s

    @asynccontextmanager
    async def _session(self, *, write: bool, inline: bool = False, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        if urgent:
            maker = self.urgent_sessionmaker
        elif inline:
            maker = self.inline_sessionmaker if write else self.inline_read_sessionmaker
        else:
            maker = self.sessionmaker if write else self.read_sessionmaker
        async with maker() as session:
            if write and self.is_sqlite:
                await session.connection(execution_options={_IMMEDIATE: True})
            if not write and self.fast is not None:
                session.info["fast"] = self.fast
            try:
                yield session
                if write:
                    await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def dispose(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
            self._housekeeping = None
        if self.fast is not None:
            await self.fast.close()
            self.fast = None
        await self.engine.dispose()
        for engine in (self.inline_engine, self.urgent_engine):
            if engine is not None:
                await engine.dispose()
