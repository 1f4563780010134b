"""Wire shapes the fake upstream cannot produce, through httpx.MockTransport; and Retry-After parsing.

Everything the fake can produce is tested against it (test_stream, test_faults, test_dialect);
these are the leftovers: CRLF line endings, SSE comments and ``event:`` lines, events without the
blank line between them, a JSON answer to a streaming request, the legacy ``function_call``
delta, Ollama's ``{"error": "..."}`` body, a stream that just ends.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from assistd.llm import LLMClient, Upstream, UpstreamConfig, UpstreamError
from assistd.llm.retry import backoff_delay, retry_after_seconds
from tests.llm.conftest import FAST
from tests.llm.helpers import collect

SSE = {"content-type": "text/event-stream"}


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> str:
    body = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}
    return json.dumps({**body, **extra})


def mock_client(handler: Callable[[httpx.Request], httpx.Response], **fields: Any) -> LLMClient:
    upstream = Upstream(base_url="http://mock.test/v1", **{**FAST, **fields})
    return LLMClient(UpstreamConfig(default=upstream), transport=httpx.MockTransport(handler))


def answering(body: str | bytes, headers: dict[str, str] | None = None, status: int = 200) -> LLMClient:
    content = body.encode() if isinstance(body, str) else body
    return mock_client(lambda request: httpx.Response(status, headers=headers or SSE, content=content))


async def test_crlf_comments_and_event_fields():
    body = (
        ": keep-alive\r\n\r\n"
        "event: message\r\nid: 1\r\nretry: 100\r\ndata: " + chunk({"content": "Hi"}) + "\r\n\r\n"
        ": OPENROUTER PROCESSING\r\n\r\n"
        "data:" + chunk({"content": " there"}) + "\r\n\r\n"
        "data: " + chunk(finish="stop") + "\r\n\r\n"
        "data: [DONE]\r\n\r\n"
    )
    async with answering(body) as client:
        result = await collect(client)
    assert result.text == "Hi there"


async def test_events_without_blank_lines_between_them():
    body = "\n".join(f"data: {c}" for c in (chunk({"content": "a"}), chunk({"content": "b"}), chunk(finish="stop")))
    async with answering(body + "\ndata: [DONE]\n") as client:
        assert (await collect(client)).text == "ab"


async def test_finish_then_eof_without_done():
    async with answering(f"data: {chunk({'content': 'x'})}\n\ndata: {chunk(finish='stop')}\n\n") as client:
        assert (await collect(client)).finish == "stop"


async def test_eof_without_finish_is_an_interrupted_stream():
    async with answering(f"data: {chunk({'content': 'x'})}\n\n") as client:
        with pytest.raises(UpstreamError, match="interrupted"):
            await collect(client)


async def test_json_answer_to_a_streaming_request():
    completion = {
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Checking.",
                    "reasoning_content": "hmm",
                    "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                        {"type": "function", "function": {"name": "g", "arguments": {"x": 1}}},
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    async with answering(json.dumps(completion), {"content-type": "application/json"}) as client:
        result = await collect(client)
    assert result.reasoning == "hmm"
    assert result.text == "Checking."
    assert [(c.name, c.arguments) for c in result.calls] == [("f", "{}"), ("g", '{"x":1}')]
    assert result.calls[0].id == "call_1"
    assert (result.finish, result.usage.total_tokens) == ("tool_calls", 7)


async def test_legacy_function_call_delta():
    body = "".join(
        f"data: {c}\n\n"
        for c in (
            chunk({"function_call": {"name": "lookup", "arguments": ""}}),
            chunk({"function_call": {"arguments": '{"q":'}}),
            chunk({"function_call": {"arguments": '"x"}'}}),
            chunk(finish="function_call"),
        )
    )
    async with answering(body + "data: [DONE]\n\n") as client:
        result = await collect(client)
    assert [(c.name, c.arguments) for c in result.calls] == [("lookup", '{"q":"x"}')]
    assert result.finish == "tool_calls"


async def test_tool_call_that_never_gets_a_name_is_an_error():
    tool = {"index": 0, "id": "call_1", "function": {"arguments": '{"a":1}'}}
    body = f"data: {chunk({'tool_calls': [tool]})}\n\ndata: {chunk(finish='tool_calls')}\n\ndata: [DONE]\n\n"
    async with answering(body) as client:
        with pytest.raises(UpstreamError, match="no function name") as info:
            await collect(client)
    assert info.value.code == "server_error"


async def test_ollama_error_body_and_status_text():
    async with answering('{"error":"model \\"llama9\\" not found"}', {"content-type": "application/json"}, 404) as c:
        with pytest.raises(UpstreamError) as info:
            await collect(c)
    assert info.value.message.endswith("""HTTP 404: model "llama9" not found""")
    async with answering(b"", {}, 404) as c:
        with pytest.raises(UpstreamError) as info:
            await collect(c)
    assert info.value.message.endswith("HTTP 404 Not Found")


async def test_mistral_content_parts():
    parts = [{"type": "thinking", "thinking": [{"type": "text", "text": "plan"}]}, {"type": "text", "text": "ok"}]
    body = f"data: {chunk({'content': parts})}\n\ndata: {chunk(finish='stop')}\n\ndata: [DONE]\n\n"
    async with answering(body) as client:
        result = await collect(client)
    assert (result.reasoning, result.text) == ("plan", "ok")


class TestRetryAfter:
    def test_seconds_ms_and_dates(self):
        now = datetime(2026, 1, 1, tzinfo=UTC)
        later = format_datetime(now + timedelta(seconds=7), usegmt=True)
        assert retry_after_seconds({"retry-after": "3"}) == 3
        assert retry_after_seconds({"retry-after": "0.5"}) == 0.5
        assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
        assert retry_after_seconds({"retry-after": later}, now=now) == 7
        assert retry_after_seconds({"retry-after": format_datetime(now, usegmt=True)}, now=now + timedelta(1)) == 0
        assert retry_after_seconds({}) is None
        assert retry_after_seconds({"retry-after": "soon"}) is None
        assert retry_after_seconds({"retry-after": "-1"}) is None
        assert retry_after_seconds({"retry-after-ms": "x", "retry-after": "2"}) == 2

    def test_backoff(self):
        delays = [backoff_delay(n, base=0.5, cap=8) for n in range(6)]
        for n, delay in enumerate(delays):
            nominal = min(0.5 * 2**n, 8)
            assert 0.75 * nominal <= delay <= nominal
