"""The fast read path (db/fastread.py) and the plain session path answer identically."""

from __future__ import annotations

import httpx

from assistd.app import create_app
from assistd.state import AppState
from tests.conftest import asgi_client, assert_error


async def test_fast_and_session_reads_agree(app, settings, project) -> None:
    key, _ = project
    st = await AppState.start(settings.model_copy(update={"fast_reads": False}), background=False, executor=False)
    assert st.db.fast is None
    try:
        async with asgi_client(app, key) as fast, asgi_client(create_app(settings, st), key) as plain:
            a = (await fast.post("/assistants", json={"model": "m", "metadata": {"k": "v"}})).json()
            t = (await fast.post("/threads", json={"metadata": {"user": "u"}})).json()
            ids = [
                (await fast.post(f"/threads/{t['id']}/messages", json={"role": "user", "content": str(i)})).json()["id"]
                for i in range(5)
            ]
            paths: list[tuple[str, dict[str, object]]] = [
                (f"/assistants/{a['id']}", {}),
                ("/assistants", {"limit": 2}),
                (f"/threads/{t['id']}", {}),
                ("/threads", {"metadata[user]": "u"}),
                (f"/threads/{t['id']}/messages", {"limit": 2, "after": ids[3]}),
                (f"/threads/{t['id']}/messages", {"order": "asc", "before": ids[3]}),
                (f"/threads/{t['id']}/messages/{ids[0]}", {}),
                ("/files", {}),
            ]
            for path, params in paths:
                r1, r2 = await fast.get(path, params=params), await plain.get(path, params=params)
                assert r1.status_code == r2.status_code == 200, (path, r1.text, r2.text)
                assert r1.json() == r2.json(), path
            for client in (fast, plain):
                assert_error(
                    await client.get(f"/threads/{t['id']}/messages", params={"after": "msg_x"}), 400, param="after"
                )
                assert_error(await client.get("/threads/thread_nope/messages"), 404)
                assert_error(await client.get("/assistants/asst_nope"), 404)
    finally:
        await st.stop()


async def test_reads_see_a_write_at_once(client: httpx.AsyncClient) -> None:
    t = (await client.post("/threads", json={})).json()
    for i in range(20):
        m = (await client.post(f"/threads/{t['id']}/messages", json={"role": "user", "content": str(i)})).json()
        page = (await client.get(f"/threads/{t['id']}/messages", params={"limit": 1})).json()
        assert page["data"][0]["id"] == m["id"]
