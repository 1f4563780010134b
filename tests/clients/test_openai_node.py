"""The openai Node SDK (7.60.0, the newest with ``beta.assistants``) on the v2 API: create,
``createAndPoll``, ``runs.stream`` + ``finalRun()``, ``submitToolOutputsStream``,
``vectorStores.files.uploadAndPoll`` and file_search; every response and event checked
against the spec."""

from __future__ import annotations

from urllib.parse import urlsplit

import orjson

from assistd.fakellm import FakeLLM
from tests.clients.conftest import Server, run_node
from tests.conftest import check_against_spec
from tests.spec import validate_event

TURNS = [
    {"match": {"last_user_contains": "hello from node"}, "text": "Hello from assistd."},
    {"match": {"last_user_contains": "Stream a greeting"}, "text": "Streamed greetings to you!"},
    {
        "match": {"last_user_contains": "weather"},
        "tool_calls": [
            {"name": "get_weather", "arguments": {"city": "Paris"}},
            {"name": "get_weather", "arguments": {"city": "Oslo"}},
        ],
    },
    {"match": {"last_user_contains": "weather", "has_tool_results": True}, "text": "Sunny in both."},
    {
        "match": {"last_user_contains": "herons"},
        "tool_calls": [{"name": "file_search", "arguments": {"queries": ["herons"]}}],
    },
    {
        "match": {"last_user_contains": "herons", "has_tool_results": True},
        "text": "The lighthouse keeper does【0:0†herons.txt】.",
    },
]


async def test_openai_node_flows(server: Server, llm: FakeLLM) -> None:
    llm.set_turns(TURNS)
    out = await run_node("openai_node.cjs", f"{server.base}/v1", server.key)
    assert out["poll"] == {"status": "completed", "text": "Hello from assistd."}
    assert out["stream"] == {"status": "completed", "text": "Streamed greetings to you!"}
    assert out["tools"] == {
        "requires": "requires_action",
        "calls": ["Paris", "Oslo"],
        "status": "completed",
        "answer": "Sunny in both.",
    }
    s = out["search"]
    assert s["file"] == "completed" and s["status"] == "completed" and s["cited"] == [s["fileId"]]
    for r in out["responses"]:
        check_against_spec(r["method"], urlsplit(r["url"]).path, r["status"], "application/json", r["body"].encode())
    names = [e["event"] for e in out["events"]]
    assert "thread.run.requires_action" in names and names.count("thread.run.completed") == 2
    for e in out["events"]:
        validate_event(e["event"], orjson.loads(orjson.dumps(e["data"])))
