"""What a turn answers, and its wire form: a ``chat.completion`` body or ``chat.completion.chunk`` list.

Pure functions, no I/O: :func:`plan_completion` resolves a turn against a request (echo, token
caps, ids, usage); :func:`completion_body` and :func:`stream_chunks` render it in OpenAI's exact
shape, bent by the dialect options (missing tool-call indexes, late names, usage placement, ...).
"""

from __future__ import annotations

import json
import random
import re
import string
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from assistd.fakellm.script import Options, Turn, last_user_text, message_text

__all__ = [
    "Completion",
    "PlannedCall",
    "completion_body",
    "count_tokens",
    "plan_completion",
    "split_text",
    "stream_chunks",
    "tool_call_deltas",
]

SYSTEM_FINGERPRINT = "fp_fakellm"
_ALNUM = string.ascii_letters + string.digits
_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\s*\S+|\s+")


def new_id(prefix: str, length: int) -> str:
    return prefix + "".join(random.choices(_ALNUM, k=length))


def count_tokens(text: str | None) -> int:
    """A rough token count: words and punctuation marks."""
    return len(_TOKEN.findall(text)) if text else 0


def _truncate_tokens(text: str, budget: int) -> str:
    if budget <= 0:
        return ""
    for i, m in enumerate(_TOKEN.finditer(text), 1):
        if i == budget:
            return text[: m.end()]
    return text


def split_text(text: str | None, size: int = 1, unit: str = "words") -> list[str]:
    """Stream pieces of ``text``: ``size`` characters, or ``size`` words (each with its leading space)."""
    if not text:
        return []
    if unit == "chars":
        return [text[i : i + size] for i in range(0, len(text), size)]
    words = _WORD.findall(text)
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


@dataclass(frozen=True)
class PlannedCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Completion:
    """One resolved answer, ready to be rendered as JSON or as stream chunks."""

    id: str
    created: int
    model: str
    text: str | None
    reasoning: str | None
    tool_calls: tuple[PlannedCall, ...]
    finish_reason: str
    usage: dict[str, Any]
    options: Options


def estimate_prompt_tokens(body: Mapping[str, Any]) -> int:
    total = 0
    for message in body.get("messages") or []:
        if not isinstance(message, Mapping):
            continue
        total += 3 + count_tokens(message_text(message))
        for call in message.get("tool_calls") or []:
            fn = call.get("function") if isinstance(call, Mapping) else None
            if isinstance(fn, Mapping):
                total += count_tokens(str(fn.get("name", ""))) + count_tokens(str(fn.get("arguments", "")))
    if body.get("tools"):
        total += count_tokens(json.dumps(body["tools"]))
    return total + 3


