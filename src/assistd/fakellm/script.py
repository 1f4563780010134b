"""The script: what the fake upstream answers, as plain dataclasses, loaded from JSON or YAML.

Everything a user can write in a script file is validated here, with errors that name the place
(``turns[2].fault.type: expected one of ...``), so a typo never silently turns into a default.
The package docstring (``assistd.fakellm``) documents the format for users.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "FAULT_TYPES",
    "Fault",
    "Match",
    "Options",
    "Script",
    "ScriptError",
    "ToolCall",
    "Turn",
    "Usage",
    "as_script",
    "load_script",
    "parse_script_text",
]


class ScriptError(ValueError):
    """A script that cannot be used; the message names the offending place."""


# --- options: chunking, timing, dialect quirks ------------------------------------------------

_ENUM_OPTIONS: dict[str, tuple[str, ...]] = {
    "chunk_unit": ("words", "chars"),
    "tool_call_index": ("normal", "missing", "all_zero"),
    "tool_call_id": ("normal", "missing_first", "missing"),
    "reasoning_field": ("reasoning_content", "reasoning"),
    "usage_mode": ("only_with_include_usage", "always", "never"),
    "max_tokens_param": ("any", "max_tokens", "max_completion_tokens"),
}
_BOOL_OPTIONS = (
    "arguments_before_name",
    "whole_tool_call_in_one_chunk",
    "all_tool_calls_in_one_chunk",
    "usage_in_finish_chunk",
    "reject_stream_options",
    "reject_parallel_tool_calls",
    "reject_tool_choice_required",
    "reject_developer_role",
    "honour_max_tokens",
)


@dataclass(frozen=True)
class Options:
    """How an answer is sent. Set globally under ``options:`` and per turn (turn keys win)."""

    # chunking and timing
    chunk_size: int = 1
    chunk_unit: str = "words"
    arguments_chunk_size: int = 8
    ttft_ms: float = 0.0
    tokens_per_second: float | None = None
    # stream shape quirks of real "OpenAI-compatible" servers
    tool_call_index: str = "normal"
    tool_call_id: str = "normal"
    arguments_before_name: bool = False
    whole_tool_call_in_one_chunk: bool = False
    all_tool_calls_in_one_chunk: bool = False
    reasoning_field: str = "reasoning_content"
    usage_mode: str = "only_with_include_usage"
    usage_in_finish_chunk: bool = False
    # request checks (a 400 that does not consume the turn)
    reject_stream_options: bool = False
    reject_parallel_tool_calls: bool = False
    reject_tool_choice_required: bool = False
    reject_developer_role: bool = False
    max_tokens_param: str = "any"
    reject_params: tuple[str, ...] = ()
    honour_max_tokens: bool = True

    def merged(self, overrides: Mapping[str, Any]) -> Options:
        return dataclasses.replace(self, **overrides) if overrides else self


OPTION_KEYS = frozenset(f.name for f in dataclasses.fields(Options)) | {"usage"}


def _parse_option(key: str, value: Any, where: str) -> tuple[str, Any]:
    """One option key, validated and normalised: ``(field name, value)``."""
    here = f"{where}.{key}" if where else key
    if key == "usage":  # the string form of `usage` is the usage mode
        key = "usage_mode"
    if key in _ENUM_OPTIONS:
        return key, _enum(value, _ENUM_OPTIONS[key], here)
    if key in _BOOL_OPTIONS:
        return key, _bool(value, here)
    if key in ("chunk_size", "arguments_chunk_size"):
        return key, _int(value, here, minimum=1)
    if key == "ttft_ms":
        return key, _number(value, here, minimum=0)
    if key == "tokens_per_second":
        if value is None:
            return key, None
        number = _number(value, here, minimum=0)
        return key, number or None
    if key == "reject_params":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ScriptError(f"{here}: expected a list of parameter names")
        return key, tuple(value)
    raise ScriptError(f"{here}: unknown option")  # pragma: no cover - callers check OPTION_KEYS


def parse_options(data: Any, where: str = "options") -> dict[str, Any]:
    """Validated option overrides from a mapping (unknown keys are errors)."""
    mapping = _mapping(data, where)
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if key not in OPTION_KEYS:
            raise ScriptError(f"{where}: unknown option {key!r} (known: {', '.join(sorted(OPTION_KEYS))})")
        name, parsed = _parse_option(key, value, where)
        out[name] = parsed
    return out


# --- turn parts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCall:
    """One function call the fake model makes. ``arguments`` is the exact string sent."""

    name: str
    arguments: str = "{}"
    id: str | None = None

    @classmethod
    def parse(cls, data: Any, where: str) -> ToolCall:
        m = _mapping(data, where)
        if "function" in m:  # the OpenAI wire shape: {id?, type: function, function: {name, arguments}}
            _keys(m, {"id", "type", "function"}, where)
            if m.get("type", "function") != "function":
                raise ScriptError(f"{where}.type: only 'function' tool calls are supported")
            fn = _mapping(m["function"], f"{where}.function")
            _keys(fn, {"name", "arguments"}, f"{where}.function")
            name, arguments, call_id = fn.get("name"), fn.get("arguments", {}), m.get("id")
        else:
            _keys(m, {"name", "arguments", "id"}, where)
            name, arguments, call_id = m.get("name"), m.get("arguments", {}), m.get("id")
        if not isinstance(name, str) or not name:
            raise ScriptError(f"{where}.name: required, a non-empty string")
        if call_id is not None and (not isinstance(call_id, str) or not call_id):
            raise ScriptError(f"{where}.id: expected a non-empty string")
        if isinstance(arguments, str):
            args = arguments
        elif isinstance(arguments, Mapping | list):
            args = json.dumps(arguments, separators=(",", ":"), ensure_ascii=False)
        else:
            raise ScriptError(f"{where}.arguments: expected an object or a string")
        return cls(name=name, arguments=args, id=call_id)


@dataclass(frozen=True)
class Usage:
    """Token counts to report; a missing count is estimated from the text (roughly, word-ish)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @classmethod
    def parse(cls, data: Any, where: str) -> Usage:
        m = _mapping(data, where)
        _keys(m, {"prompt_tokens", "completion_tokens"}, where)
        return cls(
            prompt_tokens=None
            if m.get("prompt_tokens") is None
            else _int(m["prompt_tokens"], f"{where}.prompt_tokens"),
            completion_tokens=None
            if m.get("completion_tokens") is None
            else _int(m["completion_tokens"], f"{where}.completion_tokens"),
        )


