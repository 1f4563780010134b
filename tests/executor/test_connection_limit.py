"""A PostgreSQL at its connection limit delays runs; it does not fail them.

The server is made to run out of connection slots for one process: it connects as a dedicated
role with ``CONNECTION LIMIT 8`` whose every slot the test occupies. The process starting then
waits (with a WARNING) for connections instead of failing, and so do the queued runs it is to
execute; when the slots come free, they complete. The process's own budget and idle closing are
checked too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from assistd.app import create_app
from assistd.db.budget import split
from assistd.fakellm import FakeLLM
from assistd.state import AppState
from tests.conftest import asgi_client

pytestmark = pytest.mark.skipif(
    os.environ.get("ASSISTD_TEST_DATABASE", "sqlite") == "sqlite", reason="connection limits are PostgreSQL's"
)

LIMIT = 8


async def _connect(url: str) -> Any:
    import asyncpg

    return await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))


async def _connections_of(admin: Any, role: str) -> int:
    return int(await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE usename = $1", role))


async def test_runs_wait_for_connection_slots_and_then_complete(
    state,
    settings,
    client: Any,
    llm: FakeLLM,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from assistd.db import budget

    monkeypatch.setattr(budget._Shortage, "warned", 0.0)  # this test's first wait is logged
    role = f"assistd_limited_{uuid.uuid4().hex[:8]}"
    admin = await _connect(settings.database_url)
    await admin.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT {LIMIT}')
    await admin.execute(f'GRANT postgres TO "{role}"')  # the tables' privileges, not superuser
    url = make_url(settings.database_url).set(username=role).render_as_string(hide_password=False)
    limited = settings.model_copy(update={"database_url": url, "db_max_connections": 20, "run_lease_seconds": 30})
    llm.set_default({"text": "Answered after the wait."})
    assert state.executor is not None
    await state.executor.stop()  # only the limited process executes these runs
    hogs: list[Any] = []
    app_state = None
    starting = None
    try:
        a = (await client.post("/assistants", json={"model": "fake-model"})).json()["id"]
        runs = []
        for i in range(4):
            t = (await client.post("/threads", json={"messages": [{"role": "user", "content": f"q{i}"}]})).json()
            runs.append((t["id"], (await client.post(f"/threads/{t['id']}/runs", json={"assistant_id": a})).json()))
        refused = None
        while refused is None:  # occupy every slot of the role
            try:
                hogs.append(await _connect(url))
            except Exception as exc:
                refused = getattr(exc, "sqlstate", None) or repr(exc)
        assert refused == "53300"  # too_many_connections (the role's limit, or the server's)
        # A server process starting now has no slot for any of its connections: it waits, and
        # so do the queued runs it will execute.
        starting = asyncio.create_task(AppState.start(limited, background=False))
        await asyncio.sleep(3)
        assert not starting.done()  # waiting, not failed
        assert any("no connection slot" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)
        statuses = [(await client.get(f"/threads/{t}/runs/{r['id']}")).json()["status"] for t, r in runs]
        assert statuses == ["queued"] * 4
        for conn in hogs:
            await conn.close()
        hogs.clear()
        app_state = await asyncio.wait_for(starting, 60)
        ended = []
        for t, r in runs:
            for _ in range(3000):
                run = (await client.get(f"/threads/{t}/runs/{r['id']}")).json()
                if run["status"] not in ("queued", "in_progress"):
                    break
                await asyncio.sleep(0.02)
            msg = (await client.get(f"/threads/{t}/messages", params={"limit": 1})).json()["data"][0]
            ended.append((run["status"], msg["content"][0]["text"]["value"]))
        assert ended == [("completed", "Answered after the wait.")] * 4
        assert await _connections_of(admin, role) <= LIMIT
    finally:
        for conn in hogs:
            await conn.close()
        if starting is not None and app_state is None:
            with contextlib.suppress(BaseException):
                app_state = await asyncio.wait_for(starting, 60)
        if app_state is not None:
            await app_state.stop()
        state.executor.start()
        for _ in range(100):
            if not await _connections_of(admin, role):
                break
            await asyncio.sleep(0.05)
        await admin.execute(f'DROP ROLE "{role}"')
        await admin.close()


async def test_a_process_stays_within_its_budget_and_closes_idle_connections(
    state, settings, llm: FakeLLM, project: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from assistd.db import budget
    from assistd.db.session import RetainingQueuePool

    monkeypatch.setattr(budget, "IDLE_SECONDS", 0.5)
    monkeypatch.setattr(RetainingQueuePool, "SPARE_IDLE_SECONDS", 0.5)
    role = f"assistd_budget_{uuid.uuid4().hex[:8]}"
    admin = await _connect(settings.database_url)
    await admin.execute(f'CREATE ROLE "{role}" LOGIN')
    await admin.execute(f'GRANT postgres TO "{role}"')
    url = make_url(settings.database_url).set(username=role).render_as_string(hide_password=False)
    own = settings.model_copy(update={"database_url": url, "db_max_connections": 10, "executor": False})
    app_state = None
    try:
        app_state = await AppState.start(own, background=False)
        async with asgi_client(create_app(own, app_state), project[0]) as client:
            a = (await client.post("/assistants", json={"model": "fake-model"})).json()["id"]

            async def busy() -> None:
                for _ in range(10):
                    t = (await client.post("/threads", json={"metadata": {"a": a}})).json()["id"]
                    assert (await client.get(f"/threads/{t}")).status_code == 200
                    await client.get("/threads", params={"limit": 5})

            peak = 0

            async def watch() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, await _connections_of(admin, role))
                    await asyncio.sleep(0.01)

            async def hold() -> None:  # long statements: the write pool must open all it may
                async with app_state.db.session(write=True) as s:
                    await s.execute(text("SELECT pg_sleep(0.3)"))

            watcher = asyncio.create_task(watch())
            await asyncio.gather(*(busy() for _ in range(30)), *(hold() for _ in range(12)))
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher  # it shares the admin connection
            share = split(10)
            assert share.main <= peak <= share.total, (peak, share)  # its write pool filled, never past the budget
            for _ in range(300):  # idle: back to the LISTEN connection and one per SQLAlchemy pool
                if await _connections_of(admin, role) <= 3:
                    break
                await asyncio.sleep(0.05)
            assert await _connections_of(admin, role) <= 3
    finally:
        if app_state is not None:
            await app_state.stop()
        for _ in range(100):
            if not await _connections_of(admin, role):
                break
            await asyncio.sleep(0.05)
        await admin.execute(f'DROP ROLE "{role}"')
        await admin.close()
