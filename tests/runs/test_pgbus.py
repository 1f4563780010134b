"""The PostgreSQL event bus between processes: two buses on one database stand for two processes."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import asyncpg
import pytest

from assistd.runs.pgbus import PostgresEventBus, asyncpg_dsn

pytestmark = pytest.mark.skipif(
    os.environ.get("ASSISTD_TEST_DATABASE", "sqlite") == "sqlite",
    reason="the event bus between processes is PostgreSQL's",
)


async def written(dsn: str, run_id: str, n: int) -> list[tuple[int, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(200):
            rows = await conn.fetch("SELECT seq, data FROM run_events WHERE run_id = $1 ORDER BY seq", run_id)
            if len(rows) >= n:
                return [(r["seq"], r["data"]) for r in rows]
            await asyncio.sleep(0.02)
    finally:
        await conn.close()
    raise AssertionError(f"{n} events of {run_id} were not written")


async def test_a_run_handed_between_processes_keeps_its_events_in_order(settings: Any) -> None:
    """Each bus draws sequence values in stock; a process that starts executing a run must not
    give it values drawn before another process last published for it (A -> B -> A)."""
    dsn = asyncpg_dsn(settings.database_url)
    a, b = PostgresEventBus(settings.database_url, relay=False), PostgresEventBus(settings.database_url, relay=False)
    await a.start()
    await b.start()
    run_id = f"run_handed_{os.getpid()}"
    try:
        a.renew_sequence()  # A claims the run
        a.publish(run_id, "thread.message.delta", {"n": 1})
        await written(dsn, run_id, 1)
        b.renew_sequence()  # handed to B
        b.publish(run_id, "thread.message.delta", {"n": 2})
        await written(dsn, run_id, 2)
        a.renew_sequence()  # and back to A, whose stock was drawn before B's
        a.publish(run_id, "thread.message.delta", {"n": 3})
        a.publish(run_id, "thread.message.delta", {"n": 4})
        rows = await written(dsn, run_id, 4)
    finally:
        await a.close()
        await b.close()
    assert [data for _, data in rows] == ['{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}']


async def test_a_worker_does_not_receive_every_event(settings: Any) -> None:
    """Only processes that relay streams LISTEN for run events."""
    relay, worker = PostgresEventBus(settings.database_url), PostgresEventBus(settings.database_url, relay=False)
    await relay.start()
    await worker.start()
    try:
        channels = {
            bus: await bus._listener.fetchval("SELECT array_agg(c) FROM pg_listening_channels() c")
            for bus in (relay, worker)
        }
    finally:
        await relay.close()
        await worker.close()
    assert "assistd_events" in channels[relay]
    assert "assistd_events" not in channels[worker]
    assert "assistd_wake" in channels[worker] and "assistd_cancel" in channels[worker]
