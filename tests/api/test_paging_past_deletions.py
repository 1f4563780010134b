"""Deleting while iterating: the SDK's auto-pagination asks for the page after an id that the
loop has just deleted; the list goes on from where that object stood."""

from __future__ import annotations

import httpx
import openai

from assistd.pagination import forget_deleted_cursors
from assistd.timeutil import now
from tests.conftest import assert_error
from tests.vector_stores.test_vector_stores import poll_file, upload


async def test_deleting_every_assistant_while_the_sdk_pages(sdk: openai.AsyncOpenAI) -> None:
    made = [(await sdk.beta.assistants.create(model="m", name=f"a{i}")).id for i in range(7)]
    seen = []
    async for a in sdk.beta.assistants.list(limit=2):
        seen.append(a.id)
        assert (await sdk.beta.assistants.delete(a.id)).deleted
    assert seen == made[::-1]  # every one, newest first, none twice
    assert (await sdk.beta.assistants.list()).data == []


async def test_deleting_messages_files_and_store_files_while_paging(sdk: openai.AsyncOpenAI) -> None:
    thread = await sdk.beta.threads.create(messages=[{"role": "user", "content": f"m{i}"} for i in range(5)])
    texts = []
    async for m in sdk.beta.threads.messages.list(thread_id=thread.id, limit=2, order="asc"):
        texts.append(m.content[0].text.value)
        await sdk.beta.threads.messages.delete(message_id=m.id, thread_id=thread.id)
    assert texts == [f"m{i}" for i in range(5)]

    files = [await sdk.files.create(file=(f"f{i}.txt", f"file {i}".encode()), purpose="assistants") for i in range(5)]
    store = await sdk.vector_stores.create(file_ids=[f.id for f in files])
    detached = []
    async for vf in sdk.vector_stores.files.list(vector_store_id=store.id, limit=2):
        detached.append(vf.id)
        await sdk.vector_stores.files.delete(file_id=vf.id, vector_store_id=store.id)
    assert sorted(detached) == sorted(f.id for f in files)

    deleted = []
    async for f in sdk.files.list(limit=2):
        deleted.append(f.id)
        await sdk.files.delete(f.id)
    assert deleted == [f.id for f in files][::-1]


async def test_a_cursor_that_left_the_filter_or_the_store_still_pages(client: httpx.AsyncClient) -> None:
    vs = (await client.post("/vector_stores", json={})).json()["id"]
    ids = [await upload(client, f"d{i}.txt", f"document {i}") for i in range(4)]
    for fid in ids:
        assert (await client.post(f"/vector_stores/{vs}/files", json={"file_id": fid})).status_code == 200
    # ingestion moves files out of filter=in_progress between two pages: the cursor is still a place
    for fid in ids:
        f = await poll_file(client, vs, fid)
        assert f["status"] == "completed", f["last_error"]
    page = (await client.get(f"/vector_stores/{vs}/files", params={"filter": "completed", "limit": 2})).json()
    r = await client.get(f"/vector_stores/{vs}/files", params={"filter": "in_progress", "after": page["last_id"]})
    assert r.status_code == 200 and r.json()["data"] == []
    # a file deleted outright (detached from every store) keeps its place in this store's list
    assert (await client.delete(f"/files/{page['last_id']}")).json()["deleted"] is True
    rest = (await client.get(f"/vector_stores/{vs}/files", params={"after": page["last_id"]})).json()
    assert [f["id"] for f in rest["data"]] == ids[:2][::-1] and not rest["has_more"]


async def test_a_deleted_cursor_is_private_to_its_list_and_forgotten_after_a_day(
    client: httpx.AsyncClient, other_client: httpx.AsyncClient, state
) -> None:
    a, b, c = [(await client.post("/assistants", json={"model": "m"})).json()["id"] for _ in range(3)]
    assert (await client.delete(f"/assistants/{b}")).json()["deleted"] is True
    assert [x["id"] for x in (await client.get("/assistants", params={"after": b})).json()["data"]] == [a]
    assert [x["id"] for x in (await client.get("/assistants", params={"before": b})).json()["data"]] == [c]
    # another project does not know it; nor does another thread's message list
    assert_error(await other_client.get("/assistants", params={"after": b}), 400, param="after")
    t1 = (await client.post("/threads", json={"messages": [{"role": "user", "content": "x"}]})).json()["id"]
    t2 = (await client.post("/threads", json={})).json()["id"]
    msg = (await client.get(f"/threads/{t1}/messages")).json()["data"][0]["id"]
    assert (await client.delete(f"/threads/{t1}/messages/{msg}")).json()["deleted"] is True
    assert (await client.get(f"/threads/{t1}/messages", params={"after": msg})).status_code == 200
    assert_error(await client.get(f"/threads/{t2}/messages", params={"after": msg}), 400, param="after")
    # the sweep forgets places older than a day
    async with state.db.session(write=True) as s:
        assert await forget_deleted_cursors(s, now() + 1) >= 2
    assert_error(
        await client.get("/assistants", params={"after": b}),
        400,
        param="after",
        message=f"Invalid 'after': no object found with id '{b}' in this list.",
    )