_MALFORMED_DEFAULT = '{"id": "chatcmpl-malformed", "choices": [{"delta": {"content": "unterminated'

FAULT_TYPES: dict[str, frozenset[str]] = {
    "http_error": frozenset({"status", "retry_after", "retry_after_ms", "body", "headers"}),
    "drop": frozenset({"after_chunks"}),
    "malformed_chunk": frozenset({"after_chunks", "data"}),
    "stall": frozenset({"after_chunks", "seconds"}),
    "stream_error": frozenset({"after_chunks", "message", "error_type", "code"}),
}


@dataclass(frozen=True)
class Fault:
    """A failure instead of (or in the middle of) a normal answer."""

    type: str
    status: int = 500
    retry_after: float | None = None
    retry_after_ms: float | None = None
    body: str | dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    after_chunks: int = 1
    seconds: float | None = None
    data: str = _MALFORMED_DEFAULT
    message: str = "The server had an error while processing your request. Sorry about that!"
    error_type: str = "server_error"
    code: str | None = None

    @classmethod
    def parse(cls, data: Any, where: str) -> Fault:
        if isinstance(data, str):
            data = {"type": data}
        m = _mapping(data, where)
        kind = _enum(m.get("type"), tuple(FAULT_TYPES), f"{where}.type")
        _keys(m, FAULT_TYPES[kind] | {"type"}, where)
        kw: dict[str, Any] = {"type": kind}
        if "status" in m:
            kw["status"] = _int(m["status"], f"{where}.status", minimum=400, maximum=599)
        for key in ("retry_after", "retry_after_ms"):
            if m.get(key) is not None:
                kw[key] = _number(m[key], f"{where}.{key}", minimum=0)
        if "body" in m:
            if not isinstance(m["body"], str | Mapping):
                raise ScriptError(f"{where}.body: expected a string or an object")
            kw["body"] = m["body"] if isinstance(m["body"], str) else dict(m["body"])
        if "headers" in m:
            headers = _mapping(m["headers"], f"{where}.headers")
            if not all(isinstance(k, str) and isinstance(v, str | int | float) for k, v in headers.items()):
                raise ScriptError(f"{where}.headers: expected a mapping of header names to values")
            kw["headers"] = {k: str(v) for k, v in headers.items()}
        if "after_chunks" in m:
            kw["after_chunks"] = _int(m["after_chunks"], f"{where}.after_chunks")
        if m.get("seconds") is not None:
            kw["seconds"] = _number(m["seconds"], f"{where}.seconds", minimum=0)
        for key in ("data", "message", "error_type"):
            if key in m:
                kw[key] = _str(m[key], f"{where}.{key}")
        if m.get("code") is not None:
            kw["code"] = _str(m["code"], f"{where}.code")
        return cls(**kw)


