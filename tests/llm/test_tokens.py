"""Token counting: the shipped rank files, built into tiktoken encodings without any network."""

from __future__ import annotations

import hashlib
import socket
from importlib import resources
from pathlib import Path

import pytest
import tiktoken
import tiktoken.load
import tiktoken_ext.openai_public as openai_public

from assistd.llm import tokens


class _NoNetwork(Exception):
    pass


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No sockets, an empty tiktoken cache, and our encodings not loaded yet."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise _NoNetwork("network access in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    empty = tmp_path / "tiktoken-cache"
    empty.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(empty))
    monkeypatch.setattr(tokens, "_loaded", {})


def test_works_offline(offline: None, tmp_path: Path):
    with pytest.raises(Exception):  # noqa: B017 - tiktoken's own loader needs the network here
        tiktoken.get_encoding("cl100k_base")
    assert tokens.count_text("hello world", "gpt-4o") == 2
    assert tokens.encoding_for("gpt-4o").encode("hello world") == [24912, 2375]
    assert tokens.encoding_for("gpt-4").encode("hello world") == [15339, 1917]
    assert list((tmp_path / "tiktoken-cache").iterdir()) == []  # nothing written to tiktoken's cache either


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_same_encoding_as_tiktoken_defines(name: str, monkeypatch: pytest.MonkeyPatch):
    """Our pat_str and special tokens are tiktoken_ext.openai_public's, and the files have its hashes."""
    spec = tokens.ENCODINGS[name]
    seen: dict[str, str | None] = {}

    def load(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        seen["url"], seen["hash"] = url, expected_hash
        return tokens.get_encoding(name)._mergeable_ranks

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", load)
    reference = getattr(openai_public, name)()
    assert seen["hash"] == spec.sha256
    assert seen["url"] == f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
    assert reference["pat_str"] == spec.pat_str
    assert reference["special_tokens"] == spec.special_tokens
    data = resources.files("assistd.llm").joinpath("data", spec.file).read_bytes()
    assert hashlib.sha256(data).hexdigest() == spec.sha256


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_ranks_parsed_as_tiktoken_parses_them(name: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")  # tiktoken: no cache, just read the local file
    path = str(resources.files("assistd.llm").joinpath("data", f"{name}.tiktoken"))
    expected = tiktoken.load.load_tiktoken_bpe(path, expected_hash=tokens.ENCODINGS[name].sha256)
    assert tokens.get_encoding(name)._mergeable_ranks == expected


def test_preload(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(tokens, "_loaded", {})
    tokens.preload()
    assert set(tokens._loaded) == {"cl100k_base", "o200k_base"}


def test_encodings_are_cached():
    assert tokens.get_encoding("o200k_base") is tokens.get_encoding("o200k_base")
    assert tokens.encoding_for("gpt-5") is tokens.encoding_for("llama3")


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("o1", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("gpt-oss:20b", "o200k_base"),
        ("llama3.2:3b", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-0613", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("openai/gpt-4", "cl100k_base"),
        ("azure/gpt-35-turbo", "cl100k_base"),
        ("ft:gpt-3.5-turbo:acme::abc", "cl100k_base"),
    ],
)
def test_encoding_for(model: str, encoding: str):
    assert tokens.encoding_name_for(model) == encoding


def test_count_messages_follows_openai():
    # OpenAI's cookbook example: these messages are 129 prompt tokens for gpt-4 / gpt-3.5-turbo-0613
    messages = [
        {
            "role": "system",
            "content": "You are a helpful, pattern-following assistant that translates corporate jargon "
            "into plain English.",
        },
        {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
        {
            "role": "system",
            "name": "example_assistant",
            "content": "Things working well together will increase revenue.",
        },
        {
            "role": "system",
            "name": "example_user",
            "content": "Let's circle back when we have more bandwidth to touch base on opportunities for "
            "increased leverage.",
        },
        {
            "role": "system",
            "name": "example_assistant",
            "content": "Let's talk later when we're less busy about how to do better.",
        },
        {
            "role": "user",
            "content": "This late pivot means we don't have time to boil the ocean for the client deliverable.",
        },
    ]
    assert tokens.count_messages(messages, "gpt-4-0613") == 129
    assert tokens.count_messages(messages, "gpt-4o") == 124


def test_count_messages_with_parts_tool_calls_and_tools():
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "x"}}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
    ]
    plain = tokens.count_messages(messages, "gpt-4o")
    assert 100 < plain < 130  # the image is counted at the low-detail 85
    assert tokens.count_messages(messages, "gpt-4o", [tool]) == plain + tokens.count_tools([tool], "gpt-4o")
    assert 5 < tokens.count_tools([tool], "gpt-4o") < 30


def test_special_tokens_count_as_text():
    assert tokens.count_text("<|endoftext|>", "gpt-4o") > 1
    assert tokens.count_text("", "gpt-4o") == 0
