from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from assistd.models import Message
from assistd.repository import RepositoryBase


class MessageRepository(RepositoryBase[Message]):
    """Messages of one thread (the thread's project was checked when the thread was loaded)."""

    model = Message

    def __init__(self, session: AsyncSession, project_id: str, thread_id: str) -> None:
        super().__init__(session, project_id)
        self.thread_id = thread_id

    def scope_values(self) -> dict[str, Any]:
        return {"thread_id": self.thread_id, "project_id": self.project_id}

    async def delete_all(self) -> None:
        await self.session.execute(delete(Message).where(*self.scope()))