def message_text(message: Any) -> str:
    """The text of a chat message: a string content or the text parts of a list content."""
    if not isinstance(message, Mapping):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping) and "text" in part)
    return ""


def _messages(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    messages = body.get("messages")
    return [m for m in messages if isinstance(m, Mapping)] if isinstance(messages, list) else []


def last_user_text(body: Mapping[str, Any]) -> str:
    for message in reversed(_messages(body)):
        if message.get("role") == "user":
            return message_text(message)
    return ""


def has_tool_results(body: Mapping[str, Any]) -> bool:
    """True when a ``tool`` (or legacy ``function``) message comes after the last user message."""
    for message in reversed(_messages(body)):
        role = message.get("role")
        if role in ("tool", "function"):
            return True
        if role == "user":
            return False
    return False


@dataclass(frozen=True)
class Match:
    """Conditions on the request; a turn with a ``match`` answers only requests meeting all of them."""

    last_user_contains: str | None = None
    last_user_matches: re.Pattern[str] | None = None
    message_contains: str | None = None
    system_contains: str | None = None
    has_tool_results: bool | None = None
    has_tools: bool | None = None
    last_role: str | None = None
    model: str | None = None
    stream: bool | None = None

    KEYS = (
        "last_user_contains",
        "last_user_matches",
        "message_contains",
        "system_contains",
        "has_tool_results",
        "has_tools",
        "last_role",
        "model",
        "stream",
    )

    @classmethod
    def parse(cls, data: Any, where: str) -> Match:
        m = _mapping(data, where)
        _keys(m, set(cls.KEYS), where)
        kw: dict[str, Any] = {}
        for key in ("last_user_contains", "message_contains", "system_contains", "last_role", "model"):
            if key in m:
                kw[key] = _str(m[key], f"{where}.{key}")
        for key in ("has_tool_results", "has_tools", "stream"):
            if key in m:
                kw[key] = _bool(m[key], f"{where}.{key}")
        if "last_user_matches" in m:
            pattern = _str(m["last_user_matches"], f"{where}.last_user_matches")
            try:
                kw["last_user_matches"] = re.compile(pattern)
            except re.error as exc:
                raise ScriptError(f"{where}.last_user_matches: invalid regular expression: {exc}") from None
        return cls(**kw)

    def matches(self, body: Mapping[str, Any]) -> bool:
        messages = _messages(body)
        if self.last_user_contains is not None and self.last_user_contains.lower() not in last_user_text(body).lower():
            return False
        if self.last_user_matches is not None and not self.last_user_matches.search(last_user_text(body)):
            return False
        if self.message_contains is not None:
            needle = self.message_contains.lower()
            if not any(needle in message_text(m).lower() for m in messages):
                return False
        if self.system_contains is not None:
            needle = self.system_contains.lower()
            if not any(
                m.get("role") in ("system", "developer") and needle in message_text(m).lower() for m in messages
            ):
                return False
        if self.has_tool_results is not None and has_tool_results(body) != self.has_tool_results:
            return False
        if self.has_tools is not None and bool(body.get("tools")) != self.has_tools:
            return False
        if self.last_role is not None and (not messages or messages[-1].get("role") != self.last_role):
            return False
        if self.model is not None and not fnmatch.fnmatchcase(str(body.get("model", "")), self.model):
            return False
        return self.stream is None or bool(body.get("stream")) == self.stream


_TURN_KEYS = frozenset(
    {"name", "match", "text", "echo", "reasoning", "tool_calls", "usage", "finish_reason", "fault", "times"}
)


@dataclass(frozen=True)
class Turn:
    """One scripted answer."""

    text: str | None = None
    echo: bool = False
    reasoning: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage | None = None
    finish_reason: str | None = None
    fault: Fault | None = None
    match: Match | None = None
    times: int = 1
    name: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: Any, where: str = "turn") -> Turn:
        if isinstance(data, Turn):
            return data
        if isinstance(data, str):  # shorthand: a bare string is a text answer
            return cls(text=data)
        m = _mapping(data, where)
        unknown = [k for k in m if k not in _TURN_KEYS and k not in OPTION_KEYS]
        if unknown:
            raise ScriptError(
                f"{where}: unknown key {unknown[0]!r} (turn keys: {', '.join(sorted(_TURN_KEYS))}; "
                f"or an option: {', '.join(sorted(OPTION_KEYS))})"
            )
        kw: dict[str, Any] = {}
        options: dict[str, Any] = {}
        for key, value in m.items():
            if key in OPTION_KEYS and not (key == "usage" and isinstance(value, Mapping)):
                name, parsed = _parse_option(key, value, where)
                options[name] = parsed
        kw["options"] = options
        if "text" in m and m["text"] is not None:
            kw["text"] = _str(m["text"], f"{where}.text")
        if "echo" in m:
            kw["echo"] = _bool(m["echo"], f"{where}.echo")
        if kw.get("echo") and "text" in kw:
            raise ScriptError(f"{where}: 'text' and 'echo' cannot both be set")
        if m.get("reasoning") is not None:
            kw["reasoning"] = _str(m["reasoning"], f"{where}.reasoning")
        if m.get("tool_calls") is not None:
            calls = m["tool_calls"]
            if not isinstance(calls, list):
                raise ScriptError(f"{where}.tool_calls: expected a list")
            kw["tool_calls"] = tuple(ToolCall.parse(c, f"{where}.tool_calls[{i}]") for i, c in enumerate(calls))
        if isinstance(m.get("usage"), Mapping):
            kw["usage"] = Usage.parse(m["usage"], f"{where}.usage")
        if m.get("finish_reason") is not None:
            kw["finish_reason"] = _str(m["finish_reason"], f"{where}.finish_reason")
        if m.get("fault") is not None:
            kw["fault"] = Fault.parse(m["fault"], f"{where}.fault")
        if m.get("match") is not None:
            kw["match"] = Match.parse(m["match"], f"{where}.match")
        if "times" in m:
            kw["times"] = _int(m["times"], f"{where}.times", minimum=1)
        if m.get("name") is not None:
            kw["name"] = _str(m["name"], f"{where}.name")
        return cls(**kw)


