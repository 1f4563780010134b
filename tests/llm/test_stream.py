"""Streaming against the real fake upstream: text, reasoning, tool calls in every dialect, usage, finish."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from assistd.fakellm import FakeLLM
from assistd.llm import LLMClient, TextDelta, ToolCallArgsDelta, ToolCallStart, tokens
from tests.llm.conftest import MakeClient
from tests.llm.helpers import CALL_ID, USER, WEATHER_TOOL, collect, request

ID_A = "call_" + "A" * 24
ID_B = "call_" + "B" * 24
PARIS = {"city": "Paris"}
OSLO = {"city": "Oslo", "days": 3}


def two_calls(same_name: bool = True) -> list[dict[str, Any]]:
    return [
        {"name": "get_weather", "arguments": PARIS, "id": ID_A},
        {"name": "get_weather" if same_name else "get_forecast", "arguments": OSLO, "id": ID_B},
    ]


class TestText:
    async def test_plain_text(self, fake: FakeLLM, client: LLMClient):
        fake.load(["Hello there, world!"])
        result = await collect(client)
        assert result.text == "Hello there, world!"
        assert [type(e).__name__ for e in result.events] == ["TextDelta"] * 3 + ["Finish", "Usage"]
        assert result.finish == "stop"
        body = fake.last_request.body
        assert body["stream"] is True
        assert body["stream_options"] == {"include_usage": True}
        assert body["model"] == "fake-model"
        assert body["messages"] == USER

    @pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
    async def test_reasoning_is_kept_apart(self, fake: FakeLLM, client: LLMClient, field: str):
        fake.load([{"reasoning": "Think first.", "text": "Answer.", "reasoning_field": field}])
        result = await collect(client)
        assert result.reasoning == "Think first."
        assert result.text == "Answer."
        kinds = [type(e).__name__ for e in result.events]
        assert kinds.index("ReasoningDelta") < kinds.index("TextDelta")

    async def test_request_parameters_are_passed_on(self, fake: FakeLLM, client: LLMClient):
        schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
        await collect(
            client,
            temperature=0.2,
            top_p=0.9,
            max_completion_tokens=50,
            response_format=schema,
            reasoning_effort="low",
        )
        body = fake.last_request.body
        assert body["temperature"] == 0.2
        assert body["top_p"] == 0.9
        assert body["max_completion_tokens"] == 50
        assert "max_tokens" not in body
        assert body["response_format"] == schema
        assert body["reasoning_effort"] == "low"

    async def test_no_tools_means_no_tool_choice(self, fake: FakeLLM, client: LLMClient):
        await collect(client, tools=[], tool_choice="required", parallel_tool_calls=False)
        body = fake.last_request.body
        assert not {"tools", "tool_choice", "parallel_tool_calls"} & body.keys()

    async def test_length(self, fake: FakeLLM, client: LLMClient):
        fake.load(["one two three four five six"])
        result = await collect(client, max_completion_tokens=2)
        assert result.finish == "length"
        assert result.text == "one two"


class TestToolCalls:
    async def test_parallel_calls(self, fake: FakeLLM, client: LLMClient):
        fake.load([{"tool_calls": two_calls()}])
        result = await collect(client, tools=[WEATHER_TOOL], tool_choice="auto", parallel_tool_calls=True)
        assert [(c.id, c.name, json.loads(c.arguments)) for c in result.calls] == [
            (ID_A, "get_weather", PARIS),
            (ID_B, "get_weather", OSLO),
        ]
        assert result.finish == "tool_calls"
        assert result.text == ""
        body = fake.last_request.body
        assert body["tools"] == [WEATHER_TOOL]
        assert body["tool_choice"] == "auto"
        assert body["parallel_tool_calls"] is True

    async def test_arguments_stream_as_deltas(self, fake: FakeLLM, client: LLMClient):
        fake.load([{"tool_calls": [{"name": "f", "arguments": {"query": "a long query string"}}]}])
        result = await collect(client, tools=[WEATHER_TOOL])
        deltas = [e for e in result.events if isinstance(e, ToolCallArgsDelta)]
        assert len(deltas) > 2  # not buffered to the end
        assert json.loads(result.calls[0].arguments) == {"query": "a long query string"}
        assert CALL_ID.match(result.calls[0].id)

    async def test_text_and_tool_calls_keep_their_order(self, fake: FakeLLM, client: LLMClient):
        fake.load([{"text": "Let me check.", "tool_calls": two_calls(), "tool_call_id": "missing_first"}])
        result = await collect(client, tools=[WEATHER_TOOL])
        kinds = [type(e).__name__ for e in result.events]
        assert kinds.index("ToolCallStart") > max(i for i, k in enumerate(kinds) if k == "TextDelta")
        assert result.text == "Let me check."
        assert [c.id for c in result.calls] == [ID_A, ID_B]

    # Every tool-call dialect the fake can produce, and their combinations.
    @pytest.mark.parametrize("same_name", [True, False], ids=["same-name", "two-names"])
    @pytest.mark.parametrize(
        "shape",
        ["fragments", "arguments_before_name", "whole_tool_call_in_one_chunk", "all_tool_calls_in_one_chunk"],
    )
    @pytest.mark.parametrize("id_mode", ["normal", "missing_first", "missing"])
    @pytest.mark.parametrize("index_mode", ["normal", "missing", "all_zero"])
    async def test_dialects(
        self, fake: FakeLLM, client: LLMClient, index_mode: str, id_mode: str, shape: str, same_name: bool
    ):
        options: dict[str, Any] = {"tool_call_index": index_mode, "tool_call_id": id_mode}
        if shape != "fragments":
            options[shape] = True
        calls = two_calls(same_name)
        fake.load([{"tool_calls": calls, **options}])
        result = await collect(client, tools=[WEATHER_TOOL])
        assert [(c.name, json.loads(c.arguments)) for c in result.calls] == [
            (calls[0]["name"], PARIS),
            (calls[1]["name"], OSLO),
        ]
        whole = shape in ("whole_tool_call_in_one_chunk", "all_tool_calls_in_one_chunk")
        if id_mode == "normal" or (id_mode == "missing_first" and not whole):
            assert [c.id for c in result.calls] == [ID_A, ID_B]  # the upstream's ids, even when late
        else:
            assert all(CALL_ID.match(c.id) for c in result.calls)
            assert {c.id for c in result.calls}.isdisjoint({ID_A, ID_B})
        assert result.finish == "tool_calls"

    async def test_calls_on_index_zero_told_apart_by_id(self, fake: FakeLLM, client: LLMClient):
        calls = [{"name": "f", "arguments": {"n": i}, "id": f"call_{i:024d}"} for i in range(4)]
        fake.load([{"tool_calls": calls, "tool_call_index": "all_zero", "arguments_chunk_size": 3}])
        result = await collect(client, tools=[WEATHER_TOOL])
        assert [(c.id, json.loads(c.arguments)) for c in result.calls] == [
            (call["id"], call["arguments"]) for call in calls
        ]

    async def test_first_delta_without_id_gets_a_stable_id_once(self, fake: FakeLLM, client: LLMClient):
        fake.load([{"tool_calls": [{"name": "f", "arguments": {"a": 1}}], "tool_call_id": "missing"}])
        result = await collect(client, tools=[WEATHER_TOOL])
        starts = [e for e in result.events if isinstance(e, ToolCallStart)]
        assert len(starts) == 1
        assert CALL_ID.match(starts[0].id)
        assert all(e.index == 0 for e in result.events if isinstance(e, ToolCallArgsDelta))

    async def test_arguments_before_name_are_buffered(self, fake: FakeLLM, client: LLMClient):
        fake.load([{"tool_calls": [{"name": "lookup", "arguments": {"q": "xyz"}}], "arguments_before_name": True}])
        result = await collect(client, tools=[WEATHER_TOOL])
        kinds = [type(e).__name__ for e in result.events]
        assert kinds[0] == "ToolCallStart"
        assert result.calls[0].name == "lookup"
        assert json.loads(result.calls[0].arguments) == {"q": "xyz"}

    async def test_duplicate_upstream_ids_are_made_distinct(self, fake: FakeLLM, client: LLMClient):
        calls = [{"name": "f", "arguments": {"n": i}, "id": "call_same"} for i in range(2)]
        fake.load([{"tool_calls": calls}])
        result = await collect(client, tools=[WEATHER_TOOL])
        assert result.calls[0].id == "call_same"
        assert CALL_ID.match(result.calls[1].id)
        assert [json.loads(c.arguments) for c in result.calls] == [{"n": 0}, {"n": 1}]

    async def test_invalid_json_arguments_pass_through(self, fake: FakeLLM, client: LLMClient):
        fake.load([{"tool_calls": [{"name": "f", "arguments": '{"broken": '}]}])
        result = await collect(client, tools=[WEATHER_TOOL])
        assert result.calls[0].arguments == '{"broken": '


class TestFinishReason:
    @pytest.mark.parametrize(("sent", "expected"), [("function_call", "tool_calls"), ("stop", "tool_calls")])
    async def test_with_tool_calls(self, fake: FakeLLM, client: LLMClient, sent: str, expected: str):
        fake.load([{"tool_calls": [{"name": "f", "arguments": {}}], "finish_reason": sent}])
        assert (await collect(client, tools=[WEATHER_TOOL])).finish == expected

    @pytest.mark.parametrize(
        ("sent", "expected"),
        [("tool_calls", "stop"), ("content_filter", "content_filter"), ("length", "length"), ("eos", "stop")],
    )
    async def test_without_tool_calls(self, fake: FakeLLM, client: LLMClient, sent: str, expected: str):
        fake.load([{"text": "x", "finish_reason": sent}])
        assert (await collect(client)).finish == expected


class TestUsage:
    async def test_reported_by_the_upstream(self, fake: FakeLLM, client: LLMClient):
        fake.load([{"text": "hi", "usage": {"prompt_tokens": 11, "completion_tokens": 22}}])
        result = await collect(client)
        assert (result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.total_tokens) == (11, 22, 33)

    async def test_reported_in_the_finish_chunk(self, fake: FakeLLM, client: LLMClient):
        fake.load(
            [{"text": "hi", "usage": {"prompt_tokens": 5, "completion_tokens": 6}, "usage_in_finish_chunk": True}]
        )
        assert (await collect(client)).usage.total_tokens == 11

    async def test_counted_with_tiktoken_when_absent(self, fake: FakeLLM, client: LLMClient):
        text = "The weather in Paris is sunny, 24 degrees."
        fake.load([{"text": text, "usage": "never"}])
        req = request(tools=[WEATHER_TOOL])
        result = await collect(client, req)
        usage = result.usage
        assert usage.completion_tokens == tokens.count_text(text, "fake-model") == 11
        sent = fake.last_request.body
        assert usage.prompt_tokens == tokens.count_messages(sent["messages"], "fake-model", sent["tools"])
        assert 30 < usage.prompt_tokens < 80  # ~13 for the message, ~40 for the tool

    async def test_tool_calls_and_reasoning_count_as_completion(self, fake: FakeLLM, client: LLMClient):
        fake.load([{"reasoning": "Two cities, two calls.", "tool_calls": two_calls(), "usage": "never"}])
        result = await collect(client, tools=[WEATHER_TOOL])
        assert 15 < result.usage.completion_tokens < 40

    async def test_counted_when_stream_options_are_off(self, fake: FakeLLM, make_client: MakeClient):
        client = make_client(send_stream_options=False)
        fake.load(["one two three"])
        result = await collect(client)
        assert "stream_options" not in fake.last_request.body
        assert result.usage.completion_tokens == 3


class TestCancel:
    async def test_closing_the_stream_closes_the_upstream_response(self, fake: FakeLLM, client: LLMClient):
        fake.load([{"text": " ".join(["word"] * 200), "tokens_per_second": 100}])
        stream = client.stream(request())
        first = await anext(stream)
        assert isinstance(first, TextDelta)
        assert fake.active_responses == 1
        await stream.aclose()
        for _ in range(100):
            if fake.active_responses == 0:
                break
            await _sleep(0.01)
        assert fake.active_responses == 0


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


class TestConnections:
    async def test_streams_in_turn_reuse_one_connection(self, fake: FakeLLM, client: LLMClient):
        fake.load(["One.", "Two.", "Three."])
        fake.clear_requests()
        for expected in ("One.", "Two.", "Three."):
            assert (await collect(client)).text == expected
            for _ in range(100):  # the end of each response is read in the background
                if not client._draining:
                    break
                await asyncio.sleep(0.01)
        peers = [r.peer for r in fake.chat_requests]
        assert len(peers) == 3 and peers[0] is not None
        assert len(set(peers)) == 1  # one kept-alive connection, not one per stream
