"""All SQL of vector stores, their files and batches (the ingestion queue's SQL is in ingest/)."""

from __future__ import annotations

import builtins
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from assistd.models import Chunk, VectorStore, VectorStoreFile, VectorStoreFileBatch, VectorStoreFileText
from assistd.pagination import ListQuery, Page, paginate, record_deleted
from assistd.repository import RepositoryBase
from assistd.timeutil import now

Counts = dict[str, int]


class VectorStoreRepository(RepositoryBase[VectorStore]):
    model = VectorStore

    async def counts(self, store_ids: Sequence[str]) -> dict[str, tuple[Counts, int]]:
        """``{store_id: ({status: n}, usage_bytes)}`` aggregated from the stores' files."""
        out: dict[str, tuple[Counts, int]] = {sid: ({}, 0) for sid in store_ids}
        if not store_ids:
            return out
        f = VectorStoreFile.__table__.c
        rows = await self.session.execute(
            select(f.vector_store_id, f.status, func.count(), func.coalesce(func.sum(f.usage_bytes), 0))
            .where(f.vector_store_id.in_(list(store_ids)))
            .group_by(f.vector_store_id, f.status)
        )
        for sid, status, n, usage in rows:
            counts, total = out[sid]
            counts[status] = int(n)
            out[sid] = (counts, total + int(usage))
        return out

    async def live_ids(self, ids: Sequence[str]) -> set[str]:
        """Those of ``ids`` naming stores of this project (expired ones included)."""
        return await self.existing_ids(ids)

    async def touch(self, store_ids: Sequence[str], t: int) -> None:
        """``last_active_at = t``, and ``expires_at`` moved along with it."""
        c = self.c
        rows = list(
            (
                await self.session.execute(
                    select(c.id, c.expires_after).where(
                        c.id.in_(list(store_ids)), *self.scope(), c.status != "expired", c.last_active_at < t
                    )
                )
            ).all()
        )
        for sid, policy in rows:
            await self.session.execute(
                update(VectorStore)
                .where(c.id == sid)
                .values(last_active_at=t, expires_at=expires_at(policy, t))
                .execution_options(synchronize_session=False)
            )

    async def bump_version(self, store_id: str) -> None:
        await self.session.execute(
            update(VectorStore)
            .where(VectorStore.id == store_id)
            .values(index_version=VectorStore.index_version + 1)
            .execution_options(synchronize_session=False)
        )


def expires_at(policy: dict[str, Any] | None, last_active_at: int) -> int | None:
    if not policy:
        return None
    return last_active_at + int(policy["days"]) * 86400


