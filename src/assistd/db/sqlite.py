"""aiosqlite, minus the thread hops that do nothing.

aiosqlite runs every DBAPI call on its own thread; SQLAlchemy calls ``commit()`` at the end of
every session and ``rollback()`` when a connection returns to the pool, each a round trip to
that thread even when no transaction is open (read-only sessions never ``BEGIN``). Measured: a
single-row GET made 9 thread hops, 5 of them for BEGIN/COMMIT/ROLLBACK of a read.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite

DRIVER = "assistd_aiosqlite"


def _in_transaction(dbapi_connection: Any) -> bool:
    conn = getattr(dbapi_connection, "_connection", None)  # the aiosqlite.Connection
    if conn is None or getattr(conn, "_connection", None) is None:
        return False
    return bool(conn.in_transaction)


class AssistdSQLiteDialect(SQLiteDialect_aiosqlite):
    supports_statement_cache = True

    def do_commit(self, dbapi_connection: Any) -> None:
        if _in_transaction(dbapi_connection):
            super().do_commit(dbapi_connection)  # type: ignore[no-untyped-call]  # SQLAlchemy's dialect is unannotated

    def do_rollback(self, dbapi_connection: Any) -> None:
        if _in_transaction(dbapi_connection):
            super().do_rollback(dbapi_connection)  # type: ignore[no-untyped-call]  # SQLAlchemy's dialect is unannotated


registry.register(f"sqlite.{DRIVER}", "assistd.db.sqlite", "AssistdSQLiteDialect")


INLINE_DRIVER = "assistd_inline"


class AssistdInlineSQLiteDialect(AssistdSQLiteDialect):
    """The same dialect over ``assistd.db.inline``: sqlite3 calls on the loop's thread."""

    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> Any:
        import sqlite3

        from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi

        from assistd.db import inline

        return AsyncAdapt_aiosqlite_dbapi(inline, sqlite3)


registry.register(f"sqlite.{INLINE_DRIVER}", "assistd.db.sqlite", "AssistdInlineSQLiteDialect")
