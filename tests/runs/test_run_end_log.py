"""Every run that ends failed, expired or incomplete leaves one WARNING naming the run, its thread,
its model, the upstream and last_error: an operator sees why from the log alone."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx
import pytest
from sqlalchemy import update

from assistd.fakellm import FakeLLM
from assistd.llm import LLMClient, UpstreamConfig
from assistd.models import Run
from tests.runs.test_runs_http import WEATHER, setup, wait_status


def ended_lines(caplog: pytest.LogCaptureFixture, run_id: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "assistd.runs" and run_id in r.getMessage()]


async def test_failed_run_is_logged_with_upstream_and_last_error(
    client: httpx.AsyncClient, llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    a, t = await setup(client)
    with caplog.at_level(logging.WARNING, logger="assistd.runs"):
        run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a, "model": "unreachable-model"})).json()
        failed = await wait_status(client, t, run["id"], "failed")
    [line] = ended_lines(caplog, run["id"])
    assert line.levelno == logging.WARNING
    assert line.getMessage() == (
        f"run {run['id']} ended failed (thread {t}, model 'unreachable-model', upstream http://127.0.0.1:9/v1): "
        f"server_error: {failed['last_error']['message']}"
    )
    assert "connection refused" in failed["last_error"]["message"]


async def test_incomplete_run_is_logged_with_its_reason(
    client: httpx.AsyncClient, llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    llm.set_turns([{"text": " ".join(["word"] * 400)}])  # more than the 256 tokens allowed
    a, t = await setup(client)
    with caplog.at_level(logging.WARNING, logger="assistd.runs"):
        run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a, "max_completion_tokens": 256})).json()
        await wait_status(client, t, run["id"], "incomplete")
    [line] = ended_lines(caplog, run["id"])
    assert line.getMessage().startswith(f"run {run['id']} ended incomplete (thread {t}, model 'fake-model', upstream ")
    assert line.getMessage().endswith("incomplete: max_completion_tokens")


async def test_completed_run_is_not_logged(client: httpx.AsyncClient, llm: FakeLLM, caplog) -> None:
    llm.set_turns(["Fine."])
    a, t = await setup(client)
    with caplog.at_level(logging.WARNING, logger="assistd.runs"):
        run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
        await wait_status(client, t, run["id"], "completed")
    assert ended_lines(caplog, run["id"]) == []


async def test_expired_run_is_logged(client: httpx.AsyncClient, llm: FakeLLM, state, caplog) -> None:
    llm.set_turns([{"tool_calls": [{"name": "get_weather", "arguments": {}}]}])
    a, t = await setup(client, tools=[WEATHER])
    run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
    await wait_status(client, t, run["id"], "requires_action")
    async with state.db.session(write=True) as s:
        await s.execute(update(Run).where(Run.id == run["id"]).values(expires_at=int(time.time()) - 1))
    with caplog.at_level(logging.WARNING, logger="assistd.runs"):
        await state.executor.reap()
    [line] = ended_lines(caplog, run["id"])
    assert f"ended expired (thread {t}, model 'fake-model'" in line.getMessage()
    assert line.getMessage().endswith("no tool outputs were submitted before expires_at")


async def test_hung_upstream_fails_the_run_within_its_timeout(
    client: httpx.AsyncClient, llm: FakeLLM, state, caplog: pytest.LogCaptureFixture
) -> None:
    """An upstream that accepts connections and never answers: the run fails at timeout_seconds
    (here 0.5 s; 60 s by default), not after three full waits, and says so in the log."""
    writers: list[asyncio.StreamWriter] = []

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    hung = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
    routes = json.dumps([{"pattern": "hung-*", "base_url": hung, "timeout_seconds": 0.5}])
    original = state.llm
    state.llm = LLMClient(UpstreamConfig.from_env_values(llm.base_url, None, routes))
    try:
        a, t = await setup(client)
        with caplog.at_level(logging.WARNING, logger="assistd.runs"):
            started = time.monotonic()
            run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a, "model": "hung-model"})).json()
            failed = await wait_status(client, t, run["id"], "failed")
            took = time.monotonic() - started
    finally:
        await state.llm.aclose()
        state.llm = original
        server.close()
        for w in writers:
            w.close()
    assert failed["last_error"] == {
        "code": "server_error",
        "message": f"upstream {hung} (model 'hung-model'): timed out (no response within 0.5 s, and it does not "
        "answer GET /models either: is it hung or overloaded?)",
    }
    assert took < 3
    [line] = ended_lines(caplog, run["id"])
    assert f"upstream {hung}): server_error: upstream {hung}" in line.getMessage()
