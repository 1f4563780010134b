"""v2 objects (the dicts the v2 ``to_object`` functions make) in Assistants v1 shapes.

Pure functions: what needs the database (an assistant's ``file_ids`` derived from its tool
resources) is looked up by the caller (``files.py``) and passed in. Nothing v2-only that a v1
SDK cannot read is left: ``tool_resources``, ``attachments``, ``parallel_tool_calls``, image URL
parts, ``file_search`` results.
"""

from __future__ import annotations

from typing import Any

_ASSISTANT = ("id", "object", "created_at", "name", "description", "model", "instructions")
_MESSAGE = (
    "id",
    "object",
    "created_at",
    "thread_id",
    "status",
    "incomplete_details",
    "completed_at",
    "incomplete_at",
    "role",
)
_RUN = (
    "id",
    "object",
    "created_at",
    "thread_id",
    "assistant_id",
    "status",
    "required_action",
    "last_error",
    "expires_at",
    "started_at",
    "cancelled_at",
    "failed_at",
    "completed_at",
    "incomplete_details",
    "model",
    "instructions",
)
_RUN_TAIL = (
    "metadata",
    "usage",
    "temperature",
    "top_p",
    "max_prompt_tokens",
    "max_completion_tokens",
    "truncation_strategy",
)


def tool(t: dict[str, Any]) -> dict[str, Any]:
    if t["type"] == "file_search":
        return {"type": "retrieval"}
    if t["type"] == "function":
        fn = {k: v for k, v in t["function"].items() if k in ("name", "description", "parameters")}
        return {"type": "function", "function": fn}
    return {"type": t["type"]}


def tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict) and choice.get("type") == "file_search":
        return {**choice, "type": "retrieval"}
    return choice


def assistant(a: dict[str, Any], file_ids: list[str]) -> dict[str, Any]:
    out = {k: a[k] for k in _ASSISTANT}
    out["tools"] = [tool(t) for t in a["tools"]]
    out["file_ids"] = file_ids
    out["metadata"] = a["metadata"]
    return out


def thread(t: dict[str, Any]) -> dict[str, Any]:
    return {"id": t["id"], "object": "thread", "created_at": t["created_at"], "metadata": t["metadata"]}


def message_file_ids(m: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(a["file_id"] for a in m.get("attachments") or []))


def annotation(a: dict[str, Any]) -> dict[str, Any]:
    if a.get("type") == "file_citation" and "file_citation" in a:
        cite = a["file_citation"]
        return {**a, "file_citation": {"file_id": cite["file_id"], "quote": cite.get("quote", "")}}
    return a


def content_part(part: dict[str, Any]) -> dict[str, Any] | None:
    """A content part (or a delta's) in v1 terms; None for kinds v1 never had."""
    kind = part.get("type")
    if kind == "text":
        text = part.get("text")
        if isinstance(text, dict) and "annotations" in text:
            text = {**text, "annotations": [annotation(a) for a in text["annotations"]]}
        return {**part, "text": text}
    if kind == "image_file":
        image = {k: v for k, v in (part.get("image_file") or {}).items() if k == "file_id"}
        return {**part, "image_file": image}
    return None


def content(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in (content_part(x) for x in parts) if p is not None]


def message(m: dict[str, Any]) -> dict[str, Any]:
    out = {k: m[k] for k in _MESSAGE}
    out["content"] = content(m["content"])
    out["assistant_id"] = m["assistant_id"]
    out["run_id"] = m["run_id"]
    out["file_ids"] = message_file_ids(m)
    out["metadata"] = m["metadata"]
    return out


def message_delta(d: dict[str, Any]) -> dict[str, Any]:
    delta = dict(d["delta"])
    if "content" in delta:
        delta["content"] = content(delta["content"])
    return {**d, "delta": delta}


def run(r: dict[str, Any], file_ids: list[str]) -> dict[str, Any]:
    out = {k: r[k] for k in _RUN}
    out["tools"] = [tool(t) for t in r["tools"]]
    out["file_ids"] = file_ids
    for k in _RUN_TAIL:
        out[k] = r[k]
    out["tool_choice"] = tool_choice(r["tool_choice"])
    out["response_format"] = r["response_format"]
    return out


def tool_call(c: dict[str, Any]) -> dict[str, Any]:
    """A step's tool call (or a delta's): file_search becomes v1's ``retrieval``."""
    if c.get("type") != "file_search":
        return c
    out: dict[str, Any] = {k: c[k] for k in ("index", "id") if k in c}
    return {**out, "type": "retrieval", "retrieval": {}}


def step_details(details: dict[str, Any]) -> dict[str, Any]:
    if details.get("type") != "tool_calls" or "tool_calls" not in details:
        return details
    return {**details, "tool_calls": [tool_call(c) for c in details["tool_calls"]]}


def step(s: dict[str, Any]) -> dict[str, Any]:
    return {**s, "step_details": step_details(s["step_details"])}


def step_delta(d: dict[str, Any]) -> dict[str, Any]:
    delta = dict(d["delta"])
    if "step_details" in delta:
        delta["step_details"] = step_details(delta["step_details"])
    return {**d, "delta": delta}


Quotes = dict[tuple[str, int, int], str]  # (message id, content index, annotation index) -> quote


def event(name: str, data: Any, run_file_ids: list[str], quotes: Quotes) -> Any:
    """One stream event's data in v1 shape (the names are the same in both dialects). ``quotes``
    is the stream's memory of its citations' quotes: v2 deltas carry them, v2 message objects do
    not, so a message's ``completed`` event gets them back from its deltas."""
    if name == "thread.created":
        return thread(data)
    if name == "thread.message.delta":
        _remember_quotes(data["id"], data["delta"].get("content") or [], quotes)
        return message_delta(data)
    if name.startswith("thread.message."):
        return message(_with_quotes(data, quotes) if quotes else data)
    if name == "thread.run.step.delta":
        return step_delta(data)
    if name.startswith("thread.run.step."):
        return step(data)
    if name.startswith("thread.run."):
        return run(data, run_file_ids)
    return data  # error, done


def _remember_quotes(message_id: str, parts: list[dict[str, Any]], quotes: Quotes) -> None:
    for part in parts:
        text = part.get("text") if part.get("type") == "text" else None
        for a in (text or {}).get("annotations") or []:
            quote = (a.get("file_citation") or {}).get("quote")
            if quote is not None:
                quotes[(message_id, part["index"], a["index"])] = quote


def _with_quotes(m: dict[str, Any], quotes: Quotes) -> dict[str, Any]:
    def part(i: int, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("type") != "text" or not p["text"].get("annotations"):
            return p
        annotations = [
            {**a, "file_citation": {**a["file_citation"], "quote": quotes[(m["id"], i, j)]}}
            if a.get("type") == "file_citation" and (m["id"], i, j) in quotes
            else a
            for j, a in enumerate(p["text"]["annotations"])
        ]
        return {**p, "text": {**p["text"], "annotations": annotations}}

    return {**m, "content": [part(i, p) for i, p in enumerate(m["content"])]}