ECHO = Turn(echo=True, name="default")

_SCRIPT_KEYS = frozenset({"turns", "default", "options", "models", "api_key", "strict_models"})


@dataclass(frozen=True)
class Script:
    """A whole script: ordered turns, the fallback turn, global options and served models."""

    turns: tuple[Turn, ...] = ()
    default: Turn = ECHO
    options: Options = Options()
    models: tuple[str, ...] = ("fake-model",)
    api_key: str | None = None
    strict_models: bool = False

    @classmethod
    def parse(cls, data: Any) -> Script:
        """A script from its decoded JSON/YAML form: a mapping, or a bare list of turns."""
        if isinstance(data, Script):
            return data
        if data is None:
            return cls()
        if isinstance(data, list):
            data = {"turns": data}
        m = _mapping(data, "script")
        _keys(m, _SCRIPT_KEYS, "script")
        kw: dict[str, Any] = {}
        if m.get("options") is not None:
            kw["options"] = Options().merged(parse_options(m["options"], "options"))
        if m.get("turns") is not None:
            if not isinstance(m["turns"], list):
                raise ScriptError("turns: expected a list")
            kw["turns"] = parse_turns(m["turns"])
        if m.get("default") is not None:
            default = Turn.parse(m["default"], "default")
            if default.match is not None:
                raise ScriptError("default: a default turn cannot have 'match'")
            kw["default"] = default if default.name else dataclasses.replace(default, name="default")
        if m.get("models") is not None:
            models = m["models"]
            if isinstance(models, str):
                models = [models]
            if not isinstance(models, list) or not models or not all(isinstance(x, str) and x for x in models):
                raise ScriptError("models: expected a non-empty list of model ids")
            kw["models"] = tuple(models)
        if m.get("api_key") is not None:
            kw["api_key"] = _str(m["api_key"], "api_key")
        if "strict_models" in m:
            kw["strict_models"] = _bool(m["strict_models"], "strict_models")
        return cls(**kw)


