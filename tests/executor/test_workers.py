"""Separate processes on PostgreSQL: `assistd worker` executes, another process streams.

These need several processes sharing one database, which only PostgreSQL supports; on the
SQLite pass of the suite they are not collected (see the module-level skip).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from assistd.app import create_app
from assistd.fakellm import FakeLLM
from assistd.models import Message, Run
from assistd.state import AppState
from tests.conftest import asgi_client
from tests.runs.util import RUN_START, TEXT_RUN, names, sse

pytestmark = pytest.mark.skipif(
    os.environ.get("ASSISTD_TEST_DATABASE", "sqlite") == "sqlite", reason="several processes need PostgreSQL"
)


def start_worker(settings: Any, tmp_path: Path, name: str, **env: str) -> subprocess.Popen[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTD_")}
    environ.update(
        ASSISTD_DATABASE_URL=settings.database_url,
        ASSISTD_DATA_DIR=str(tmp_path / name),
        ASSISTD_UPSTREAM_BASE_URL=settings.upstream_base_url,
        ASSISTD_UPSTREAM_ROUTES=settings.upstream_routes or "",
        ASSISTD_LOG_LEVEL="warning",
        **env,
    )
    return subprocess.Popen(
        [sys.executable, "-m", "assistd", "worker"],
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop_worker(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


@pytest.fixture
async def api(
    state: AppState, settings: Any, project: tuple[str, str]
) -> AsyncIterator[Callable[[], httpx.AsyncClient]]:
    """An API process with no executor (the suite's own executor is paused meanwhile)."""
    assert state.executor is not None
    await state.executor.stop()
    api_state = await AppState.start(settings, background=False, executor=False)
    app = create_app(settings, api_state)
    try:
        yield lambda: asgi_client(app, project[0])
    finally:
        await api_state.stop()
        state.executor.start()


async def until(check: Callable[[], Any], seconds: float = 20.0) -> Any:
    for _ in range(int(seconds / 0.02)):
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_a_worker_executes_and_the_api_streams(api, settings, llm: FakeLLM, tmp_path: Path) -> None:
    llm.set_default({"text": "Answered by a worker.", "chunk_size": 5})
    worker = start_worker(settings, tmp_path, "w1")
    try:
        async with api() as client:
            a = (await client.post("/assistants", json={"model": "fake-model"})).json()["id"]
            t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "hi"}]})).json()["id"]
            events = await asyncio.wait_for(sse(client, f"/threads/{t}/runs", {"assistant_id": a}), 30)
            assert names(events) == RUN_START + TEXT_RUN
            # cancel reaches the worker executing the run
            llm.set_default({"text": "slow " * 300, "tokens_per_second": 30})
            run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()

            async def in_progress() -> bool:
                r = (await client.get(f"/threads/{t}/runs/{run['id']}")).json()
                return r["status"] == "in_progress" and llm.active_responses > 0

            await until(in_progress)
            await client.post(f"/threads/{t}/runs/{run['id']}/cancel")

            async def cancelled() -> bool:
                return (await client.get(f"/threads/{t}/runs/{run['id']}")).json()["status"] == "cancelled"

            await until(cancelled, 10)
            # streamed here, executed there, cancelled here: the stream gets every ending event
            llm.set_turns(
                [{"match": {"last_user_contains": "stream me"}, "text": "slow " * 300, "tokens_per_second": 30}]
            )
            t2 = (await client.post("/threads", json={"messages": [{"role": "user", "content": "stream me"}]})).json()
            t2 = t2["id"]
            streamed = asyncio.create_task(sse(client, f"/threads/{t2}/runs", {"assistant_id": a}))

            async def answering() -> Any:
                runs = (await client.get(f"/threads/{t2}/runs")).json()["data"]
                return runs and runs[0]["status"] == "in_progress" and llm.active_responses > 0 and runs[0]["id"]

            run2 = await until(answering)
            await asyncio.sleep(0.2)
            assert (await client.post(f"/threads/{t2}/runs/{run2}/cancel")).status_code == 200
            names_seen = names(await asyncio.wait_for(streamed, 20))
            at = names_seen.index("thread.run.cancelling")
            assert sorted(names_seen[at + 1 : at + 3]) == ["thread.message.incomplete", "thread.run.step.cancelled"]
            assert names_seen[at + 3 :] == ["thread.run.cancelled", "done"]
    finally:
        out = stop_worker(worker)
    assert worker.returncode == 0, out


