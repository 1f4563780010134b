"""The reaper: expired requires_action runs, and runs whose worker died (requeued or failed)."""

from __future__ import annotations

import time

import httpx
from sqlalchemy import delete, select, update

from assistd.fakellm import FakeLLM
from assistd.models import Message, Run, RunStep
from tests.runs.test_runs_http import WEATHER, setup, wait_status


async def test_requires_action_past_expires_at_expires(client: httpx.AsyncClient, llm: FakeLLM, state) -> None:
    llm.set_turns([{"tool_calls": [{"name": "get_weather", "arguments": {}}]}])
    a, t = await setup(client, tools=[WEATHER])
    run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
    await wait_status(client, t, run["id"], "requires_action")
    async with state.db.session(write=True) as s:
        await s.execute(update(Run).where(Run.id == run["id"]).values(expires_at=int(time.time()) - 1))
    await state.executor.reap()
    expired = (await client.get(f"/threads/{t}/runs/{run['id']}")).json()
    assert expired["status"] == "expired" and expired["required_action"] is None
    step = (await client.get(f"/threads/{t}/runs/{run['id']}/steps")).json()["data"][0]
    assert step["status"] == "expired" and step["expired_at"] is not None
    r = await client.post(f"/threads/{t}/runs/{run['id']}/submit_tool_outputs", json={"tool_outputs": []})
    assert r.status_code == 400


async def _as_if_worker_died(state, run_id: str) -> None:
    async with state.db.session(write=True) as s:
        await s.execute(
            update(Run)
            .where(Run.id == run_id)
            .values(status="in_progress", lease_owner="exec_dead", lease_expires_at=time.time() - 1, completed_at=None)
        )


async def test_worker_died_before_doing_anything_is_requeued(client: httpx.AsyncClient, llm: FakeLLM, state) -> None:
    llm.set_turns([{"text": "first"}, {"text": "second attempt"}])
    a, t = await setup(client)
    run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
    await wait_status(client, t, run["id"], "completed")
    async with state.db.session(write=True) as s:  # forget the first attempt's work
        await s.execute(delete(RunStep).where(RunStep.run_id == run["id"]))
        await s.execute(delete(Message).where(Message.run_id == run["id"]))
    await _as_if_worker_died(state, run["id"])
    await state.executor.reap()
    done = await wait_status(client, t, run["id"], "completed")
    assert done["completed_at"] is not None
    msgs = (await client.get(f"/threads/{t}/messages", params={"run_id": run["id"]})).json()["data"]
    assert [m["content"][0]["text"]["value"] for m in msgs] == ["second attempt"]
    async with state.db.session() as s:
        assert await s.scalar(select(Run.attempt).where(Run.id == run["id"])) == 2


async def test_worker_died_mid_run_fails_it(client: httpx.AsyncClient, llm: FakeLLM, state) -> None:
    a, t = await setup(client)
    run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
    await wait_status(client, t, run["id"], "completed")
    async with state.db.session(write=True) as s:
        await s.execute(
            update(RunStep).where(RunStep.run_id == run["id"]).values(status="in_progress", completed_at=None)
        )
        await s.execute(
            update(Message).where(Message.run_id == run["id"]).values(status="in_progress", completed_at=None)
        )
    await _as_if_worker_died(state, run["id"])
    await state.executor.reap()
    failed = (await client.get(f"/threads/{t}/runs/{run['id']}")).json()
    assert failed["status"] == "failed" and failed["last_error"]["code"] == "server_error"
    assert "stopped unexpectedly" in failed["last_error"]["message"]
    step = (await client.get(f"/threads/{t}/runs/{run['id']}/steps")).json()["data"][0]
    assert step["status"] == "failed"
    msg = (await client.get(f"/threads/{t}/messages", params={"run_id": run["id"]})).json()["data"][0]
    assert msg["status"] == "incomplete" and msg["incomplete_details"] == {"reason": "run_failed"}


async def test_transition_table_refuses_illegal_moves(state) -> None:
    from assistd.executor.transitions import ALLOWED, TERMINAL, predecessors

    assert all(not ALLOWED[s] for s in TERMINAL)
    assert predecessors("queued") == {"in_progress", "requires_action"}
    assert "completed" not in ALLOWED["queued"]
