from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from assistd.models import Upload, UploadPart
from assistd.repository import RepositoryBase


class UploadRepository(RepositoryBase[Upload]):
    model = Upload

    async def get_for_update(self, upload_id: str) -> Upload | None:
        """The row, locked until the transaction ends (PostgreSQL; SQLite writers are serial anyway)."""
        row: Upload | None = await self.session.scalar(
            select(Upload).where(Upload.id == upload_id, *self.scope()).with_for_update()
        )
        return row


class UploadPartRepository(RepositoryBase[UploadPart]):
    model = UploadPart

    async def by_ids(self, upload_id: str, part_ids: Sequence[str]) -> dict[str, UploadPart]:
        """The named parts that belong to ``upload_id``, by id (one query)."""
        if not part_ids:
            return {}
        rows = await self.session.scalars(
            select(UploadPart).where(UploadPart.id.in_(set(part_ids)), UploadPart.upload_id == upload_id, *self.scope())
        )
        return {p.id: p for p in rows}

    async def delete_for_upload(self, upload_id: str) -> list[str]:
        """Delete every part of the upload; their blob keys."""
        rows = await self.session.scalars(
            delete(UploadPart).where(UploadPart.upload_id == upload_id, *self.scope()).returning(UploadPart.storage_key)
        )
        return list(rows)


async def expire_pending_uploads(session: AsyncSession, t: int, limit: int) -> tuple[int, list[str]]:
    """Mark up to ``limit`` pending uploads (any project) past ``expires_at`` as expired and delete
    their parts; the number expired and the parts' blob keys."""
    ids = list(
        await session.scalars(select(Upload.id).where(Upload.status == "pending", Upload.expires_at <= t).limit(limit))
    )
    if not ids:
        return 0, []
    await session.execute(update(Upload).where(Upload.id.in_(ids), Upload.status == "pending").values(status="expired"))
    keys = await session.scalars(
        delete(UploadPart).where(UploadPart.upload_id.in_(ids)).returning(UploadPart.storage_key)
    )
    return len(ids), list(keys)
