"""The ingester's hold on a file: a job ends only the row it claimed."""

from __future__ import annotations

import httpx
from sqlalchemy import update

from assistd.ingest.worker import Ingester
from assistd.models import VectorStoreFile
from tests.vector_stores.test_vector_stores import poll_file, upload


async def test_a_detached_files_job_does_not_end_the_file_that_took_its_row(client: httpx.AsyncClient, state) -> None:
    assert state.ingester is not None
    await state.ingester.stop()  # nothing ingests but the ingester below
    try:
        vs = (await client.post("/vector_stores", json={})).json()["id"]
        x, y = await upload(client, "x.txt", "first file"), await upload(client, "y.txt", "second file")
        assert (await client.post(f"/vector_stores/{vs}/files", json={"file_id": x})).status_code == 200
        ing = Ingester(state)
        a = await ing._claim()
        assert a is not None and a["id"] == x
        # x is detached while its job runs; y is attached (on SQLite its row takes x's seq)
        assert (await client.delete(f"/vector_stores/{vs}/files/{x}")).json()["deleted"] is True
        assert (await client.post(f"/vector_stores/{vs}/files", json={"file_id": y})).status_code == 200
        b = await ing._claim()
        assert b is not None and b["id"] == y
        await ing._fail(a, "invalid_file", "The file could not be read: No such file or directory")
        got = (await client.get(f"/vector_stores/{vs}/files/{y}")).json()
        assert got["status"] == "in_progress" and got["last_error"] is None
        async with state.db.session(write=True) as s:  # hand y back, as a stopping ingester does
            await s.execute(
                update(VectorStoreFile)
                .where(VectorStoreFile.id == y, VectorStoreFile.vector_store_id == vs)
                .values(lease_owner=None, lease_expires_at=None)
            )
    finally:
        state.ingester.start()
    assert (await poll_file(client, vs, y))["status"] == "completed"
