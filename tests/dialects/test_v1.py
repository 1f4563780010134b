"""Assistants v1 and v2 over one store: each object reads the same through both dialects, and
each dialect keeps the other's fields out (the real API's 400s)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.conftest import asgi_client, assert_error
from tests.runs.util import sse

V1 = {"OpenAI-Beta": "assistants=v1"}


@pytest.fixture
async def c(app: Any, project: tuple[str, str]) -> Any:
    # v2 responses are validated against the spec by the hook; v1 ones (off that spec) are
    # checked against the v1 SDKs' types in tests/clients.
    async with asgi_client(app, project[0], validate_spec=False) as client:
        yield client


async def upload(c: httpx.AsyncClient, name: str, text: str) -> str:
    r = await c.post("/files", files={"file": (name, text.encode())}, data={"purpose": "assistants"})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def store_files(c: httpx.AsyncClient, store_id: str) -> list[str]:
    r = await c.get(f"/vector_stores/{store_id}/files")
    return sorted(f["id"] for f in r.json()["data"])


class TestOneStore:
    async def test_v1_assistant_read_through_v2(self, c: httpx.AsyncClient) -> None:
        f = await upload(c, "a.txt", "alpha")
        body = {"model": "m", "tools": [{"type": "code_interpreter"}, {"type": "retrieval"}], "file_ids": [f]}
        a = (await c.post("/assistants", headers=V1, json=body)).json()
        assert a["file_ids"] == [f] and a["tools"] == [{"type": "code_interpreter"}, {"type": "retrieval"}]
        v2 = (await c.get(f"/assistants/{a['id']}")).json()
        assert [t["type"] for t in v2["tools"]] == ["code_interpreter", "file_search"]
        assert v2["tool_resources"]["code_interpreter"] == {"file_ids": [f]}
        (store,) = v2["tool_resources"]["file_search"]["vector_store_ids"]
        assert await store_files(c, store) == [f]
        # a v2 change leaves the v1 view whole
        await c.post(f"/assistants/{a['id']}", json={"name": "renamed"})
        again = (await c.get(f"/assistants/{a['id']}", headers=V1)).json()
        assert again["file_ids"] == [f] and again["name"] == "renamed"

    async def test_retrieval_only_files_live_in_the_store(self, c: httpx.AsyncClient) -> None:
        f = await upload(c, "a.txt", "alpha")
        a = (
            await c.post(
                "/assistants", headers=V1, json={"model": "m", "tools": [{"type": "retrieval"}], "file_ids": [f]}
            )
        ).json()
        v2 = (await c.get(f"/assistants/{a['id']}")).json()
        assert "code_interpreter" not in v2["tool_resources"]
        assert await store_files(c, v2["tool_resources"]["file_search"]["vector_store_ids"][0]) == [f]
        assert (await c.get(f"/assistants/{a['id']}", headers=V1)).json()["file_ids"] == [f]

    async def test_v2_assistant_read_through_v1(self, c: httpx.AsyncClient) -> None:
        code, doc = await upload(c, "data.csv", "x\n1\n"), await upload(c, "doc.txt", "beta")
        body = {
            "model": "m",
            "tools": [{"type": "code_interpreter"}, {"type": "file_search"}],
            "tool_resources": {
                "code_interpreter": {"file_ids": [code]},
                "file_search": {"vector_stores": [{"file_ids": [doc]}]},
            },
        }
        a = (await c.post("/assistants", json=body)).json()
        v1 = (await c.get(f"/assistants/{a['id']}", headers=V1)).json()
        assert v1["file_ids"] == [code, doc] and v1["tools"] == [{"type": "code_interpreter"}, {"type": "retrieval"}]
        assert "tool_resources" not in v1 and "temperature" not in v1
        listed = (await c.get("/assistants", headers=V1)).json()["data"]
        assert next(x for x in listed if x["id"] == a["id"])["file_ids"] == [code, doc]
        files = (await c.get(f"/assistants/{a['id']}/files", headers=V1, params={"order": "asc"})).json()
        assert {x["id"] for x in files["data"]} == {code, doc} and files["data"][0]["object"] == "assistant.file"
        # a v1 edit of other fields keeps the v2 resources as they were
        await c.post(f"/assistants/{a['id']}", headers=V1, json={"name": "v1 edit"})
        after = (await c.get(f"/assistants/{a['id']}")).json()
        assert after["tool_resources"] == a["tool_resources"] and after["name"] == "v1 edit"

    async def test_assistant_files_move_both_views(self, c: httpx.AsyncClient) -> None:
        f, g = await upload(c, "a.txt", "alpha"), await upload(c, "b.txt", "beta")
        body = {"model": "m", "tools": [{"type": "code_interpreter"}, {"type": "retrieval"}], "file_ids": [f]}
        a = (await c.post("/assistants", headers=V1, json=body)).json()
        added = await c.post(f"/assistants/{a['id']}/files", headers=V1, json={"file_id": g})
        assert added.json() == {
            "id": g,
            "object": "assistant.file",
            "created_at": added.json()["created_at"],
            "assistant_id": a["id"],
        }
        v2 = (await c.get(f"/assistants/{a['id']}")).json()
        store = v2["tool_resources"]["file_search"]["vector_store_ids"][0]
        assert v2["tool_resources"]["code_interpreter"]["file_ids"] == [f, g] and await store_files(c, store) == sorted(
            [f, g]
        )
        gone = await c.delete(f"/assistants/{a['id']}/files/{f}", headers=V1)
        assert gone.json() == {"id": f, "object": "assistant.file.deleted", "deleted": True}
        v2 = (await c.get(f"/assistants/{a['id']}")).json()
        assert v2["tool_resources"]["code_interpreter"]["file_ids"] == [g] and await store_files(c, store) == [g]
        assert (await c.get(f"/files/{f}")).status_code == 200  # the File itself stays
        assert_error(await c.get(f"/assistants/{a['id']}/files/{f}", headers=V1), 404)

    async def test_message_files_both_ways(self, c: httpx.AsyncClient) -> None:
        f = await upload(c, "a.txt", "alpha")
        t = (
            await c.post(
                "/threads", headers=V1, json={"messages": [{"role": "user", "content": "hi", "file_ids": [f]}]}
            )
        ).json()
        assert t == {"id": t["id"], "object": "thread", "created_at": t["created_at"], "metadata": {}}
        v2 = (await c.get(f"/threads/{t['id']}/messages")).json()["data"][0]
        assert v2["attachments"] == [{"file_id": f, "tools": [{"type": "code_interpreter"}, {"type": "file_search"}]}]
        # a v2 message with attachments reads through v1 with file_ids
        body = {
            "role": "user",
            "content": "more",
            "attachments": [{"file_id": f, "tools": [{"type": "code_interpreter"}]}],
        }
        m2 = (await c.post(f"/threads/{t['id']}/messages", json=body)).json()
        v1 = (await c.get(f"/threads/{t['id']}/messages/{m2['id']}", headers=V1)).json()
        assert v1["file_ids"] == [f] and "attachments" not in v1
        files = (await c.get(f"/threads/{t['id']}/messages/{m2['id']}/files", headers=V1)).json()
        assert [x["id"] for x in files["data"]] == [f] and files["data"][0]["message_id"] == m2["id"]


class TestBadInput:
    async def test_v1_fields_under_v2_and_the_reverse(self, c: httpx.AsyncClient) -> None:
        assert_error(
            await c.post("/assistants", json={"model": "m", "file_ids": []}),
            400,
            param="file_ids",
            code="unknown_parameter",
        )
        r = await c.post("/assistants", json={"model": "m", "tools": [{"type": "retrieval"}]})
        assert_error(r, 400, param="tools[0].type", code="invalid_value")
        r = await c.post("/assistants", headers=V1, json={"model": "m", "tool_resources": {}})
        assert_error(
            r, 400, param="tool_resources", code="unknown_parameter", message="Unknown parameter: 'tool_resources'."
        )
        r = await c.post("/assistants", headers=V1, json={"model": "m", "tools": [{"type": "file_search"}]})
        assert_error(r, 400, param="tools[0].type", code="invalid_value")
        t = (await c.post("/threads", headers=V1, json={})).json()
        r = await c.post(
            f"/threads/{t['id']}/messages", headers=V1, json={"role": "user", "content": "x", "attachments": []}
        )
        assert_error(r, 400, param="attachments", code="unknown_parameter")
        r = await c.post(
            f"/threads/{t['id']}/runs", headers=V1, json={"assistant_id": "asst_x", "parallel_tool_calls": False}
        )
        assert_error(r, 400, param="parallel_tool_calls", code="unknown_parameter")
        # v1 had no message delete
        assert_error(await c.delete(f"/threads/{t['id']}/messages/msg_x", headers=V1), 404)

    async def test_missing_and_foreign_files(self, c: httpx.AsyncClient, other_client: httpx.AsyncClient) -> None:
        foreign = await upload(other_client, "theirs.txt", "not yours")
        for file_id in ("file-doesnotexist", foreign):
            r = await c.post("/assistants", headers=V1, json={"model": "m", "file_ids": [file_id]})
            assert_error(r, 400, param="file_ids[0]", message=f"No file found with id '{file_id}'.")
            r = await c.post(
                "/threads", headers=V1, json={"messages": [{"role": "user", "content": "x", "file_ids": [file_id]}]}
            )
            assert_error(r, 400, param="messages[0].file_ids[0]")
        a = (await c.post("/assistants", headers=V1, json={"model": "m"})).json()
        r = await c.post(f"/assistants/{a['id']}/files", headers=V1, json={"file_id": foreign})
        assert_error(r, 400, param="file_id")

    async def test_file_limits(self, c: httpx.AsyncClient) -> None:
        many = [await upload(c, f"f{i}.txt", f"file {i}") for i in range(21)]
        r = await c.post("/assistants", headers=V1, json={"model": "m", "file_ids": many})
        assert_error(r, 400, param="file_ids", code="array_above_max_length")
        a = (await c.post("/assistants", headers=V1, json={"model": "m", "file_ids": many[:20]})).json()
        assert len(a["file_ids"]) == 20
        r = await c.post(f"/assistants/{a['id']}/files", headers=V1, json={"file_id": many[20]})
        assert_error(r, 400, param="file_id", code="array_above_max_length")
        t = (await c.post("/threads", headers=V1, json={})).json()
        r = await c.post(
            f"/threads/{t['id']}/messages", headers=V1, json={"role": "user", "content": "x", "file_ids": many[:11]}
        )
        assert_error(r, 400, param="file_ids", code="array_above_max_length")


class TestRuns:
    async def test_create_thread_and_run_streams_v1_shapes(self, c: httpx.AsyncClient, llm: Any) -> None:
        llm.set_turns([{"text": "Streaming in v1."}])
        f = await upload(c, "a.txt", "alpha")
        a = (
            await c.post(
                "/assistants", headers=V1, json={"model": "m", "tools": [{"type": "code_interpreter"}], "file_ids": [f]}
            )
        ).json()
        body = {"assistant_id": a["id"], "stream": True, "thread": {"messages": [{"role": "user", "content": "hi"}]}}
        events = await sse(c, "/threads/runs", body, validate=False, headers=V1)
        names = [n for n, _ in events]
        assert names[0] == "thread.created" and names[-2:] == ["thread.run.completed", "done"]
        assert set(events[0][1]) == {"id", "object", "created_at", "metadata"}
        runs = [d for n, d in events if n.startswith("thread.run.") and not n.startswith("thread.run.step")]
        assert all(r["file_ids"] == [f] and "parallel_tool_calls" not in r for r in runs)
        deltas = [d["delta"]["content"][0]["text"]["value"] for n, d in events if n == "thread.message.delta"]
        assert "".join(deltas) == "Streaming in v1."
        done = next(d for n, d in events if n == "thread.message.completed")
        assert done["file_ids"] == [] and "attachments" not in done
        thread_id = events[0][1]["id"]
        listed = (await c.get(f"/threads/{thread_id}/runs", headers=V1)).json()["data"]
        assert [r["file_ids"] for r in listed] == [[f]] and listed[0]["tools"] == [{"type": "code_interpreter"}]
        modified = await c.post(
            f"/threads/{thread_id}/runs/{listed[0]['id']}", headers=V1, json={"metadata": {"k": "v"}}
        )
        assert modified.json()["metadata"] == {"k": "v"} and modified.json()["file_ids"] == [f]

    async def test_citations_quote_in_v1_only_streamed_and_read(self, c: httpx.AsyncClient, llm: Any) -> None:
        llm.set_turns(
            [
                {"tool_calls": [{"name": "file_search", "arguments": {"queries": ["herons"]}}]},
                {"match": {"has_tool_results": True}, "text": "Herons, they say【0:0†lanterns.txt】."},
            ]
        )
        f = await upload(c, "lanterns.txt", "The lanterns of the harbour are shaped like herons.")
        body = {"model": "m", "tools": [{"type": "retrieval"}], "file_ids": [f]}
        a = (await c.post("/assistants", headers=V1, json=body)).json()
        body = {
            "assistant_id": a["id"],
            "stream": True,
            "thread": {"messages": [{"role": "user", "content": "herons?"}]},
        }
        events = await sse(c, "/threads/runs", body, validate=False, headers=V1)
        quote = "The lanterns of the harbour are shaped like herons."
        streamed = [
            a["file_citation"]
            for n, d in events
            if n == "thread.message.delta"
            for a in d["delta"]["content"][0]["text"].get("annotations", [])
        ]
        assert streamed == [{"file_id": f, "quote": quote}]
        done = next(d for n, d in events if n == "thread.message.completed")
        assert [a["file_citation"] for a in done["content"][0]["text"]["annotations"]] == [
            {"file_id": f, "quote": quote}
        ]
        # one stored message: v1 shows the quote, v2 (which dropped it) only the file
        thread_id = events[0][1]["id"]
        v1 = (await c.get(f"/threads/{thread_id}/messages", headers=V1)).json()["data"][0]
        v2 = (await c.get(f"/threads/{thread_id}/messages")).json()["data"][0]
        assert v1["content"][0]["text"]["annotations"][0]["file_citation"] == {"file_id": f, "quote": quote}
        assert v2["content"][0]["text"]["annotations"][0]["file_citation"] == {"file_id": f}
        assert (
            v2["content"][0]["text"]["value"]
            == v1["content"][0]["text"]["value"]
            == "Herons, they say【0:0†lanterns.txt】."
        )

    async def test_cancel(self, c: httpx.AsyncClient, llm: Any) -> None:
        llm.set_turns([{"text": "slow " * 200, "tokens_per_second": 50}])
        a = (await c.post("/assistants", headers=V1, json={"model": "m", "tools": [{"type": "retrieval"}]})).json()
        t = (await c.post("/threads", headers=V1, json={"messages": [{"role": "user", "content": "hi"}]})).json()
        run = (await c.post(f"/threads/{t['id']}/runs", headers=V1, json={"assistant_id": a["id"]})).json()
        cancelling = (await c.post(f"/threads/{t['id']}/runs/{run['id']}/cancel", headers=V1)).json()
        assert cancelling["status"] in ("cancelling", "cancelled") and cancelling["tools"] == [{"type": "retrieval"}]
        for _ in range(300):
            got = await c.get(f"/threads/{t['id']}/runs/{run['id']}", headers=V1)
            if got.json()["status"] == "cancelled":
                break
            await asyncio.sleep(0.02)
        assert got.json()["status"] == "cancelled" and got.json()["file_ids"] == []
