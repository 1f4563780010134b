from __future__ import annotations

from sqlalchemy import ColumnElement, delete

from assistd.models import Message
from assistd.repository import RepositoryBase


class MessageRepository(RepositoryBase[Message]):
    """Messages of one thread (the thread's project was checked when the thread was loaded)."""

    model = Message

    def __init__(self, session, project_id: str, thread_id: str) -> None:  # type: ignore[no-untyped-def]
        super().__init__(session, project_id)
        self.thread_id = thread_id

    def scope(self) -> list[ColumnElement[bool]]:
        return [
            Message.thread_id == self.thread_id,
            Message.project_id == self.project_id,
        ]

    async def delete_all(self) -> None:
        await self.session.execute(delete(Message).where(*self.scope()))
