"""Loading and validating scripts: JSON and YAML files, defaults, and errors that name the place."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from assistd.fakellm import Fault, Match, Options, Script, ScriptError, ToolCall, Turn, load_script, parse_script_text

FULL = {
    "models": ["fake-model", "gpt-4o"],
    "strict_models": True,
    "api_key": "sk-fake",
    "options": {"chunk_size": 2, "tool_call_index": "all_zero", "usage": "always"},
    "default": {"text": "I only know the script."},
    "turns": [
        "Hello!",
        {
            "name": "weather",
            "match": {"last_user_contains": "weather"},
            "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
        },
        {"match": {"has_tool_results": True}, "text": "Sunny.", "usage": {"prompt_tokens": 7}, "ttft_ms": 50},
        {"fault": {"type": "http_error", "status": 429, "retry_after": 1}, "times": 2},
        {"reasoning": "Think.", "echo": True, "usage": "never", "finish_reason": "length"},
    ],
}

YAML = """
models: [fake-model, gpt-4o]
strict_models: true
api_key: sk-fake
options:
  chunk_size: 2
  tool_call_index: all_zero
  usage: always
default:
  text: I only know the script.
turns:
  - Hello!
  - name: weather
    match: {last_user_contains: weather}
    tool_calls:
      - name: get_weather
        arguments: {city: Paris}
  - match: {has_tool_results: true}
    text: Sunny.
    usage: {prompt_tokens: 7}
    ttft_ms: 50
  - fault: {type: http_error, status: 429, retry_after: 1}
    times: 2
  - reasoning: Think.
    echo: true
    usage: never
    finish_reason: length
