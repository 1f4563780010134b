"""Collecting a stream's events and checking the guarantees every stream must keep."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from assistd.llm import (
    ChatRequest,
    Finish,
    LLMClient,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallArgsDelta,
    ToolCallStart,
    Usage,
)

USER = [{"role": "user", "content": "What is the weather in Paris and Oslo?"}]
CALL_ID = re.compile(r"^call_[0-9A-Za-z]{24}$")
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def request(**overrides: Any) -> ChatRequest:
    return ChatRequest(**{"model": "fake-model", "messages": USER, **overrides})


@dataclass
class Call:
    id: str
    name: str
    arguments: str = ""


@dataclass
class Result:
    events: list[StreamEvent]
    text: str = ""
    reasoning: str = ""
    calls: list[Call] = field(default_factory=list)
    finish: str = ""
    usage: Usage | None = None


def check(events: list[StreamEvent]) -> Result:
    """Assemble the stream, asserting the protocol's guarantees on the way."""
    result = Result(events)
    assert isinstance(events[-1], Usage), events[-1:]
    assert isinstance(events[-2], Finish), events[-2:]
    assert sum(isinstance(e, Usage) for e in events) == 1
    assert sum(isinstance(e, Finish) for e in events) == 1
    result.usage = events[-1]
    result.finish = events[-2].reason
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    for event in events[:-2]:
        if isinstance(event, TextDelta):
            assert event.text
            result.text += event.text
        elif isinstance(event, ReasoningDelta):
            assert event.text
            result.reasoning += event.text
        elif isinstance(event, ToolCallStart):
            assert event.index == len(result.calls), f"start of index {event.index} out of order"
            assert event.id and event.name
            assert event.id not in {c.id for c in result.calls}, f"duplicate id {event.id}"
            result.calls.append(Call(event.id, event.name))
        elif isinstance(event, ToolCallArgsDelta):
            assert event.index < len(result.calls), f"arguments for index {event.index} before its start"
            result.calls[event.index].arguments += event.arguments
        else:
            raise AssertionError(f"unexpected event {event!r}")
    return result


async def collect(client: LLMClient, req: ChatRequest | None = None, **overrides: Any) -> Result:
    events = [event async for event in client.stream(req or request(**overrides))]
    return check(events)
