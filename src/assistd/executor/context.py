"""Instructions + thread messages + this run's tool rounds -> upstream chat messages.

The thread's messages (from every assistant that spoke on it) come first, in order, minus those
this run wrote itself; then this run's steps in order: a message step as the assistant's text, a
tool-call step as the assistant's ``tool_calls`` followed by one ``tool`` message per output.
Truncation (``truncation_strategy``) applies to the thread's messages only: ``last_messages``
keeps the newest N; ``auto`` drops the oldest until the prompt fits what the run's earlier model
calls left of ``max_prompt_tokens`` (or the upstream's context window).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from assistd.models import Message, Run, RunStep


def message_to_chat(m: Message) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    texts: list[str] = []
    for part in m.content:
        if part["type"] == "text":
            texts.append(part["text"]["value"])
            parts.append({"type": "text", "text": part["text"]["value"]})
        elif part["type"] == "image_url":
            parts.append({"type": "image_url", "image_url": dict(part["image_url"])})
        elif part["type"] == "image_file":
            # The upstream cannot fetch our files; tell the model an image was there.
            ref = f"[image file {part['image_file']['file_id']}]"
            texts.append(ref)
            parts.append({"type": "text", "text": ref})
    role = m.role if m.role in ("user", "assistant") else "user"
    if all(p["type"] == "text" for p in parts):
        return {"role": role, "content": "\n".join(texts)}
    return {"role": role, "content": parts}


def steps_to_chat(steps: Sequence[RunStep], messages_by_id: dict[str, Message]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for step in steps:
        details = step.step_details
        if step.type == "message_creation":
            msg = messages_by_id.get(details["message_creation"]["message_id"])
            if msg is not None and msg.content:
                out.append(message_to_chat(msg))
        elif step.type == "tool_calls":
            # Built-in calls (file_search, code_interpreter) were functions to the model: their
            # ``_model`` record keeps what it sent and what it read back.
            calls = [
                (c["id"], c["function"]["name"], c["function"]["arguments"], c["function"].get("output"))
                if c["type"] == "function"
                else (c["id"], c["_model"]["name"], c["_model"]["arguments"], c["_model"].get("output"))
                for c in details.get("tool_calls", [])
                if c["type"] == "function" or "_model" in c
            ]
            if not calls:
                continue
            out.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
                        for cid, name, args, _ in calls
                    ],
                }
            )
            for cid, _, _, output in calls:
                if output is not None:
                    out.append({"role": "tool", "tool_call_id": cid, "content": output})
    return out


@dataclass(slots=True)
class Context:
    messages: list[dict[str, Any]]
    prompt_tokens: int | None
    over_budget: bool  # max_prompt_tokens cannot be met even after truncation


def build_context(
    run: Run,
    thread_messages: Sequence[Message],
    run_steps: Sequence[RunStep],
    *,
    count: Callable[[list[dict[str, Any]]], int] | None = None,
    context_window: int | None = None,
    prompt_tokens_used: int = 0,
) -> Context:
    """The chat messages of the run's next model call. ``max_prompt_tokens`` holds across the whole
    run (the spec: "across multiple turns of the run"): this call gets what the earlier calls'
    ``prompt_tokens_used`` left of it."""
    own = {m.id: m for m in thread_messages if m.run_id == run.id}
    history = [message_to_chat(m) for m in thread_messages if m.run_id != run.id and m.content]
    ts = run.truncation_strategy or {"type": "auto"}
    if ts.get("type") == "last_messages" and ts.get("last_messages"):
        history = history[-int(ts["last_messages"]) :]
    head = [{"role": "system", "content": run.instructions}] if run.instructions else []
    tail = steps_to_chat(run_steps, own)
    budget = run.max_prompt_tokens - prompt_tokens_used if run.max_prompt_tokens else context_window
    if count is None or budget is None:
        return Context([*head, *history, *tail], None, False)
    # Each message is counted once; dropping the oldest subtracts its share.
    fixed = count([*head, *tail])
    sizes = [count([m]) - count([]) for m in history]
    tokens = fixed + sum(sizes)
    start = 0
    while tokens > budget and start < len(history) - 1:  # keep at least the newest message
        tokens -= sizes[start]
        start += 1
    return Context([*head, *history[start:], *tail], tokens, tokens > budget)
