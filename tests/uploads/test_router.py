"""/v1/uploads over raw HTTP and through the official SDK."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from assistd.app import create_app
from assistd.files.service import sweep_expired
from assistd.timeutil import now
from tests.conftest import asgi_client, assert_error, make_settings
from tests.files.util import expire_upload, file_rows, multipart, part_rows, stored_blobs, upload_status

PART_CAP = 1024


async def create(client: httpx.AsyncClient, size: int, **extra: Any) -> dict[str, Any]:
    body = {"filename": "data.jsonl", "purpose": "assistants", "bytes": size, "mime_type": "text/plain", **extra}
    resp = await client.post("/uploads", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def add_part(client: httpx.AsyncClient, upload_id: str, data: bytes) -> dict[str, Any]:
    resp = await client.post(f"/uploads/{upload_id}/parts", files={"data": ("blob", data, "application/octet-stream")})
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture
def project_id(project: tuple[str, str]) -> str:
    return project[1]


@pytest.fixture
async def small_part_client(settings, state, project) -> AsyncIterator[httpx.AsyncClient]:
    """The same database, blob store and project, served with a 1 KiB part cap."""
    small = make_settings(
        settings.data_dir,
        settings.resolved_database_url,
        max_upload_bytes=settings.max_upload_bytes,
        max_upload_part_bytes=PART_CAP,
    )
    app = create_app(small, dataclasses.replace(state, settings=small, tasks=[]))
    async with asgi_client(app, project[0]) as c:
        yield c


class TestCreateUpload:
    async def test_create(self, client):
        before = now()
        body = await create(client, 10)
        assert body["id"].startswith("upload_")
        assert body["object"] == "upload"
        assert body["status"] == "pending"
        assert body["bytes"] == 10
        assert body["filename"] == "data.jsonl"
        assert body["purpose"] == "assistants"
        assert before <= body["created_at"] <= now()
        assert body["expires_at"] == body["created_at"] + 3600
        assert body["file"] is None

    async def test_sdk_create(self, sdk):
        up = await sdk.uploads.create(bytes=5, filename="x.txt", mime_type="text/plain", purpose="batch")
        assert up.status == "pending"
        assert up.purpose == "batch"
        assert up.file is None

    async def test_bytes_over_total_cap(self, client, settings):
        resp = await client.post(
            "/uploads",
            json={
                "filename": "x",
                "purpose": "assistants",
                "bytes": settings.max_upload_total_bytes + 1,
                "mime_type": "text/plain",
            },
        )
        assert_error(resp, 400, param="bytes", code="integer_above_max_value")

    async def test_zero_bytes(self, client):
        resp = await client.post(
            "/uploads", json={"filename": "x", "purpose": "assistants", "bytes": 0, "mime_type": "text/plain"}
        )
        assert_error(resp, 400, param="bytes", code="integer_below_min_value")

    async def test_purpose_not_allowed_for_uploads(self, client):
        resp = await client.post(
            "/uploads", json={"filename": "x", "purpose": "user_data", "bytes": 1, "mime_type": "text/plain"}
        )
        assert_error(resp, 400, param="purpose", code="invalid_value")

    async def test_bad_filename(self, client):
        resp = await client.post(
            "/uploads",
            json={"filename": "../etc/passwd", "purpose": "assistants", "bytes": 1, "mime_type": "text/plain"},
        )
        assert_error(resp, 400, param="filename", code="invalid_value")

    async def test_missing_mime_type(self, client):
        resp = await client.post("/uploads", json={"filename": "x", "purpose": "assistants", "bytes": 1})
        assert_error(resp, 400, param="mime_type", code="missing_required_parameter")

    async def test_unknown_field(self, client):
        resp = await client.post(
            "/uploads",
            json={"filename": "x", "purpose": "assistants", "bytes": 1, "mime_type": "text/plain", "color": 1},
        )
        assert_error(resp, 400, param="color", code="unknown_parameter")

    async def test_expires_after_out_of_range(self, client):
        resp = await client.post(
            "/uploads",
            json={
                "filename": "x",
                "purpose": "assistants",
                "bytes": 1,
                "mime_type": "text/plain",
                "expires_after": {"anchor": "created_at", "seconds": 10},
            },
        )
        assert_error(resp, 400, param="expires_after.seconds", code="integer_below_min_value")


class TestAddUploadPart:
    async def test_add_part(self, client, settings):
        up = await create(client, 3)
        part = await add_part(client, up["id"], b"abc")
        assert part["id"].startswith("part_")
        assert part["object"] == "upload.part"
        assert part["upload_id"] == up["id"]
        assert part["created_at"] <= now()
        assert (settings.files_dir / part["id"]).read_bytes() == b"abc"

    async def test_sdk_add_part(self, sdk):
        up = await sdk.uploads.create(bytes=3, filename="x.txt", mime_type="text/plain", purpose="assistants")
        part = await sdk.uploads.parts.create(up.id, data=b"abc")
        assert part.upload_id == up.id
        assert part.id.startswith("part_")

    async def test_part_over_cap_is_413_and_nothing_is_stored(self, client, small_part_client, settings, state):
        up = await create(client, PART_CAP + 1)
        before = stored_blobs(settings)
        resp = await small_part_client.post(
            f"/uploads/{up['id']}/parts", files={"data": ("blob", b"x" * (PART_CAP + 1), "application/octet-stream")}
        )
        err = assert_error(resp, 413, param="data", code="part_too_large")
        assert str(PART_CAP) in err["message"]
        assert stored_blobs(settings) == before
        assert await part_rows(state, up["id"]) == 0

    async def test_part_at_cap_accepted(self, client, small_part_client):
        up = await create(client, PART_CAP)
        resp = await small_part_client.post(
            f"/uploads/{up['id']}/parts", files={"data": ("blob", b"x" * PART_CAP, "application/octet-stream")}
        )
        assert resp.status_code == 200, resp.text

    async def test_missing_data(self, client):
        up = await create(client, 3)
        body, headers = multipart()
        resp = await client.post(f"/uploads/{up['id']}/parts", content=body, headers=headers)
        assert_error(resp, 400, param="data", code="missing_required_parameter")

    async def test_unknown_field(self, client, state):
        up = await create(client, 3)
        body, headers = multipart(("data", b"blob", b"abc"), ("extra", None, b"1"))
        resp = await client.post(f"/uploads/{up['id']}/parts", content=body, headers=headers)
        assert_error(resp, 400, param="extra", code="unknown_parameter")
        assert await part_rows(state, up["id"]) == 0

    async def test_unknown_upload_404(self, client):
        resp = await client.post("/uploads/upload_nope/parts", files={"data": ("b", b"x", "application/octet-stream")})
        assert_error(resp, 404, param="upload_id", message="No such Upload object: upload_nope")

    async def test_wrong_prefix_400(self, client):
        resp = await client.post("/uploads/file-abc/parts", files={"data": ("b", b"x", "application/octet-stream")})
        assert_error(resp, 400, param="upload_id", code="invalid_value")

    async def test_other_projects_upload_404(self, client, other_client):
        theirs = await create(other_client, 3)
        resp = await client.post(
            f"/uploads/{theirs['id']}/parts", files={"data": ("b", b"x", "application/octet-stream")}
        )
        assert_error(resp, 404, param="upload_id", message=f"No such Upload object: {theirs['id']}")

    async def test_cancelled_upload_rejects_parts(self, client, settings):
        up = await create(client, 3)
        await client.post(f"/uploads/{up['id']}/cancel")
        before = stored_blobs(settings)
        resp = await client.post(
            f"/uploads/{up['id']}/parts", files={"data": ("b", b"abc", "application/octet-stream")}
        )
        assert_error(resp, 400, message=f"Upload {up['id']} is already cancelled.")
        assert stored_blobs(settings) == before

    async def test_expired_upload_rejects_parts(self, client, state):
        up = await create(client, 3)
        await expire_upload(state, up["id"])
        resp = await client.post(
            f"/uploads/{up['id']}/parts", files={"data": ("b", b"abc", "application/octet-stream")}
        )
        assert_error(resp, 400, contains=f"Upload {up['id']} has expired")


class TestCompleteUpload:
    async def test_three_parts_in_the_given_order(self, client, state, settings):
        chunks = [os.urandom(1000), os.urandom(2000), os.urandom(500)]
        up = await create(client, sum(map(len, chunks)), purpose="batch")
        parts = [await add_part(client, up["id"], c) for c in chunks]
        order = [2, 0, 1]  # the completion order, not the upload order, decides
        resp = await client.post(f"/uploads/{up['id']}/complete", json={"part_ids": [parts[i]["id"] for i in order]})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["status"] == "completed"
        f = body["file"]
        assert f["id"].startswith("file-")
        assert f["object"] == "file"
        assert f["bytes"] == up["bytes"]
        assert f["filename"] == "data.jsonl"
        assert f["purpose"] == "batch"
        assert "expires_at" not in f
        content = await client.get(f"/files/{f['id']}/content")
        assert content.content == b"".join(chunks[i] for i in order)
        # The parts are gone once assembled.
        assert await part_rows(state, up["id"]) == 0
        assert not {p["id"] for p in parts} & stored_blobs(settings)
        listed = (await client.get("/files")).json()["data"]
        assert [x["id"] for x in listed] == [f["id"]]

    async def test_sdk_flow(self, sdk):
        data = b"hello, uploads"
        up = await sdk.uploads.create(bytes=len(data), filename="h.txt", mime_type="text/plain", purpose="assistants")
        p1 = await sdk.uploads.parts.create(up.id, data=data[:5])
        p2 = await sdk.uploads.parts.create(up.id, data=data[5:])
        done = await sdk.uploads.complete(up.id, part_ids=[p1.id, p2.id], md5=hashlib.md5(data).hexdigest())
        assert done.status == "completed"
        assert done.file is not None
        assert (await sdk.files.content(done.file.id)).content == data

    async def test_sdk_upload_file_chunked(self, sdk):
        data = os.urandom(3000)
        done = await sdk.uploads.upload_file_chunked(
            file=data,
            filename="c.bin",
            bytes=len(data),
            mime_type="application/octet-stream",
            purpose="assistants",
            part_size=1024,
        )
        assert done.status == "completed"
        assert (await sdk.files.content(done.file.id)).content == data

    async def test_expires_after_passes_to_the_file(self, client):
        up = await create(client, 1, expires_after={"anchor": "created_at", "seconds": 7200})
        part = await add_part(client, up["id"], b"x")
        body = (await client.post(f"/uploads/{up['id']}/complete", json={"part_ids": [part["id"]]})).json()
        assert body["file"]["expires_at"] == up["created_at"] + 7200

    async def test_wrong_byte_total_leaves_upload_pending(self, client, state, project_id):
        up = await create(client, 10)
        part = await add_part(client, up["id"], b"abc")
        resp = await client.post(f"/uploads/{up['id']}/complete", json={"part_ids": [part["id"]]})
        err = assert_error(resp, 400, param="part_ids")
        assert "3 bytes" in err["message"]
        assert "bytes=10" in err["message"]
        assert await file_rows(state, project_id) == 0
        # Still pending: a fitting part can be added and the upload completed.
        more = await add_part(client, up["id"], b"defghij")
        resp = await client.post(f"/uploads/{up['id']}/complete", json={"part_ids": [part["id"], more["id"]]})
        assert resp.status_code == 200, resp.text

    async def test_md5_match(self, client):
        up = await create(client, 6)
        part = await add_part(client, up["id"], b"abcdef")
        md5 = hashlib.md5(b"abcdef").hexdigest().upper()
        resp = await client.post(f"/uploads/{up['id']}/complete", json={"part_ids": [part["id"]], "md5": md5})
        assert resp.status_code == 200, resp.text

    async def test_md5_mismatch_creates_nothing(self, client, state, settings, project_id):
        up = await create(client, 6)
        part = await add_part(client, up["id"], b"abcdef")
        before = stored_blobs(settings)
        resp = await client.post(
            f"/uploads/{up['id']}/complete", json={"part_ids": [part["id"]], "md5": hashlib.md5(b"other").hexdigest()}
        )
        assert_error(resp, 400, param="md5", code="invalid_value")
        assert stored_blobs(settings) == before
        assert await file_rows(state, project_id) == 0
        assert await upload_status(state, up["id"]) == "pending"

    async def test_md5_not_hex(self, client):
        up = await create(client, 1)
        part = await add_part(client, up["id"], b"a")
        resp = await client.post(f"/uploads/{up['id']}/complete", json={"part_ids": [part["id"]], "md5": "xyz"})
        assert_error(resp, 400, param="md5", code="invalid_value")

    async def test_unknown_part_id(self, client):
        up = await create(client, 1)
        resp = await client.post(f"/uploads/{up['id']}/complete", json={"part_ids": ["part_nope"]})
        assert_error(resp, 400, param="part_ids[0]", code="invalid_value", contains="part_nope")

    async def test_part_id_with_wrong_prefix(self, client):
        up = await create(client, 1)
        resp = await client.post(f"/uploads/{up['id']}/complete", json={"part_ids": ["file-abc"]})
        assert_error(
            resp, 400, param="part_ids[0]", code="invalid_value", contains="Expected an ID that begins with 'part'"
        )

    async def test_part_of_another_upload(self, client):
        a = await create(client, 1)
        b = await create(client, 1)
        part_b = await add_part(client, b["id"], b"x")
        resp = await client.post(f"/uploads/{a['id']}/complete", json={"part_ids": [part_b["id"]]})
        assert_error(resp, 400, param="part_ids[0]", code="invalid_value")

    async def test_duplicate_part_id(self, client):
        up = await create(client, 2)
        part = await add_part(client, up["id"], b"x")
        resp = await client.post(f"/uploads/{up['id']}/complete", json={"part_ids": [part["id"], part["id"]]})
        assert_error(resp, 400, param="part_ids[1]", contains="more than once")

    async def test_empty_part_ids(self, client):
        up = await create(client, 1)
        resp = await client.post(f"/uploads/{up['id']}/complete", json={"part_ids": []})
        assert_error(resp, 400, param="part_ids")

    async def test_complete_twice(self, client, state, project_id):
        up = await create(client, 1)
        part = await add_part(client, up["id"], b"x")
        assert (await client.post(f"/uploads/{up['id']}/complete", json={"part_ids": [part["id"]]})).status_code == 200
        resp = await client.post(f"/uploads/{up['id']}/complete", json={"part_ids": [part["id"]]})
        assert_error(resp, 400, message=f"Upload {up['id']} is already completed.")
        assert await file_rows(state, project_id) == 1

    async def test_expired_upload(self, client, state):
        up = await create(client, 1)
        part = await add_part(client, up["id"], b"x")
        await expire_upload(state, up["id"])
        resp = await client.post(f"/uploads/{up['id']}/complete", json={"part_ids": [part["id"]]})
        assert_error(resp, 400, contains="has expired")

    async def test_other_projects_upload_404(self, client, other_client):
        theirs = await create(other_client, 1)
        part = await add_part(other_client, theirs["id"], b"x")
        resp = await client.post(f"/uploads/{theirs['id']}/complete", json={"part_ids": [part["id"]]})
        assert_error(resp, 404, param="upload_id")

    async def test_sdk_bad_request_error(self, sdk):
        up = await sdk.uploads.create(bytes=4, filename="x.txt", mime_type="text/plain", purpose="assistants")
        part = await sdk.uploads.parts.create(up.id, data=b"ab")
        with pytest.raises(openai.BadRequestError) as exc:
            await sdk.uploads.complete(up.id, part_ids=[part.id])
        assert exc.value.param == "part_ids"


class TestCancelUpload:
    async def test_cancel(self, client, state, settings):
        up = await create(client, 3)
        part = await add_part(client, up["id"], b"abc")
        resp = await client.post(f"/uploads/{up['id']}/cancel")
        assert resp.status_code == 200
        body = resp.json()
        assert body["status"] == "cancelled"
        assert body["file"] is None
        assert part["id"] not in stored_blobs(settings)
        assert await part_rows(state, up["id"]) == 0

    async def test_sdk_cancel(self, sdk):
        up = await sdk.uploads.create(bytes=3, filename="x.txt", mime_type="text/plain", purpose="assistants")
        cancelled = await sdk.uploads.cancel(up.id)
        assert cancelled.status == "cancelled"

    async def test_cancel_then_complete(self, client):
        up = await create(client, 1)
        part = await add_part(client, up["id"], b"x")
        await client.post(f"/uploads/{up['id']}/cancel")
        resp = await client.post(f"/uploads/{up['id']}/complete", json={"part_ids": [part["id"]]})
        assert_error(resp, 400, message=f"Upload {up['id']} is already cancelled.")

    async def test_cancel_twice(self, client):
        up = await create(client, 1)
        await client.post(f"/uploads/{up['id']}/cancel")
        assert_error(
            await client.post(f"/uploads/{up['id']}/cancel"), 400, message=f"Upload {up['id']} is already cancelled."
        )

    async def test_cancel_completed(self, client):
        up = await create(client, 1)
        part = await add_part(client, up["id"], b"x")
        await client.post(f"/uploads/{up['id']}/complete", json={"part_ids": [part["id"]]})
        assert_error(
            await client.post(f"/uploads/{up['id']}/cancel"), 400, message=f"Upload {up['id']} is already completed."
        )

    async def test_unknown_upload_404(self, client):
        assert_error(await client.post("/uploads/upload_nope/cancel"), 404, param="upload_id")


class TestSweepExpiredUploads:
    async def test_expires_pending_upload_and_drops_parts(self, client, state, settings):
        up = await create(client, 3)
        part = await add_part(client, up["id"], b"abc")
        await expire_upload(state, up["id"])
        await sweep_expired(state)
        assert await upload_status(state, up["id"]) == "expired"
        assert await part_rows(state, up["id"]) == 0
        assert part["id"] not in stored_blobs(settings)
        assert_error(await client.post(f"/uploads/{up['id']}/cancel"), 400, contains="has expired")

    async def test_leaves_live_uploads_alone(self, client, state, settings):
        up = await create(client, 3)
        part = await add_part(client, up["id"], b"abc")
        await sweep_expired(state)
        assert await upload_status(state, up["id"]) == "pending"
        assert part["id"] in stored_blobs(settings)
