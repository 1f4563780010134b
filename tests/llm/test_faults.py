"""Upstream failures against the real fake: retries, what is not retried, and the errors' codes and messages."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from assistd.fakellm import FakeLLM
from assistd.llm import (
    LLMClient,
    TextDelta,
    UpstreamConnectionError,
    UpstreamContextLengthError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamRequestError,
    UpstreamServerError,
    UpstreamStreamError,
    UpstreamTimeoutError,
)
from tests.llm.conftest import MakeClient
from tests.llm.helpers import collect, request

TEXT = "one two three four five"


async def failing(client: LLMClient) -> tuple[UpstreamError, list[object], float]:
    """Stream until the error: (the error, events yielded before it, seconds taken)."""
    events: list[object] = []
    started = time.perf_counter()
    try:
        async for event in client.stream(request()):
            events.append(event)
    except UpstreamError as exc:
        return exc, events, time.perf_counter() - started
    raise AssertionError(f"the stream did not fail: {events}")


def statuses(fake: FakeLLM) -> list[int | None]:
    return [r.status for r in fake.chat_requests]


class TestRetried:
    async def test_429_with_retry_after_then_success(self, fake: FakeLLM, client: LLMClient):
        fake.load([{"fault": {"type": "http_error", "status": 429, "retry_after": 0.2}}, TEXT])
        started = time.perf_counter()
        result = await collect(client)
        assert time.perf_counter() - started >= 0.2  # Retry-After honoured, not the 10 ms backoff
        assert result.text == TEXT
        assert statuses(fake) == [429, 200]

    async def test_retry_after_ms(self, fake: FakeLLM, client: LLMClient):
        fake.load([{"fault": {"type": "http_error", "status": 429, "retry_after": 5, "retry_after_ms": 150}}, TEXT])
        started = time.perf_counter()
        assert (await collect(client)).text == TEXT
        assert 0.15 <= time.perf_counter() - started < 2  # the ms header wins over the seconds one

    async def test_500_then_success(self, fake: FakeLLM, client: LLMClient):
        fake.load([{"fault": {"type": "http_error", "status": 500}, "times": 2}, TEXT])
        assert (await collect(client)).text == TEXT
        assert statuses(fake) == [500, 500, 200]

    async def test_drop_before_the_first_event_is_retried(self, fake: FakeLLM, client: LLMClient):
        fake.load([{"text": TEXT, "fault": {"type": "drop", "after_chunks": 1}}, TEXT])  # after the role chunk
        assert (await collect(client)).text == TEXT
        assert len(fake.chat_requests) == 2

    async def test_error_event_before_output_is_retried(self, fake: FakeLLM, client: LLMClient):
        fake.load([{"text": TEXT, "fault": {"type": "stream_error", "after_chunks": 1}}, TEXT])
        assert (await collect(client)).text == TEXT


class TestExhausted:
    async def test_429(self, fake: FakeLLM, client: LLMClient):
        fake.load([{"fault": {"type": "http_error", "status": 429}, "times": 3}, TEXT])
        error, events, _ = await failing(client)
        assert isinstance(error, UpstreamRateLimitError)
        assert error.code == "rate_limit_exceeded"
        assert error.status == 429
        assert error.retryable
        assert not events
        assert fake.base_url in error.message
        assert "HTTP 429: Rate limit reached" in error.message
        assert "gave up after 3 attempts" in error.message
        assert statuses(fake) == [429, 429, 429]

    async def test_long_retry_after_gives_up_at_once(self, fake: FakeLLM, client: LLMClient):
        fake.load([{"fault": {"type": "http_error", "status": 429, "retry_after": 120}}, TEXT])
        error, _, seconds = await failing(client)
        assert error.code == "rate_limit_exceeded"
        assert "retry after 120 s" in error.message
        assert seconds < 1
        assert len(fake.chat_requests) == 1

    async def test_500(self, fake: FakeLLM, make_client: MakeClient):
        client = make_client(max_retries=1)
        fake.load([{"fault": {"type": "http_error", "status": 503}, "times": 2}, TEXT])
        error, _, _ = await failing(client)
        assert isinstance(error, UpstreamServerError)
        assert error.code == "server_error"
        assert "HTTP 503: The engine is currently overloaded" in error.message
        assert "gave up after 2 attempts" in error.message
        assert statuses(fake) == [503, 503]

    async def test_no_retries_configured(self, fake: FakeLLM, make_client: MakeClient):
        client = make_client(max_retries=0)
        fake.load([{"fault": {"type": "http_error", "status": 502}}, TEXT])
        error, _, _ = await failing(client)
        assert error.code == "server_error"
        assert "attempts" not in error.message
        assert len(fake.chat_requests) == 1

    async def test_connection_refused_fails_fast(self, make_client: MakeClient):
        with socket.socket() as sock:  # a port nothing listens on
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        client = make_client(base_url=f"http://127.0.0.1:{port}/v1")
        error, _, seconds = await failing(client)
        assert seconds < 3
        assert isinstance(error, UpstreamConnectionError)
        assert error.code == "server_error"
        assert error.message == (
            f"upstream http://127.0.0.1:{port}/v1 (model 'fake-model'): connection refused (gave up after 3 attempts)"
        )


class TestFirstChunkTime:
    """A slow first chunk from an upstream that answers GET /models is waited for (it is loading or
    reading a long prompt), up to load_timeout_seconds; a hung one fails at timeout_seconds; a
    time-out is never retried."""

    async def test_alive_upstream_gets_more_time_once(self, fake: FakeLLM, make_client: MakeClient):
        client = make_client(timeout_seconds=0.3)
        fake.load([{"text": TEXT, "ttft_ms": 1500}, TEXT])
        result = await collect(client)
        assert result.text == TEXT
        assert len(fake.chat_requests) == 1  # waited for, not sent again
        assert [r.path for r in fake.requests if r.method == "GET"] == ["/v1/models"]

    async def test_alive_upstream_fails_at_load_timeout(self, fake: FakeLLM, make_client: MakeClient):
        client = make_client(timeout_seconds=0.2, load_timeout_seconds=0.8)
        fake.load([{"text": TEXT, "ttft_ms": 5000}, TEXT])
        error, _, seconds = await failing(client)
        assert isinstance(error, UpstreamTimeoutError)
        assert not error.retryable
        assert "it answered GET /models" in error.message
        assert "load_timeout_seconds = 0.8 s" in error.message
        assert 0.7 < seconds < 2
        assert len(fake.chat_requests) == 1

    async def test_hung_upstream_fails_at_timeout_without_retries(self, make_client: MakeClient):
        accepted: list[asyncio.StreamWriter] = []

        async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)  # accept, read nothing, answer nothing
            await asyncio.sleep(30)

        server = await asyncio.start_server(hang, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            client = make_client(base_url=f"http://127.0.0.1:{port}/v1", timeout_seconds=0.5, max_retries=2)
            error, events, seconds = await failing(client)
        finally:
            server.close()
            for w in accepted:
                w.close()
        assert isinstance(error, UpstreamTimeoutError)
        assert error.code == "server_error"
        assert not events
        assert error.message == (
            f"upstream http://127.0.0.1:{port}/v1 (model 'fake-model'): timed out (no response within 0.5 s, "
            "and it does not answer GET /models either: is it hung or overloaded?)"
        )
        assert seconds < 2.5  # 0.5 s, then a probe of at most 0.5 s; never three full waits
        assert len(accepted) == 2  # the chat request and the probe: no retry


class TestNotRetried:
    async def test_dropped_mid_stream(self, fake: FakeLLM, client: LLMClient):
        fake.load([{"text": TEXT, "fault": {"type": "drop", "after_chunks": 3}}, TEXT])
        error, events, _ = await failing(client)
        assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta("one"), TextDelta(" two")]
        assert isinstance(error, UpstreamStreamError)
        assert error.code == "server_error"
        assert error.partial and not error.retryable
        assert "the stream was interrupted" in error.message
        assert "after output had started" in error.message
        assert len(fake.chat_requests) == 1

    @pytest.mark.parametrize("after_chunks", [1, 3])
    async def test_malformed_chunk(self, fake: FakeLLM, client: LLMClient, after_chunks: int):
        fake.load([{"text": TEXT, "fault": {"type": "malformed_chunk", "after_chunks": after_chunks}}, TEXT])
        error, _, _ = await failing(client)
        assert error.code == "server_error"
        assert "malformed chunk" in error.message
        assert len(fake.chat_requests) == 1

    async def test_stall(self, fake: FakeLLM, make_client: MakeClient):
        client = make_client(read_timeout_seconds=0.3)
        fake.load([{"text": TEXT, "fault": {"type": "stall", "after_chunks": 3}}, TEXT])
        error, events, seconds = await failing(client)
        assert len([e for e in events if isinstance(e, TextDelta)]) == 2
        assert 0.3 <= seconds < 1.5
        assert isinstance(error, UpstreamStreamError)
        assert "stream stalled for 0.3 s" in error.message
        assert len(fake.chat_requests) == 1

    async def test_error_event_mid_stream(self, fake: FakeLLM, client: LLMClient):
        fault = {"type": "stream_error", "after_chunks": 3, "message": "The model crashed."}
        fake.load([{"text": TEXT, "fault": fault}, TEXT])
        error, _, _ = await failing(client)
        assert error.code == "server_error"
        assert "The model crashed." in error.message
        assert error.partial

    async def test_bad_key(self, fake: FakeLLM, make_client: MakeClient):
        fake.load({"api_key": "sk-right", "turns": [TEXT]})
        client = make_client(api_key="sk-wrong-key-123")
        error, _, _ = await failing(client)
        assert isinstance(error, UpstreamRequestError)
        assert error.code == "server_error"
        assert error.status == 401
        assert "HTTP 401: Incorrect API key provided" in error.message
        assert len(fake.chat_requests) == 1

    async def test_context_length(self, fake: FakeLLM, client: LLMClient):
        body = {
            "error": {
                "message": "This model's maximum context length is 8192 tokens. However, your messages resulted "
                "in 9000 tokens. Please reduce the length of the messages.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        }
        fake.load([{"fault": {"type": "http_error", "status": 400, "body": body}}, TEXT])
        error, _, _ = await failing(client)
        assert isinstance(error, UpstreamContextLengthError)
        assert error.code == "invalid_prompt"
        assert "maximum context length is 8192 tokens" in error.message
        assert len(fake.chat_requests) == 1

    async def test_plain_text_error_body(self, fake: FakeLLM, client: LLMClient):
        fake.load([{"fault": {"type": "http_error", "status": 400, "body": "model 'x' not found, try pulling it"}}])
        error, _, _ = await failing(client)
        assert error.code == "server_error"
        assert "HTTP 400: model 'x' not found, try pulling it" in error.message
