"""Separate processes on PostgreSQL: `assistd worker` executes, another process streams.

These need several processes sharing one database, which only PostgreSQL supports; on the
SQLite pass of the suite they are not collected (see the module-level skip).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from assistd.app import create_app
from assistd.fakellm import FakeLLM
from assistd.models import ExecutorRecord, Message, Run, Thread
from assistd.state import AppState
from tests.conftest import BETA, asgi_client
from tests.runs.util import RUN_START, TEXT_RUN, names, sse, stream_events

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
async def api(state: AppState, settings: Any, project: tuple[str, str]) -> AsyncIterator[Callable[..., Any]]:
    """An API process with no executor (the suite's own executor is paused meanwhile): a client
    through the ASGI app, or with ``live=True`` the context of a real server and its client."""
    assert state.executor is not None
    await state.executor.stop()
    api_state = await AppState.start(settings, background=False, executor=False)
    app = create_app(settings, api_state)
    try:
        yield lambda live=False: served(app, project[0]) if live else asgi_client(app, project[0])
    finally:
        await api_state.stop()
        state.executor.start()


@asynccontextmanager
async def served(app: Any, key: str) -> AsyncIterator[httpx.AsyncClient]:
    """``app`` on a real uvicorn server (streams arrive as they are sent, unlike through the ASGI
    transport, which hands over a response once it is complete)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(1000):
        if server.started:
            break
        await asyncio.sleep(0.01)
    headers = {**BETA, "Authorization": f"Bearer {key}"}
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{sock.getsockname()[1]}/v1", headers=headers, timeout=60
        ) as client:
            yield client
    finally:
        server.should_exit = True
        await task
        sock.close()


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


async def stream_into(client: httpx.AsyncClient, path: str, body: dict[str, Any], events: list[Any]) -> None:
    """POST with stream:true, appending each event (validated against the spec) as it arrives."""
    async for event in stream_events(client, path, body):
        events.append(event)


async def test_a_killed_workers_run_is_finished_by_another_and_its_stream_goes_on(
    api, settings, state, llm: FakeLLM, tmp_path: Path
) -> None:
    answer = "".join(f" w{i}" for i in range(120))
    llm.set_default({"text": answer, "tokens_per_second": 40})
    first = start_worker(settings, tmp_path, "w1")  # the default 30 s lease: not waited for
    second = None
    try:
        async with api(live=True) as client:
            a = (await client.post("/assistants", json={"model": "fake-model"})).json()["id"]
            t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "hi"}]})).json()["id"]
            events: list[Any] = []
            streaming = asyncio.create_task(stream_into(client, f"/threads/{t}/runs", {"assistant_id": a}, events))

            async def deltas() -> bool:
                return sum(n == "thread.message.delta" for n, _ in events) >= 5

            await until(deltas, 60)
            first.kill()  # SIGKILL mid-answer: no hand-back
            first.wait()
            killed_at = time.monotonic()
            second = start_worker(settings, tmp_path, "w2")
            await asyncio.wait_for(streaming, 30)
            took = time.monotonic() - killed_at
            run_id = events[0][1]["id"]
            run = (await client.get(f"/threads/{t}/runs/{run_id}")).json()
            msgs = (await client.get(f"/threads/{t}/messages", params={"run_id": run_id})).json()["data"]
    finally:
        if second is not None:
            stop_worker(second)
        stop_worker(first)
    assert run["status"] == "completed" and run["last_error"] is None
    assert took < 20  # the restarted worker saw the first one's process gone: no lease to wait out
    assert [(m["status"], m["content"][0]["text"]["value"]) for m in msgs] == [("completed", answer)]
    # the stream got the run's events from both workers, and its end
    assert [n for n, _ in events][-2:] == ["thread.run.completed", "done"]
    created = [i for i, (n, d) in enumerate(events) if n == "thread.message.created"]
    assert len(created) == 2, names(events)
    assert events[created[0]][1]["id"] == events[created[1]][1]["id"] == msgs[0]["id"]
    assert events[created[1]][1]["content"] == []  # started over: what came before it is replaced
    after = [d for n, d in events[created[1] :] if n == "thread.message.delta"]
    assert "".join(p["text"]["value"] for d in after for p in d["delta"]["content"]) == answer
    done = next(d for n, d in events if n == "thread.message.completed")
    assert done["content"][0]["text"]["value"] == answer
    async with state.db.session() as s:
        assert await s.scalar(select(Run.resumes).where(Run.id == run_id)) == 1


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


