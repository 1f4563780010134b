"""A scripted fake OpenAI-compatible upstream: ``/v1/chat/completions`` (JSON and SSE) and ``/v1/models``,
plus ``/v1/embeddings`` (deterministic hashed bag-of-words vectors, 384-d or ``dimensions``; not scripted).

Run it with ``assistd fake-llm --script FILE`` (or ``python -m assistd.fakellm``), or in tests::

    async with FakeLLM({"turns": ["Hello!"]}) as llm:
        client = openai.AsyncOpenAI(base_url=llm.base_url, api_key="x")
        ...
        llm.requests          # every request received: method, path, headers, body, turn, status
        llm.add_turns({"text": "more"})

Script format (JSON always; YAML when PyYAML is importable). A script is a mapping, or just the
list of turns::

    models: [fake-model]          # ids listed by GET /v1/models (default: [fake-model])
    strict_models: false          # true: 404 model_not_found for other models
    api_key: null                 # a string: 401 unless "Authorization: Bearer <it>"
    options: {...}                # defaults for every turn (any option key below)
    default: {echo: true}         # answers a request no pending turn matches (never used up)
    turns:                        # played in order
      - text: "Hello!"

Choosing a turn: a request takes the first pending turn, in order, whose ``match`` holds (a turn
without ``match`` holds for every request); the turn is then used up (after ``times`` uses,
default 1). No such turn: the ``default`` turn answers (default: echo the last user message).
A turn whose options reject the request (``reject_*``, ``max_tokens_param``) answers 400 and is
not used up, so a client that retries without the parameter gets it.

Turn keys:

- ``text``: the answer; ``echo: true``: the last user message's text instead; ``reasoning``:
  text sent first as ``delta.reasoning_content`` (``message.reasoning_content`` in JSON);
- ``tool_calls``: ``[{name, arguments (object or string), id?}]`` (several = parallel calls;
  the OpenAI shape ``{id, type, function: {name, arguments}}`` is accepted too); ids default to
  ``call_`` + 24 random characters; ``finish_reason`` is then ``tool_calls``;
- ``usage: {prompt_tokens, completion_tokens}``: reported counts (missing ones are estimated:
  words and punctuation); ``finish_reason``: override (e.g. ``length``);
- ``match``: all of ``last_user_contains`` (case-insensitive), ``last_user_matches`` (regex),
  ``message_contains``, ``system_contains`` (system/developer messages), ``has_tool_results``
  (a ``tool`` message after the last user message), ``has_tools``, ``last_role``, ``model``
  (glob), ``stream``;
- ``times``: how many requests the turn answers (default 1); ``name``: its label in the log;
- ``fault``: ``{type: http_error, status, retry_after?, retry_after_ms?, body?, headers?}``
  (no answer, that status: OpenAI's error envelope unless ``body`` is given);
  ``{type: drop, after_chunks}`` (the connection closes after that many chunks; in JSON mode,
  half-way through the body); ``{type: malformed_chunk, after_chunks, data?}`` (a non-JSON
  ``data:`` line, then the stream goes on; in JSON mode, a non-JSON body);
  ``{type: stall, after_chunks, seconds?}`` (silence for ``seconds``, or until the client leaves,
  then the stream goes on); ``{type: stream_error, after_chunks, message?, error_type?, code?}``
  (a ``data: {"error": ...}`` event ends the stream; in JSON mode, a 500). ``after_chunks``
  counts ``data:`` chunks (default 1); a value past the end applies just before ``[DONE]``;
- any option below, for this turn only.

Options (``options:`` or per turn):

- timing: ``ttft_ms`` (before the first chunk; in JSON mode before the body, plus the time of
  the chunks), ``tokens_per_second`` (one chunk per "token");
- chunking: ``chunk_size`` (default 1) in ``chunk_unit`` ``words`` (default) or ``chars``;
  ``arguments_chunk_size`` (characters of tool-call arguments per chunk, default 8);
- usage: ``usage`` (string form) ``only_with_include_usage`` (OpenAI: a last ``choices: []``
  chunk when ``stream_options.include_usage``; always in JSON), ``always`` or ``never`` (not
  even in JSON); ``usage_in_finish_chunk: true`` puts it on the ``finish_reason`` chunk;
- tool-call dialects: ``tool_call_index: normal | missing | all_zero``; ``tool_call_id: normal |
  missing_first`` (first delta of each call has no id, the next one has it) ``| missing``;
  ``arguments_before_name`` (name sent after the arguments); ``whole_tool_call_in_one_chunk``;
  ``all_tool_calls_in_one_chunk``; ``reasoning_field: reasoning_content | reasoning``;
- picky servers (400 ``unsupported_parameter``): ``reject_stream_options``,
  ``reject_parallel_tool_calls``, ``reject_tool_choice_required``, ``reject_developer_role``,
  ``max_tokens_param: any | max_tokens | max_completion_tokens`` (the other one is rejected),
  ``reject_params: [names]``;
- ``honour_max_tokens`` (default true): over ``max_completion_tokens``/``max_tokens``, the text
  is cut, tool calls dropped and ``finish_reason`` is ``length``.

Control API (for a fake running as its own process): ``GET``/``DELETE /_fakellm/requests`` (the
request log), ``POST /_fakellm/turns`` (append a turn or a list of turns), ``GET``/``PUT
/_fakellm/script`` (pending turns; replace the whole script).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from assistd.fakellm.cli import main
    from assistd.fakellm.runner import FakeLLM
    from assistd.fakellm.script import (
        Fault,
        Match,
        Options,
        Script,
        ScriptError,
        ToolCall,
        Turn,
        Usage,
        load_script,
        parse_script_text,
    )
    from assistd.fakellm.server import FakeLLMState, RecordedRequest, create_fake_llm_app

# Imported on first use, so that `assistd <any command>` does not pay for the fake's imports.
_EXPORTS = {
    "main": "cli",
    "FakeLLM": "runner",
    "Fault": "script",
    "Match": "script",
    "Options": "script",
    "Script": "script",
    "ScriptError": "script",
    "ToolCall": "script",
    "Turn": "script",
    "Usage": "script",
    "load_script": "script",
    "parse_script_text": "script",
    "FakeLLMState": "server",
    "RecordedRequest": "server",
    "create_fake_llm_app": "server",
}

__all__ = [
    "FakeLLM",
    "FakeLLMState",
    "Fault",
    "Match",
    "Options",
    "RecordedRequest",
    "Script",
    "ScriptError",
    "ToolCall",
    "Turn",
    "Usage",
    "create_fake_llm_app",
    "load_script",
    "main",
    "parse_script_text",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
