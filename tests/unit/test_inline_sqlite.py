"""The inline SQLite driver (db/inline.py) behaves like aiosqlite under SQLAlchemy."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy.exc import IntegrityError

from assistd.db.session import create_engine

md = MetaData()
items = Table("items", md, Column("id", Integer, primary_key=True), Column("name", String, unique=True))


async def test_statements_transactions_and_errors(tmp_path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", inline=True)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(md.create_all)
            await conn.execute(insert(items), [{"name": "a"}, {"name": "b"}])
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 2000  # short: it blocks the loop
            rows = (await conn.execute(select(items.c.name).order_by(items.c.id))).scalars().all()
            assert rows == ["a", "b"]

        async def insert_c_and_a_again() -> None:
            async with engine.begin() as conn:
                await conn.execute(insert(items), [{"name": "c"}])
                await conn.execute(insert(items), [{"name": "a"}])  # duplicate: the whole transaction rolls back

        with pytest.raises(IntegrityError):
            await insert_c_and_a_again()
        async with engine.connect() as conn:
            assert (await conn.execute(select(items.c.name).order_by(items.c.id))).scalars().all() == ["a", "b"]
    finally:
        await engine.dispose()
