"""Runs created in a process with a local executor start at once, without a claim round."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import select

from assistd.fakellm import FakeLLM
from assistd.models import Run
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
