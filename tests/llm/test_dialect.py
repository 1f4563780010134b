"""Picky upstreams: dialect flags learned from a 400, kept per (upstream, model), and the user's intent kept."""

from __future__ import annotations

import json
import logging

import pytest

from assistd.fakellm import FakeLLM
from assistd.llm import LLMClient, UpstreamError
from tests.llm.conftest import MakeClient
from tests.llm.helpers import WEATHER_TOOL, collect, request

TEXT = "fine thanks"
SYSTEM = {"role": "system", "content": "Be brief."}
USER = {"role": "user", "content": "hi"}
OTHER_TOOL = {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}}


def sent(fake: FakeLLM) -> list[tuple[int | None, dict]]:
    return [(r.status, r.body) for r in fake.chat_requests]


class TestLearned:
    async def test_stream_options(self, fake: FakeLLM, client: LLMClient):
        fake.load({"options": {"reject_stream_options": True, "usage": "always"}, "turns": [TEXT, TEXT]})
        result = await collect(client)
        assert result.text == TEXT
        (s1, b1), (s2, b2) = sent(fake)
        assert (s1, s2) == (400, 200)
        assert "stream_options" in b1 and "stream_options" not in b2
        assert client.dialect("fake-model").send_stream_options is False
        fake.clear_requests()
        await collect(client)  # remembered: no 400 the second time
        assert [s for s, _ in sent(fake)] == [200]
        assert "stream_options" not in fake.last_request.body

    async def test_max_tokens(self, fake: FakeLLM, client: LLMClient):
        fake.load({"options": {"max_tokens_param": "max_tokens"}, "turns": [TEXT, TEXT]})
        await collect(client, max_completion_tokens=100)
        (s1, b1), (s2, b2) = sent(fake)
        assert s1 == 400 and b1["max_completion_tokens"] == 100
        assert s2 == 200 and b2["max_tokens"] == 100 and "max_completion_tokens" not in b2
        assert client.dialect("fake-model").max_tokens_param == "max_tokens"

    async def test_max_completion_tokens(self, fake: FakeLLM, make_client: MakeClient):
        client = make_client(max_tokens_param="max_tokens")
        fake.load({"options": {"max_tokens_param": "max_completion_tokens"}, "turns": [TEXT]})
        await collect(client, max_completion_tokens=100)
        assert [s for s, _ in sent(fake)] == [400, 200]
        assert fake.last_request.body["max_completion_tokens"] == 100

    async def test_no_flip_flop_when_both_are_refused(self, fake: FakeLLM, client: LLMClient):
        fake.load({"options": {"reject_params": ["max_tokens", "max_completion_tokens"]}, "turns": [TEXT]})
        with pytest.raises(UpstreamError) as info:
            await collect(client, max_completion_tokens=100)
        assert info.value.code == "server_error"
        assert "Unsupported parameter: 'max_tokens'" in info.value.message
        assert [s for s, _ in sent(fake)] == [400, 400]

    async def test_parallel_tool_calls_true_is_just_omitted(self, fake: FakeLLM, client: LLMClient):
        calls = [{"name": "get_weather", "arguments": {"city": c}} for c in ("Paris", "Oslo")]
        fake.load({"options": {"reject_parallel_tool_calls": True}, "turns": [{"tool_calls": calls}]})
        result = await collect(client, tools=[WEATHER_TOOL], parallel_tool_calls=True)
        assert len(result.calls) == 2
        assert "parallel_tool_calls" not in fake.last_request.body

    async def test_parallel_tool_calls_false_is_enforced_here(
        self, fake: FakeLLM, client: LLMClient, caplog: pytest.LogCaptureFixture
    ):
        calls = [{"name": "get_weather", "arguments": {"city": c}} for c in ("Paris", "Oslo", "Rome")]
        fake.load({"options": {"reject_parallel_tool_calls": True}, "turns": [{"tool_calls": calls}]})
        with caplog.at_level(logging.WARNING, logger="assistd.llm"):
            result = await collect(client, tools=[WEATHER_TOOL], parallel_tool_calls=False)
        assert [(c.name, json.loads(c.arguments)) for c in result.calls] == [("get_weather", {"city": "Paris"})]
        assert result.finish == "tool_calls"
        assert "dropping its extra tool calls" in caplog.text

    async def test_tool_choice_required_becomes_auto_with_a_warning(
        self, fake: FakeLLM, client: LLMClient, caplog: pytest.LogCaptureFixture
    ):
        fake.load({"options": {"reject_tool_choice_required": True}, "turns": [TEXT, TEXT]})
        with caplog.at_level(logging.WARNING, logger="assistd.llm"):
            await collect(client, tools=[WEATHER_TOOL], tool_choice="required")
        assert [(s, b["tool_choice"]) for s, b in sent(fake)] == [(400, "required"), (200, "auto")]
        assert "does not take tool_choice 'required'" in caplog.text
        caplog.clear()
        fake.clear_requests()
        with caplog.at_level(logging.WARNING, logger="assistd.llm"):
            await collect(client, tools=[WEATHER_TOOL], tool_choice="required")
        assert [(s, b["tool_choice"]) for s, b in sent(fake)] == [(200, "auto")]
        assert "does not take tool_choice 'required'" in caplog.text  # warned on every request

    async def test_tool_choice_refused_altogether(self, fake: FakeLLM, client: LLMClient):
        fake.load({"options": {"reject_params": ["tool_choice"]}, "turns": [TEXT, TEXT, TEXT]})
        await collect(client, tools=[WEATHER_TOOL], tool_choice="auto")
        assert [s for s, _ in sent(fake)] == [400, 200]
        assert "tool_choice" not in fake.last_request.body
        await collect(client, tools=[WEATHER_TOOL, OTHER_TOOL], tool_choice="none")
        assert "tools" not in fake.last_request.body  # "none" kept by not offering tools
        named = {"type": "function", "function": {"name": "other"}}
        await collect(client, tools=[WEATHER_TOOL, OTHER_TOOL], tool_choice=named)
        assert fake.last_request.body["tools"] == [OTHER_TOOL]  # the named function only

    async def test_developer_role(self, fake: FakeLLM, make_client: MakeClient):
        client = make_client(system_role="developer")
        fake.load({"options": {"reject_developer_role": True}, "turns": [TEXT]})
        await collect(client, messages=[SYSTEM, USER])
        (s1, b1), (s2, b2) = sent(fake)
        assert s1 == 400 and b1["messages"][0]["role"] == "developer"
        assert s2 == 200 and b2["messages"] == [SYSTEM, USER]
        assert client.dialect("fake-model").system_role == "system"

    async def test_learned_per_model(self, fake: FakeLLM, client: LLMClient):
        fake.load({"turns": [{"match": {"model": "picky"}, "reject_stream_options": True, "text": TEXT}]})
        await collect(client, model="picky")
        await collect(client, model="relaxed")
        assert client.dialect("picky").send_stream_options is False
        assert client.dialect("relaxed").send_stream_options is True
        assert "stream_options" in fake.last_request.body

    async def test_other_400s_are_not_learned_from(self, fake: FakeLLM, client: LLMClient):
        body = {"error": {"message": "Invalid value for 'temperature'.", "type": "invalid_request_error"}}
        fake.load([{"fault": {"type": "http_error", "status": 400, "body": body}}, TEXT])
        with pytest.raises(UpstreamError, match="Invalid value for 'temperature'"):
            await collect(client, temperature=9.0)
        assert len(fake.chat_requests) == 1


class TestConfigured:
    async def test_developer_role_rewrites_system(self, fake: FakeLLM, make_client: MakeClient):
        client = make_client(system_role="developer")
        await collect(client, messages=[SYSTEM, USER])
        assert fake.last_request.body["messages"][0] == {"role": "developer", "content": "Be brief."}

    async def test_system_role_rewrites_developer(self, fake: FakeLLM, client: LLMClient):
        await collect(client, messages=[{"role": "developer", "content": "Be brief."}, USER])
        assert fake.last_request.body["messages"][0] == SYSTEM

    async def test_request_messages_are_not_mutated(self, make_client: MakeClient):
        client = make_client(system_role="developer")
        req = request(messages=[dict(SYSTEM), dict(USER)])
        await collect(client, req)
        assert req.messages == [SYSTEM, USER]