def parse_turns(items: Iterable[Any], start: int = 0) -> tuple[Turn, ...]:
    return tuple(Turn.parse(item, f"turns[{i}]") for i, item in enumerate(items, start))


def as_script(value: Any) -> Script:
    """A :class:`Script` from a Script, its dict/list form, None (echo everything) or a file path."""
    if isinstance(value, Script):
        return value
    if isinstance(value, str | Path):
        return load_script(value)
    return Script.parse(value)


def parse_script_text(text: str, *, fmt: str | None = None) -> Script:
    """A script from JSON or YAML text. ``fmt``: ``"json"``, ``"yaml"`` or None (JSON, else YAML)."""
    if fmt not in (None, "json", "yaml"):
        raise ScriptError(f"unknown script format {fmt!r} (json or yaml)")
    if fmt == "json" or fmt is None:
        try:
            return Script.parse(json.loads(text))
        except json.JSONDecodeError as exc:
            if fmt == "json":
                raise ScriptError(f"invalid JSON: {exc}") from None
    try:
        import yaml
    except ImportError:
        raise ScriptError("this script is not valid JSON, and YAML scripts need PyYAML (pip install pyyaml)") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScriptError(f"invalid YAML: {exc}") from None
    return Script.parse(data)


def load_script(path: str | Path) -> Script:
    """A script from a ``.json``, ``.yaml`` or ``.yml`` file (other names: JSON, else YAML)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScriptError(f"cannot read script {str(p)!r}: {exc.strerror or exc}") from None
    suffix = p.suffix.lower()
    fmt = "json" if suffix == ".json" else "yaml" if suffix in (".yaml", ".yml") else None
    try:
        return parse_script_text(text, fmt=fmt)
    except ScriptError as exc:
        raise ScriptError(f"{p}: {exc}") from None


# --- small validators ---------------------------------------------------------------------------


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ScriptError(f"{where}: expected an object, got {_kind(value)}")
    for key in value:
        if not isinstance(key, str):
            raise ScriptError(f"{where}: keys must be strings, got {key!r}")
    return value


def _keys(m: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    allowed = set(allowed)
    for key in m:
        if key not in allowed:
            raise ScriptError(f"{where}: unknown key {key!r} (expected one of: {', '.join(sorted(allowed))})")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", int: "a number", float: "a number", list: "a list"}.get(
        type(value), type(value).__name__
    )


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ScriptError(f"{where}: expected a string, got {_kind(value)}")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ScriptError(f"{where}: expected true or false, got {_kind(value)}")
    return value


def _int(value: Any, where: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScriptError(f"{where}: expected an integer, got {_kind(value)}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ScriptError(f"{where}: expected an integer {bound}, got {value}")
    return value


def _number(value: Any, where: str, *, minimum: float = 0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScriptError(f"{where}: expected a number, got {_kind(value)}")
    if value < minimum:
        raise ScriptError(f"{where}: expected a number >= {minimum}, got {value}")
    return float(value)


def _enum(value: Any, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        shown = "missing" if value is None else repr(value)
        raise ScriptError(f"{where}: expected one of {', '.join(repr(c) for c in choices)}, got {shown}")
    return str(value)  # one of the choices
