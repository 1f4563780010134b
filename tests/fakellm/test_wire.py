"""The wire format over real HTTP (httpx against uvicorn): JSON, SSE, usage, request checks, models."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from assistd.fakellm import FakeLLM
from tests.fakellm.helpers import USER, chat, stream

CHUNK_KEYS = ["id", "object", "created", "model", "service_tier", "system_fingerprint", "choices"]


async def test_non_streaming_text_is_a_chat_completion(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load(["Hello there, world!"])
    r = await http.post("/chat/completions", json=chat(model="my-model"))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-request-id"].startswith("req_")
    body = r.json()
    assert list(body) == ["id", "object", "created", "model", "choices", "usage", "service_tier", "system_fingerprint"]
    assert re.fullmatch(r"chatcmpl-[A-Za-z0-9]{29}", body["id"])
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert body["model"] == "my-model"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello there, world!", "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    usage = body["usage"]
    assert usage["completion_tokens"] == 5  # Hello there , world !
    assert usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0


async def test_streaming_text_is_openai_sse(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load(["Hello there, world!"])
    s = await stream(http, chat(model="my-model"))
    assert s.raw.endswith("data: [DONE]\n\n")
    chunks = s.chunks
    ids = {c["id"] for c in chunks}
    assert len(ids) == 1 and next(iter(ids)).startswith("chatcmpl-")
    for c in chunks:
        assert list(c) == CHUNK_KEYS  # no usage key at all without stream_options.include_usage
        assert c["object"] == "chat.completion.chunk"
        assert c["model"] == "my-model"
        assert c["created"] == chunks[0]["created"]
        (choice,) = c["choices"]
        assert list(choice) == ["index", "delta", "logprobs", "finish_reason"]
        assert choice["index"] == 0 and choice["logprobs"] is None
    assert s.deltas == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "Hello"},
        {"content": " there,"},
        {"content": " world!"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, None, "stop"]


async def test_include_usage_adds_a_last_usage_chunk(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load([{"text": "one two three", "usage": {"prompt_tokens": 11}}])
    s = await stream(http, chat(stream_options={"include_usage": True}))
    *body, last = s.chunks
    for c in body:
        assert c["usage"] is None  # OpenAI: every other chunk carries "usage": null
        assert len(c["choices"]) == 1
    assert last["choices"] == []
    assert last["usage"]["prompt_tokens"] == 11
    assert last["usage"]["completion_tokens"] == 3
    assert last["usage"]["total_tokens"] == 14
    assert body[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("options", "include_usage", "where"),
    [
        ({"usage": "never"}, True, None),
        ({"usage": "always"}, False, "last"),
        ({"usage": "only_with_include_usage"}, False, None),
        ({"usage": "always", "usage_in_finish_chunk": True}, False, "finish"),
        ({"usage_in_finish_chunk": True}, True, "finish"),
    ],
)
async def test_usage_dialects(
    fake: FakeLLM, http: httpx.AsyncClient, options: dict[str, Any], include_usage: bool, where: str | None
) -> None:
    fake.load({"options": options, "turns": ["hi there", "hi there"]})
    body = chat(stream_options={"include_usage": True}) if include_usage else chat()
    chunks = (await stream(http, body)).chunks
    with_usage = [i for i, c in enumerate(chunks) if c.get("usage")]
    if where is None:
        assert with_usage == []
    elif where == "last":
        assert with_usage == [len(chunks) - 1] and chunks[-1]["choices"] == []
    else:
        assert with_usage == [len(chunks) - 1] and chunks[-1]["choices"][0]["finish_reason"] == "stop"
    json_body = (await http.post("/chat/completions", json=chat())).json()
    assert ("usage" in json_body) == (options.get("usage") != "never")


async def test_chunking(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load(
        [
            {"text": "abcdefgh", "chunk_size": 3, "chunk_unit": "chars"},
            {"text": "one two three four five", "chunk_size": 2},
        ]
    )
    assert [d.get("content") for d in (await stream(http, chat())).deltas[1:-1]] == ["abc", "def", "gh"]
    assert [d.get("content") for d in (await stream(http, chat())).deltas[1:-1]] == ["one two", " three four", " five"]


async def test_reasoning(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load(
        [
            {"reasoning": "Let me think.", "text": "42"},
            {"reasoning": "Hmm.", "text": "42", "reasoning_field": "reasoning"},
            {"reasoning": "Let me think.", "text": "42"},
        ]
    )
    s = await stream(http, chat())
    assert s.deltas == [
        {"role": "assistant", "content": "", "refusal": None},
        {"reasoning_content": "Let"},
        {"reasoning_content": " me"},
        {"reasoning_content": " think."},
        {"content": "42"},
        {},
    ]
    s = await stream(http, chat())
    assert [d for d in s.deltas if "reasoning" in d] == [{"reasoning": "Hmm."}]
    message = (await http.post("/chat/completions", json=chat())).json()["choices"][0]["message"]
    assert message["content"] == "42"
    assert message["reasoning_content"] == "Let me think."
    assert (await http.post("/chat/completions", json=chat())).json()["usage"]["completion_tokens_details"][
        "reasoning_tokens"
    ] == 0  # the echo default: no reasoning


async def test_parallel_tool_calls_stream_like_openai(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    calls = [
        {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_paris"},
        {"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "call_oslo"},
    ]
    fake.load([{"tool_calls": calls}, {"tool_calls": calls}])
    s = await stream(http, chat())
    first = s.deltas[0]
    assert first["role"] == "assistant" and first["content"] is None  # the role rides on the first call
    entries = s.tool_call_entries
    assert entries[0] == [
        {"index": 0, "id": "call_paris", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    ]
    assert all(len(e) == 1 for e in entries)
    by_index: dict[int, str] = {}
    for (entry,) in entries:
        by_index[entry["index"]] = by_index.get(entry["index"], "") + entry["function"]["arguments"]
        if "id" not in entry:
            assert set(entry) == {"index", "function"} and set(entry["function"]) == {"arguments"}
    assert by_index == {0: '{"city":"Paris"}', 1: '{"city":"Oslo"}'}
    assert [e[0]["id"] for e in entries if "id" in e[0]] == ["call_paris", "call_oslo"]
    assert s.chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"

    message = (await http.post("/chat/completions", json=chat())).json()["choices"][0]
    assert message["finish_reason"] == "tool_calls"
    assert message["message"]["content"] is None
    assert message["message"]["tool_calls"] == [
        {"id": "call_paris", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_oslo", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}},
    ]


TWO_CALLS = [
    {"name": "alpha", "arguments": '{"n":1,"s":"long enough"}', "id": "call_a"},
    {"name": "beta", "arguments": '{"n":2}', "id": "call_b"},
]


def entries_for(option: dict[str, Any]) -> dict[str, Any]:
    return {"tool_calls": TWO_CALLS, **option}


async def test_quirk_tool_call_index_missing(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load([entries_for({"tool_call_index": "missing"})])
    entries = [e for group in (await stream(http, chat())).tool_call_entries for e in group]
    assert all("index" not in e for e in entries)
    assert [e["id"] for e in entries if "id" in e] == ["call_a", "call_b"]


async def test_quirk_tool_call_index_all_zero(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load([entries_for({"tool_call_index": "all_zero"})])
    entries = [e for group in (await stream(http, chat())).tool_call_entries for e in group]
    assert {e["index"] for e in entries} == {0}
    assert [(e["id"], e["function"]["name"]) for e in entries if "id" in e] == [("call_a", "alpha"), ("call_b", "beta")]


async def test_quirk_tool_call_id_missing_first(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load([entries_for({"tool_call_id": "missing_first"}), entries_for({"tool_call_id": "missing"})])
    entries = [e for group in (await stream(http, chat())).tool_call_entries for e in group]
    heads = [e for e in entries if "name" in e["function"]]
    assert [h["index"] for h in heads] == [0, 1]
    assert all("id" not in h for h in heads)  # a first delta with an index but no id
    with_id = [(e["index"], e["id"]) for e in entries if "id" in e]
    assert with_id == [(0, "call_a"), (1, "call_b")]  # ... the id comes with the next delta
    entries = [e for group in (await stream(http, chat())).tool_call_entries for e in group]
    assert all("id" not in e for e in entries)


async def test_quirk_arguments_before_name(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load([entries_for({"arguments_before_name": True})])
    entries = [e for group in (await stream(http, chat())).tool_call_entries for e in group]
    for index, call in enumerate(TWO_CALLS):
        mine = [e for e in entries if e["index"] == index]
        assert mine[0]["id"] == call["id"] and "name" not in mine[0]["function"]
        assert mine[0]["function"]["arguments"]  # arguments arrive first ...
        assert mine[-1] == {"index": index, "function": {"name": call["name"]}}  # ... the name last
        assert "".join(e["function"].get("arguments", "") for e in mine) == call["arguments"]


async def test_quirk_whole_tool_call_in_one_chunk(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load([entries_for({"whole_tool_call_in_one_chunk": True}), entries_for({"all_tool_calls_in_one_chunk": True})])
    expected = [
        {"index": i, "id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
        for i, c in enumerate(TWO_CALLS)
    ]
    assert (await stream(http, chat())).tool_call_entries == [[expected[0]], [expected[1]]]
    assert (await stream(http, chat())).tool_call_entries == [expected]


async def test_quirks_combine(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    # Ollama 0.20.x: every call of the parallel set at index 0, each whole, told apart only by id.
    fake.load(
        {
            "options": {"tool_call_index": "all_zero", "whole_tool_call_in_one_chunk": True},
            "turns": [{"tool_calls": TWO_CALLS}],
        }
    )
    entries = (await stream(http, chat())).tool_call_entries
    assert [(e[0]["index"], e[0]["id"], e[0]["function"]["arguments"]) for e in entries] == [
        (0, "call_a", TWO_CALLS[0]["arguments"]),
        (0, "call_b", TWO_CALLS[1]["arguments"]),
    ]


async def test_finish_reason_override_and_token_cap(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load(
        [
            {"tool_calls": [{"name": "f"}], "finish_reason": "stop"},
            "one two three four five six",
            "one two three four five six",
            {"text": "one two three", "honour_max_tokens": False},
        ]
    )
    chunks = (await stream(http, chat())).chunks
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    capped = (await http.post("/chat/completions", json=chat(max_completion_tokens=2))).json()
    assert capped["choices"][0]["message"]["content"] == "one two"
    assert capped["choices"][0]["finish_reason"] == "length"
    assert capped["usage"]["completion_tokens"] == 2
    s = await stream(http, chat(max_tokens=3))
    assert s.text == "one two three"
    assert s.chunks[-1]["choices"][0]["finish_reason"] == "length"
    uncapped = (await http.post("/chat/completions", json=chat(max_tokens=1))).json()
    assert uncapped["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    ("option", "params", "param"),
    [
        (
            {"reject_stream_options": True},
            {"stream": True, "stream_options": {"include_usage": True}},
            "stream_options",
        ),
        ({"reject_parallel_tool_calls": True}, {"parallel_tool_calls": False}, "parallel_tool_calls"),
        ({"reject_tool_choice_required": True}, {"tool_choice": "required"}, "tool_choice"),
        ({"max_tokens_param": "max_tokens"}, {"max_completion_tokens": 50}, "max_completion_tokens"),
        ({"max_tokens_param": "max_completion_tokens"}, {"max_tokens": 50}, "max_tokens"),
        ({"reject_params": ["seed"]}, {"seed": 1}, "seed"),
        (
            {"reject_developer_role": True},
            {"messages": [{"role": "developer", "content": "Be terse."}, *USER]},
            "messages[0].role",
        ),
    ],
)
async def test_picky_dialects_reject_with_a_400_and_keep_the_turn(
    fake: FakeLLM, http: httpx.AsyncClient, option: dict[str, Any], params: dict[str, Any], param: str
) -> None:
    fake.load([{"text": "the answer", **option}])
    r = await http.post("/chat/completions", json=chat(**params))
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["param"] == param
    assert err["code"] in ("unsupported_parameter", "unsupported_value")
    assert err["type"] == "invalid_request_error"
    assert len(fake.remaining_turns) == 1  # not used up: the client can retry without the parameter
    retry = {k: v for k, v in params.items() if k not in (param, "stream", "stream_options")}
    if param.startswith("messages"):
        retry = {}
    elif param == "tool_choice":
        retry = {"tool_choice": "auto"}
    r = await http.post("/chat/completions", json=chat(**retry))
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "the answer"
    assert fake.remaining_turns == []


@pytest.mark.parametrize(
    ("body", "status", "param", "code", "message"),
    [
        (b"{not json", 400, None, None, "We could not parse the JSON body of your request."),
        (b"[1]", 400, None, None, "Invalid request body: expected a JSON object."),
        ({"messages": USER}, 400, None, None, "you must provide a model parameter"),
        ({"model": 5, "messages": USER}, 400, "model", "invalid_type", "Invalid type for 'model': expected a string"),
        ({"model": "m"}, 400, "messages", "missing_required_parameter", "Missing required parameter: 'messages'."),
        ({"model": "m", "messages": "hi"}, 400, "messages", "invalid_type", "expected an array, but got a string"),
        ({"model": "m", "messages": []}, 400, "messages", "empty_array", "Invalid 'messages': empty array."),
        ({"model": "m", "messages": ["hi"]}, 400, "messages[0]", "invalid_type", "expected an object"),
        ({"model": "m", "messages": [{"content": "x"}]}, 400, "messages[0].role", "missing_required_parameter", None),
        (
            {"model": "m", "messages": [{"role": "bot"}]},
            400,
            "messages[0].role",
            "invalid_value",
            "Invalid value: 'bot'.",
        ),
        ({**chat(), "stream": "yes"}, 400, "stream", "invalid_type", None),
        (
            {**chat(), "stream_options": {"include_usage": True}},
            400,
            "stream_options",
            None,
            "only allowed when 'stream'",
        ),
    ],
)
async def test_request_validation(
    fake: FakeLLM,
    http: httpx.AsyncClient,
    body: Any,
    status: int,
    param: str | None,
    code: str | None,
    message: str | None,
) -> None:
    fake.load(["kept"])
    if isinstance(body, bytes):
        r = await http.post("/chat/completions", content=body, headers={"content-type": "application/json"})
    else:
        r = await http.post("/chat/completions", json=body)
    assert r.status_code == status
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param and err["code"] == code
    if message is not None:
        assert err["message"].startswith(message) or message in err["message"], err["message"]
    assert len(fake.remaining_turns) == 1
    assert fake.requests[-1].status == status


async def test_api_key_and_strict_models(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load({"api_key": "sk-right-key-123", "strict_models": True, "models": ["known"], "turns": ["ok"]})
    r = await http.post(
        "/chat/completions", json=chat(model="known"), headers={"authorization": "Bearer sk-wrong-key-456"}
    )
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    assert "sk-wrong-key-456" not in r.json()["error"]["message"]
    assert (await http.get("/models")).status_code == 401
    auth = {"authorization": "Bearer sk-right-key-123"}
    r = await http.post("/chat/completions", json=chat(model="other"), headers=auth)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found"
    r = await http.post("/chat/completions", json=chat(model="known"), headers=auth)
    assert r.json()["choices"][0]["message"]["content"] == "ok"


async def test_models(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load({"models": ["fake-model", "gpt-4o"]})
    body = (await http.get("/models")).json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["fake-model", "gpt-4o"]
    assert all(m["object"] == "model" and m["owned_by"] and isinstance(m["created"], int) for m in body["data"])
    assert (await http.get("/models/gpt-4o")).json()["id"] == "gpt-4o"
    missing = await http.get("/models/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    unknown = await http.post("/audio/speech", json={"model": "m", "input": "x"})
    assert unknown.status_code == 404
    assert set(unknown.json()["error"]) == {"message", "type", "param", "code"}
    assert (await http.get("/chat/completions")).status_code == 405
