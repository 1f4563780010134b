"""The request body an upstream gets, and what a 400 "unsupported parameter" teaches us about it.

A :class:`Dialect` starts from the upstream's configured options and is kept per (upstream,
model sent) for the life of the client: OpenAI itself takes ``parallel_tool_calls`` for gpt-4o but
not for its reasoning models, so one model's refusal must not change what another model gets.

When an upstream answers 400 (or 422) about a parameter we sent, :func:`learn` flips the matching
flag and the client sends the request again at once (not counted as a retry). What each flag
does to the user's request, so that no intent is dropped silently:

- ``stream_options`` refused: not sent; usage is then counted with tiktoken. Nothing is lost.
- ``max_completion_tokens`` refused: the cap is sent as ``max_tokens`` (and the other way round).
- ``developer`` role refused: system/developer messages are sent as ``system``.
- ``parallel_tool_calls`` refused: not sent. ``true`` is every server's default, so nothing is
  lost; for ``false`` the client enforces it itself: it keeps the answer's first tool call only
  and drops the rest (logged), as OpenAI does server-side.
- ``tool_choice: "required"`` refused: sent as ``"auto"``, with a warning logged for each
  request (the model may now answer without calling a tool; the caller sees that as text).
- ``tool_choice`` refused altogether: ``"auto"`` is the default anyway; ``"none"`` is kept by not
  sending the tools at all; ``"required"`` becomes ``auto`` (warning); a named function is kept
  by sending that function only (warning: "required" cannot be forced).

A 400 about anything else, or about a parameter whose flag is already off, is not learned from.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from assistd.llm.config import Upstream
from assistd.llm.protocol import ChatRequest

__all__ = ["Dialect", "build_body", "is_context_length_error", "learn"]

log = logging.getLogger("assistd.llm")


@dataclass(slots=True)
class Dialect:
    """What one upstream (for one model) accepts. Mutable: :func:`learn` flips its flags."""

    max_tokens_param: Literal["max_completion_tokens", "max_tokens"] = "max_completion_tokens"
    system_role: Literal["system", "developer"] = "system"
    send_stream_options: bool = True
    supports_parallel_tool_calls: bool = True
    supports_tool_choice_required: bool = True
    supports_tool_choice: bool = True

    @classmethod
    def of(cls, upstream: Upstream) -> Dialect:
        return cls(
            max_tokens_param=upstream.max_tokens_param,
            system_role=upstream.system_role,
            send_stream_options=upstream.send_stream_options,
            supports_parallel_tool_calls=upstream.supports_parallel_tool_calls,
            supports_tool_choice_required=upstream.supports_tool_choice_required,
            supports_tool_choice=upstream.supports_tool_choice,
        )


@dataclass(frozen=True, slots=True)
class Body:
    """The JSON body to send, and what the client must enforce itself because the upstream cannot."""

    json: dict[str, Any]
    single_tool_call: bool = False  # parallel_tool_calls=false that the upstream does not take


def _messages(messages: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    other = "developer" if role == "system" else "system"
    if not any(m.get("role") == other for m in messages):
        return messages
    return [{**m, "role": role} if m.get("role") == other else m for m in messages]


def _function_name(choice: Any) -> str | None:
    if isinstance(choice, Mapping):
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, Mapping) else None
        if isinstance(name, str):
            return name
    return None


def _tools_and_choice(
    request: ChatRequest, dialect: Dialect, where: str
) -> tuple[list[dict[str, Any]] | None, str | dict[str, Any] | None]:
    tools, choice = request.tools or None, request.tool_choice
    if tools is None:
        return None, None
    if choice == "required" and not (dialect.supports_tool_choice_required and dialect.supports_tool_choice):
        log.warning("%s does not take tool_choice 'required': sending 'auto', a tool call is not guaranteed", where)
        choice = "auto"
    if dialect.supports_tool_choice or choice is None:
        return tools, choice
    if choice == "none":
        return None, None
    name = _function_name(choice)
    if name is not None:
        only = [t for t in tools if _function_name(t) == name]
        if only:
            log.warning("%s does not take tool_choice: offering only %r, a call is not guaranteed", where, name)
            return only, None
    return tools, None


def build_body(request: ChatRequest, model: str, dialect: Dialect, *, where: str) -> Body:
    """The streaming ``/chat/completions`` body for ``request`` in ``dialect`` (``where`` names it in logs)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": _messages(request.messages, dialect.system_role),
        "stream": True,
    }
    if dialect.send_stream_options:
        body["stream_options"] = {"include_usage": True}
    tools, choice = _tools_and_choice(request, dialect, where)
    single = False
    if tools is not None:
        body["tools"] = tools
        if choice is not None:
            body["tool_choice"] = choice
        if request.parallel_tool_calls is not None:
            if dialect.supports_parallel_tool_calls:
                body["parallel_tool_calls"] = request.parallel_tool_calls
            elif request.parallel_tool_calls is False:
                single = True
    for key in ("temperature", "top_p", "response_format", "reasoning_effort"):
        value = getattr(request, key)
        if value is not None:
            body[key] = value
    if request.max_completion_tokens is not None:
        body[dialect.max_tokens_param] = request.max_completion_tokens
    return Body(body, single_tool_call=single)