class VectorStoreFileRepository:
    """Files of one store (scope: project and store)."""

    def __init__(self, session: AsyncSession, project_id: str, store_id: str) -> None:
        self.session = session
        self.project_id = project_id
        self.store_id = store_id
        self.c = VectorStoreFile.__table__.c

    def scope(self) -> list[ColumnElement[bool]]:
        return [self.c.project_id == self.project_id, self.c.vector_store_id == self.store_id]

    async def get(self, file_id: str) -> VectorStoreFile | None:
        row: VectorStoreFile | None = await self.session.scalar(
            select(VectorStoreFile).where(self.c.id == file_id, *self.scope())
        )
        return row

    async def list(self, query: ListQuery, status: str | None, batch_id: str | None = None) -> Page[Any]:
        eq: dict[str, Any] = {"project_id": self.project_id, "vector_store_id": self.store_id}
        if status is not None:
            eq["status"] = status
        if batch_id is not None:
            eq["batch_id"] = batch_id
        return await paginate(self.session, VectorStoreFile, eq, query, scope=["project_id", "vector_store_id"])

    async def record_deleted(self, rows: Sequence[tuple[str, int]], t: int) -> None:
        """Detached files keep their place in this store's list (clients paging past them)."""
        await record_deleted(
            self.session, VectorStoreFile, {"project_id": self.project_id, "vector_store_id": self.store_id}, rows, t
        )

    async def existing(self, file_ids: Sequence[str]) -> dict[str, VectorStoreFile]:
        if not file_ids:
            return {}
        rows = await self.session.scalars(select(VectorStoreFile).where(self.c.id.in_(list(file_ids)), *self.scope()))
        return {r.id: r for r in rows}

    async def text(self, file_id: str) -> builtins.list[Any] | None:  # `list` here is the method
        t = VectorStoreFileText.__table__.c
        pages: builtins.list[Any] | None = await self.session.scalar(
            select(t.pages).where(t.vector_store_id == self.store_id, t.file_id == file_id)
        )
        return pages

    async def cancel_batch(self, batch_id: str) -> int:
        """Every file of the batch still in progress becomes ``cancelled``; how many did."""
        result = await self.session.execute(
            update(VectorStoreFile)
            .where(self.c.batch_id == batch_id, *self.scope(), self.c.status == "in_progress")
            .values(status="cancelled", lease_owner=None, lease_expires_at=None)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def store_file_ids(session: AsyncSession, project_id: str, store_ids: Sequence[str]) -> dict[str, list[str]]:
    """``{store_id: [file_id, ...]}`` (oldest first) for the project's files in those stores (one query)."""
    out: dict[str, list[str]] = defaultdict(list)
    if not store_ids:
        return out
    f = VectorStoreFile.__table__.c
    rows = await session.execute(
        select(f.vector_store_id, f.id)
        .where(f.vector_store_id.in_(list(set(store_ids))), f.project_id == project_id)
        .order_by(f.seq)
    )
    for sid, fid in rows:
        out[sid].append(fid)
    return out


async def batch_counts(session: AsyncSession, batch_ids: Sequence[str]) -> dict[str, Counts]:
    out: dict[str, Counts] = {b: {} for b in batch_ids}
    if not batch_ids:
        return out
    f = VectorStoreFile.__table__.c
    rows = await session.execute(
        select(f.batch_id, f.status, func.count()).where(f.batch_id.in_(list(batch_ids))).group_by(f.batch_id, f.status)
    )
    for bid, status, n in rows:
        out[bid][status] = int(n)
    return out


async def get_batch(
    session: AsyncSession, project_id: str, store_id: str, batch_id: str
) -> VectorStoreFileBatch | None:
    b = VectorStoreFileBatch.__table__.c
    row: VectorStoreFileBatch | None = await session.scalar(
        select(VectorStoreFileBatch).where(b.id == batch_id, b.project_id == project_id, b.vector_store_id == store_id)
    )
    return row


async def drop_file_data(session: AsyncSession, pairs: Sequence[tuple[str, str]]) -> None:
    """Delete the chunks and parsed text of ``(store_id, file_id)`` pairs."""
    by_store: dict[str, list[str]] = {}
    for sid, fid in pairs:
        by_store.setdefault(sid, []).append(fid)
    ch, tx = Chunk.__table__.c, VectorStoreFileText.__table__.c
    for sid, fids in by_store.items():
        await session.execute(delete(Chunk).where(ch.vector_store_id == sid, ch.file_id.in_(fids)))
        await session.execute(delete(VectorStoreFileText).where(tx.vector_store_id == sid, tx.file_id.in_(fids)))
        await session.execute(
            update(VectorStore)
            .where(VectorStore.id == sid)
            .values(index_version=VectorStore.index_version + 1)
            .execution_options(synchronize_session=False)
        )


async def detach_everywhere(session: AsyncSession, project_id: str | None, file_ids: Sequence[str]) -> int:
    """A File was deleted: remove it (rows, chunks, text) from every store; how many attachments."""
    if not file_ids:
        return 0
    f = VectorStoreFile.__table__.c
    where: list[ColumnElement[bool]] = [f.id.in_(list(file_ids))]
    if project_id is not None:
        where.append(f.project_id == project_id)
    rows = (
        await session.execute(
            delete(VectorStoreFile).where(*where).returning(f.project_id, f.vector_store_id, f.id, f.seq)
        )
    ).all()
    t, by_store = now(), defaultdict(list)
    for project, sid, fid, seq in rows:
        by_store[project, sid].append((fid, seq))
    for (project, sid), gone in by_store.items():
        await VectorStoreFileRepository(session, project, sid).record_deleted(gone, t)
    pairs = [(sid, fid) for _, sid, fid, _ in rows]
    await drop_file_data(session, pairs)
    return len(pairs)


async def delete_store_contents(session: AsyncSession, store_id: str) -> None:
    for model in (Chunk, VectorStoreFileText, VectorStoreFile, VectorStoreFileBatch):
        await session.execute(delete(model).where(model.__table__.c.vector_store_id == store_id))


async def expire_stores(session: AsyncSession, t: int) -> int:
    """Mark stores past ``expires_at`` expired; how many."""
    c = VectorStore.__table__.c
    result = await session.execute(
        update(VectorStore)
        .where(c.status != "expired", c.expires_at.is_not(None), c.expires_at <= t)
        .values(status="expired")
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
