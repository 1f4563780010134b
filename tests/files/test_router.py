"""/v1/files over raw HTTP and through the official SDK."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from assistd.files.service import sweep_expired
from assistd.timeutil import now
from tests.conftest import asgi_client, assert_error
from tests.files.util import expire_file, file_rows, multipart, stored_blobs

MIB = 1024 * 1024


async def upload(
    client: httpx.AsyncClient, data: bytes = b"hello", name: str = "a.txt", purpose: str = "assistants", **extra: str
) -> dict[str, Any]:
    resp = await client.post("/files", files={"file": (name, data, "text/plain")}, data={"purpose": purpose, **extra})
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture
def project_id(project: tuple[str, str]) -> str:
    return project[1]


class TestCreateFile:
    async def test_raw_multipart_upload_returns_file_object(self, client, settings):
        before = now()
        resp = await client.post(
            "/files", files={"file": ("notes.txt", b"hello world", "text/plain")}, data={"purpose": "assistants"}
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["id"].startswith("file-")
        assert body["object"] == "file"
        assert body["bytes"] == 11
        assert body["filename"] == "notes.txt"
        assert body["purpose"] == "assistants"
        assert body["status"] == "processed"
        assert before <= body["created_at"] <= now()
        assert "expires_at" not in body
        assert "status_details" not in body
        # Stored under the generated id, never under the client's name.
        assert (settings.files_dir / body["id"]).read_bytes() == b"hello world"
        assert not (settings.files_dir / "notes.txt").exists()

    async def test_sdk_upload(self, sdk):
        f = await sdk.files.create(file=("a.txt", b"sdk bytes", "text/plain"), purpose="assistants")
        assert f.id.startswith("file-")
        assert f.bytes == 9
        assert f.filename == "a.txt"
        assert f.purpose == "assistants"
        assert f.expires_at is None

    async def test_sdk_expires_after_sets_expires_at(self, sdk):
        f = await sdk.files.create(
            file=("a.txt", b"x", "text/plain"),
            purpose="user_data",
            expires_after={"anchor": "created_at", "seconds": 3600},
        )
        assert f.expires_at == f.created_at + 3600
        again = await sdk.files.retrieve(f.id)
        assert again.expires_at == f.created_at + 3600

    async def test_no_beta_header_needed(self, app, project):
        async with asgi_client(app, project[0], beta=False) as c:
            body = await upload(c)
            assert (await c.get(f"/files/{body['id']}")).status_code == 200

    async def test_purpose_after_file_part(self, client):
        body, headers = multipart(("file", b"late.txt", b"data"), ("purpose", None, b"vision"))
        resp = await client.post("/files", content=body, headers=headers)
        assert resp.status_code == 200, resp.text
        assert resp.json()["purpose"] == "vision"
        assert resp.json()["filename"] == "late.txt"

    async def test_unicode_filename_kept(self, client):
        body = await upload(client, name="résumé 日本.txt")
        assert body["filename"] == "résumé 日本.txt"

    async def test_large_upload_round_trips_byte_exact(self, client):
        data = os.urandom(MIB + MIB // 2)
        body = await upload(client, data=data, name="big.bin")
        assert body["bytes"] == len(data)
        resp = await client.get(f"/files/{body['id']}/content")
        assert resp.status_code == 200
        assert resp.content == data

    async def test_over_cap_is_413_and_nothing_is_stored(self, client, settings, state, project_id):
        before = stored_blobs(settings)
        resp = await client.post(
            "/files",
            files={"file": ("big.bin", b"\0" * (settings.max_upload_bytes + 1), "application/octet-stream")},
            data={"purpose": "assistants"},
        )
        err = assert_error(resp, 413, param="file", code="file_too_large")
        assert str(settings.max_upload_bytes) in err["message"]
        assert stored_blobs(settings) == before
        assert not [n for n in stored_blobs(settings) if n.endswith(".partial")]
        assert await file_rows(state, project_id) == 0

    async def test_over_cap_stops_reading_the_body(self, client, settings, state, project_id):
        chunk = 64 * 1024
        total = settings.max_upload_bytes * 2
        sent = 0

        async def body() -> AsyncIterator[bytes]:
            nonlocal sent
            head, _ = multipart(("purpose", None, b"assistants"), close=False)
            yield (
                head
                + f'--{"assistd-test-boundary"}\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\n'.encode()
            )
            while sent < total:
                sent += chunk
                yield b"\0" * chunk

        # Chunked (no Content-Length): the cap is enforced while streaming.
        resp = await client.post(
            "/files", content=body(), headers={"Content-Type": "multipart/form-data; boundary=assistd-test-boundary"}
        )
        assert_error(resp, 413, param="file", code="file_too_large")
        assert sent <= settings.max_upload_bytes + 2 * chunk
        assert await file_rows(state, project_id) == 0

    async def test_client_disconnect_mid_upload_leaves_nothing(self, app, project, settings, state, project_id):
        before = stored_blobs(settings)
        body, headers = multipart(("purpose", None, b"assistants"), ("file", b"a.bin", b"\1" * 300_000))
        messages = [
            {"type": "http.request", "body": body[:100_000], "more_body": True},
            {"type": "http.request", "body": body[100_000:200_000], "more_body": True},
            {"type": "http.disconnect"},
        ]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/files",
            "raw_path": b"/v1/files",
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"test"),
                (b"authorization", f"Bearer {project[0]}".encode()),
                (b"content-type", headers["Content-Type"].encode()),
            ],
            "client": ("127.0.0.1", 1),
            "server": ("test", 80),
            "state": {},
        }
        await app(scope, receive, send)
        assert sent[0]["status"] == 400
        assert b"disconnected" in sent[1]["body"]
        assert stored_blobs(settings) == before
        assert await file_rows(state, project_id) == 0

    async def test_content_length_far_over_cap_rejected_before_reading(self, client, settings):
        read = False

        async def body() -> AsyncIterator[bytes]:
            nonlocal read
            read = True
            yield b"x"

        resp = await client.post(
            "/files",
            content=body(),
            headers={
                "Content-Type": "multipart/form-data; boundary=b",
                "Content-Length": str(settings.max_upload_bytes + 1024 * 1024),
            },
        )
        assert_error(resp, 413, param="file", code="file_too_large")
        assert not read

    @pytest.mark.parametrize(
        "raw_name",
        [b"../x", b"a/b", b"a\\b", b"a\x00b", b"a\x01b", b"..", b".", b"", "é".encode() * 128],
        ids=["traversal", "slash", "backslash", "nul", "control", "dotdot", "dot", "empty", "over-255-bytes"],
    )
    async def test_bad_filename_rejected_and_nothing_stored(self, client, settings, state, project_id, raw_name):
        before = stored_blobs(settings)
        body, headers = multipart(("purpose", None, b"assistants"), ("file", raw_name, b"data"))
        resp = await client.post("/files", content=body, headers=headers)
        assert_error(resp, 400, param="file", code="invalid_value", contains="filename")
        assert stored_blobs(settings) == before
        assert await file_rows(state, project_id) == 0

    async def test_traversal_name_via_http_library_rejected(self, client, state, project_id):
        resp = await client.post(
            "/files", files={"file": ("../x", b"data", "text/plain")}, data={"purpose": "assistants"}
        )
        assert_error(resp, 400, param="file", contains="'/'")
        assert await file_rows(state, project_id) == 0

    async def test_file_part_without_filename_rejected(self, client):
        body, headers = multipart(("purpose", None, b"assistants"), ("file", None, b"data"))
        resp = await client.post("/files", content=body, headers=headers)
        assert_error(resp, 400, param="file", contains="no filename")

    async def test_unknown_purpose(self, client, state, project_id):
        resp = await client.post("/files", files={"file": ("a.txt", b"x", "text/plain")}, data={"purpose": "answers"})
        assert_error(
            resp,
            400,
            param="purpose",
            code="invalid_value",
            message="Invalid value: 'answers'. Supported values are: 'assistants', 'batch', 'fine-tune', 'vision', 'user_data', and 'evals'.",
        )
        assert await file_rows(state, project_id) == 0

    async def test_unknown_purpose_after_file_leaves_nothing(self, client, settings, state, project_id):
        before = stored_blobs(settings)
        body, headers = multipart(("file", b"a.txt", b"data"), ("purpose", None, b"nope"))
        resp = await client.post("/files", content=body, headers=headers)
        assert_error(resp, 400, param="purpose", code="invalid_value")
        assert stored_blobs(settings) == before
        assert await file_rows(state, project_id) == 0

    async def test_missing_purpose(self, client, state, project_id):
        resp = await client.post("/files", files={"file": ("a.txt", b"x", "text/plain")})
        assert_error(
            resp,
            400,
            param="purpose",
            code="missing_required_parameter",
            message="Missing required parameter: 'purpose'.",
        )
        assert await file_rows(state, project_id) == 0

    async def test_missing_file(self, client):
        # httpx sends a urlencoded body when no file is given: build the multipart body by hand.
        body, headers = multipart(("purpose", None, b"assistants"))
        resp = await client.post("/files", content=body, headers=headers)
        assert_error(
            resp, 400, param="file", code="missing_required_parameter", message="Missing required parameter: 'file'."
        )

    async def test_unknown_field(self, client, state, project_id):
        resp = await client.post(
            "/files", files={"file": ("a.txt", b"x", "text/plain")}, data={"purpose": "assistants", "color": "red"}
        )
        assert_error(resp, 400, param="color", code="unknown_parameter", message="Unknown parameter: 'color'.")
        assert await file_rows(state, project_id) == 0

    async def test_duplicate_purpose(self, client):
        body, headers = multipart(("purpose", None, b"assistants"), ("purpose", None, b"vision"), ("file", b"a", b"x"))
        resp = await client.post("/files", content=body, headers=headers)
        assert_error(resp, 400, param="purpose", contains="more than once")

    async def test_json_body_rejected(self, client):
        resp = await client.post("/files", json={"purpose": "assistants", "file": "abc"})
        assert_error(resp, 400, contains="multipart/form-data")

    async def test_truncated_body_rejected_and_nothing_stored(self, client, settings, state, project_id):
        before = stored_blobs(settings)
        body, headers = multipart(("purpose", None, b"assistants"), ("file", b"a.txt", b"data" * 1000))
        resp = await client.post("/files", content=body[:-200], headers=headers)
        assert_error(resp, 400, contains="ended before the closing boundary")
        assert stored_blobs(settings) == before
        assert await file_rows(state, project_id) == 0

    async def test_garbage_body_rejected(self, client):
        resp = await client.post(
            "/files", content=b"not multipart at all", headers={"Content-Type": "multipart/form-data; boundary=zz"}
        )
        assert_error(resp, 400, contains="multipart")

    async def test_expires_after_seconds_out_of_range(self, client, state, project_id):
        resp = await client.post(
            "/files",
            files={"file": ("a.txt", b"x", "text/plain")},
            data={"purpose": "assistants", "expires_after[anchor]": "created_at", "expires_after[seconds]": "60"},
        )
        assert_error(resp, 400, param="expires_after[seconds]", code="integer_below_min_value")
        assert await file_rows(state, project_id) == 0

    async def test_expires_after_bad_anchor(self, client):
        resp = await client.post(
            "/files",
            files={"file": ("a.txt", b"x", "text/plain")},
            data={"purpose": "assistants", "expires_after[anchor]": "last_active_at", "expires_after[seconds]": "3600"},
        )
        assert_error(resp, 400, param="expires_after[anchor]", code="invalid_value")

    async def test_expires_after_without_seconds(self, client):
        resp = await client.post(
            "/files",
            files={"file": ("a.txt", b"x", "text/plain")},
            data={"purpose": "assistants", "expires_after[anchor]": "created_at"},
        )
        assert_error(resp, 400, param="expires_after[seconds]", code="missing_required_parameter")

    async def test_requires_auth(self, app):
        async with asgi_client(app, None) as c:
            resp = await c.post("/files", files={"file": ("a.txt", b"x", "text/plain")}, data={"purpose": "assistants"})
        assert_error(resp, 401, code="invalid_api_key")


class TestListFiles:
    async def test_lists_newest_first(self, client):
        ids = [(await upload(client, name=f"{i}.txt"))["id"] for i in range(3)]
        resp = await client.get("/files")
        assert resp.status_code == 200
        body = resp.json()
        assert body["object"] == "list"
        assert [f["id"] for f in body["data"]] == ids[::-1]
        assert body["first_id"] == ids[2]
        assert body["last_id"] == ids[0]
        assert body["has_more"] is False

    async def test_order_asc(self, client):
        ids = [(await upload(client))["id"] for _ in range(3)]
        body = (await client.get("/files", params={"order": "asc"})).json()
        assert [f["id"] for f in body["data"]] == ids

    async def test_purpose_filter(self, client):
        a = (await upload(client, purpose="assistants"))["id"]
        v = (await upload(client, purpose="vision"))["id"]
        body = (await client.get("/files", params={"purpose": "vision"})).json()
        assert [f["id"] for f in body["data"]] == [v]
        body = (await client.get("/files", params={"purpose": "assistants"})).json()
        assert [f["id"] for f in body["data"]] == [a]

    async def test_limit_and_after(self, client):
        ids = [(await upload(client))["id"] for _ in range(5)]
        first = (await client.get("/files", params={"limit": 2, "order": "asc"})).json()
        assert [f["id"] for f in first["data"]] == ids[:2]
        assert first["has_more"] is True
        second = (await client.get("/files", params={"limit": 2, "order": "asc", "after": first["last_id"]})).json()
        assert [f["id"] for f in second["data"]] == ids[2:4]
        last = (await client.get("/files", params={"limit": 2, "order": "asc", "after": second["last_id"]})).json()
        assert [f["id"] for f in last["data"]] == ids[4:]
        assert last["has_more"] is False

    async def test_empty_list(self, client):
        body = (await client.get("/files")).json()
        assert body == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}

    async def test_sdk_auto_pagination(self, sdk):
        ids = [
            (await sdk.files.create(file=(f"{i}.txt", b"x", "text/plain"), purpose="assistants")).id for i in range(5)
        ]
        seen = [f.id async for f in sdk.files.list(limit=2)]
        assert seen == ids[::-1]

    @pytest.mark.parametrize("limit", [0, 10001])
    async def test_limit_out_of_range(self, client, limit):
        resp = await client.get("/files", params={"limit": limit})
        assert_error(resp, 400, param="limit")

    async def test_after_unknown_id(self, client):
        resp = await client.get("/files", params={"after": "file-doesnotexist"})
        assert_error(resp, 400, param="after", code="invalid_value")

    async def test_other_projects_files_not_listed(self, client, other_client):
        await upload(other_client)
        assert (await client.get("/files")).json()["data"] == []

    async def test_expired_file_not_listed(self, client, state):
        gone = (await upload(client))["id"]
        kept = (await upload(client))["id"]
        await expire_file(state, gone)
        body = (await client.get("/files")).json()
        assert [f["id"] for f in body["data"]] == [kept]


class TestRetrieveFile:
    async def test_retrieve(self, client):
        created = await upload(client, name="r.txt")
        resp = await client.get(f"/files/{created['id']}")
        assert resp.status_code == 200
        assert resp.json() == created

    async def test_sdk_retrieve(self, sdk):
        f = await sdk.files.create(file=("a.txt", b"abc", "text/plain"), purpose="assistants")
        got = await sdk.files.retrieve(f.id)
        assert got.id == f.id
        assert got.bytes == 3

    async def test_missing_file_404(self, client):
        resp = await client.get("/files/file-missing")
        assert_error(resp, 404, param="id", message="No such File object: file-missing")

    async def test_wrong_prefix_400(self, client):
        resp = await client.get("/files/asst_123")
        assert_error(
            resp, 400, param="file_id", code="invalid_value", contains="Expected an ID that begins with 'file'"
        )

    async def test_other_projects_file_is_404_like_a_missing_one(self, client, other_client):
        theirs = (await upload(other_client))["id"]
        mine = await client.get(f"/files/{theirs}")
        err = assert_error(mine, 404, param="id")
        assert err["message"] == f"No such File object: {theirs}"

    async def test_expired_file_404(self, client, state):
        fid = (await upload(client))["id"]
        await expire_file(state, fid)
        assert_error(await client.get(f"/files/{fid}"), 404, param="id")
        assert_error(await client.get(f"/files/{fid}/content"), 404, param="id")


class TestDeleteFile:
    async def test_delete(self, client, settings):
        fid = (await upload(client))["id"]
        resp = await client.delete(f"/files/{fid}")
        assert resp.status_code == 200
        assert resp.json() == {"id": fid, "object": "file", "deleted": True}
        assert_error(await client.get(f"/files/{fid}"), 404, param="id")
        assert not (settings.files_dir / fid).exists()

    async def test_delete_twice_404(self, client):
        fid = (await upload(client))["id"]
        await client.delete(f"/files/{fid}")
        assert_error(await client.delete(f"/files/{fid}"), 404, param="id")

    async def test_sdk_delete(self, sdk):
        f = await sdk.files.create(file=("a.txt", b"abc", "text/plain"), purpose="assistants")
        deleted = await sdk.files.delete(f.id)
        assert deleted.id == f.id
        assert deleted.deleted is True
        with pytest.raises(openai.NotFoundError):
            await sdk.files.retrieve(f.id)

    async def test_other_projects_file_untouched(self, client, other_client):
        theirs = (await upload(other_client))["id"]
        assert_error(await client.delete(f"/files/{theirs}"), 404, param="id")
        assert (await other_client.get(f"/files/{theirs}")).status_code == 200

    async def test_wrong_prefix_400(self, client):
        assert_error(await client.delete("/files/vs_abc"), 400, param="file_id")


class TestDownloadFile:
    async def test_raw_bytes_and_headers(self, client):
        data = b"\x00\x01binary\xff"
        # A quoted-string escape (\") in the name, as RFC 7578 clients may send it.
        body, headers = multipart(("purpose", None, b"assistants"), ("file", 'we\\"ird;né.bin'.encode(), data))
        created = await client.post("/files", content=body, headers=headers)
        assert created.json()["filename"] == 'we"ird;né.bin'
        fid = created.json()["id"]
        resp = await client.get(f"/files/{fid}/content")
        assert resp.status_code == 200
        assert resp.content == data
        assert resp.headers["content-type"] == "application/octet-stream"
        assert resp.headers["content-length"] == str(len(data))
        disposition = resp.headers["content-disposition"]
        assert disposition.startswith('attachment; filename="we_ird_n_.bin"')
        assert disposition.endswith("filename*=UTF-8''we%22ird%3Bn%C3%A9.bin")

    async def test_sdk_content(self, sdk):
        data = os.urandom(200_000)
        f = await sdk.files.create(file=("r.bin", data, "application/octet-stream"), purpose="assistants")
        content = await sdk.files.content(f.id)
        assert content.content == data

    async def test_missing_404(self, client):
        assert_error(await client.get("/files/file-nothere/content"), 404, param="id")

    async def test_other_project_404(self, client, other_client):
        theirs = (await upload(other_client))["id"]
        assert_error(await client.get(f"/files/{theirs}/content"), 404, param="id")


class TestSweepExpired:
    async def test_removes_expired_file_row_and_blob(self, client, state, settings, project_id):
        gone = (await upload(client))["id"]
        kept = (await upload(client, **{"expires_after[anchor]": "created_at", "expires_after[seconds]": "3600"}))["id"]
        await expire_file(state, gone)
        await sweep_expired(state)
        assert not (settings.files_dir / gone).exists()
        assert (settings.files_dir / kept).exists()
        assert await file_rows(state, project_id) == 1
        assert [f["id"] for f in (await client.get("/files")).json()["data"]] == [kept]
