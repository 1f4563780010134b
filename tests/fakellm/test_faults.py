"""Faults and timing over real HTTP: HTTP errors, drops, malformed chunks, stalls, stream errors, pacing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import httpx
import pytest

from assistd.fakellm import FakeLLM
from tests.fakellm.helpers import chat

TEXT = "one two three four five"  # 7 chunks: role, 5 words, finish


async def read_until_error(client: httpx.AsyncClient, body: dict[str, object]) -> tuple[list[str], Exception]:
    """The ``data:`` lines received before the stream failed, and the failure."""
    lines: list[str] = []
    with pytest.raises(httpx.TransportError) as exc:  # noqa: PT012 - the failure is inside the iteration
        async with client.stream("POST", "/chat/completions", json={**body, "stream": True}) as r:
            assert r.status_code == 200
            async for line in r.aiter_lines():
                if line:
                    lines.append(line)
    return lines, exc.value


async def test_429_with_retry_after(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load([{"fault": {"type": "http_error", "status": 429, "retry_after": 2, "retry_after_ms": 1500}}, "after"])
    r = await http.post("/chat/completions", json=chat())
    assert r.status_code == 429
    assert r.headers["retry-after"] == "2"
    assert r.headers["retry-after-ms"] == "1500"
    assert r.json() == {
        "error": {
            "message": "Rate limit reached for requests. Please try again later.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    # the fault used its turn up: the retry gets the next one
    assert (await http.post("/chat/completions", json=chat())).json()["choices"][0]["message"]["content"] == "after"


async def test_500_and_custom_error_bodies(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load(
        [
            {"fault": {"type": "http_error", "status": 500}, "times": 2},
            {"fault": {"type": "http_error", "status": 503, "body": "upstream connect error", "headers": {"x-a": "b"}}},
            {"fault": {"type": "http_error", "status": 400, "body": {"detail": "vLLM says no"}}},
        ]
    )
    for do_stream in (False, True):
        r = await http.post("/chat/completions", json=chat(stream=do_stream))
        assert r.status_code == 500
        assert r.json()["error"]["type"] == "server_error"
    r = await http.post("/chat/completions", json=chat())
    assert (r.status_code, r.text, r.headers["x-a"]) == (503, "upstream connect error", "b")
    assert r.headers["content-type"].startswith("text/plain")
    r = await http.post("/chat/completions", json=chat())
    assert (r.status_code, r.json()) == (400, {"detail": "vLLM says no"})


async def test_drop_mid_stream(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load([{"text": TEXT, "fault": {"type": "drop", "after_chunks": 3}}])
    lines, error = await read_until_error(http, chat())
    assert isinstance(error, httpx.RemoteProtocolError)
    assert len(lines) == 3
    assert all(json.loads(line[len("data: ") :])["object"] == "chat.completion.chunk" for line in lines)


async def test_drop_without_streaming(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load([{"text": TEXT, "fault": "drop"}])
    with pytest.raises(httpx.RemoteProtocolError):
        await http.post("/chat/completions", json=chat())


async def test_malformed_chunk(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load(
        [
            {"text": TEXT, "fault": {"type": "malformed_chunk", "after_chunks": 2}},
            {"text": TEXT, "fault": {"type": "malformed_chunk", "data": "{oops"}},
        ]
    )
    async with http.stream("POST", "/chat/completions", json=chat(stream=True)) as r:
        raw = (await r.aread()).decode()
    events = [block[len("data: ") :] for block in raw.split("\n\n") if block]
    assert events[-1] == "[DONE]"  # the stream goes on after the bad line
    bad = [i for i, e in enumerate(events[:-1]) if not _is_json(e)]
    assert bad == [2]
    assert len(events) == 7 + 1 + 1
    r = await http.post("/chat/completions", json=chat())
    assert (r.status_code, r.text) == (200, "{oops")


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


async def test_stall_until_the_client_gives_up(fake: FakeLLM) -> None:
    fake.load([{"text": TEXT, "fault": {"type": "stall", "after_chunks": 2}}])
    async with httpx.AsyncClient(base_url=fake.base_url, timeout=httpx.Timeout(5, read=0.3)) as client:
        started = time.monotonic()
        lines, error = await read_until_error(client, chat())
        assert isinstance(error, httpx.ReadTimeout)
        assert time.monotonic() - started >= 0.29
        assert len(lines) == 2
    await eventually(lambda: fake.active_responses == 0)  # the server noticed the client leaving


async def eventually(condition: Callable[[], bool]) -> None:
    """Poll ``condition`` (something the server does on its own) for up to 2 s."""
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.01)
    pytest.fail("condition not met within 2 s")


async def test_stall_for_some_seconds_then_go_on(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load([{"text": TEXT, "fault": {"type": "stall", "after_chunks": 1, "seconds": 0.25}}])
    arrivals: list[float] = []
    started = time.monotonic()
    async with http.stream("POST", "/chat/completions", json=chat(stream=True)) as r:
        async for line in r.aiter_lines():
            if line:
                arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 8  # 7 chunks and [DONE]
    assert arrivals[1] - arrivals[0] >= 0.24


async def test_stall_without_streaming(fake: FakeLLM) -> None:
    fake.load([{"text": TEXT, "fault": {"type": "stall"}}])
    async with httpx.AsyncClient(base_url=fake.base_url, timeout=httpx.Timeout(5, read=0.2)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/chat/completions", json=chat())


async def test_stream_error_event(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load(
        [
            {"text": TEXT, "fault": {"type": "stream_error", "after_chunks": 2, "message": "overloaded", "code": "x"}},
            {"text": TEXT, "fault": {"type": "stream_error"}},
        ]
    )
    async with http.stream("POST", "/chat/completions", json=chat(stream=True)) as r:
        raw = (await r.aread()).decode()
    events = [json.loads(block[len("data: ") :]) for block in raw.split("\n\n") if block]
    assert len(events) == 3  # two chunks, the error, and no [DONE]
    assert events[-1] == {"error": {"message": "overloaded", "type": "server_error", "param": None, "code": "x"}}
    r = await http.post("/chat/completions", json=chat())
    assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"


async def test_fault_after_the_last_chunk_comes_before_done(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load([{"text": TEXT, "fault": {"type": "drop", "after_chunks": 99}}])
    lines, error = await read_until_error(http, chat())
    assert isinstance(error, httpx.RemoteProtocolError)
    assert len(lines) == 7 and "[DONE]" not in lines[-1]


async def test_time_to_first_token(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load([{"text": "hi", "ttft_ms": 200}, {"text": "hi", "ttft_ms": 200}])
    started = time.monotonic()
    async with http.stream("POST", "/chat/completions", json=chat(stream=True)) as r:
        assert r.status_code == 200  # headers come at once ...
        async for line in r.aiter_lines():
            if line:
                first = time.monotonic() - started  # ... the first chunk after ttft_ms
                break
    assert first >= 0.19
    started = time.monotonic()
    await http.post("/chat/completions", json=chat())
    assert time.monotonic() - started >= 0.19


async def test_tokens_per_second(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load([{"text": TEXT, "tokens_per_second": 40}])  # 7 chunks: 6 intervals of 25 ms
    arrivals: list[float] = []
    started = time.monotonic()
    async with http.stream("POST", "/chat/completions", json=chat(stream=True)) as r:
        async for line in r.aiter_lines():
            if line:
                arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 8
    assert arrivals[6] - arrivals[0] >= 6 / 40 - 0.01
    assert arrivals[6] < 2  # and not wildly slow
