from __future__ import annotations

from sqlalchemy import ColumnElement, delete
from sqlalchemy.ext.asyncio import AsyncSession

from assistd.models import Message
from assistd.repository import RepositoryBase


class MessageRepository(RepositoryBase[Message]):
    """Messages of one thread (the thread's project was checked when the thread was loaded)."""

    model = Message

    def __init__(self, session: AsyncSession, project_id: str, thread_id: str) -> None:
        super().__init__(session, project_id)
        self.thread_id = thread_id

    def scope(self) -> list[ColumnElement[bool]]:
        return [self.c.thread_id == self.thread_id, self.c.project_id == self.project_id]

    async def delete_all(self) -> None:
        await self.session.execute(delete(Message).where(*self.scope()))
