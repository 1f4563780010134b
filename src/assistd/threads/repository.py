from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement

from assistd.models import Thread
from assistd.pagination import ListQuery, Page
from assistd.repository import RepositoryBase


class ThreadRepository(RepositoryBase[Thread]):
    model = Thread

    async def list_matching(self, query: ListQuery, metadata: dict[str, str]) -> Page[Any]:
        """Threads whose metadata holds every given key with the given value."""
        extra: list[ColumnElement[bool]] = [self.c.metadata[k].as_string() == v for k, v in metadata.items()]
        return await self.list(query, *extra)
