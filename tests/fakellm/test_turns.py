"""Which turn answers: order, ``match``, ``times``, the default; changing the script at run time; the log."""

from __future__ import annotations

from typing import Any

import httpx

from assistd.fakellm import FakeLLM, Turn
from tests.fakellm.helpers import chat


async def answer(http: httpx.AsyncClient, content: str = "hi", **body: Any) -> str:
    messages = body.pop("messages", [{"role": "user", "content": content}])
    r = await http.post("/chat/completions", json={"model": "m", "messages": messages, **body})
    assert r.status_code == 200, r.text
    message = r.json()["choices"][0]["message"]
    return (
        message["content"] if message["content"] is not None else "tool:" + message["tool_calls"][0]["function"]["name"]
    )


async def test_turns_play_in_order_then_the_default_echoes(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load(["first", {"text": "second", "times": 2}, "third"])
    assert [await answer(http) for _ in range(4)] == ["first", "second", "second", "third"]
    assert await answer(http, "say this back") == "say this back"
    assert await answer(http, messages=[{"role": "user", "content": [{"type": "text", "text": "parts"}]}]) == "parts"


async def test_custom_default(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load({"default": {"fault": {"type": "http_error", "status": 500}}})
    r = await http.post("/chat/completions", json=chat())
    assert r.status_code == 500
    assert fake.last_request.turn == "default"
    fake.set_default("fallback")
    assert await answer(http) == "fallback"


async def test_match_conditions_pick_the_first_pending_turn_that_holds(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load(
        [
            {"match": {"has_tool_results": True}, "text": "It is sunny in Paris."},
            {
                "match": {"last_user_contains": "weather"},
                "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
            },
            {"match": {"model": "gpt-*"}, "text": "a gpt answer"},
        ]
    )
    assert await answer(http, "hello") == "hello"  # nothing matches: the default
    assert await answer(http, "What's the WEATHER?") == "tool:get_weather"
    conversation = [
        {"role": "user", "content": "What's the weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    assert await answer(http, messages=conversation) == "It is sunny in Paris."
    assert await answer(http, model="gpt-4o") == "a gpt answer"
    assert fake.remaining_turns == []
    assert [r.turn for r in fake.requests] == ["default", "turns[1]", "turns[0]", "turns[2]"]


async def test_changing_the_script_at_run_time(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load(["a"])
    fake.add_turns("b", {"text": "c", "name": "named"}, Turn(text="d"))
    assert [await answer(http) for _ in range(2)] == ["a", "b"]
    assert [t.text for t in fake.remaining_turns] == ["c", "d"]
    fake.set_turns(["x"])
    assert await answer(http) == "x"
    fake.add_turns("y")
    assert await answer(http) == "y"
    assert [r.turn for r in fake.requests] == ["turns[0]", "turns[1]", "turns[4]", "turns[5]"]
    fake.load({"turns": ["fresh"], "options": {"usage": "never"}})
    r = await http.post("/chat/completions", json=chat())
    assert r.json()["choices"][0]["message"]["content"] == "fresh" and "usage" not in r.json()
    assert fake.last_request.turn == "turns[0]"


async def test_request_log(fake: FakeLLM, http: httpx.AsyncClient) -> None:
    fake.load([{"text": "ok", "name": "greeting"}])
    body = chat(model="gpt-x", temperature=0.2, tools=[{"type": "function", "function": {"name": "f"}}])
    await http.post("/chat/completions", json=body, headers={"Authorization": "Bearer sk-abc", "X-Trace": "t1"})
    await http.post("/chat/completions", json={"model": "m"})
    await http.get("/models")
    first, bad, models = fake.requests
    assert (first.method, first.path, first.status, first.turn) == ("POST", "/v1/chat/completions", 200, "greeting")
    assert first.body == body
    assert first.headers["authorization"] == "Bearer sk-abc"
    assert first.headers["x-trace"] == "t1"
    assert first.headers["content-type"] == "application/json"
    assert first.content.startswith(b"{")
    assert (bad.status, bad.turn) == (400, None)
    assert (models.method, models.path, models.body) == ("GET", "/v1/models", None)
    assert fake.chat_requests == [first, bad]
    assert first.to_dict()["body"] == body
    fake.clear_requests()
    assert fake.requests == []


async def test_control_api(fake: FakeLLM) -> None:
    """The same controls over HTTP, for a fake running as its own process."""
    async with httpx.AsyncClient(base_url=fake.url, timeout=10) as c:
        r = await c.put("/_fakellm/script", json={"turns": ["one"], "models": ["mx"]})
        assert r.json() == {"remaining_turns": 1, "names": [None], "models": ["mx"]}
        r = await c.post("/_fakellm/turns", json=[{"text": "two", "name": "second"}])
        assert r.json() == {"remaining_turns": 2}
        r = await c.post("/_fakellm/turns", json={"txt": "typo"})
        assert r.status_code == 400
        assert "unknown key 'txt'" in r.json()["error"]["message"]
        assert (await c.put("/_fakellm/script", json={"turns": 1})).status_code == 400
        assert (await c.get("/_fakellm/script")).json()["names"] == [None, "second"]
        for expected in ("one", "two"):
            r = await c.post("/v1/chat/completions", json=chat())
            assert r.json()["choices"][0]["message"]["content"] == expected
        log = (await c.get("/_fakellm/requests")).json()["data"]
        assert [(e["path"], e["turn"], e["status"]) for e in log] == [
            ("/v1/chat/completions", "turns[0]", 200),
            ("/v1/chat/completions", "second", 200),
        ]
        assert log[0]["body"] == chat()
        assert (await c.delete("/_fakellm/requests")).json() == {"deleted": 2}
        assert (await c.get("/_fakellm/requests")).json()["data"] == []
