"""/v1/threads/{thread_id}/messages over HTTP."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import assert_error


@pytest.fixture
async def thread(client: httpx.AsyncClient) -> dict:
    return (await client.post("/threads", json={})).json()


async def upload(
    client: httpx.AsyncClient, name: str = "a.png", data: bytes = b"\x89PNG....", purpose: str = "vision"
) -> str:
    r = await client.post("/files", files={"file": (name, data, "application/octet-stream")}, data={"purpose": purpose})
    assert r.status_code == 200, r.text
    return r.json()["id"]


class TestCreateMessage:
    async def test_string_content(self, client: httpx.AsyncClient, thread: dict) -> None:
        r = await client.post(f"/threads/{thread['id']}/messages", json={"role": "user", "content": "Hello"})
        m = r.json()
        assert m["id"].startswith("msg_") and m["object"] == "thread.message"
        assert m["thread_id"] == thread["id"] and m["role"] == "user"
        assert m["content"] == [{"type": "text", "text": {"value": "Hello", "annotations": []}}]
        assert m["status"] == "completed" and m["assistant_id"] is None and m["run_id"] is None
        assert m["attachments"] == [] and m["metadata"] == {} and m["incomplete_details"] is None

    async def test_parts_images_and_attachments(self, client: httpx.AsyncClient, thread: dict) -> None:
        img = await upload(client)
        doc = await upload(client, "notes.txt", b"some notes", "assistants")
        body = {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_file", "image_file": {"file_id": img, "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            ],
            "attachments": [{"file_id": doc, "tools": [{"type": "file_search"}, {"type": "code_interpreter"}]}],
            "metadata": {"src": "test"},
        }
        m = (await client.post(f"/threads/{thread['id']}/messages", json=body)).json()
        assert m["content"][1] == {"type": "image_file", "image_file": {"file_id": img, "detail": "high"}}
        assert m["content"][2] == {
            "type": "image_url",
            "image_url": {"url": "https://example.com/cat.png", "detail": "auto"},
        }
        assert m["attachments"] == [{"file_id": doc, "tools": [{"type": "file_search"}, {"type": "code_interpreter"}]}]
        got = (await client.get(f"/threads/{thread['id']}/messages/{m['id']}")).json()
        assert got == m

    @pytest.mark.parametrize(
        ("body", "param", "code"),
        [
            ({"content": "x"}, "role", "missing_required_parameter"),
            ({"role": "user"}, "content", "missing_required_parameter"),
            ({"role": "system", "content": "x"}, "role", "invalid_value"),
            ({"role": "user", "content": []}, "content", "empty_array"),
            ({"role": "user", "content": ""}, "content", "string_below_min_length"),
            ({"role": "user", "content": 42}, "content", None),
            ({"role": "user", "content": [{"type": "video", "video": {}}]}, "content[0].type", "invalid_value"),
            ({"role": "user", "content": [{"type": "text"}]}, "content[0].text", "missing_required_parameter"),
            (
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]},
                "content[0].image_url.url",
                "invalid_value",
            ),
            (
                {"role": "user", "content": [{"type": "image_file", "image_file": {"file_id": "file-nope"}}]},
                "content[0].image_file.file_id",
                "invalid_value",
            ),
            (
                {
                    "role": "user",
                    "content": "x",
                    "attachments": [{"file_id": "file-nope", "tools": [{"type": "file_search"}]}],
                },
                "attachments[0].file_id",
                "invalid_value",
            ),
            (
                {"role": "user", "content": "x", "attachments": [{"file_id": "f", "tools": [{"type": "function"}]}]},
                "attachments[0].tools[0].type",
                "invalid_value",
            ),
            ({"role": "user", "content": "x", "file_ids": []}, "file_ids", "unknown_parameter"),
            (
                {"role": "user", "content": "x", "metadata": {f"k{i}": "v" for i in range(17)}},
                "metadata",
                "object_above_max_size",
            ),
        ],
    )
    async def test_bad_input(self, client: httpx.AsyncClient, thread: dict, body, param, code) -> None:
        r = await client.post(f"/threads/{thread['id']}/messages", json=body)
        assert_error(r, 400, param=param, code=code)
        assert (await client.get(f"/threads/{thread['id']}/messages")).json()["data"] == []

    async def test_someone_elses_file_cannot_be_attached(
        self, client: httpx.AsyncClient, other_client: httpx.AsyncClient, thread: dict
    ) -> None:
        theirs = await upload(other_client)
        r = await client.post(
            f"/threads/{thread['id']}/messages",
            json={"role": "user", "content": [{"type": "image_file", "image_file": {"file_id": theirs}}]},
        )
        assert_error(r, 400, param="content[0].image_file.file_id", message=f"No file found with id '{theirs}'.")

    async def test_unknown_thread(self, client: httpx.AsyncClient) -> None:
        r = await client.post("/threads/thread_nope/messages", json={"role": "user", "content": "x"})
        assert_error(r, 404, message="No thread found with id 'thread_nope'.")


class TestConcurrentCreates:
    async def test_fifty_concurrent_creates_lose_nothing_and_keep_order(
        self, client: httpx.AsyncClient, thread: dict
    ) -> None:
        async def create(i: int) -> tuple[int, str]:
            r = await client.post(f"/threads/{thread['id']}/messages", json={"role": "user", "content": f"n{i}"})
            assert r.status_code == 200, r.text
            return i, r.json()["id"]

        results = await asyncio.gather(*(create(i) for i in range(50)))
        created = {mid for _, mid in results}
        seen: list[dict] = []
        after = None
        while True:
            params = {"order": "asc", "limit": 7} | ({"after": after} if after else {})
            page = (await client.get(f"/threads/{thread['id']}/messages", params=params)).json()
            seen += page["data"]
            if not page["has_more"]:
                break
            after = page["last_id"]
        assert {m["id"] for m in seen} == created and len(seen) == 50
        # List order is creation order: created_at never decreases, and the server's order is stable.
        assert [m["created_at"] for m in seen] == sorted(m["created_at"] for m in seen)
        desc = (await client.get(f"/threads/{thread['id']}/messages", params={"limit": 100})).json()["data"]
        assert [m["id"] for m in desc] == [m["id"] for m in reversed(seen)]


class TestListMessages:
    async def test_default_is_newest_first_and_run_id_filter(
        self, client: httpx.AsyncClient, thread: dict, state
    ) -> None:
        from sqlalchemy import update

        from assistd.models import Message

        ids = [
            (await client.post(f"/threads/{thread['id']}/messages", json={"role": "user", "content": str(i)})).json()[
                "id"
            ]
            for i in range(3)
        ]
        page = (await client.get(f"/threads/{thread['id']}/messages")).json()
        assert page["data"][0]["id"] == ids[-1]
        # Messages written by a run carry its id (runs arrive with the executor); the filter must match only those.
        async with state.db.session(write=True) as s:
            await s.execute(update(Message).where(Message.id == ids[1]).values(run_id="run_abc"))
        only = (await client.get(f"/threads/{thread['id']}/messages", params={"run_id": "run_abc"})).json()
        assert [m["id"] for m in only["data"]] == [ids[1]] and only["data"][0]["run_id"] == "run_abc"

    async def test_bad_params(self, client: httpx.AsyncClient, thread: dict) -> None:
        for params, param in (({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"after": "msg_unknown"}, "after")):
            assert_error(await client.get(f"/threads/{thread['id']}/messages", params=params), 400, param=param)


class TestModifyDeleteMessage:
    async def test_modify_metadata_only(self, client: httpx.AsyncClient, thread: dict) -> None:
        m = (await client.post(f"/threads/{thread['id']}/messages", json={"role": "user", "content": "x"})).json()
        r = await client.post(f"/threads/{thread['id']}/messages/{m['id']}", json={"metadata": {"seen": "yes"}})
        assert r.json()["metadata"] == {"seen": "yes"} and r.json()["content"] == m["content"]
        assert_error(
            await client.post(f"/threads/{thread['id']}/messages/{m['id']}", json={"content": "new"}),
            400,
            param="content",
            code="unknown_parameter",
        )

    async def test_delete(self, client: httpx.AsyncClient, thread: dict) -> None:
        m = (await client.post(f"/threads/{thread['id']}/messages", json={"role": "user", "content": "x"})).json()
        r = await client.delete(f"/threads/{thread['id']}/messages/{m['id']}")
        assert r.json() == {"id": m["id"], "object": "thread.message.deleted", "deleted": True}
        assert_error(
            await client.get(f"/threads/{thread['id']}/messages/{m['id']}"),
            404,
            message=f"No message found with id '{m['id']}'.",
        )
        assert_error(await client.delete(f"/threads/{thread['id']}/messages/{m['id']}"), 404)

    async def test_message_of_another_thread_is_404(self, client: httpx.AsyncClient, thread: dict) -> None:
        m = (await client.post(f"/threads/{thread['id']}/messages", json={"role": "user", "content": "x"})).json()
        t2 = (await client.post("/threads", json={})).json()
        assert_error(await client.get(f"/threads/{t2['id']}/messages/{m['id']}"), 404)
        assert_error(await client.get(f"/threads/{thread['id']}/messages/asst_x"), 400, param="message_id")
