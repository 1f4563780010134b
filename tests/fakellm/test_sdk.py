"""The official ``openai`` SDK against the fake over real TCP: answers, streams, tool calls, faults."""

from __future__ import annotations

import json
import time

import openai
import pytest

from assistd.fakellm import FakeLLM
from tests.fakellm.helpers import USER

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
PARALLEL = {
    "tool_calls": [
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "get_weather", "arguments": {"city": "Oslo, Norway"}},
        {"name": "get_time", "arguments": "{}"},
    ],
    "arguments_chunk_size": 3,
}


async def test_create_non_streaming(fake: FakeLLM, oai: openai.AsyncOpenAI) -> None:
    fake.load(["Hello from the script."])
    completion = await oai.chat.completions.create(model="gpt-4o", messages=USER)
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-4o"
    assert completion.choices[0].message.content == "Hello from the script."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == 5
    assert fake.last_request.headers["authorization"] == "Bearer sk-test"


async def test_create_streaming_with_usage(fake: FakeLLM, oai: openai.AsyncOpenAI) -> None:
    fake.load([{"text": "Streaming works fine.", "usage": {"prompt_tokens": 9, "completion_tokens": 4}}])
    stream = await oai.chat.completions.create(
        model="m",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = "", None, None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            usage = chunk.usage
    assert text == "Streaming works fine."
    assert finish == "stop"
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (9, 4, 13)


async def test_stream_helper_assembles_parallel_tool_calls(fake: FakeLLM, oai: openai.AsyncOpenAI) -> None:
    fake.load([PARALLEL])
    async with oai.chat.completions.stream(model="m", messages=USER, tools=[WEATHER_TOOL]) as stream:
        done = [event async for event in stream if event.type == "tool_calls.function.arguments.done"]
        final = await stream.get_final_completion()
    calls = final.choices[0].message.tool_calls
    assert calls is not None
    assert [(c.function.name, c.function.arguments) for c in calls] == [
        ("get_weather", '{"city":"Paris"}'),
        ("get_weather", '{"city":"Oslo, Norway"}'),
        ("get_time", "{}"),
    ]
    assert len({c.id for c in calls}) == 3 and all(c.id.startswith("call_") for c in calls)
    assert [e.index for e in done] == [0, 1, 2]
    assert final.choices[0].finish_reason == "tool_calls"


async def test_manual_accumulation_and_the_next_turn(fake: FakeLLM, oai: openai.AsyncOpenAI) -> None:
    fake.load([PARALLEL, {"match": {"has_tool_results": True}, "text": "Paris is sunny, Oslo rainy."}])
    stream = await oai.chat.completions.create(model="m", messages=USER, tools=[WEATHER_TOOL], stream=True)
    calls: dict[int, dict[str, str]] = {}
    async for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] = delta.id or call["id"]
            if delta.function is not None:
                call["name"] += delta.function.name or ""
                call["arguments"] += delta.function.arguments or ""
    assert [c["arguments"] for c in calls.values()] == ['{"city":"Paris"}', '{"city":"Oslo, Norway"}', "{}"]
    messages = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in calls.values()
            ],
        },
        *({"role": "tool", "tool_call_id": c["id"], "content": "ok"} for c in calls.values()),
    ]
    reply = await oai.chat.completions.create(model="m", messages=messages)
    assert reply.choices[0].message.content == "Paris is sunny, Oslo rainy."
    assert fake.last_request.body["messages"][2]["tool_call_id"] == calls[0]["id"]


async def test_reasoning_content_is_beside_the_content(fake: FakeLLM, oai: openai.AsyncOpenAI) -> None:
    fake.load([{"reasoning": "Two plus two.", "text": "4"}])
    stream = await oai.chat.completions.create(model="m", messages=USER, stream=True)
    reasoning, content = "", ""
    async for chunk in stream:
        delta = chunk.choices[0].delta
        reasoning += (delta.model_extra or {}).get("reasoning_content") or ""
        content += delta.content or ""
    assert (reasoning, content) == ("Two plus two.", "4")


async def test_rate_limit_then_retry_after(fake: FakeLLM) -> None:
    fake.load(
        [
            {"fault": {"type": "http_error", "status": 429, "retry_after": 7}},
            {"fault": {"type": "http_error", "status": 429, "retry_after_ms": 150}},
            "made it",
        ]
    )
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="x", max_retries=0) as no_retry:
        with pytest.raises(openai.RateLimitError) as exc:
            await no_retry.chat.completions.create(model="m", messages=USER)
    assert exc.value.status_code == 429
    assert exc.value.response.headers["retry-after"] == "7"
    assert exc.value.code == "rate_limit_exceeded"
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="x", max_retries=1) as retrying:
        started = time.monotonic()
        completion = await retrying.chat.completions.create(model="m", messages=USER)
    assert time.monotonic() - started >= 0.14  # the SDK waited as told by retry-after-ms
    assert completion.choices[0].message.content == "made it"
    assert [r.status for r in fake.chat_requests] == [429, 429, 200]


async def test_server_error(fake: FakeLLM, oai: openai.AsyncOpenAI) -> None:
    fake.load([{"fault": {"type": "http_error", "status": 500}}])
    with pytest.raises(openai.InternalServerError):
        await oai.chat.completions.create(model="m", messages=USER)


async def test_dropped_stream(fake: FakeLLM, oai: openai.AsyncOpenAI) -> None:
    fake.load([{"text": "one two three four", "fault": {"type": "drop", "after_chunks": 2}}])
    stream = await oai.chat.completions.create(model="m", messages=USER, stream=True)
    received = []
    with pytest.raises(openai.APIConnectionError):  # noqa: PT012 - it fails mid-iteration
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "one"]


async def test_malformed_chunk(fake: FakeLLM, oai: openai.AsyncOpenAI) -> None:
    fake.load([{"text": "one two three", "fault": {"type": "malformed_chunk", "after_chunks": 2}}])
    stream = await oai.chat.completions.create(model="m", messages=USER, stream=True)
    received = []
    with pytest.raises(json.JSONDecodeError):  # noqa: PT012 - the SDK fails on the bad line
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "one"]


async def test_stalled_stream_times_out(fake: FakeLLM) -> None:
    fake.load([{"text": "one two three", "fault": {"type": "stall", "after_chunks": 1}}])
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="x", max_retries=0, timeout=0.3) as client:
        stream = await client.chat.completions.create(model="m", messages=USER, stream=True)
        received = []
        with pytest.raises(openai.APITimeoutError):  # noqa: PT012
            async for chunk in stream:
                received.append(chunk.choices[0].delta.content)
    assert received == [""]


async def test_stream_error_event(fake: FakeLLM, oai: openai.AsyncOpenAI) -> None:
    fake.load([{"text": "one two", "fault": {"type": "stream_error", "after_chunks": 1, "message": "boom"}}])
    stream = await oai.chat.completions.create(model="m", messages=USER, stream=True)
    with pytest.raises(openai.APIError, match="boom"):
        async for _ in stream:
            pass


async def test_models_list(fake: FakeLLM, oai: openai.AsyncOpenAI) -> None:
    fake.load({"models": ["fake-model", "llama3.1:8b"]})
    assert [m.id async for m in oai.models.list()] == ["fake-model", "llama3.1:8b"]
