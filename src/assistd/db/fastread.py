"""Hot read statements executed straight on the driver.

The statements are still SQLAlchemy Core, built from the same tables (``pagination``'s cached
page / get / exists statements) and compiled once per dialect; only their execution skips
SQLAlchemy's session, connection and result machinery, which measured ~0.3 ms per query on top
of the driver's own cost, and on SQLite the aiosqlite thread round trips (four per query).

- SQLite: one ``sqlite3`` connection used inline on the event loop. The statements are single
  index walks (tens of microseconds); in WAL mode readers never wait for writers, so a call
  cannot block on a lock. The connection is ``query_only``.
- PostgreSQL: an asyncpg pool with JSON/JSONB decoded by orjson (its share of the process's
  connection budget, db/budget.py).

Only read-only sessions use it (write sessions must read their own uncommitted rows), and only
for statements whose shape is cached; anything else goes through the session as usual.
"""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from sqlalchemy.engine import Dialect, make_url


@dataclass(frozen=True, slots=True)
class Compiled:
    sql: str
    positions: tuple[str, ...]  # bound parameter name for each placeholder, in order
    defaults: dict[str, Any]  # values SQLAlchemy filled in itself (e.g. SQLite's OFFSET 0)
    row_type: Any  # namedtuple class: attribute access like the ORM entity
    # SQLAlchemy's own result processors for this dialect (SQLite: JSON text, 0/1 booleans)
    processors: tuple[tuple[int, Any], ...]


def compile_statement(stmt: Any, dialect: Dialect, *, process: bool) -> Compiled:
    """``process``: apply SQLAlchemy's result processors (SQLite; asyncpg returns native types)."""
    compiled = stmt.compile(dialect=dialect)
    positions = tuple(compiled.positiontup or ())
    defaults = {n: compiled.binds[n].value for n in positions if compiled.binds[n].value is not None}
    cols = list(stmt.selected_columns)
    names = [c.key for c in cols]
    processors = (
        tuple((i, p) for i, c in enumerate(cols) if (p := c.type.dialect_impl(dialect).result_processor(dialect, None)))
        if process
        else ()
    )
    return Compiled(compiled.string, positions, defaults, namedtuple("Row", names, rename=True), processors)


def _process(c: Compiled, raw: Any) -> Any:
    if not c.processors:
        return c.row_type._make(raw)
    values = list(raw)
    for i, proc in c.processors:
        values[i] = proc(values[i])
    return c.row_type._make(values)


class FastReader(Protocol):
    async def all(self, stmt: Any, params: dict[str, Any]) -> list[Any]: ...
    async def first(self, stmt: Any, params: dict[str, Any]) -> Any | None: ...
    async def close(self) -> None: ...


class _Base:
    process_results = True

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._compiled: dict[int, tuple[Any, Compiled]] = {}

    def compiled(self, stmt: Any) -> Compiled:
        # Statements come from functools.cache'd builders, so identity is a stable key; the
        # statement is kept alongside so its id cannot be reused by another object.
        hit = self._compiled.get(id(stmt))
        if hit is None or hit[0] is not stmt:
            hit = (stmt, compile_statement(stmt, self._dialect, process=self.process_results))
            self._compiled[id(stmt)] = hit
        return hit[1]

    @staticmethod
    def args(c: Compiled, params: dict[str, Any]) -> list[Any]:
        if not c.defaults:
            return [params[name] for name in c.positions]
        return [params[name] if name in params else c.defaults[name] for name in c.positions]


class SQLiteFastReader(_Base):
    def __init__(self, path: str, dialect: Dialect) -> None:
        super().__init__(dialect)
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA query_only=ON")
        self._conn.execute("PRAGMA busy_timeout=1000")

    def _run(self, stmt: Any, params: dict[str, Any], limit: int | None) -> list[Any]:
        c = self.compiled(stmt)
        cur = self._conn.execute(c.sql, self.args(c, params))
        raw = cur.fetchall() if limit is None else cur.fetchmany(limit)
        cur.close()
        return [_process(c, r) for r in raw]

    async def all(self, stmt: Any, params: dict[str, Any]) -> list[Any]:
        return self._run(stmt, params, None)

    async def first(self, stmt: Any, params: dict[str, Any]) -> Any | None:
        rows = self._run(stmt, params, 1)
        return rows[0] if rows else None

    async def close(self) -> None:
        self._conn.close()


class PostgresFastReader(_Base):
    """An asyncpg pool. Its connections run single statements outside transactions, so a connection
    going back to the pool is not reset (asyncpg's default reset, ``RESET ALL`` and more, is one more
    round trip per statement): the only session state they carry is what :meth:`ensure_settings`
    set on purpose, for the next user of the connection too."""

    process_results = False  # asyncpg returns native types; JSON is decoded by the pool's codec

    def __init__(self, dialect: Dialect) -> None:
        super().__init__(dialect)
        self._pool: Any = None
        self._settings: dict[int, dict[str, str]] = {}  # backend pid -> settings made by ensure_settings

    @classmethod
    async def connect(cls, url: str, dialect: Dialect, size: int, wait_seconds: float = 120.0) -> PostgresFastReader:
        import asyncpg

        from assistd.db import budget

        reader = cls(dialect)

        async def init(conn: Any) -> None:
            reader._settings.pop(conn.get_server_pid(), None)
            for typ in ("json", "jsonb"):
                await conn.set_type_codec(
                    typ, schema="pg_catalog", encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads
                )

        async def keep(_conn: Any) -> None:
            """Instead of asyncpg's reset (a connection in a transaction is still rolled back)."""

        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        reader._pool = await asyncpg.create_pool(
            dsn,
            min_size=0,
            max_size=size,
            init=init,
            reset=keep,
            connect=budget.connector(url, wait_seconds),
            max_inactive_connection_lifetime=budget.IDLE_SECONDS,
        )
        return reader

    def acquire(self) -> Any:
        """A pooled connection (``async with``), for statements written for asyncpg directly."""
        return self._pool.acquire()

    async def ensure_settings(self, conn: Any, settings: dict[str, str]) -> None:
        """Session settings on ``conn`` (a connection of :meth:`acquire`), with a round trip only when
        one differs from what this connection already has."""
        have = self._settings.setdefault(conn.get_server_pid(), {})
        todo = {k: v for k, v in settings.items() if have.get(k) != v}
        if todo:
            await set_session_settings(conn, todo)
            have.update(todo)

    async def all(self, stmt: Any, params: dict[str, Any]) -> list[Any]:
        c = self.compiled(stmt)
        records = await self._pool.fetch(c.sql, *self.args(c, params))
        return [_process(c, r.values()) for r in records]

    async def first(self, stmt: Any, params: dict[str, Any]) -> Any | None:
        c = self.compiled(stmt)
        record = await self._pool.fetchrow(c.sql, *self.args(c, params))
        return None if record is None else _process(c, record.values())

    async def close(self) -> None:
        await self._pool.close()


async def set_session_settings(conn: Any, settings: dict[str, str]) -> None:
    """``SET`` each of ``settings`` for the rest of ``conn``'s session (asyncpg), in one round trip."""
    await conn.execute(
        "SELECT " + ", ".join(f"set_config(${2 * i + 1}, ${2 * i + 2}, false)" for i in range(len(settings))),
        *(x for kv in settings.items() for x in kv),
    )
