"""API keys, projects and local single-user mode."""

from __future__ import annotations

import httpx
import pytest

from assistd.app import create_app
from assistd.auth import create_key, revoke_key
from assistd.db.migrate import upgrade
from assistd.state import AppState
from tests.conftest import asgi_client, assert_error, make_settings


class TestKeyedMode:
    async def test_missing_key_is_401(self, app) -> None:
        async with asgi_client(app, None) as c:
            err = assert_error(await c.get("/assistants"), 401, code="invalid_api_key")
            assert "didn't provide an API key" in err["message"]
            assert_error(await c.get("/files"), 401, code="invalid_api_key")

    @pytest.mark.parametrize("header", ["Bearer sk-wrong", "Basic abc", "Bearer ", "sk-nobearer"])
    async def test_wrong_key_is_401(self, app, header: str) -> None:
        async with asgi_client(app, None) as c:
            r = await c.get("/assistants", headers={"Authorization": header})
            assert_error(r, 401, code="invalid_api_key")

    async def test_unknown_key_message_never_echoes_the_whole_key(self, app) -> None:
        secret = "sk-" + "z" * 48
        async with asgi_client(app, secret) as c:
            err = assert_error(await c.get("/assistants"), 401, code="invalid_api_key")
            assert secret not in err["message"] and "sk-zzz***zzzz" in err["message"]

    async def test_revoked_key_stops_working(self, settings, state) -> None:
        # A second process-like app with no auth cache, over the same database.
        st = await AppState.start(
            settings.model_copy(update={"auth_cache_seconds": 0}), background=False, executor=False
        )
        try:
            async with st.db.session(write=True) as s:
                key, row, _ = await create_key(s, "revoke-me")
            async with asgi_client(create_app(settings, st), key) as c:
                assert (await c.get("/assistants")).status_code == 200
                async with st.db.session(write=True) as s:
                    assert await revoke_key(s, row.id)
                assert_error(await c.get("/assistants"), 401, code="invalid_api_key")
        finally:
            await st.stop()

    async def test_keys_of_one_project_share_objects(self, app, state) -> None:
        async with state.db.session(write=True) as s:
            k1, _, p = await create_key(s, "shared-project")
            k2, _, p2 = await create_key(s, "shared-project")
        assert p.id == p2.id
        async with asgi_client(app, k1) as c1, asgi_client(app, k2) as c2:
            a = (await c1.post("/assistants", json={"model": "m"})).json()
            assert (await c2.get(f"/assistants/{a['id']}")).json()["id"] == a["id"]


class TestLocalMode:
    async def test_no_keys_means_any_token_works(self, tmp_path) -> None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'local.db'}"
        upgrade(url)
        settings = make_settings(tmp_path / "data", url)
        st = await AppState.start(settings, background=False, executor=False)
        try:
            app = create_app(settings, st)
            async with asgi_client(app, "anything") as c1, asgi_client(app, None) as c2:
                a = (await c1.post("/assistants", json={"model": "m"})).json()
                assert (await c2.get(f"/assistants/{a['id']}")).status_code == 200
        finally:
            await st.stop()


class TestWireConventions:
    async def test_unknown_route(self, client: httpx.AsyncClient) -> None:
        assert_error(await client.get("/nope"), 404, message="Invalid URL (GET /v1/nope)")
        assert_error(await client.put("/assistants"), 404, message="Invalid URL (PUT /v1/assistants)")

    async def test_request_id_on_success_and_error(self, client: httpx.AsyncClient) -> None:
        ok = await client.get("/assistants")
        bad = await client.get("/assistants/asst_nope")
        assert ok.headers["x-request-id"].startswith("req_") and bad.headers["x-request-id"].startswith("req_")
        assert ok.headers["x-request-id"] != bad.headers["x-request-id"]

    async def test_stream_false_and_org_headers_are_accepted(self, client: httpx.AsyncClient) -> None:
        r = await client.get(
            "/assistants", headers={"OpenAI-Organization": "org", "OpenAI-Project": "p", "X-Stainless-Lang": "python"}
        )
        assert r.status_code == 200

    async def test_json_without_content_type_header_is_read_as_json(self, client: httpx.AsyncClient) -> None:
        # curl -d '{...}' sends application/x-www-form-urlencoded unless told otherwise.
        r = await client.post(
            "/assistants", content=b'{"model": "m"}', headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert r.status_code == 200 and r.json()["model"] == "m"

    async def test_health(self, app) -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            assert (await c.get("/health")).json()["status"] == "ok"
            assert (await c.get("/v1/health")).json()["status"] == "ok"

    async def test_oversized_json_body_is_413(self, client: httpx.AsyncClient) -> None:
        r = await client.post(
            "/assistants", content=b" " * (33 * 1024 * 1024), headers={"content-type": "application/json"}
        )
        assert_error(r, 413)