"""


def test_full_script_parses_to_the_documented_values() -> None:
    s = Script.parse(FULL)
    assert s.models == ("fake-model", "gpt-4o")
    assert s.strict_models is True
    assert s.api_key == "sk-fake"
    assert s.options == Options(chunk_size=2, tool_call_index="all_zero", usage_mode="always")
    assert s.default == Turn(text="I only know the script.", name="default")
    hello, weather, sunny, rate_limited, reasoning = s.turns
    assert hello == Turn(text="Hello!")
    assert weather.name == "weather"
    assert weather.match == Match(last_user_contains="weather")
    assert weather.tool_calls == (ToolCall(name="get_weather", arguments='{"city":"Paris"}'),)
    assert sunny.usage is not None and sunny.usage.prompt_tokens == 7 and sunny.usage.completion_tokens is None
    assert sunny.options == {"ttft_ms": 50.0}
    assert rate_limited.fault == Fault(type="http_error", status=429, retry_after=1.0)
    assert rate_limited.times == 2
    assert reasoning.echo and reasoning.reasoning == "Think."
    assert reasoning.options == {"usage_mode": "never"}
    assert reasoning.usage is None
    assert reasoning.finish_reason == "length"


def test_defaults() -> None:
    s = Script.parse(None)
    assert s.turns == ()
    assert s.default.echo
    assert s.models == ("fake-model",)
    assert s.options == Options()
    assert s.api_key is None and s.strict_models is False


def test_a_bare_list_is_the_turns() -> None:
    assert Script.parse(["a", {"text": "b"}]).turns == (Turn(text="a"), Turn(text="b"))


def test_tool_call_shapes() -> None:
    (turn,) = Script.parse(
        [
            {
                "tool_calls": [
                    {"name": "a", "arguments": '{"raw": true'},
                    {"id": "call_x", "type": "function", "function": {"name": "b", "arguments": {"k": [1, 2]}}},
                    {"name": "c"},
                ]
            }
        ]
    ).turns
    assert turn.tool_calls == (
        ToolCall("a", '{"raw": true'),  # a string is sent as is, even when not valid JSON
        ToolCall("b", '{"k":[1,2]}', "call_x"),
        ToolCall("c", "{}"),
    )


def test_json_and_yaml_files_load_the_same_script(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(json.dumps(FULL))
    (tmp_path / "s.yaml").write_text(YAML)
    (tmp_path / "s.yml").write_text(YAML)
    (tmp_path / "script.txt").write_text(YAML)  # unknown suffix: JSON, else YAML
    expected = Script.parse(FULL)
    for name in ("s.json", "s.yaml", "s.yml", "script.txt"):
        assert load_script(tmp_path / name) == expected, name
    assert parse_script_text(json.dumps(FULL), fmt="json") == expected


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"turns": [')
    with pytest.raises(ScriptError, match=r"bad\.json: invalid JSON"):
        load_script(bad)
    with pytest.raises(ScriptError, match="cannot read script"):
        load_script(tmp_path / "missing.json")
    yaml_bad = tmp_path / "bad.yaml"
    yaml_bad.write_text("turns: [\n")
    with pytest.raises(ScriptError, match=r"bad\.yaml: invalid YAML"):
        load_script(yaml_bad)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("turns:\n  - txt: hello\n")
    with pytest.raises(ScriptError, match=r"wrong\.yaml: turns\[0\]: unknown key 'txt'"):
        load_script(wrong)


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ({"turn": []}, "script: unknown key 'turn'"),
        ({"turns": {}}, "turns: expected a list"),
        ([{"text": 3}], r"turns\[0\]\.text: expected a string, got a number"),
        ([{"text": "a", "echo": True}], r"turns\[0\]: 'text' and 'echo' cannot both be set"),
        ([{"chunk_size": 0}], r"turns\[0\]\.chunk_size: expected an integer >= 1, got 0"),
        (
            [{"tool_call_index": "sometimes"}],
            r"turns\[0\]\.tool_call_index: expected one of 'normal', 'missing', 'all_zero'",
        ),
        ([{"usage": "sometimes"}], r"turns\[0\]\.usage: expected one of .only_with_include_usage., .always., .never."),
        ([{"usage": {"prompt": 1}}], r"turns\[0\]\.usage: unknown key 'prompt'"),
        ([{"tool_calls": [{"arguments": {}}]}], r"turns\[0\]\.tool_calls\[0\]\.name: required"),
        ([{"tool_calls": [{"name": "f", "arguments": 3}]}], r"arguments: expected an object or a string"),
        ([{"fault": {"type": "dorp"}}], r"turns\[0\]\.fault\.type: expected one of 'http_error', 'drop'"),
        ([{"fault": {"type": "drop", "status": 500}}], r"turns\[0\]\.fault: unknown key 'status'"),
        ([{"fault": {"type": "http_error", "status": 200}}], r"fault\.status: expected an integer between 400 and 599"),
        ([{"fault": {"type": "stall", "seconds": -1}}], r"fault\.seconds: expected a number >= 0"),
        ([{"match": {"last_user_matches": "("}}], r"match\.last_user_matches: invalid regular expression"),
        ([{"match": {"has_tool_results": "yes"}}], r"match\.has_tool_results: expected true or false"),
        ([{"match": {"role": "user"}}], r"turns\[0\]\.match: unknown key 'role'"),
        ([{"times": 0}], r"turns\[0\]\.times: expected an integer >= 1"),
        ({"default": {"match": {"stream": True}}}, "default: a default turn cannot have 'match'"),
        ({"models": []}, "models: expected a non-empty list"),
        ({"options": {"text": "x"}}, "options: unknown option 'text'"),
        ({"options": {"reject_params": "stream"}}, r"options\.reject_params: expected a list"),
        ([["nested"]], r"turns\[0\]: expected an object, got a list"),
    ],
)
def test_errors_name_the_place(script: Any, message: str) -> None:
    with pytest.raises(ScriptError, match=message):
        Script.parse(script)


def test_fault_shorthand_and_defaults() -> None:
    (turn,) = Script.parse([{"fault": "drop"}]).turns
    assert turn.fault == Fault(type="drop", after_chunks=1)
    assert Fault(type="stall").seconds is None  # stall until the client leaves


def test_match_conditions() -> None:
    body: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "stream": True,
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "messages": [
            {"role": "developer", "content": "You are TERSE."},
            {"role": "user", "content": [{"type": "text", "text": "What is the Weather?"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c", "content": "sunny"},
        ],
    }
    yes = [
        {"last_user_contains": "weather"},
        {"last_user_matches": r"^What .*\?$"},
        {"message_contains": "SUNNY"},
        {"system_contains": "terse"},
        {"has_tool_results": True},
        {"has_tools": True},
        {"last_role": "tool"},
        {"model": "gpt-4o*"},
        {"stream": True},
        {"last_user_contains": "weather", "has_tool_results": True, "model": "gpt-4o-mini"},
    ]
    no = [
        {"last_user_contains": "rain"},
        {"has_tool_results": False},
        {"has_tools": False},
        {"last_role": "user"},
        {"model": "gpt-3*"},
        {"stream": False},
        {"last_user_contains": "weather", "stream": False},
    ]
    for m in yes:
        assert Match.parse(m, "m").matches(body), m
    for m in no:
        assert not Match.parse(m, "m").matches(body), m
    # tool results before the last user message are an earlier exchange, not this one's
    later = {**body, "messages": [*body["messages"], {"role": "user", "content": "thanks"}]}
    assert not Match.parse({"has_tool_results": True}, "m").matches(later)


def test_json_needs_no_pyyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # as if PyYAML were not installed
    assert parse_script_text(json.dumps(FULL)) == Script.parse(FULL)
    with pytest.raises(ScriptError, match=r"YAML scripts need PyYAML \(pip install pyyaml\)"):
        parse_script_text(YAML)
