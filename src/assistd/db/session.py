"""Engine and sessions.

SQLite: WAL, ``busy_timeout`` and ``BEGIN IMMEDIATE`` for writers, so concurrent writers queue
instead of failing or losing updates; inside one process writers also take an ``asyncio.Lock``
so they wait in order instead of spinning on the busy handler. Readers use a deferred ``BEGIN``
and, thanks to WAL, never block writers.

PostgreSQL: asyncpg, READ COMMITTED, a pool per process.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
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

from assistd.db.fastread import FastReader, PostgresFastReader, SQLiteFastReader

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

    SPARE_IDLE_SECONDS = 10.0
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
        return super()._do_get()

    def _close_stale_spares(self) -> None:
        cutoff = time.monotonic() - self.SPARE_IDLE_SECONDS
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


def create_engine(url: str, *, pool_size: int = 10, null_pool: bool = False, inline: bool = False) -> AsyncEngine:
    """The engine for ``url``; on SQLite with ``inline``, sqlite3 runs on the loop's thread (db/inline.py)."""
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
    if null_pool:
        kwargs["poolclass"] = NullPool
    else:
        kwargs.update(
            poolclass=RetainingQueuePool, pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=False
        )
    return create_async_engine(url, **kwargs)


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

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.pool_size = pool_size
        self.engine = create_engine(url, pool_size=pool_size)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
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
        if not self.is_sqlite:
            self.urgent_engine = create_engine(url, pool_size=max(2, pool_size // 2))
            self.urgent_sessionmaker = async_sessionmaker(self.urgent_engine, expire_on_commit=False, autoflush=False)
        if self.is_sqlite:
            self.inline_engine = create_engine(url, pool_size=pool_size, inline=True)
            self.inline_sessionmaker = async_sessionmaker(self.inline_engine, expire_on_commit=False, autoflush=False)
            self.inline_read_sessionmaker = async_sessionmaker(
                self.inline_engine.execution_options(**read_options), expire_on_commit=False, autoflush=False
            )
        self.fast: FastReader | None = None

    async def start_fast_reader(self) -> None:
        """Hot read statements straight on the driver (see db/fastread.py)."""
        if self.is_sqlite:
            path = make_url(self.url).database
            if path and path != ":memory:":
                self.fast = SQLiteFastReader(path, self.engine.dialect)
        else:
            self.fast = await PostgresFastReader.connect(self.url, self.engine.dialect, self.pool_size)

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
        if self.fast is not None:
            await self.fast.close()
            self.fast = None
        await self.engine.dispose()
        for engine in (self.inline_engine, self.urgent_engine):
            if engine is not None:
                await engine.dispose()
