"""Runs created in a process with a local executor start at once, without a claim round."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest
from sqlalchemy import func, select

from assistd.fakellm import FakeLLM
from assistd.models import Run, RunEvent
from tests.runs.test_runs_http import setup, wait_status
from tests.runs.util import names, sse


async def test_a_created_run_answers_queued_and_runs_once(client: httpx.AsyncClient, llm: FakeLLM, state) -> None:
    llm.set_turns([{"text": "adopted"}])
    a, t = await setup(client)
    created = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
    assert created["status"] == "queued" and created["started_at"] is None
    done = await wait_status(client, t, created["id"], "completed")
    assert done["started_at"] is not None and done["started_at"] >= created["created_at"]
    async with state.db.session() as s:
        attempt, owner = (await s.execute(select(Run.attempt, Run.lease_owner).where(Run.id == created["id"]))).one()
    assert attempt == 1 and owner is None  # executed once; the lease is released at the end
    msgs = (await client.get(f"/threads/{t}/messages", params={"run_id": created["id"]})).json()["data"]
    assert [m["content"][0]["text"]["value"] for m in msgs] == ["adopted"]


async def test_the_stream_still_shows_created_queued_in_progress(client: httpx.AsyncClient, llm: FakeLLM) -> None:
    llm.set_turns([{"text": "hello"}])
    a, t = await setup(client)
    events = await sse(client, f"/threads/{t}/runs", {"assistant_id": a})
    assert names(events)[:3] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
    assert events[0][1]["status"] == events[1][1]["status"] == "queued"
    assert events[2][1]["status"] == "in_progress" and events[2][1]["started_at"] is not None


async def test_failed_creates_give_their_slot_back(client: httpx.AsyncClient, llm: FakeLLM, state) -> None:
    ex = state.executor
    free = ex.free_slots
    llm.set_turns([{"text": "slow", "ttft_ms": 20000}, {"text": "after"}])
    a, t = await setup(client)
    busy = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
    for _ in range(ex.concurrency + 5):  # more failures than slots: a leak would fill the executor
        r = await client.post(f"/threads/{t}/runs", json={"assistant_id": a})
        assert r.status_code == 400 and "already has an active run" in r.json()["error"]["message"]
        r = await client.post(f"/threads/{t}/runs", json={"assistant_id": "asst_missing"})
        assert r.status_code == 404
    await client.post(f"/threads/{t}/runs/{busy['id']}/cancel")
    await wait_status(client, t, busy["id"], "cancelled")
    after = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
    assert (await wait_status(client, t, after["id"], "completed"))["status"] == "completed"
    for _ in range(200):  # the runner task ends just after its last commit
        if ex.free_slots == free:
            break
        await asyncio.sleep(0.005)
    assert ex.free_slots == free


@pytest.mark.skipif(
    os.environ.get("ASSISTD_TEST_DATABASE", "sqlite") == "sqlite", reason="the cross-process event log is PostgreSQL's"
)
async def test_an_adopted_runs_events_skip_the_cross_process_log(
    client: httpx.AsyncClient, llm: FakeLLM, state
) -> None:
    from tests.runs.test_runs_http import WEATHER

    llm.set_turns([{"tool_calls": [{"name": "get_weather", "arguments": {}}]}, {"text": "sunny"}])
    a, t = await setup(client, tools=[WEATHER])
    events = await sse(client, f"/threads/{t}/runs", {"assistant_id": a})
    run = events[-2][1]
    assert run["status"] == "requires_action"

    async def logged() -> int:
        async with state.db.session() as s:
            return await s.scalar(select(func.count()).select_from(RunEvent).where(RunEvent.run_id == run["id"]))

    await asyncio.sleep(0.2)  # the event writer would have written them by now
    assert await logged() == 0  # only this process's stream could want them
    (call,) = run["required_action"]["submit_tool_outputs"]["tool_calls"]
    resumed = await sse(
        client,
        f"/threads/{t}/runs/{run['id']}/submit_tool_outputs",
        {"tool_outputs": [{"tool_call_id": call["id"], "output": "sunny"}]},
    )
    assert resumed[-2][0] == "thread.run.completed"
    for _ in range(100):  # a resumed run is claimed from the queue: any process may stream it
        if await logged() > 0:
            break
        await asyncio.sleep(0.02)
    assert await logged() > 0
