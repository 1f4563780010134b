"""Helpers for the fake-upstream tests: request bodies and a raw SSE reader."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

USER = [{"role": "user", "content": "hi"}]


def chat(**overrides: Any) -> dict[str, Any]:
    """A chat request body: model ``m``, one user message, then ``overrides``."""
    return {"model": "m", "messages": USER, **overrides}


@dataclass
class Streamed:
    response: httpx.Response
    raw: str  # the whole body, as received

    @property
    def events(self) -> list[str]:
        """The ``data:`` payloads, in order (``[DONE]`` included)."""
        blocks = self.raw.split("\n\n")
        assert blocks[-1] == "", repr(self.raw[-40:])
        out = []
        for block in blocks[:-1]:
            assert block.startswith("data: ") and "\n" not in block, repr(block)
            out.append(block[len("data: ") :])
        return out

    @property
    def chunks(self) -> list[dict[str, Any]]:
        events = self.events
        assert events[-1] == "[DONE]"
        return [json.loads(e) for e in events[:-1]]

    @property
    def deltas(self) -> list[dict[str, Any]]:
        return [c["choices"][0]["delta"] for c in self.chunks if c["choices"]]

    @property
    def text(self) -> str:
        return "".join(d.get("content") or "" for d in self.deltas)

    @property
    def tool_call_entries(self) -> list[list[dict[str, Any]]]:
        """``delta.tool_calls`` of each chunk carrying tool calls."""
        return [d["tool_calls"] for d in self.deltas if d.get("tool_calls")]


async def stream(client: httpx.AsyncClient, body: dict[str, Any]) -> Streamed:
    async with client.stream("POST", "/chat/completions", json={**body, "stream": True}) as response:
        raw = (await response.aread()).decode()
    assert response.status_code == 200, raw
    assert response.headers["content-type"].startswith("text/event-stream")
    return Streamed(response, raw)
