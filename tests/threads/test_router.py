"""/v1/threads over HTTP, including GET /v1/threads (assistd's addition)."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import assert_error


class TestCreateThread:
    async def test_empty_body_and_no_body(self, client: httpx.AsyncClient) -> None:
        for kwargs in ({"json": {}}, {}):
            t = (await client.post("/threads", **kwargs)).json()
            assert t["id"].startswith("thread_") and t["object"] == "thread"
            assert t["tool_resources"] == {} and t["metadata"] == {}

    async def test_with_messages_in_order(self, client: httpx.AsyncClient) -> None:
        msgs = [{"role": "user", "content": f"m{i}"} for i in range(5)] + [
            {"role": "assistant", "content": [{"type": "text", "text": "reply"}], "metadata": {"k": "v"}}
        ]
        t = (await client.post("/threads", json={"messages": msgs, "metadata": {"user": "u1"}})).json()
        listed = (await client.get(f"/threads/{t['id']}/messages", params={"order": "asc"})).json()["data"]
        assert [m["content"][0]["text"]["value"] for m in listed] == ["m0", "m1", "m2", "m3", "m4", "reply"]
        assert listed[5]["role"] == "assistant" and listed[5]["metadata"] == {"k": "v"}
        assert all(m["thread_id"] == t["id"] for m in listed)

    async def test_bad_message_rejects_whole_thread(self, client: httpx.AsyncClient) -> None:
        r = await client.post(
            "/threads", json={"messages": [{"role": "user", "content": "ok"}, {"role": "system", "content": "x"}]}
        )
        assert_error(r, 400, param="messages[1].role", code="invalid_value")
        assert (await client.get("/threads")).json()["data"] == []

    async def test_tool_resources_helper_and_ids(self, client: httpx.AsyncClient) -> None:
        vs = (await client.post("/vector_stores", json={})).json()["id"]
        r = await client.post("/threads", json={"tool_resources": {"file_search": {"vector_store_ids": [vs]}}})
        assert r.json()["tool_resources"] == {"file_search": {"vector_store_ids": [vs]}}
        r = await client.post("/threads", json={"tool_resources": {"file_search": {"vector_store_ids": ["vs_abc"]}}})
        assert_error(r, 400, param="tool_resources.file_search.vector_store_ids[0]", code="invalid_value")
        r = await client.post("/threads", json={"tool_resources": {"file_search": {"vector_store_ids": ["asst_abc"]}}})
        assert_error(r, 400, param="tool_resources.file_search.vector_store_ids[0]")
        r = await client.post("/threads", json={"tool_resources": {"code_interpreter": {"file_ids": ["file-missing"]}}})
        assert_error(r, 400, param="tool_resources.code_interpreter.file_ids[0]")

    async def test_message_file_reference_must_exist(self, client: httpx.AsyncClient) -> None:
        r = await client.post(
            "/threads",
            json={
                "messages": [
                    {
                        "role": "user",
                        "content": "x",
                        "attachments": [{"file_id": "file-nope", "tools": [{"type": "file_search"}]}],
                    }
                ]
            },
        )
        assert_error(r, 400, param="messages[0].attachments[0].file_id")


class TestThreadBetaHeader:
    async def test_missing_beta_header_is_invalid_beta(self, app, project) -> None:
        from tests.conftest import asgi_client

        async with asgi_client(app, project[0], beta=False) as c:
            for call in (c.post("/threads", json={}), c.get("/assistants"), c.get("/threads/thread_x/messages")):
                err = assert_error(await call, 400, code="invalid_beta")
                assert err["message"].startswith("You must provide the 'OpenAI-Beta' header")
            # The header is not needed for /files.
            assert (await c.get("/files")).status_code == 200


class TestGetModifyDeleteThread:
    async def test_get_modify(self, client: httpx.AsyncClient) -> None:
        t = (await client.post("/threads", json={"metadata": {"a": "1"}})).json()
        assert (await client.get(f"/threads/{t['id']}")).json() == t
        m = (await client.post(f"/threads/{t['id']}", json={"metadata": {"a": "2"}})).json()
        assert m["metadata"] == {"a": "2"}
        assert_error(
            await client.post(f"/threads/{t['id']}", json={"messages": []}),
            400,
            param="messages",
            code="unknown_parameter",
        )

    async def test_delete_removes_messages(self, client: httpx.AsyncClient, state) -> None:
        from sqlalchemy import func, select

        from assistd.models import Message

        t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "hi"}] * 3})).json()
        r = await client.delete(f"/threads/{t['id']}")
        assert r.json() == {"id": t["id"], "object": "thread.deleted", "deleted": True}
        assert_error(await client.get(f"/threads/{t['id']}"), 404, message=f"No thread found with id '{t['id']}'.")
        assert_error(await client.get(f"/threads/{t['id']}/messages"), 404)
        async with state.db.session() as s:
            assert await s.scalar(select(func.count()).select_from(Message).where(Message.thread_id == t["id"])) == 0

    async def test_wrong_prefix_and_other_project(
        self, client: httpx.AsyncClient, other_client: httpx.AsyncClient
    ) -> None:
        assert_error(
            await client.get("/threads/undefined"),
            400,
            param="thread_id",
            message="Invalid 'thread_id': 'undefined'. Expected an ID that begins with 'thread'.",
        )
        t = (await client.post("/threads", json={})).json()
        for call in (
            other_client.get(f"/threads/{t['id']}"),
            other_client.post(f"/threads/{t['id']}", json={"metadata": {}}),
            other_client.delete(f"/threads/{t['id']}"),
            other_client.get(f"/threads/{t['id']}/messages"),
            other_client.post(f"/threads/{t['id']}/messages", json={"role": "user", "content": "x"}),
        ):
            assert_error(await call, 404, message=f"No thread found with id '{t['id']}'.")
        assert (await client.get(f"/threads/{t['id']}")).status_code == 200


class TestListThreads:
    async def test_paginated_and_filtered_by_metadata(
        self, client: httpx.AsyncClient, other_client: httpx.AsyncClient
    ) -> None:
        made = []
        for i in range(6):
            md = {"user": "alice" if i % 2 == 0 else "bob", "n": str(i)}
            made.append((await client.post("/threads", json={"metadata": md})).json()["id"])
        await other_client.post("/threads", json={"metadata": {"user": "alice"}})
        all_ = (await client.get("/threads", params={"limit": 100})).json()
        assert [t["id"] for t in all_["data"]] == made[::-1]
        alice = (await client.get("/threads", params={"metadata[user]": "alice", "limit": 2})).json()
        assert [t["id"] for t in alice["data"]] == [made[4], made[2]] and alice["has_more"] is True
        rest = (await client.get("/threads", params={"metadata[user]": "alice", "after": alice["last_id"]})).json()
        assert [t["id"] for t in rest["data"]] == [made[0]] and rest["has_more"] is False
        both = (await client.get("/threads", params={"metadata[user]": "bob", "metadata[n]": "3"})).json()
        assert [t["id"] for t in both["data"]] == [made[3]]
        none = (await client.get("/threads", params={"metadata[user]": "carol"})).json()
        assert none["data"] == [] and none["first_id"] is None

    @pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}])
    async def test_bad_limit(self, client: httpx.AsyncClient, params) -> None:
        assert_error(await client.get("/threads", params=params), 400, param="limit")
