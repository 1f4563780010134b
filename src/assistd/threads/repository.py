from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select

from assistd.models import Run, Thread
from assistd.pagination import ListQuery, Page
from assistd.repository import RepositoryBase


class ThreadRepository(RepositoryBase[Thread]):
    model = Thread

    async def list_matching(self, query: ListQuery, metadata: dict[str, str]) -> Page[Any]:
        """Threads whose metadata holds every given key with the given value."""
        extra: list[ColumnElement[bool]] = [self.c.metadata[k].as_string() == v for k, v in metadata.items()]
        return await self.list(query, *extra)

    async def active_run_ids(self, thread_id: str) -> list[str]:
        """Its runs that have not ended (any status a stream may still be waiting on)."""
        r = Run.__table__.c
        active = ["queued", "in_progress", "requires_action", "cancelling"]
        stmt = select(r.id).where(r.thread_id == thread_id, r.project_id == self.project_id, r.status.in_(active))
        return list(await self.session.scalars(stmt))
