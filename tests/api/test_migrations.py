"""One Alembic migration set serves both databases: up, no drift from the models, down, up."""

from __future__ import annotations

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from assistd.db.migrate import downgrade, upgrade
from assistd.models import Base
from assistd.models.vector_store import include_object
from tests.conftest import PG_DEFAULT, _create_pg_database, _drop_pg_database

# The dialect-only retrieval indexes (FTS5, tsvector, pgvector) are not ORM objects.
OPTS = {"include_object": include_object}


def _check(url: str, sync_url: str) -> None:
    upgrade(url)
    engine = create_engine(sync_url)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn, opts=OPTS), Base.metadata) == []
            assert {"assistants", "threads", "messages", "files", "uploads", "api_keys"} <= set(
                inspect(conn).get_table_names()
            )
        downgrade(url, "base")
        with engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
        upgrade(url)
        with engine.connect() as conn:
            assert "messages" in inspect(conn).get_table_names()
    finally:
        engine.dispose()


async def test_round_trip(tmp_path) -> None:
    backend = os.environ.get("ASSISTD_TEST_DATABASE", "sqlite")
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
        _check(url, f"sqlite:///{tmp_path / 'm.db'}")
        return
    server = PG_DEFAULT if backend == "postgres" else backend
    url, name = await _create_pg_database(server)
    try:
        # The sync inspection uses asyncpg through SQLAlchemy's async engine run synchronously.
        from sqlalchemy.ext.asyncio import create_async_engine

        upgrade(url)
        eng = create_async_engine(url)
        try:
            async with eng.connect() as conn:
                diff = await conn.run_sync(
                    lambda c: compare_metadata(MigrationContext.configure(c, opts=OPTS), Base.metadata)
                )
                assert diff == []
            downgrade(url, "base")
            async with eng.connect() as conn:
                tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
                assert tables <= {"alembic_version"}
            upgrade(url)
        finally:
            await eng.dispose()
    finally:
        await _drop_pg_database(server, name)


async def test_float32_hnsw_indexes_become_halfvec(tmp_path) -> None:
    """0006 rebuilds the float32 HNSW indexes earlier versions made as halfvec ones, and back."""
    backend = os.environ.get("ASSISTD_TEST_DATABASE", "sqlite")
    if backend == "sqlite":
        pytest.skip("pgvector indexes are PostgreSQL's")
    import asyncpg

    server = PG_DEFAULT if backend == "postgres" else backend
    url, name = await _create_pg_database(server)
    conn = None
    try:
        upgrade(url, "0005")
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
        if await conn.fetchval("SELECT to_regtype('halfvec')") is None:
            pytest.skip("needs pgvector 0.7 or later")

        async def indexes() -> set[str]:
            rows = await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'chunks'")
            return {r[0] for r in rows if "vec_" in r[0]}

        await conn.execute(
            "CREATE INDEX ix_chunks_vec_8 ON chunks USING hnsw ((embedding_vec::vector(8)) vector_cosine_ops) "
            "WHERE dim = 8"
        )
        upgrade(url)
        assert await indexes() == {"ix_chunks_hvec_8"}
        downgrade(url, "0005")
        assert await indexes() == {"ix_chunks_vec_8"}
    finally:
        if conn is not None:
            await conn.close()
        await _drop_pg_database(server, name)
