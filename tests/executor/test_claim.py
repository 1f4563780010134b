"""Claiming: one transaction takes the oldest queued runs, up to a limit, each exactly once."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from assistd.executor.worker import Executor
from assistd.fakellm import FakeLLM
from assistd.models import Run
from tests.runs.test_runs_http import setup, wait_status


async def test_a_claim_takes_the_oldest_queued_runs_up_to_its_limit(
    client: httpx.AsyncClient, state, llm: FakeLLM
) -> None:
    assert state.executor is not None
    await state.executor.stop()  # nothing claims the runs but the executors below
    try:
        a, _ = await setup(client)
        run_ids = []
        for i in range(5):
            t = (await client.post("/threads", json={"messages": [{"role": "user", "content": f"q{i}"}]})).json()
            run_ids.append((await client.post(f"/threads/{t['id']}/runs", json={"assistant_id": a})).json()["id"])
        first, second = Executor(state), Executor(state)
        taken = await first._claim(3)
        assert [r.id for r in taken] == run_ids[:3]  # oldest first
        assert {(r.status, r.lease_owner, r.attempt) for r in taken} == {("in_progress", first.owner, 1)}
        rest = await second._claim(8)
        assert [r.id for r in rest] == run_ids[3:]
        assert await first._claim(8) == []
        async with state.db.session() as s:
            owners = dict((await s.execute(select(Run.id, Run.lease_owner).where(Run.id.in_(run_ids)))).all())
        assert owners == {**dict.fromkeys(run_ids[:3], first.owner), **dict.fromkeys(run_ids[3:], second.owner)}
        r = (await client.get(f"/threads/{taken[0].thread_id}/runs/{taken[0].id}")).json()
        assert r["status"] == "in_progress" and r["started_at"] is not None
        # The two executors never run what they claimed: hand it back (as their shutdown would),
        # so it does not wait for the reaper and then take the model turns of a later test.
        for run in taken:
            await first.hand_back(run.id)
        for run in rest:
            await second.hand_back(run.id)
    finally:
        state.executor.start()
    for run in taken + rest:  # the running executor claims them again and completes them
        assert (await wait_status(client, run.thread_id, run.id, "completed"))["last_error"] is None