def _token_cap(body: Mapping[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def plan_completion(turn: Turn, options: Options, body: Mapping[str, Any]) -> Completion:
    """Resolve ``turn`` for this request: echo text, a token cap (``finish_reason: length``), usage."""
    text = last_user_text(body) if turn.echo else turn.text
    reasoning = turn.reasoning
    calls = tuple(
        PlannedCall(id=c.id or new_id("call_", 24), name=c.name, arguments=c.arguments) for c in turn.tool_calls
    )
    if text is None and not calls and reasoning is None:
        text = ""
    finish = "tool_calls" if calls else "stop"
    reasoning_tokens = count_tokens(reasoning)
    completion_tokens = (
        reasoning_tokens + count_tokens(text) + sum(count_tokens(c.name) + count_tokens(c.arguments) for c in calls)
    )
    cap = _token_cap(body) if options.honour_max_tokens else None
    if cap is not None and completion_tokens > cap:
        text = _truncate_tokens(text or "", cap - reasoning_tokens)
        calls = ()
        finish = "length"
        completion_tokens = cap
    if turn.finish_reason is not None:
        finish = turn.finish_reason
    prompt_tokens = estimate_prompt_tokens(body)
    if turn.usage is not None:
        if turn.usage.prompt_tokens is not None:
            prompt_tokens = turn.usage.prompt_tokens
        if turn.usage.completion_tokens is not None:
            completion_tokens = turn.usage.completion_tokens
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": min(reasoning_tokens, completion_tokens),
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    return Completion(
        id=new_id("chatcmpl-", 29),
        created=int(time.time()),
        model=str(body.get("model", "")),
        text=text,
        reasoning=reasoning,
        tool_calls=calls,
        finish_reason=finish,
        usage=usage,
        options=options,
    )


def completion_body(c: Completion) -> dict[str, Any]:
    """The non-streaming ``chat.completion`` object."""
    message: dict[str, Any] = {"role": "assistant", "content": c.text, "refusal": None, "annotations": []}
    if c.reasoning is not None:
        message[c.options.reasoning_field] = c.reasoning
    if c.tool_calls:
        message["tool_calls"] = [
            {
                **({} if c.options.tool_call_id == "missing" else {"id": call.id}),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in c.tool_calls
        ]
    body: dict[str, Any] = {
        "id": c.id,
        "object": "chat.completion",
        "created": c.created,
        "model": c.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": c.finish_reason}],
    }
    if c.options.usage_mode != "never":
        body["usage"] = c.usage
    body["service_tier"] = "default"
    body["system_fingerprint"] = SYSTEM_FINGERPRINT
    return body


def tool_call_deltas(calls: tuple[PlannedCall, ...], options: Options) -> list[list[dict[str, Any]]]:
    """The ``delta.tool_calls`` list of each chunk that carries tool calls, in order."""
    if not calls:
        return []
    per_call: list[list[dict[str, Any]]] = []
    for i, call in enumerate(calls):
        whole = options.whole_tool_call_in_one_chunk or options.all_tool_calls_in_one_chunk
        frags = split_text(call.arguments, options.arguments_chunk_size, "chars")
        if whole:
            entries = [
                {
                    "index": i,
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
            ]
        elif options.arguments_before_name:
            entries = [
                {"index": i, "id": call.id, "type": "function", "function": {"arguments": frags[0] if frags else ""}},
                *({"index": i, "function": {"arguments": f}} for f in frags[1:]),
                {"index": i, "function": {"name": call.name}},
            ]
        else:
            entries = [
                {"index": i, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}},
                *({"index": i, "function": {"arguments": f}} for f in frags),
            ]
        if options.tool_call_id != "normal":
            del entries[0]["id"]
            if options.tool_call_id == "missing_first" and len(entries) > 1:
                second = entries[1]
                entries[1] = {
                    "index": second["index"],
                    "id": call.id,
                    **{k: v for k, v in second.items() if k != "index"},
                }
        for entry in entries:
            if options.tool_call_index == "missing":
                del entry["index"]
            elif options.tool_call_index == "all_zero":
                entry["index"] = 0
        per_call.append(entries)
    if options.all_tool_calls_in_one_chunk:
        return [[entries[0] for entries in per_call]]
    return [[entry] for entries in per_call for entry in entries]


def stream_chunks(c: Completion, *, include_usage: bool) -> list[dict[str, Any]]:
    """Every ``chat.completion.chunk`` of the answer, in order (``[DONE]`` is not a chunk)."""
    o = c.options
    send_usage = o.usage_mode == "always" or (o.usage_mode == "only_with_include_usage" and include_usage)
    usage_null = include_usage and send_usage and not o.usage_in_finish_chunk

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": c.id,
            "object": "chat.completion.chunk",
            "created": c.created,
            "model": c.model,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if usage_null:
            out["usage"] = None
        return out

    deltas: list[dict[str, Any]] = []
    speaks = c.text is not None or c.reasoning is not None or not c.tool_calls
    if speaks:
        deltas.append({"role": "assistant", "content": "", "refusal": None})
    deltas.extend({o.reasoning_field: piece} for piece in split_text(c.reasoning, o.chunk_size, o.chunk_unit))
    deltas.extend({"content": piece} for piece in split_text(c.text, o.chunk_size, o.chunk_unit))
    for n, entries in enumerate(tool_call_deltas(c.tool_calls, o)):
        if n == 0 and not speaks:  # OpenAI: the role rides on the first tool-call chunk
            deltas.append({"role": "assistant", "content": None, "tool_calls": entries, "refusal": None})
        else:
            deltas.append({"tool_calls": entries})
    chunks = [chunk(d) for d in deltas]
    final = chunk({}, c.finish_reason)
    if send_usage and o.usage_in_finish_chunk:
        final["usage"] = c.usage
    chunks.append(final)
    if send_usage and not o.usage_in_finish_chunk:
        last = chunk({})
        last["choices"] = []
        last["usage"] = c.usage
        chunks.append(last)
    return chunks
