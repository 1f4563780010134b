"""What the run executor sends to an upstream model and the normalized events it gets back.

Whatever dialect the upstream speaks, :meth:`assistd.llm.LLMClient.stream` yields these events, in
order, with these guarantees:

- :class:`ReasoningDelta` carries reasoning text (``reasoning_content`` / ``reasoning``), never
  mixed into :class:`TextDelta`;
- each tool call gets exactly one :class:`ToolCallStart`, with a distinct ``index`` (0..n-1 in the
  order the calls first appeared) and a distinct non-empty ``id``, before any
  :class:`ToolCallArgsDelta` for that index; text and tool calls keep their upstream order;
- then exactly one :class:`Finish`, then exactly one :class:`Usage` (counted with tiktoken when the
  upstream reports none), always last.

A stream that fails raises :class:`assistd.llm.errors.UpstreamError` instead of finishing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "ChatRequest",
    "Finish",
    "FinishReason",
    "ReasoningDelta",
    "StreamEvent",
    "TextDelta",
    "ToolCallArgsDelta",
    "ToolCallStart",
    "Usage",
]

FinishReason = Literal["stop", "tool_calls", "length", "content_filter"]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat completion to stream from the upstream that :meth:`LLMClient.route` picks for ``model``.

    ``messages`` are OpenAI chat messages (``system``/``developer``/``user``/``assistant``/``tool``;
    content a string or a list of parts). The system role is rewritten to the upstream's
    ``system_role``. ``tools`` are OpenAI function tools; with no tools, ``tool_choice`` and
    ``parallel_tool_calls`` are not sent. ``None`` means "not sent" for every optional field.
    """

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None  # "auto" | "none" | "required" | {"type": "function", ...}
    parallel_tool_calls: bool | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_completion_tokens: int | None = None
    response_format: dict[str, Any] | None = None
    reasoning_effort: str | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    index: int
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolCallArgsDelta:
    index: int
    arguments: str


@dataclass(frozen=True, slots=True)
class Finish:
    reason: FinishReason


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


StreamEvent = TextDelta | ReasoningDelta | ToolCallStart | ToolCallArgsDelta | Finish | Usage
