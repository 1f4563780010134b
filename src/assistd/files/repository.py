from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistd.models import File
from assistd.pagination import ListQuery, Page, record_deleted
from assistd.repository import RepositoryBase


def live(t: int) -> ColumnElement[bool]:
    """Not expired at ``t``: an expired file behaves as deleted even before the sweeper runs."""
    expires_at = File.__table__.c.expires_at  # table column: keeps read statements Core-only
    return or_(expires_at.is_(None), expires_at > t)


class FileRepository(RepositoryBase[File]):
    model = File

    async def get_live(self, file_id: str, t: int) -> File | None:
        return await self.get(file_id, live(t))

    async def list_live(self, query: ListQuery, t: int, purpose: str | None) -> Page[File]:
        # (project_id, purpose, seq) / (project_id, seq) indexes; the expiry test is a filter.
        return await self.list(query, live(t), eq={"purpose": purpose} if purpose is not None else None)

    async def created_at_of(self, ids: Sequence[str]) -> dict[str, int]:
        """``{file_id: created_at}`` for those of ``ids`` that are this project's (one query)."""
        if not ids:
            return {}
        rows = await self.session.execute(
            select(self.c.id, self.c.created_at).where(self.c.id.in_(list(set(ids))), *self.scope())
        )
        return {i: int(t) for i, t in rows}

    async def delete_live(self, file_id: str, t: int) -> str | None:
        """Delete the row; its blob key, or None if there was no live file."""
        row = (
            await self.session.execute(
                delete(File).where(File.id == file_id, *self.scope(), live(t)).returning(File.storage_key, File.seq)
            )
        ).first()
        if row is None:
            return None
        await record_deleted(self.session, File, self.scope_values(), [(file_id, row.seq)], t)
        key: str = row.storage_key
        return key


async def delete_expired_files(session: AsyncSession, t: int, limit: int) -> list[str]:
    """Delete up to ``limit`` files (of any project) expired at ``t``; their blob keys."""
    expired = (
        select(File.id)
        .where(File.expires_at.is_not(None), File.expires_at <= t)
        .order_by(File.expires_at)
        .limit(limit)
        .scalar_subquery()
    )
    rows = await session.scalars(
        delete(File).where(File.id.in_(expired), File.expires_at <= t).returning(File.storage_key)
    )
    return list(rows)
