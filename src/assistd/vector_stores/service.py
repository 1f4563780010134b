"""Vector stores, their files and batches: rules and orchestration (ingestion is in ingest/)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistd.errors import InvalidRequestError
from assistd.ids import new_id
from assistd.ingest import files_queued
from assistd.models import VectorStore, VectorStoreFile, VectorStoreFileBatch
from assistd.pagination import ListQuery, Page
from assistd.references import check_id, not_found, or_404, require_files
from assistd.retrieval.filters import check_filter
from assistd.timeutil import now
from assistd.vector_stores.protocol import (
    CreateVectorStoreFileBatchRequest,
    CreateVectorStoreFileRequest,
    CreateVectorStoreRequest,
    UpdateVectorStoreRequest,
    VectorStoreSearchRequest,
    chunking_to_object,
)
from assistd.vector_stores.repository import (
    Counts,
    VectorStoreFileRepository,
    VectorStoreRepository,
    batch_counts,
    delete_store_contents,
    drop_file_data,
    expires_at,
    get_batch,
)

HELPER_EXPIRES_AFTER = {"anchor": "last_active_at", "days": 7}


@dataclass(slots=True)
class StoreView:
    row: Any
    counts: Counts
    usage_bytes: int


# --- stores ------------------------------------------------------------------------------------


async def new_store(
    session: AsyncSession,
    project_id: str,
    *,
    name: str | None = None,
    description: str | None = None,
    expires_after: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
    file_ids: Sequence[str] = (),
    chunking_strategy: Any = None,
    param: str = "file_ids",
) -> VectorStore:
    """Create a store (and queue its files); shared by the endpoint and the ``vector_stores`` helpers."""
    await require_files(session, project_id, [(f"{param}[{i}]", fid) for i, fid in enumerate(file_ids)])
    t = now()
    row = VectorStore(
        id=new_id("vector_store"),
        project_id=project_id,
        created_at=t,
        name=name,
        description=description,
        status="active",
        expires_after=expires_after,
        expires_at=expires_at(expires_after, t),
        last_active_at=t,
        metadata_=metadata or {},
        index_version=0,
    )
    session.add(row)
    await session.flush()
    if file_ids:
        await attach_files(
            session, project_id, row.id, [(fid, chunking_strategy, None) for fid in dict.fromkeys(file_ids)]
        )
    return row


async def create_vector_store(session: AsyncSession, project_id: str, body: CreateVectorStoreRequest) -> StoreView:
    row = await new_store(
        session,
        project_id,
        name=body.name,
        description=body.description,
        expires_after=body.expires_after.model_dump() if body.expires_after else None,
        metadata=body.metadata,
        file_ids=body.file_ids,
        chunking_strategy=body.chunking_strategy,
    )
    return await view(session, project_id, row)


async def view(session: AsyncSession, project_id: str, row: Any) -> StoreView:
    counts, usage = (await VectorStoreRepository(session, project_id).counts([row.id]))[row.id]
    return StoreView(row, counts, usage)


async def get_store(session: AsyncSession, project_id: str, store_id: str) -> VectorStore:
    check_id("vector_store", store_id, "vector_store_id")
    return or_404(await VectorStoreRepository(session, project_id).get(store_id), "vector_store", store_id)


async def retrieve_vector_store(session: AsyncSession, project_id: str, store_id: str) -> StoreView:
    check_id("vector_store", store_id, "vector_store_id")
    row = or_404(await VectorStoreRepository(session, project_id).get_row(store_id), "vector_store", store_id)
    return await view(session, project_id, row)


async def list_vector_stores(
    session: AsyncSession, project_id: str, query: ListQuery
) -> tuple[Page[Any], dict[str, tuple[Counts, int]]]:
    repo = VectorStoreRepository(session, project_id)
    page = await repo.list(query)
    return page, await repo.counts([r.id for r in page.items])


async def modify_vector_store(
    session: AsyncSession, project_id: str, store_id: str, body: UpdateVectorStoreRequest
) -> StoreView:
    row = await get_store(session, project_id, store_id)
    given = body.model_fields_set
    if "name" in given:
        row.name = body.name
    if "metadata" in given:
        row.metadata_ = body.metadata or {}
    if "expires_after" in given:
        row.expires_after = body.expires_after.model_dump() if body.expires_after else None
        row.expires_at = expires_at(row.expires_after, row.last_active_at)
    await session.flush()
    return await view(session, project_id, row)


async def delete_vector_store(session: AsyncSession, project_id: str, store_id: str) -> None:
    check_id("vector_store", store_id, "vector_store_id")
    if not await VectorStoreRepository(session, project_id).delete_by_id(store_id):
        raise not_found("vector_store", store_id)
    await delete_store_contents(session, store_id)


async def require_store(session: AsyncSession, project_id: str, store_id: str) -> None:
    check_id("vector_store", store_id, "vector_store_id")
    if not await VectorStoreRepository(session, project_id).exists(store_id):
        raise not_found("vector_store", store_id)


# --- files -------------------------------------------------------------------------------------


async def attach_files(
    session: AsyncSession,
    project_id: str,
    store_id: str,
    files: Sequence[tuple[str, Any, dict[str, Any] | None]],
    batch_id: str | None = None,
) -> list[VectorStoreFile]:
    """Queue ``(file_id, chunking_strategy, attributes)`` for ingestion into the store.

    A file already in the store is processed again with the new settings (its old chunks stay
    searchable until the new ones replace them).
    """
    repo = VectorStoreFileRepository(session, project_id, store_id)
    existing = await repo.existing([f[0] for f in files])
    t = now()
    rows: list[VectorStoreFile] = []
    for fid, cs, attributes in files:
        row = existing.get(fid)
        if row is None:
            row = VectorStoreFile(
                vector_store_id=store_id,
                id=fid,
                project_id=project_id,
                created_at=t,
                usage_bytes=0,
                attempt=0,
            )
            session.add(row)
        row.status = "in_progress"
        row.last_error = None
        row.chunking_strategy = chunking_to_object(cs)
        row.attributes = attributes
        row.batch_id = batch_id
        row.lease_owner = None
        row.lease_expires_at = None
        row.attempt = 0
        rows.append(row)
    await session.flush()
    await files_queued(session)
    return rows


async def create_vector_store_file(
    session: AsyncSession, project_id: str, store_id: str, body: CreateVectorStoreFileRequest
) -> VectorStoreFile:
    await require_store(session, project_id, store_id)
    await require_files(session, project_id, [("file_id", body.file_id)])
    (row,) = await attach_files(
        session, project_id, store_id, [(body.file_id, body.chunking_strategy, body.attributes)]
    )
    return row


async def get_vector_store_file(session: AsyncSession, project_id: str, store_id: str, file_id: str) -> VectorStoreFile:
    check_id("vector_store", store_id, "vector_store_id")
    check_id("file", file_id, "file_id")
    row = await VectorStoreFileRepository(session, project_id, store_id).get(file_id)
    if row is None:
        await require_store(session, project_id, store_id)
        raise not_found("vector_store_file", file_id)
    return row


async def list_vector_store_files(
    session: AsyncSession, project_id: str, store_id: str, query: ListQuery, status: str | None
) -> Page[Any]:
    await require_store(session, project_id, store_id)
    return await VectorStoreFileRepository(session, project_id, store_id).list(query, status)


async def update_vector_store_file_attributes(
    session: AsyncSession, project_id: str, store_id: str, file_id: str, attributes: dict[str, Any] | None
) -> VectorStoreFile:
    row = await get_vector_store_file(session, project_id, store_id, file_id)
    row.attributes = attributes
    await session.flush()
    return row


async def delete_vector_store_file(session: AsyncSession, project_id: str, store_id: str, file_id: str) -> None:
    row = await get_vector_store_file(session, project_id, store_id, file_id)
    await session.delete(row)
    await session.flush()
    await VectorStoreFileRepository(session, project_id, store_id).record_deleted([(file_id, row.seq)], now())
    await drop_file_data(session, [(store_id, file_id)])


async def vector_store_file_content(session: AsyncSession, project_id: str, store_id: str, file_id: str) -> list[str]:
    await get_vector_store_file(session, project_id, store_id, file_id)
    pages = await VectorStoreFileRepository(session, project_id, store_id).text(file_id)
    return [str(p) for p in pages or []]


# --- batches -----------------------------------------------------------------------------------


async def create_file_batch(
    session: AsyncSession, project_id: str, store_id: str, body: CreateVectorStoreFileBatchRequest
) -> tuple[VectorStoreFileBatch, Counts]:
    await require_store(session, project_id, store_id)
    if (body.file_ids is None) == (body.files is None):
        raise InvalidRequestError(
            "Exactly one of 'file_ids' or 'files' must be provided."
            if body.file_ids is None
            else "'file_ids' and 'files' are mutually exclusive: provide only one of them.",
            param="files" if body.file_ids is not None else "file_ids",
            code="invalid_value" if body.file_ids is not None else "missing_required_parameter",
        )
    if body.files is not None:
        items = [(f.file_id, f.chunking_strategy, f.attributes) for f in body.files]
        params = [(f"files[{i}].file_id", f.file_id) for i, f in enumerate(body.files)]
    else:
        assert body.file_ids is not None
        items = [(fid, body.chunking_strategy, body.attributes) for fid in body.file_ids]
        params = [(f"file_ids[{i}]", fid) for i, fid in enumerate(body.file_ids)]
    await require_files(session, project_id, params)
    dedup: dict[str, tuple[str, Any, dict[str, Any] | None]] = {}
    for it in items:
        dedup[it[0]] = it
    batch = VectorStoreFileBatch(
        id=new_id("file_batch"), project_id=project_id, created_at=now(), vector_store_id=store_id, status="active"
    )
    session.add(batch)
    await session.flush()
    await attach_files(session, project_id, store_id, list(dedup.values()), batch_id=batch.id)
    return batch, {"in_progress": len(dedup)}


async def _batch(session: AsyncSession, project_id: str, store_id: str, batch_id: str) -> VectorStoreFileBatch:
    check_id("vector_store", store_id, "vector_store_id")
    check_id("file_batch", batch_id, "batch_id")
    row = await get_batch(session, project_id, store_id, batch_id)
    if row is None:
        await require_store(session, project_id, store_id)
        raise not_found("vector_store_file_batch", batch_id)
    return row


async def get_file_batch(
    session: AsyncSession, project_id: str, store_id: str, batch_id: str
) -> tuple[VectorStoreFileBatch, Counts]:
    row = await _batch(session, project_id, store_id, batch_id)
    return row, (await batch_counts(session, [row.id]))[row.id]


async def cancel_file_batch(
    session: AsyncSession, project_id: str, store_id: str, batch_id: str
) -> tuple[VectorStoreFileBatch, Counts]:
    row = await _batch(session, project_id, store_id, batch_id)
    counts = (await batch_counts(session, [row.id]))[row.id]
    if row.status == "cancelled" or not counts.get("in_progress"):
        if row.status != "cancelled":
            raise InvalidRequestError(f"Cannot cancel a batch that is already {_done_status(counts)}.")
        return row, counts
    await VectorStoreFileRepository(session, project_id, store_id).cancel_batch(row.id)
    row.status = "cancelled"
    await session.flush()
    return row, (await batch_counts(session, [row.id]))[row.id]


def _done_status(counts: Counts) -> str:
    total = sum(counts.values())
    return "failed" if total and counts.get("failed", 0) == total else "completed"


async def list_files_in_batch(
    session: AsyncSession, project_id: str, store_id: str, batch_id: str, query: ListQuery, status: str | None
) -> Page[Any]:
    await _batch(session, project_id, store_id, batch_id)
    return await VectorStoreFileRepository(session, project_id, store_id).list(query, status, batch_id)


# --- search ------------------------------------------------------------------------------------


def check_search_body(body: VectorStoreSearchRequest) -> list[str]:
    """The query strings of a search request (400 for an empty one or a bad filter)."""
    queries = [body.query] if isinstance(body.query, str) else list(body.query)
    if not queries or any(not q.strip() for q in queries):
        raise InvalidRequestError(
            "Invalid 'query': expected a non-empty string or a non-empty array of non-empty strings.",
            param="query",
            code="invalid_value",
        )
    if body.filters is not None:
        check_filter(body.filters)
    return queries


async def touch(session: AsyncSession, project_id: str, store_ids: Sequence[str]) -> None:
    """Mark stores active now (search, runs): moves ``last_active_at`` and ``expires_at``."""
    await VectorStoreRepository(session, project_id).touch(store_ids, now())


async def existing_store_ids(session: AsyncSession, project_id: str, ids: Sequence[str]) -> set[str]:
    c = VectorStore.__table__.c
    rows = await session.scalars(select(c.id).where(c.id.in_(list(ids)), c.project_id == project_id))
    return set(rows)
