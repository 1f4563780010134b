"""Seeds 001 and 002 as written: openai 1.3.5 and 1.14.3 on Assistants v1 (``file_ids``,
``retrieval``, assistant and message files, ``wait_on_run``, parallel functions, citations,
``create_and_stream``), every JSON response checked against that SDK's own types."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistd.fakellm import FakeLLM
from tests.clients.conftest import LATE_V1_RUN_FIELDS, Server, client_python, run_script

TURNS = [
    # Math Tutor: the model writes code, reads its output, answers
    {
        "match": {"last_user_contains": "3x + 11"},
        "tool_calls": [{"name": "code_interpreter", "arguments": {"code": "x = (14 - 11) / 3\nprint(f'x = {x:g}')"}}],
    },
    {"match": {"last_user_contains": "3x + 11", "has_tool_results": True}, "text": "Jane Doe, the answer is x = 1."},
    # retrieval over the assistant's and the message's files, with a citation
    {
        "match": {"last_user_contains": "vacation"},
        "tool_calls": [{"name": "file_search", "arguments": {"queries": ["vacation days"]}}],
    },
    {
        "match": {"last_user_contains": "vacation", "has_tool_results": True},
        "text": "You get 25 vacation days a year【0:0†handbook.txt】.",
    },
    # parallel function calls
    {
        "match": {"last_user_contains": "weather"},
        "tool_calls": [
            {"name": "get_weather", "arguments": {"city": "Paris"}},
            {"name": "get_weather", "arguments": {"city": "Oslo"}},
        ],
    },
    {"match": {"last_user_contains": "weather", "has_tool_results": True}, "text": "Sunny in Paris and in Oslo."},
    {"match": {"last_user_contains": "greeting"}, "text": "Hello there, streaming friend!"},
]


@pytest.mark.parametrize("version", ["1.3.5", "1.14.3"])
async def test_seed_flows_on_v1(version: str, server: Server, llm: FakeLLM, tmp_path: Path) -> None:
    llm.set_turns(TURNS)
    (tmp_path / "handbook.txt").write_text(
        "Employee handbook. Every employee gets 25 vacation days a year. Vacation days carry over once."
    )
    (tmp_path / "extra.txt").write_text("The cafeteria opens at noon and serves soup on Fridays.")
    out = await run_script([str(client_python(version)), "v1_flows.py", f"{server.base}/v1", server.key, str(tmp_path)])
    assert out["version"] == version
    types = out["types"]
    assert types["problems"] == [], "\n".join(types["problems"])
    assert types["checked"]["assistant"] >= 4 and types["checked"]["thread.run.step"] >= 2

    math = out["math"]
    assert math["status"] == "completed" and math["run_tools"] == ["code_interpreter"]
    assert math["answer"] == ["Jane Doe, the answer is x = 1."]
    assert math["code"] == ["x = (14 - 11) / 3\nprint(f'x = {x:g}')"] and math["logs"] == ["x = 1\n"]

    assert out["retrieval_assistant"]["tools"] == ["code_interpreter", "retrieval"]
    doc = out["retrieval_assistant"]["file_ids"]
    assert len(doc) == 1
    files = out["assistant_files"]
    assert files["added"][0] == "assistant.file" and len(files["listed"]) == 2 and doc[0] in files["listed"]
    assert files["deleted"] == ["assistant.file.deleted", True] and files["after"] == doc

    r = out["retrieval"]
    assert r["status"] == "completed" and r["run_file_ids"] == doc
    assert r["message_file_ids"] == r["message_files"] and len(r["message_files"]) == 1
    assert r["message_file"] == ["thread.message.file", r["message_file"][1]]
    assert r["answer"] == "You get 25 vacation days a year【0:0†handbook.txt】."
    assert r["tool_calls"] == [["retrieval", {}]]
    # the citation names the handbook and quotes the passage the model read
    assert r["citations"] == [{"text": "【0:0†handbook.txt】", "file_id": doc[0], "quote": r["citations"][0]["quote"]}]
    assert "25 vacation days" in r["citations"][0]["quote"]

    fn = out["functions"]
    assert fn["requires"] == "requires_action" and fn["distinct_ids"] == 2
    assert fn["calls"] == [["get_weather", {"city": "Paris"}], ["get_weather", {"city": "Oslo"}]]
    assert fn["status"] == "completed" and fn["answer"] == "Sunny in Paris and in Oslo."

    assert out["v2_field"]["message"] == "Unknown parameter: 'tool_resources'."

    if version == "1.14.3":
        s = out["stream"]
        assert "".join(s["deltas"]) == "Hello there, streaming friend!" and s["final_status"] == "completed"
        assert s["final_tools"] == ["retrieval"]
        assert (
            s["events"][:2] == ["thread.run.created", "thread.run.queued"] and s["events"][-1] == "thread.run.completed"
        )
        assert "thread.message.delta" in s["events"]
        # every field the server sends is one this SDK declares, or one the last v1 spec (April
        # 2024) added to runs after 1.14.3 was released
        assert types["extras"] == {"thread.run": LATE_V1_RUN_FIELDS}
