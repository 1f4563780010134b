"""Streaming through a real uvicorn server: keep-alive comments, and disconnects."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn

from assistd.app import create_app
from assistd.fakellm import FakeLLM
from tests.conftest import BETA


@pytest.fixture
async def live(state, project, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    """The app on a real uvicorn server (port picked by the OS), with keep-alives every 0.2 s."""
    monkeypatch.setattr(state.settings, "sse_keepalive_seconds", 0.2)
    app = create_app(state.settings, state)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(1000):  # bounded wait for start-up
        if server.started:
            break
        await asyncio.sleep(0.01)
    port = sock.getsockname()[1]
    headers = {**BETA, "Authorization": f"Bearer {project[0]}"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/v1", headers=headers, timeout=30) as client:
        yield client
    server.should_exit = True
    await task
    sock.close()


async def _setup(client: httpx.AsyncClient, content: str = "hi") -> tuple[str, str]:
    a = (await client.post("/assistants", json={"model": "fake-model"})).json()["id"]
    t = (await client.post("/threads", json={"messages": [{"role": "user", "content": content}]})).json()["id"]
    return a, t


async def test_keepalive_comments_while_the_model_is_silent(live: httpx.AsyncClient, llm: FakeLLM) -> None:
    # Only this test's request gets the slow turn: the fake is shared by the whole session, and a
    # run another test left behind could otherwise take it (this run then answered at once).
    llm.set_turns([{"match": {"last_user_contains": "keep-alive probe"}, "text": "late answer", "ttft_ms": 900}])
    a, t = await _setup(live, "keep-alive probe")
    lines: list[str] = []
    async with live.stream("POST", f"/threads/{t}/runs", json={"assistant_id": a, "stream": True}) as r:
        async for line in r.aiter_lines():
            lines.append(line)
    first_delta = next(i for i, x in enumerate(lines) if x == "event: thread.message.delta")
    assert '"value":"late"' in lines[first_delta + 1]  # the slow turn answered
    pings = [x for x in lines[:first_delta] if x.startswith(":")]
    assert len(pings) >= 2, lines[:first_delta]
    assert lines[-2:] == ["data: [DONE]", ""] or "data: [DONE]" in lines[-3:]


async def test_a_client_that_disconnects_does_not_stop_the_run(live: httpx.AsyncClient, llm: FakeLLM) -> None:
    llm.set_turns([{"text": "word " * 40, "tokens_per_second": 200, "chunk_size": 1}])
    a, t = await _setup(live)
    run_id: Any = None
    async with live.stream("POST", f"/threads/{t}/runs", json={"assistant_id": a, "stream": True}) as r:
        async for line in r.aiter_lines():
            if line.startswith("data:") and run_id is None and '"thread.run"' in line:
                import orjson

                run_id = orjson.loads(line[5:])["id"]
            if line == "event: thread.message.delta":
                break  # hang up mid-answer
    assert run_id is not None
    for _ in range(500):
        run = (await live.get(f"/threads/{t}/runs/{run_id}")).json()
        if run["status"] == "completed":
            break
        await asyncio.sleep(0.01)
    assert run["status"] == "completed"
    msg = (await live.get(f"/threads/{t}/messages", params={"run_id": run_id})).json()["data"][0]
    assert msg["content"][0]["text"]["value"] == "word " * 40


async def test_deleting_the_thread_ends_its_stream_with_an_error(live: httpx.AsyncClient, llm: FakeLLM) -> None:
    import orjson

    llm.set_turns([{"match": {"last_user_contains": "delete me"}, "text": "word " * 60, "tokens_per_second": 20}])
    a, t = await _setup(live, "delete me")
    events: list[str] = []
    data: list[bytes] = []
    loop = asyncio.get_running_loop()
    async with live.stream("POST", f"/threads/{t}/runs", json={"assistant_id": a, "stream": True}) as r:
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                events.append(line[7:])
            elif line.startswith("data: "):
                data.append(line[6:].encode())
                if events.count("thread.message.delta") == 3 and events[-1] == "thread.message.delta":
                    assert (await live.delete(f"/threads/{t}")).json()["deleted"] is True
                    deleted_at = loop.time()
    assert events[-2:] == ["error", "done"] and "thread.message.delta" in events
    assert loop.time() - deleted_at < 2  # at once, not after the stream's watchdog (5 s of silence)
    error = orjson.loads(data[-2])["error"]
    assert error["type"] == "invalid_request_error" and "its thread was deleted" in error["message"]
    assert (await live.get(f"/threads/{t}")).status_code == 404


async def test_cancel_mid_stream_sends_cancelling_then_the_endings(live: httpx.AsyncClient, llm: FakeLLM) -> None:
    import orjson

    llm.set_turns([{"match": {"last_user_contains": "cancel me"}, "text": "word " * 60, "tokens_per_second": 20}])
    a, t = await _setup(live, "cancel me")
    events: list[tuple[str, Any]] = []
    name = ""
    async with live.stream("POST", f"/threads/{t}/runs", json={"assistant_id": a, "stream": True}) as r:
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, None if name == "done" else orjson.loads(line[6:])))
                if [n for n, _ in events].count("thread.message.delta") == 2 and name == "thread.message.delta":
                    run_id = events[0][1]["id"]
                    assert (await live.post(f"/threads/{t}/runs/{run_id}/cancel")).json()["status"] == "cancelling"
    names = [n for n, _ in events]
    at = names.index("thread.run.cancelling")
    assert events[at][1]["status"] == "cancelling" and names[at - 1] == "thread.message.delta"
    assert sorted(names[at + 1 : at + 3]) == ["thread.message.incomplete", "thread.run.step.cancelled"]
    assert names[at + 3 :] == ["thread.run.cancelled", "done"]
    message = events[names.index("thread.message.incomplete")][1]
    assert message["incomplete_details"] == {"reason": "run_cancelled"}
    assert events[-2][1]["status"] == "cancelled" and events[-2][1]["required_action"] is None
