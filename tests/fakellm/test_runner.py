"""``FakeLLM`` itself: on the test's event loop, in a background thread, from a file, and stopping."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import httpx
import pytest

from assistd.fakellm import FakeLLM, create_fake_llm_app
from tests.fakellm.helpers import chat


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def test_async_context_manager(tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    path.write_text(json.dumps({"turns": ["from a file"]}))
    async with FakeLLM(path) as llm:
        assert llm.base_url == f"http://127.0.0.1:{llm.port}/v1"
        async with httpx.AsyncClient(base_url=llm.base_url) as c:
            r = await c.post("/chat/completions", json=chat())
        assert r.json()["choices"][0]["message"]["content"] == "from a file"
        port = llm.port
    assert port_is_free(port)
    with pytest.raises(RuntimeError, match="not running"):
        _ = llm.base_url


def test_background_thread() -> None:
    with FakeLLM({"turns": ["from a thread"]}) as llm, httpx.Client(base_url=llm.base_url) as c:
        r = c.post("/chat/completions", json=chat(stream=True))
        assert "from" in r.text and r.text.endswith("data: [DONE]\n\n")
        assert llm.chat_requests[0].turn == "turns[0]"
        port = llm.port
    assert port_is_free(port)


async def test_stop_ends_a_stalled_stream_at_once() -> None:
    llm = FakeLLM([{"text": "a b c", "fault": {"type": "stall", "after_chunks": 1}}])
    await llm.start()
    async with httpx.AsyncClient(base_url=llm.base_url, timeout=10) as c:
        got_first = asyncio.Event()

        async def read() -> Exception | None:
            try:
                async with c.stream("POST", "/chat/completions", json=chat(stream=True)) as r:
                    async for _ in r.aiter_lines():
                        got_first.set()
            except httpx.TransportError as exc:
                return exc
            return None

        reader = asyncio.create_task(read())
        await asyncio.wait_for(got_first.wait(), 5)
        started = time.monotonic()
        await llm.stop()
        assert time.monotonic() - started < 2
        assert isinstance(await reader, httpx.RemoteProtocolError)


async def test_restart_and_an_explicit_port() -> None:
    llm = FakeLLM(["a b", "c d"])
    async with llm:
        first = llm.port
        with pytest.raises(RuntimeError, match="already running"):
            await llm.start()
    async with FakeLLM(port=first) as other:  # the port is free again at once
        assert other.port == first
    async with llm, httpx.AsyncClient(base_url=llm.base_url) as c:  # a stopped fake starts again
        r = await c.post("/chat/completions", json=chat(stream=True))
        assert r.text.endswith("data: [DONE]\n\n") and '"content":" b"' in r.text


async def test_the_asgi_app_without_a_server() -> None:
    app = create_fake_llm_app({"turns": ["in process"]})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake/v1") as c:
        r = await c.post("/chat/completions", json=chat())
    assert r.json()["choices"][0]["message"]["content"] == "in process"
    assert app.state.fakellm.requests[0].turn == "turns[0]"