_CONTEXT_LENGTH = re.compile(
    r"context[ _]length|context window|maximum context|prompt is too long|too many (input )?tokens"
    r"|input is too long|exceeds? the (model'?s? )?(maximum|max)",
    re.IGNORECASE,
)


def is_context_length_error(message: str, code: str | None = None) -> bool:
    return code == "context_length_exceeded" or bool(_CONTEXT_LENGTH.search(message))


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<![A-Za-z_]){re.escape(name)}(?![A-Za-z_])", text) is not None


def learn(
    dialect: Dialect,
    body: Mapping[str, Any],
    message: str,
    param: str | None,
    code: str | None,
    *,
    skip: Collection[str] = (),
) -> str | None:
    """Adjust ``dialect`` to a 400/422 about an unsupported parameter we sent; the parameter learned, or None.

    ``param`` and ``code`` are the upstream error's fields when it gave them (OpenAI's envelope).
    ``skip``: what was already learned during this request (a server that refuses both
    ``max_tokens`` and ``max_completion_tokens`` must not make us flip back and forth).
    """
    if is_context_length_error(message, code):
        return None
    text = f"{param or ''} {message}"

    def about(name: str) -> bool:
        # the error's `param` field is authoritative; otherwise the message must name it
        return param == name if param in _LEARNABLE else _mentions(text, name)

    if "stream_options" in body and dialect.send_stream_options and about("stream_options"):
        dialect.send_stream_options = False
        return "stream_options"
    if "parallel_tool_calls" in body and dialect.supports_parallel_tool_calls and about("parallel_tool_calls"):
        dialect.supports_parallel_tool_calls = False
        return "parallel_tool_calls"
    max_learned = "max_tokens" in skip or "max_completion_tokens" in skip
    if "max_completion_tokens" in body and not max_learned and about("max_completion_tokens"):
        dialect.max_tokens_param = "max_tokens"
        return "max_completion_tokens"
    if "max_tokens" in body and not max_learned and about("max_tokens"):
        dialect.max_tokens_param = "max_completion_tokens"
        return "max_tokens"
    if "tool_choice" in body and dialect.supports_tool_choice and about("tool_choice"):
        if body["tool_choice"] == "required" and dialect.supports_tool_choice_required and "required" in message:
            dialect.supports_tool_choice_required = False
            return "tool_choice=required"
        dialect.supports_tool_choice = False
        return "tool_choice"
    sent_developer = any(isinstance(m, Mapping) and m.get("role") == "developer" for m in body.get("messages") or [])
    if sent_developer and dialect.system_role == "developer" and _mentions(message, "developer"):
        dialect.system_role = "system"
        return "developer role"
    return None


_LEARNABLE = frozenset({"stream_options", "parallel_tool_calls", "max_completion_tokens", "max_tokens", "tool_choice"})