async def test_a_killed_worker_is_reaped(api, settings, state, llm: FakeLLM, tmp_path: Path) -> None:
    llm.set_default({"text": "word " * 500, "tokens_per_second": 40})
    lease = {"ASSISTD_RUN_LEASE_SECONDS": "1"}
    first = start_worker(settings, tmp_path, "w1", **lease)
    second = None
    try:
        async with api() as client:
            a = (await client.post("/assistants", json={"model": "fake-model"})).json()["id"]
            t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "hi"}]})).json()["id"]
            run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()

            async def streaming() -> bool:
                msgs = (await client.get(f"/threads/{t}/messages", params={"run_id": run["id"]})).json()["data"]
                return bool(msgs) and llm.active_responses > 0

            await until(streaming)
            first.kill()  # SIGKILL mid-run: no hand-back
            first.wait()
            second = start_worker(settings, tmp_path, "w2", **lease)

            async def reaped() -> dict[str, Any] | None:
                r = (await client.get(f"/threads/{t}/runs/{run['id']}")).json()
                return r if r["status"] not in ("in_progress", "queued") else None

            final = await until(reaped, 20)
            assert final["status"] == "failed" and final["last_error"]["code"] == "server_error"
            msg = (await client.get(f"/threads/{t}/messages", params={"run_id": run["id"]})).json()["data"][0]
            assert msg["status"] == "incomplete"
    finally:
        if second is not None:
            stop_worker(second)
        stop_worker(first)


async def test_two_workers_200_runs_none_twice_none_lost(api, settings, state, llm: FakeLLM, tmp_path: Path) -> None:
    llm.set_default({"text": "done"})
    workers = [start_worker(settings, tmp_path, f"w{i}") for i in range(2)]
    try:
        async with api() as client:
            a = (await client.post("/assistants", json={"model": "fake-model"})).json()["id"]
            threads = [
                (await client.post("/threads", json={"messages": [{"role": "user", "content": f"q{i}"}]})).json()["id"]
                for i in range(200)
            ]
            llm.clear_requests()
            run_ids = [
                (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()["id"] for t in threads
            ]

            async def all_done() -> bool:
                async with state.db.session() as s:
                    n = await s.scalar(
                        select(func.count()).select_from(Run).where(Run.id.in_(run_ids), Run.status == "completed")
                    )
                return n == len(run_ids)

            await until(all_done, 60)
            async with state.db.session() as s:
                per_run = dict(
                    (
                        await s.execute(
                            select(Message.run_id, func.count())
                            .where(Message.run_id.in_(run_ids))
                            .group_by(Message.run_id)
                        )
                    ).all()
                )
                attempts = set(await s.scalars(select(Run.attempt).where(Run.id.in_(run_ids))))
            assert per_run == dict.fromkeys(run_ids, 1)  # one answer each: none executed twice
            assert attempts == {1}
            assert len(llm.chat_requests) == 200  # the upstream saw every run exactly once
    finally:
        for w in workers:
            stop_worker(w)


async def test_events_too_big_for_notify_still_arrive_in_order(api, settings, llm: FakeLLM, tmp_path: Path) -> None:
    # chunks of 3,000 words (~20 KB): deltas and the completed message exceed NOTIFY's 8000 bytes,
    # so they are read from run_events while the small events around them ride in notifications.
    text = " ".join(f"w{i}" for i in range(9000))
    llm.set_default({"text": text, "chunk_size": 3000, "chunk_unit": "words"})
    worker = start_worker(settings, tmp_path, "w-big")
    try:
        async with api() as client:
            a = (await client.post("/assistants", json={"model": "fake-model"})).json()["id"]
            t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "hi"}]})).json()["id"]
            events = await asyncio.wait_for(sse(client, f"/threads/{t}/runs", {"assistant_id": a}), 30)
    finally:
        out = stop_worker(worker)
    assert worker.returncode == 0, out
    assert names(events)[:7] == RUN_START + TEXT_RUN[:4]
    deltas = [d["delta"]["content"][0]["text"]["value"] for n, d in events if n == "thread.message.delta"]
    assert len(deltas) == 3 and "".join(deltas) == text
    completed = next(d for n, d in events if n == "thread.message.completed")
    assert completed["content"][0]["text"]["value"] == text
    assert names(events)[-2:] == ["thread.run.completed", "done"]
