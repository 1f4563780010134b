"""A run's end is one transaction: its status, its message and its step are written together.

A failure is injected into exactly that transaction (the UPDATE that moves the run to
``completed``, after the message and step were written in the same transaction): the run, its
message and its step must still end consistent, whether the runner's retry writes them or, when
every try fails, the reaper takes the run up again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select, update

from assistd.executor.runner import END_ATTEMPTS
from assistd.fakellm import FakeLLM
from assistd.models import Run
from tests.runs.test_runs_http import setup, wait_status


class Injected(Exception):
    pass


@contextmanager
def failing_end(state: Any, times: int) -> Iterator[list[str]]:
    """The next ``times`` statements moving a run to ``completed`` fail (on every engine of the
    process); yields the list of statements failed."""
    failed: list[str] = []
    engines = [e for e in (state.db.engine, state.db.inline_engine, state.db.urgent_engine) if e is not None]

    def before(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        closing = statement.startswith("UPDATE runs SET status=") and "'completed'" in repr(parameters)
        if closing and len(failed) < times:
            failed.append(statement)
            raise Injected("injected failure of the run's closing transaction")

    for engine in engines:
        event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        yield failed
    finally:
        for engine in engines:
            event.remove(engine.sync_engine, "before_cursor_execute", before)


async def _ended(client: httpx.AsyncClient, t: str, run_id: str) -> tuple[dict[str, Any], Any, Any]:
    run = (await client.get(f"/threads/{t}/runs/{run_id}")).json()
    msgs = (await client.get(f"/threads/{t}/messages", params={"run_id": run_id})).json()["data"]
    steps = (await client.get(f"/threads/{t}/runs/{run_id}/steps")).json()["data"]
    return run, msgs, steps


async def test_the_closing_transaction_failing_once_is_written_again(
    client: httpx.AsyncClient, llm: FakeLLM, state, caplog: pytest.LogCaptureFixture
) -> None:
    llm.set_turns([{"text": "All done."}])
    a, t = await setup(client)
    with failing_end(state, 1) as failed:
        run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
        await wait_status(client, t, run["id"], "completed", "failed")
    assert len(failed) == 1
    run, msgs, steps = await _ended(client, t, run["id"])
    assert run["status"] == "completed" and run["last_error"] is None and run["completed_at"] is not None
    assert [(m["status"], m["content"][0]["text"]["value"]) for m in msgs] == [("completed", "All done.")]
    assert [(s["type"], s["status"]) for s in steps] == [("message_creation", "completed")]
    assert any("writing its end failed" in r.getMessage() for r in caplog.records)


async def test_when_every_try_fails_the_reaper_closes_run_message_and_step_together(
    client: httpx.AsyncClient, llm: FakeLLM, state, caplog: pytest.LogCaptureFixture
) -> None:
    llm.set_turns([{"text": "First answer."}, {"text": "Answer, made again."}])
    a, t = await setup(client)
    with failing_end(state, END_ATTEMPTS) as failed:
        run_id = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()["id"]
        for _ in range(500):  # the runner tries END_ATTEMPTS times (~2 s), then leaves the run
            if any("reaper takes it up" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.02)
    assert len(failed) == END_ATTEMPTS
    # Nothing of the failed transaction was committed: the run is still in progress, and so are
    # its message (without its text) and its step; nobody renews its lease.
    run, msgs, steps = await _ended(client, t, run_id)
    assert (run["status"], [m["status"] for m in msgs], [s["status"] for s in steps]) == (
        "in_progress",
        ["in_progress"],
        ["in_progress"],
    )
    async with state.db.session(write=True) as s:  # its lease lapses (5 s in the suite)
        await s.execute(update(Run).where(Run.id == run_id).values(lease_expires_at=time.time() - 1))
    await state.executor.reap()
    done = await wait_status(client, t, run_id, "completed", "failed")
    run, msgs, steps = await _ended(client, t, run_id)
    assert done["status"] == "completed"
    assert [(m["status"], m["content"][0]["text"]["value"]) for m in msgs] == [("completed", "Answer, made again.")]
    assert [(s["type"], s["status"]) for s in steps] == [("message_creation", "completed")]
    async with state.db.session() as s:
        assert await s.scalar(select(Run.resumes).where(Run.id == run_id)) == 1
