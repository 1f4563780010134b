"""From ``chat.completion.chunk`` objects, in any upstream's dialect, to ordered :mod:`protocol` events.

Tool calls are where "OpenAI-compatible" servers differ most (DESIGN.md, "Upstream dialects").
Each tool-call entry of a delta is matched to a call by these rules, in order:

1. an ``index`` seen before: the call last seen at that index, unless the entry brings an ``id``
   other than that call's (every call of a parallel set at ``index: 0``, told apart by id);
   an ``index`` not seen before: a new call;
2. no ``index`` but a known ``id``: that call;
3. no ``index`` and no known ``id``: the latest call, unless the entry starts a new one.

Without an id to go by, an entry starts a new call when it names a function and the candidate
already has a different name, or the same name and complete JSON arguments; or when it carries
``type`` (sent on a call's first delta) after a call that has its name and complete arguments.
An entry that would start a new call with a repeated name and nothing else is held back until an
id or arguments come (some servers repeat the name on a call's last delta): with neither, it
never becomes a call.

A call is announced (:class:`ToolCallStart`) once its name is known, with the upstream's id when
it came (on the first delta, or the second: some servers send it late) or else a generated
``call_`` id, and announcements follow first-seen order; arguments that came earlier are sent
right after it, and everything that came after the call's first delta (text included) waits
behind the announcement, so the upstream's order is kept.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from assistd.ids import new_id
from assistd.llm.errors import UpstreamStreamError
from assistd.llm.protocol import (
    Finish,
    FinishReason,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallArgsDelta,
    ToolCallStart,
)

__all__ = ["StreamNormalizer", "completion_as_chunk", "normalize_finish_reason"]

log = logging.getLogger("assistd.llm")

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "eos": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "tool_use": "tool_calls",
    "length": "length",
    "max_tokens": "length",
    "model_length": "length",
    "content_filter": "content_filter",
    "safety": "content_filter",
}


def normalize_finish_reason(raw: str | None) -> FinishReason:
    return _FINISH.get(raw or "stop", "stop")


@dataclass(slots=True, eq=False)
class _Call:
    upstream_index: int | None
    upstream_id: str | None = None
    name: str | None = None
    arguments: str = ""
    pending: list[str] = field(default_factory=list)  # arguments received before the announcement
    entries: int = 0
    id_final: bool = False  # no upstream id will come any more: generate one if needed
    queued: bool = False  # its announcement has a place in the output queue
    started: bool = False
    dropped: bool = False  # parallel_tool_calls=false enforced client-side
    out_index: int = -1
    id: str = ""

    def complete(self) -> bool:
        text = self.arguments.strip()
        if not text:
            return False
        try:
            json.loads(text)
        except ValueError:
            return False
        return True


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _arguments(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping | list):  # a few servers send the arguments as an object
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return ""


class StreamNormalizer:
    """Feed decoded chunks in order; collect the events each makes ready. One per upstream response."""

    def __init__(self, *, where: str, single_tool_call: bool = False) -> None:
        self.where = where
        self.single_tool_call = single_tool_call
        self.usage: dict[str, Any] | None = None
        self.raw_finish: str | None = None
        self.done = False  # [DONE] seen
        self.completion_parts: list[str] = []  # text, reasoning, tool names and arguments, for counting
        self._queue: deque[StreamEvent | _Call] = deque()
        self._calls: list[_Call] = []
        self._by_index: dict[int, _Call] = {}
        self._by_id: dict[str, _Call] = {}
        self._ids: set[str] = set()
        self._started = 0
        self._dropped_warned = False

    # -- input -----------------------------------------------------------------------------------
    def feed(self, chunk: Any) -> list[StreamEvent]:
        """The events ``chunk`` (one decoded ``data:`` payload) makes ready, in order."""
        if not isinstance(chunk, Mapping):
            raise UpstreamStreamError(f"{self.where}: malformed chunk (not a JSON object)", retryable=False)
        if chunk.get("error") is not None:
            raise _error_event(chunk["error"], self.where)
        usage = chunk.get("usage")
        if isinstance(usage, Mapping) and any(k in usage for k in ("prompt_tokens", "completion_tokens")):
            self.usage = dict(usage)
        choices = chunk.get("choices")
        if isinstance(choices, list) and choices:
            choice = next((c for c in choices if isinstance(c, Mapping) and c.get("index", 0) == 0), None)
            if choice is not None:
                self._choice(choice)
        return self._drain()

    def _choice(self, choice: Mapping[str, Any]) -> None:
        delta: Mapping[str, Any] = {}
        for key in ("delta", "message"):  # "message": a server that ignored stream: true
            value = choice.get(key)
            if isinstance(value, Mapping):
                delta = value
                break
        for key in ("reasoning_content", "reasoning"):
            reasoning = _str(delta.get(key))
            if reasoning is not None:
                self._emit(ReasoningDelta(reasoning))
                break
        content = delta.get("content")
        if isinstance(content, str):
            if content:
                self._emit(TextDelta(content))
        elif isinstance(content, list):
            self._content_parts(content)
        refusal = _str(delta.get("refusal"))
        if refusal is not None:
            self._emit(TextDelta(refusal))
        tool_calls = delta.get("tool_calls")
        if isinstance(tool_calls, list):
            for entry in tool_calls:
                if isinstance(entry, Mapping):
                    self._tool_entry(entry)
        function_call = delta.get("function_call")  # the legacy single-call form
        if isinstance(function_call, Mapping):
            self._tool_entry({"function": function_call})
        finish = _str(choice.get("finish_reason"))
        if finish is not None:
            self.raw_finish = finish

    def _content_parts(self, parts: list[Any]) -> None:
        for part in parts:
            if not isinstance(part, Mapping):
                continue
            if part.get("type") == "thinking":  # Mistral: {"type": "thinking", "thinking": [{"text": ...}]}
                inner = part.get("thinking")
                texts = [p.get("text") for p in inner if isinstance(p, Mapping)] if isinstance(inner, list) else []
                for text in texts:
                    if isinstance(text, str) and text:
                        self._emit(ReasoningDelta(text))
            else:
                text = _str(part.get("text"))
                if text is not None:
                    self._emit(TextDelta(text))

    def _emit(self, event: TextDelta | ReasoningDelta) -> None:
        self.completion_parts.append(event.text)
        self._queue.append(event)

    # -- tool calls --------------------------------------------------------------------------------
    def _tool_entry(self, entry: Mapping[str, Any]) -> None:
        index = entry.get("index")
        index = index if isinstance(index, int) and not isinstance(index, bool) else None
        call_id = _str(entry.get("id"))
        fn = entry.get("function")
        fn = fn if isinstance(fn, Mapping) else {}
        name = _str(fn.get("name"))
        args = _arguments(fn.get("arguments"))
        marks_start = entry.get("type") is not None

        target: _Call | None = None
        if index is not None:
            candidate = self._by_index.get(index)
            if candidate is not None and call_id is not None and candidate.upstream_id not in (None, call_id):
                candidate = self._by_id.get(call_id)  # index 0 for every call: the id tells them apart
                if candidate is not None and candidate.upstream_index != index:
                    candidate = None
        elif call_id is not None and call_id in self._by_id:
            candidate = self._by_id[call_id]
        else:
            candidate = self._calls[-1] if self._calls else None
        if candidate is not None and not self._starts_new(candidate, call_id, name, args, marks_start):
            target = candidate
        if target is None:
            if call_id is None and name is None and not args:
                return  # nothing to tell a call by
            target = _Call(upstream_index=index)
            self._calls.append(target)
            tentative = (
                candidate is not None and call_id is None and not args and name is not None and name == candidate.name
            )
            if not tentative:
                self._queue_call(target)
        if index is not None:
            self._by_index[index] = target
        target.entries += 1
        if call_id is not None and target.upstream_id is None:
            target.upstream_id = call_id
            self._by_id.setdefault(call_id, target)
        if name is not None and target.name is None:
            target.name = name
        if args:
            target.arguments += args
            if target.started:
                if not target.dropped:
                    self._queue.append(ToolCallArgsDelta(target.out_index, args))
            else:
                target.pending.append(args)
        if not target.queued and (call_id is not None or args):
            self._queue_call(target)
        if target.upstream_id is None and target.entries >= 2:
            target.id_final = True  # the id did not come with the first two deltas: it will not come

    @staticmethod
    def _starts_new(candidate: _Call, call_id: str | None, name: str | None, args: str, marks_start: bool) -> bool:
        if call_id is not None and candidate.upstream_id is not None:
            return call_id != candidate.upstream_id
        if name is not None and candidate.name is not None:
            return name != candidate.name or candidate.complete()
        if marks_start and candidate.name is not None and candidate.complete():
            return True
        return call_id is not None and candidate.name is not None and candidate.complete() and bool(args)

    def _queue_call(self, call: _Call) -> None:
        call.queued = True
        for earlier in self._calls:
            if earlier is call:
                break
            earlier.id_final = True  # a later call has begun: no more id for the earlier ones
        self._queue.append(call)

    def _ready(self, call: _Call) -> bool:
        return call.name is not None and (call.upstream_id is not None or call.id_final)

    def _start(self, call: _Call) -> list[StreamEvent]:
        call.started = True
        if self.single_tool_call and self._started >= 1:
            call.dropped = True
            if not self._dropped_warned:
                self._dropped_warned = True
                log.warning(
                    "%s: parallel_tool_calls=false is not sent to this upstream; dropping its extra tool calls",
                    self.where,
                )
            return []
        call.out_index = self._started
        self._started += 1
        upstream_id = call.upstream_id
        call.id = upstream_id if upstream_id is not None and upstream_id not in self._ids else new_id("call")
        self._ids.add(call.id)
        name = call.name or ""
        self.completion_parts.append(name)
        out: list[StreamEvent] = [ToolCallStart(call.out_index, call.id, name)]
        if call.pending:
            out.append(ToolCallArgsDelta(call.out_index, "".join(call.pending)))
            call.pending = []
        return out

    # -- output ------------------------------------------------------------------------------------
    def _drain(self) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        queue = self._queue
        while queue:
            head = queue[0]
            if isinstance(head, _Call):
                if not self._ready(head):
                    break
                queue.popleft()
                out.extend(self._start(head))
            else:
                queue.popleft()
                out.append(head)
        return out

    def close(self) -> list[StreamEvent]:
        """The events still held back, then :class:`Finish`. Call once the upstream has finished."""
        for call in self._calls:
            call.id_final = True
            if call.name is None and call.queued:
                if call.arguments.strip():
                    raise UpstreamStreamError(
                        f"{self.where}: malformed tool call (arguments {call.arguments[:60]!r} but no function name)",
                        retryable=False,
                    )
                self._queue.remove(call)  # an id and nothing else: not a call
        out = self._drain()
        for call in self._calls:
            if call.started and not call.dropped:
                self.completion_parts.append(call.arguments)
        reason = normalize_finish_reason(self.raw_finish)
        calls = self._started > 0
        if reason == "stop" and calls:
            reason = "tool_calls"  # Ollama and others say "stop" after tool calls
        elif reason == "tool_calls" and not calls:
            reason = "stop"
        out.append(Finish(reason))
        return out

    @property
    def finished(self) -> bool:
        """The upstream said it was done: a ``finish_reason`` or ``[DONE]``."""
        return self.done or self.raw_finish is not None


def _error_event(error: Any, where: str) -> UpstreamStreamError:
    """An ``{"error": ...}`` event in the stream (OpenAI sends one when a stream fails server-side)."""
    if isinstance(error, Mapping):
        message = str(error.get("message") or error.get("type") or "unknown error")
        code = str(error.get("code") or error.get("type") or "")
    else:
        message, code = str(error), ""
    if code in ("rate_limit_exceeded", "rate_limit_error", "requests", "tokens"):
        return UpstreamStreamError(f"{where}: error event in the stream: {message}", code="rate_limit_exceeded")
    if code == "context_length_exceeded":
        return UpstreamStreamError(f"{where}: {message}", code="invalid_prompt", retryable=False)
    return UpstreamStreamError(f"{where}: error event in the stream: {message}")


def completion_as_chunk(body: Any) -> dict[str, Any]:
    """A non-streaming ``chat.completion`` (from a server that ignored ``stream: true``) as one chunk."""
    if not isinstance(body, Mapping):
        return {}
    choices = []
    for choice in body.get("choices") or []:
        if not isinstance(choice, Mapping):
            continue
        message = dict(choice.get("message") or {})
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            message["tool_calls"] = [
                {"index": i, **call} if isinstance(call, Mapping) else call for i, call in enumerate(calls)
            ]
        choices.append(
            {"index": choice.get("index", 0), "delta": message, "finish_reason": choice.get("finish_reason")}
        )
    chunk: dict[str, Any] = {"choices": choices}
    if body.get("usage") is not None:
        chunk["usage"] = body["usage"]
    if body.get("error") is not None:
        chunk["error"] = body["error"]
    return chunk
