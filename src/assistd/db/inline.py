"""sqlite3 on the event loop's own thread, behind aiosqlite's interface.

aiosqlite runs every DBAPI call on a thread of its own: each call is a queue hand-off, a thread
switch and a wake-up of the loop, and a session makes a dozen of them. Measured: a transaction
of an INSERT and an UPDATE costs 1.3 ms of CPU through aiosqlite against 0.4 ms through sqlite3
directly. Small statements finish in microseconds on SQLite (WAL, ``synchronous=NORMAL``: a
commit does not wait for the disk), so for them the hand-off is pure overhead.

This module is an aiosqlite look-alike whose coroutines run the sqlite3 call at once. It is
meant for short statements only (API requests, the run executor); bulk work (ingestion) keeps
aiosqlite's thread so that it never stalls the loop (``Database.session(offload=True)``). The
busy timeout is short (writers in this process are serialised by ``Database``'s lock already;
a wait here can only be another process, and it would block the loop).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from typing import Any, Literal

DatabaseError = sqlite3.DatabaseError
Error = sqlite3.Error
IntegrityError = sqlite3.IntegrityError
NotSupportedError = sqlite3.NotSupportedError
OperationalError = sqlite3.OperationalError
ProgrammingError = sqlite3.ProgrammingError
sqlite_version = sqlite3.sqlite_version
sqlite_version_info = sqlite3.sqlite_version_info

BUSY_TIMEOUT_SECONDS = 2.0
IsolationLevel = Literal["DEFERRED", "IMMEDIATE", "EXCLUSIVE"] | None  # as aiosqlite's and sqlite3's


class _NoThread:
    daemon = True


class _Immediate:
    """Stands in for aiosqlite's request queue: runs the function now, resolves its future."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:
            future.set_exception(exc)


class Cursor:
    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Any = None) -> Cursor:
        if parameters is None:
            self._cursor.execute(sql)
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Any) -> Cursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class Connection:
    def __init__(self, database: str, **kwargs: Any) -> None:
        kwargs["timeout"] = min(float(kwargs.get("timeout", BUSY_TIMEOUT_SECONDS)), BUSY_TIMEOUT_SECONDS)
        kwargs["check_same_thread"] = False  # used from the loop's thread only, but pools may close elsewhere
        self._conn: sqlite3.Connection | None = sqlite3.connect(database, **kwargs)
        self._connection = self._conn  # aiosqlite's name: SQLAlchemy checks it before commit/rollback
        self._thread = _NoThread()
        self._tx = _Immediate()

    def __await__(self) -> Any:
        return self._ready().__await__()

    async def _ready(self) -> Connection:
        return self

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError("no active connection")
        return self._conn

    @property
    def in_transaction(self) -> bool:
        return self._conn is not None and self._conn.in_transaction

    @property
    def isolation_level(self) -> str | None:
        return self._live().isolation_level

    @isolation_level.setter
    def isolation_level(self, value: IsolationLevel) -> None:
        self._live().isolation_level = value

    def cursor(self) -> Cursor:
        return Cursor(self._live().cursor())

    async def execute(self, sql: str, parameters: Any = None) -> Cursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        self._live().commit()

    async def rollback(self) -> None:
        self._live().rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._live().create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = self._connection = None

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = self._connection = None


def connect(database: str, **kwargs: Any) -> Connection:
    return Connection(database, **kwargs)
