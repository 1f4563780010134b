"""The Azure OpenAI wire: ``openai.AzureOpenAI`` (v2 API versions), the exact requests of Go's
``azopenaiassistants`` 0.1.x (v1 bodies), ``api-version`` checks and the ``api-key`` header."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import httpx2
import openai
import pytest

from assistd.fakellm import FakeLLM
from tests.conftest import assert_error, check_against_spec

V2_VERSION = "2024-05-01-preview"
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


async def _validate(response: httpx2.Response) -> None:
    """Azure paths are OpenAI's under /openai: each response is checked against the v2 spec."""
    await response.aread()
    path = response.request.url.path
    assert path.startswith("/openai/"), path
    check_against_spec(
        response.request.method,
        "/v1" + path.removeprefix("/openai"),
        response.status_code,
        response.headers.get("content-type", ""),
        response.content,
    )


@pytest.fixture
async def azure(app: Any, project: tuple[str, str]) -> Any:
    http = httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), event_hooks={"response": [_validate]}, timeout=30
    )
    client = openai.AsyncAzureOpenAI(
        azure_endpoint="http://test", api_key=project[0], api_version=V2_VERSION, http_client=http, max_retries=0
    )
    try:
        yield client
    finally:
        await client.close()


class TestAzureOpenAIPython:
    async def test_assistants_threads_and_polled_runs(self, azure: openai.AsyncAzureOpenAI, llm: FakeLLM) -> None:
        llm.set_turns([{"text": "Hello from the deployment."}])
        a = await azure.beta.assistants.create(model="gpt-4o-deployment", name="Azure helper")
        assert (await azure.beta.assistants.retrieve(a.id)).name == "Azure helper"
        t = await azure.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        run = await azure.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, poll_interval_ms=20)
        assert run.status == "completed" and run.model == "gpt-4o-deployment"
        assert llm.chat_requests[-1].body["model"] == "gpt-4o-deployment"  # the deployment name is the model
        msgs = await azure.beta.threads.messages.list(thread_id=t.id)
        assert msgs.data[0].content[0].text.value == "Hello from the deployment."

    async def test_streamed_function_calling(self, azure: openai.AsyncAzureOpenAI, llm: FakeLLM) -> None:
        llm.set_turns(
            [
                {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
                {"match": {"has_tool_results": True}, "text": "Sunny in Paris."},
            ]
        )
        a = await azure.beta.assistants.create(model="gpt-4o", tools=[WEATHER])
        t = await azure.beta.threads.create(messages=[{"role": "user", "content": "Weather in Paris?"}])
        async with azure.beta.threads.runs.stream(thread_id=t.id, assistant_id=a.id) as stream:
            await stream.until_done()
            run = await stream.get_final_run()
        assert run.status == "requires_action"
        call = run.required_action.submit_tool_outputs.tool_calls[0]
        async with azure.beta.threads.runs.submit_tool_outputs_stream(
            thread_id=t.id, run_id=run.id, tool_outputs=[{"tool_call_id": call.id, "output": "sunny"}]
        ) as stream:
            text = "".join([d async for d in stream.text_deltas])
            final = await stream.get_final_run()
        assert text == "Sunny in Paris." and final.status == "completed"

    async def test_vector_stores_and_file_search(self, azure: openai.AsyncAzureOpenAI, llm: FakeLLM) -> None:
        vs = await azure.vector_stores.create(name="azure docs")
        vf = await azure.vector_stores.files.upload_and_poll(
            vector_store_id=vs.id, file=("herons.txt", b"The keeper feeds the herons at dawn."), poll_interval_ms=20
        )
        assert vf.status == "completed"
        llm.set_turns(
            [
                {"tool_calls": [{"name": "file_search", "arguments": {"queries": ["herons"]}}]},
                {"match": {"has_tool_results": True}, "text": "The keeper does【0:0†herons.txt】."},
            ]
        )
        a = await azure.beta.assistants.create(
            model="gpt-4o",
            tools=[{"type": "file_search"}],
            tool_resources={"file_search": {"vector_store_ids": [vs.id]}},
        )
        t = await azure.beta.threads.create(messages=[{"role": "user", "content": "Who feeds the herons?"}])
        run = await azure.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, poll_interval_ms=20)
        assert run.status == "completed"
        text = (await azure.beta.threads.messages.list(thread_id=t.id)).data[0].content[0].text
        assert [a.file_citation.file_id for a in text.annotations] == [vf.id]


