"""The reaper: expired requires_action runs, and runs whose worker died (taken up again, or failed
past the bound)."""

from __future__ import annotations

import time

import httpx
from prometheus_client import REGISTRY
from sqlalchemy import delete, select, update

from assistd.fakellm import FakeLLM
from assistd.models import Message, Run, RunStep
from tests.runs.test_runs_http import WEATHER, setup, wait_status

COUNTERS = ("assistd_runs_resumed_total", "assistd_model_calls_remade_total")


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
        assert await s.scalar(select(Run.resumes).where(Run.id == run["id"])) == 1


async def _cut_mid_answer(state, run_id: str) -> None:
    """The state a worker killed while streaming its answer leaves: the message and its step in
    progress, the message without content (deltas are never written), the run in progress."""
    async with state.db.session(write=True) as s:
        await s.execute(
            update(RunStep).where(RunStep.run_id == run_id).values(status="in_progress", completed_at=None, usage=None)
        )
        await s.execute(
            update(Message).where(Message.run_id == run_id).values(status="in_progress", completed_at=None, content=[])
        )
        await s.execute(update(Run).where(Run.id == run_id).values(usage=None))
    await _as_if_worker_died(state, run_id)


async def test_worker_died_mid_answer_is_taken_up_and_its_message_replaced(
    client: httpx.AsyncClient, llm: FakeLLM, state
) -> None:
    llm.set_turns([{"text": "first answer"}, {"text": "the answer, made again"}])
    a, t = await setup(client)
    run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
    await wait_status(client, t, run["id"], "completed")
    before = (await client.get(f"/threads/{t}/messages", params={"run_id": run["id"]})).json()["data"]
    step_ids = [x["id"] for x in (await client.get(f"/threads/{t}/runs/{run['id']}/steps")).json()["data"]]
    await _cut_mid_answer(state, run["id"])
    llm.clear_requests()
    counted = {name: REGISTRY.get_sample_value(name) or 0.0 for name in COUNTERS}
    await state.executor.reap()
    done = await wait_status(client, t, run["id"], "completed", "failed")
    assert done["status"] == "completed" and done["last_error"] is None
    # counted in the logs (WARNING) and in the metrics: one resume, one model call paid twice
    assert {name: (REGISTRY.get_sample_value(name) or 0.0) - counted[name] for name in COUNTERS} == dict.fromkeys(
        COUNTERS, 1.0
    )
    assert done["usage"]["total_tokens"] > 0
    msgs = (await client.get(f"/threads/{t}/messages", params={"run_id": run["id"]})).json()["data"]
    # the same message, now complete: replaced in place, not a second answer
    assert [(m["id"], m["status"], m["content"][0]["text"]["value"]) for m in msgs] == [
        (before[0]["id"], "completed", "the answer, made again")
    ]
    steps = (await client.get(f"/threads/{t}/runs/{run['id']}/steps")).json()["data"]
    assert [(x["id"], x["status"]) for x in steps] == [(step_ids[0], "completed")]
    assert len(llm.chat_requests) == 1  # the model call was made again, once
    async with state.db.session() as s:
        assert await s.scalar(select(Run.resumes).where(Run.id == run["id"])) == 1


async def test_past_its_resumes_a_run_fails_with_message_and_step_closed(
    client: httpx.AsyncClient, llm: FakeLLM, state
) -> None:
    a, t = await setup(client)
    run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
    await wait_status(client, t, run["id"], "completed")
    await _cut_mid_answer(state, run["id"])
    async with state.db.session(write=True) as s:
        await s.execute(update(Run).where(Run.id == run["id"]).values(resumes=state.executor.max_resumes))
    llm.clear_requests()
    await state.executor.reap()
    failed = (await client.get(f"/threads/{t}/runs/{run['id']}")).json()
    assert failed["status"] == "failed" and failed["last_error"]["code"] == "server_error"
    assert f"interrupted {state.executor.max_resumes + 1} times" in failed["last_error"]["message"]
    assert failed["usage"] is not None and failed["failed_at"] is not None
    step = (await client.get(f"/threads/{t}/runs/{run['id']}/steps")).json()["data"][0]
    assert step["status"] == "failed" and step["last_error"]["code"] == "server_error"
    msg = (await client.get(f"/threads/{t}/messages", params={"run_id": run["id"]})).json()["data"][0]
    assert msg["status"] == "incomplete" and msg["incomplete_details"] == {"reason": "run_failed"}
    assert llm.chat_requests == []


async def test_transition_table_refuses_illegal_moves(state) -> None:
    from assistd.executor.transitions import ALLOWED, TERMINAL, predecessors

    assert all(not ALLOWED[s] for s in TERMINAL)
    assert predecessors("queued") == {"in_progress", "requires_action"}
    assert "completed" not in ALLOWED["queued"]