async def test_a_threads_variables_survive_consecutive_runs_with_two_workers(
    api, settings, state, llm: FakeLLM, tmp_path: Path
) -> None:
    sandbox = {"ASSISTD_SANDBOX_VENV": str(settings.resolved_sandbox_venv), "ASSISTD_SANDBOX_WARM_POOL": "0"}
    workers = [start_worker(settings, tmp_path, f"w{i}", **sandbox) for i in range(2)]
    runs = 6  # were a thread's runs claimed by either worker, all six on the first one's kernel: 1 in 32
    turns: list[Any] = [{"tool_calls": [{"name": "code_interpreter", "arguments": {"code": "x = 0\nprint(x)"}}]}]
    turns += [{"text": "ok"}]
    for _ in range(runs):
        turns += [{"tool_calls": [{"name": "code_interpreter", "arguments": {"code": "x += 1\nprint(x)"}}]}]
        turns += [{"text": "ok"}]
    llm.set_turns(turns)
    try:
        async with api() as client:
            a = await client.post("/assistants", json={"model": "fake-model", "tools": [{"type": "code_interpreter"}]})
            a = a.json()["id"]
            t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "count"}]})).json()["id"]

            async def run_once() -> str:
                run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()

                async def ended() -> dict[str, Any] | None:
                    r = (await client.get(f"/threads/{t}/runs/{run['id']}")).json()
                    return r if r["status"] not in ("queued", "in_progress") else None

                r = await until(ended, 60)
                assert r["status"] == "completed", r["last_error"]
                steps = (await client.get(f"/threads/{t}/runs/{run['id']}/steps", params={"order": "asc"})).json()
                call = steps["data"][0]["step_details"]["tool_calls"][0]["code_interpreter"]
                return call["outputs"][0]["logs"]

            assert (await run_once()).strip() == "0"
            for n in range(1, runs + 1):
                assert (await run_once()).strip() == str(n)  # the same kernel every time
            # The worker holding the kernel is killed: the next run executes on the other one, in a
            # new kernel, and the model is told that the thread's Python state is gone.
            async with state.db.session() as s:
                owner = await s.scalar(select(Thread.kernel_owner).where(Thread.id == t))
                pid = await s.scalar(select(ExecutorRecord.pid).where(ExecutorRecord.owner == owner))
            holder = next(w for w in workers if w.pid == pid)
            holder.kill()
            holder.wait()
            llm.set_turns(
                [{"tool_calls": [{"name": "code_interpreter", "arguments": {"code": "print('x' in dir())"}}]}, "ok"]
            )
            logs = await run_once()
            assert logs.strip().endswith("False")
            assert "previous Python session has ended" in logs and "worker process that held it has stopped" in logs
            sent = llm.chat_requests[-1].body["messages"][-1]
            assert sent["role"] == "tool" and "previous Python session has ended" in sent["content"]
    finally:
        for w in workers:
            stop_worker(w)


async def test_code_cut_mid_execution_runs_again_in_a_new_kernel_without_asking_the_model_again(
    api, settings, state, llm: FakeLLM, tmp_path: Path
) -> None:
    sandbox = {"ASSISTD_SANDBOX_VENV": str(settings.resolved_sandbox_venv), "ASSISTD_SANDBOX_WARM_POOL": "0"}
    code = "import time\ny = 7\ntime.sleep(4)\nprint('slept', y)"
    llm.set_turns([{"tool_calls": [{"name": "code_interpreter", "arguments": {"code": code}}]}, {"text": "Done."}])
    first = start_worker(settings, tmp_path, "w1", **sandbox)
    second = None
    try:
        async with api() as client:
            a = await client.post("/assistants", json={"model": "fake-model", "tools": [{"type": "code_interpreter"}]})
            a = a.json()["id"]
            t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "sleep"}]})).json()["id"]
            run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()

            async def executing() -> bool:  # the call is committed, its code is running
                steps = (await client.get(f"/threads/{t}/runs/{run['id']}/steps")).json()["data"]
                calls = steps[0]["step_details"]["tool_calls"] if steps else []
                return bool(calls) and calls[0]["code_interpreter"]["input"] == code

            await until(executing, 60)
            await asyncio.sleep(1)
            first.kill()
            first.wait()
            second = start_worker(settings, tmp_path, "w2", **sandbox)

            async def ended() -> dict[str, Any] | None:
                r = (await client.get(f"/threads/{t}/runs/{run['id']}")).json()
                return r if r["status"] not in ("queued", "in_progress") else None

            final = await until(ended, 60)
            steps = (await client.get(f"/threads/{t}/runs/{run['id']}/steps", params={"order": "asc"})).json()
    finally:
        if second is not None:
            stop_worker(second)
        stop_worker(first)
    assert final["status"] == "completed", final["last_error"]
    assert [(s["type"], s["status"]) for s in steps["data"]] == [
        ("tool_calls", "completed"),
        ("message_creation", "completed"),
    ]
    (call,) = steps["data"][0]["step_details"]["tool_calls"]
    logs = call["code_interpreter"]["outputs"][0]["logs"]
    assert logs.strip().endswith("slept 7")  # run again, to its end
    assert "previous Python session has ended" in logs
    # the model was asked once for the code and once after it: the cut call was not made again
    assert len(llm.chat_requests) == 2
    assert "previous Python session has ended" in llm.chat_requests[1].body["messages"][-1]["content"]
