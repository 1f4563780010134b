"""Seed 000's flow on @azure/openai-assistants 1.0.0-beta.6 (Node), in Azure mode
(``/openai/...?api-version=2024-02-15-preview``, ``api-key``) and in OpenAI mode
(``OpenAIKeyCredential`` + ``baseUrl``): both speak Assistants v1."""

from __future__ import annotations

from typing import Any

import pytest

from assistd.fakellm import FakeLLM
from assistd.state import AppState
from tests.clients.conftest import LATE_V1_RUN_FIELDS, Server, run_node, v1_report
from tests.conftest import new_project_key
from tests.dialects.test_azure import go_client, go_flow

CODE = "import pandas as pd\nprint(pd.read_csv('/mnt/data/sales.csv').sales.sum())"
TURNS = [
    {
        "match": {"last_user_contains": "total sales"},
        "tool_calls": [{"name": "code_interpreter", "arguments": {"code": CODE}}],
    },
    {"match": {"last_user_contains": "total sales", "has_tool_results": True}, "text": "The total sales are 42."},
]


@pytest.mark.parametrize("mode", ["azure", "openai"])
async def test_seed_000_flow(mode: str, server: Server, llm: FakeLLM) -> None:
    llm.set_turns(TURNS)
    out = await run_node("azure_assistants.cjs", mode, server.base, server.key)
    assert out["assistant"]["tools"] == ["code_interpreter"] and out["assistant"]["fileIds"] == []
    assert out["file"]["filename"] == "sales.csv" and out["file"]["purpose"] == "assistants"
    assert out["question"] == {"fileIds": [out["file"]["id"]], "role": "user"}
    assert out["run"]["status"] == "completed" and out["run"]["instructions"] == "Answer in one sentence."
    # the message's file reached the code interpreter at /mnt/data/sales.csv
    assert out["answers"] == [{"role": "assistant", "text": "The total sales are 42."}]
    assert out["deleted"] is True
    code_request = llm.chat_requests[-1].body["messages"]
    assert any(m.get("role") == "tool" and "42" in str(m.get("content")) for m in code_request)

    prefix = "/openai/" if mode == "azure" else "/v1/"
    urls = [r["url"] for r in out["responses"]]
    assert all(prefix in u for u in urls)
    if mode == "azure":
        assert all("api-version=2024-02-15-preview" in u for u in urls)
    report = await v1_report(out["responses"])
    assert report["problems"] == [], "\n".join(report["problems"])
    assert report["checked"]["thread.run"] >= 2 and report["checked"]["thread.message"] >= 2
    assert report["extras"] in ({}, {"thread.run": LATE_V1_RUN_FIELDS})


async def test_go_azopenaiassistants_responses_are_v1(app: Any, state: AppState, llm: FakeLLM) -> None:
    """The Go SDK's requests (tests/dialects/test_azure.py), answered in v1 shapes that openai
    1.14.3's types accept."""
    llm.set_turns([{"text": "Here is the summary you asked for."}])
    key, _ = await new_project_key(state)
    async with go_client(app, key) as go:
        responses = await go_flow(go)
    captured = [
        {"method": r.request.method, "url": str(r.request.url), "status": r.status_code, "body": r.text}
        for r in responses
    ]
    report = await v1_report(captured)
    assert report["problems"] == [], "\n".join(report["problems"])
    assert set(report["checked"]) == {"assistant", "file", "thread", "thread.message", "thread.run"}
    assert report["extras"] == {"thread.run": LATE_V1_RUN_FIELDS}
