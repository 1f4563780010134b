"""The PostgreSQL connection pool keeps its overflow connections for reuse instead of reopening them."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from sqlalchemy import text

from assistd.db.session import RetainingQueuePool, create_engine

pytestmark = pytest.mark.skipif(
    os.environ.get("ASSISTD_TEST_DATABASE", "sqlite") == "sqlite",
    reason="the retaining pool is PostgreSQL's (SQLite connections are files, not server processes)",
)


async def hold(engine: Any, n: int, gate: asyncio.Event, *, release_after: float | None = 0.3) -> list[int]:
    """Check out ``n`` connections at once (until ``gate``, set here after ``release_after``
    seconds unless None); their server process ids."""

    async def one() -> int:
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await gate.wait()
            return int(pid)

    tasks = [asyncio.ensure_future(one()) for _ in range(n)]
    if release_after is not None:
        await asyncio.sleep(release_after)
        gate.set()
    return sorted(await asyncio.gather(*tasks))


async def test_overflow_connections_are_reused_not_reopened(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1)  # 1 kept + 2 overflow
    try:
        assert isinstance(engine.sync_engine.pool, RetainingQueuePool)
        first = await hold(engine, 3, asyncio.Event())
        assert len(set(first)) == 3
        second = await hold(engine, 3, asyncio.Event())
        assert second == first  # the same three server processes: nothing reconnected
    finally:
        await engine.dispose()


async def test_the_cap_still_holds_and_idle_spares_are_closed(database_url: str, monkeypatch: Any) -> None:
    engine = create_engine(database_url, pool_size=1)
    pool = engine.sync_engine.pool
    pool._timeout = 0.5  # a checkout past the cap waits this long, then fails
    try:
        gate = asyncio.Event()
        holders = asyncio.ensure_future(hold(engine, 3, gate, release_after=None))
        await asyncio.sleep(0.2)
        with pytest.raises(Exception, match="QueuePool limit"):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        gate.set()
        pids = await holders
        monkeypatch.setattr(RetainingQueuePool, "SPARE_IDLE_SECONDS", 0.0)
        async with engine.connect() as conn:  # a checkout closes the spares idle too long
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert pid in pids
        assert "Spare overflow connections: 0" in pool.status()
    finally:
        await engine.dispose()


async def test_disposing_the_pool_logs_nothing_at_info(database_url: str, caplog: Any) -> None:
    # `assistd serve` and `assistd worker` log at INFO: the pool's housekeeping is SQLAlchemy's,
    # quiet below WARNING like its other pools, not under the `assistd` logger.
    caplog.set_level("INFO")
    engine = create_engine(database_url, pool_size=1)
    await hold(engine, 2, asyncio.Event())
    await engine.dispose()
    assert [r.getMessage() for r in caplog.records if "Pool" in r.getMessage()] == []