def go_client(app: Any, key: str) -> httpx.AsyncClient:
    """What azopenaiassistants 0.1.x sends (client_custom.go: NewClientWithKeyCredential ->
    ``api-key``, azureOpenAIPolicy -> ``api-version=2024-02-15-preview`` and
    ``OpenAI-Beta: assistants=v1``; client.go: ``{endpoint}/openai/<path>``, Accept JSON)."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test/openai",
        params={"api-version": "2024-02-15-preview"},
        headers={"api-key": key, "OpenAI-Beta": "assistants=v1", "Accept": "application/json"},
        timeout=30,
    )


async def test_go_azopenaiassistants_requests(app: Any, project: tuple[str, str], llm: FakeLLM) -> None:
    """Seed 000's calls as the Go SDK makes them; the v1 responses are checked against openai
    1.14.3's types by tests/clients (test_go_responses_are_v1)."""
    llm.set_turns([{"text": "Here is the summary you asked for."}])
    async with go_client(app, project[0]) as go:
        responses = await go_flow(go)
    created, file, thread, message, run, listed = (r.json() for r in responses[:6])
    assert created["object"] == "assistant" and created["tools"] == [{"type": "code_interpreter"}]
    assert created["file_ids"] == [] and created["model"] == "gpt-4-1106-preview"
    assert file["filename"] == "notes.txt" and file["purpose"] == "assistants"
    assert thread["object"] == "thread" and "tool_resources" not in thread
    assert message["file_ids"] == [file["id"]] and "attachments" not in message
    assert run["status"] == "completed" and run["instructions"] == "Summarise the notes."
    assert [m["content"][0]["text"]["value"] for m in listed["data"]] == ["Here is the summary you asked for."]


async def go_flow(go: httpx.AsyncClient) -> list[httpx.Response]:
    """createAssistant, uploadFile (the Go multipart), createThread, createMessage with file_ids,
    createRun with instructions, getRun until done, listMessages after + asc."""
    out = []
    body = {
        "model": "gpt-4-1106-preview",
        "name": "Go",
        "instructions": "Help.",
        "tools": [{"type": "code_interpreter"}],
    }
    out.append(await go.post("/assistants", json=body))
    files = {"file": ("notes.txt", b"meeting notes: ship on friday", "text/plain")}
    out.append(await go.post("/files", files=files, data={"purpose": "assistants"}))
    out.append(await go.post("/threads", json={}))
    thread_id = out[-1].json()["id"]
    msg = {"role": "user", "content": "Summarise my notes.", "file_ids": [out[1].json()["id"]]}
    out.append(await go.post(f"/threads/{thread_id}/messages", json=msg))
    run = await go.post(
        f"/threads/{thread_id}/runs", json={"assistant_id": out[0].json()["id"], "instructions": "Summarise the notes."}
    )
    for _ in range(300):
        run = await go.get(f"/threads/{thread_id}/runs/{run.json()['id']}")
        if run.json()["status"] not in ("queued", "in_progress"):
            break
        await asyncio.sleep(0.02)
    out.append(run)
    out.append(await go.get(f"/threads/{thread_id}/messages", params={"after": out[3].json()["id"], "order": "asc"}))
    for r in out:
        assert r.status_code == 200, r.text
    return out


class TestWire:
    async def test_api_version_is_required_and_checked(self, app: Any, project: tuple[str, str]) -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            r = await c.get("/openai/assistants", headers={"api-key": project[0]})
            err = assert_error(r, 400, param="api-version", code="missing_required_parameter")
            assert "2024-02-15-preview" in err["message"] and "2024-05-01-preview" in err["message"]
            r = await c.get("/openai/assistants", params={"api-version": "2023-05-15"}, headers={"api-key": project[0]})
            err = assert_error(r, 400, param="api-version", code="invalid_value")
            assert "Unsupported api-version '2023-05-15'" in err["message"]
            assert r.headers["x-request-id"].startswith("req_")
            # a later version speaks v2, no OpenAI-Beta needed
            r = await c.get(
                "/openai/assistants", params={"api-version": "2025-04-01-preview"}, headers={"api-key": project[0]}
            )
            assert r.status_code == 200 and r.json()["object"] == "list"

    async def test_api_key_header_everywhere(self, app: Any, project: tuple[str, str]) -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            v2 = {"api-version": V2_VERSION}
            assert (await c.get("/openai/files", params=v2, headers={"api-key": project[0]})).status_code == 200
            r = await c.get("/openai/files", params=v2, headers={"api-key": "sk-wrong"})
            assert_error(r, 401, code="invalid_api_key")
            # and on OpenAI's own paths
            ok = await c.get("/v1/assistants", headers={"api-key": project[0], "OpenAI-Beta": "assistants=v2"})
            assert ok.status_code == 200
            assert_error(await c.get("/v1/files", headers={"api-key": "sk-wrong"}), 401, code="invalid_api_key")

    async def test_versions_choose_the_dialect(self, app: Any, project: tuple[str, str]) -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            h = {"api-key": project[0], "OpenAI-Beta": "assistants=v2"}  # Azure goes by the version
            v1 = await c.post(
                "/openai/assistants",
                params={"api-version": "2024-03-01-preview"},
                headers=h,
                json={"model": "m", "file_ids": []},
            )
            assert v1.status_code == 200 and v1.json()["file_ids"] == [] and "tool_resources" not in v1.json()
            v2 = await c.post(
                "/openai/assistants", params={"api-version": V2_VERSION}, headers=h, json={"model": "m", "file_ids": []}
            )
            assert_error(v2, 400, param="file_ids", code="unknown_parameter", message="Unknown parameter: 'file_ids'.")
            unknown = await c.get("/openai/nothing", params={"api-version": V2_VERSION}, headers=h)
            assert_error(unknown, 404)
