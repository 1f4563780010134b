"""``RepositoryBase``: the queries every resource repository shares. All SQL lives in repositories."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistd.db.base import ObjectMixin
from assistd.pagination import ListQuery, Page, paginate, row_columns

M = TypeVar("M", bound=ObjectMixin)


class RepositoryBase(Generic[M]):
    model: ClassVar[type[Any]]

    def __init__(self, session: AsyncSession, project_id: str) -> None:
        self.session = session
        self.project_id = project_id
        # Table columns, not ORM attributes, in every WHERE: see pagination.row_columns.
        self.c = self.model.__table__.c

    def scope(self) -> list[ColumnElement[bool]]:
        return [self.c.project_id == self.project_id]

    async def get(self, object_id: str, *extra: ColumnElement[bool]) -> M | None:
        row: M | None = await self.session.scalar(
            select(self.model).where(self.c.id == object_id, *self.scope(), *extra)
        )
        return row

    async def get_row(self, object_id: str, *extra: ColumnElement[bool]) -> Any | None:
        """A read-only row (attribute names as on the ORM class), lighter than ``get``."""
        result = await self.session.execute(
            select(*row_columns(self.model)).where(self.c.id == object_id, *self.scope(), *extra)
        )
        return result.first()

    async def exists(self, object_id: str) -> bool:
        return await self.session.scalar(select(self.c.seq).where(self.c.id == object_id, *self.scope())) is not None

    async def list(
        self,
        query: ListQuery,
        *extra: ColumnElement[bool],
        on_empty: Callable[[], Awaitable[object]] | None = None,
    ) -> Page[Any]:
        return await paginate(self.session, self.model, [*self.scope(), *extra], query, on_empty=on_empty)

    async def existing_ids(self, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        rows = await self.session.scalars(select(self.c.id).where(self.c.id.in_(list(ids)), *self.scope()))
        return set(rows)

    def add(self, row: M) -> M:
        self.session.add(row)
        return row

    async def delete_by_id(self, object_id: str) -> bool:
        result = await self.session.execute(
            delete(self.model).where(self.c.id == object_id, *self.scope()).returning(self.c.seq)
        )
        return result.first() is not None
