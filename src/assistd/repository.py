"""``RepositoryBase``: the queries every resource repository shares. All SQL lives in repositories.

A repository is bound to a scope: column values every row it touches must have (the project,
and for messages the thread). Read queries are cached statements with bound parameters, built
from table columns only (see ``pagination.row_columns``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistd.db.base import ObjectMixin
from assistd.pagination import (
    ListQuery,
    Page,
    eq_params,
    exists_statement,
    first,
    get_statement,
    paginate,
    record_deleted,
)
from assistd.timeutil import now

M = TypeVar("M", bound=ObjectMixin)


class RepositoryBase(Generic[M]):
    model: ClassVar[type[Any]]

    def __init__(self, session: AsyncSession, project_id: str) -> None:
        self.session = session
        self.project_id = project_id
        self.c = self.model.__table__.c

    def scope_values(self) -> dict[str, Any]:
        """Column values every row of this repository has."""
        return {"project_id": self.project_id}

    def scope(self) -> list[ColumnElement[bool]]:
        return [self.c[k] == v for k, v in self.scope_values().items()]

    async def get(self, object_id: str, *extra: ColumnElement[bool]) -> M | None:
        """The ORM entity (for changes)."""
        row: M | None = await self.session.scalar(
            select(self.model).where(self.c.id == object_id, *self.scope(), *extra)
        )
        return row

    async def get_row(self, object_id: str) -> Any | None:
        """A read-only row (attribute names as on the ORM class), much lighter than ``get``."""
        eq = self.scope_values()
        return await first(
            self.session, get_statement(self.model, tuple(sorted(eq))), eq_params(eq) | {"object_id": object_id}
        )

    async def exists(self, object_id: str) -> bool:
        eq = self.scope_values()
        found = await first(
            self.session, exists_statement(self.model, tuple(sorted(eq))), eq_params(eq) | {"object_id": object_id}
        )
        return found is not None

    async def list(
        self,
        query: ListQuery,
        *extra: ColumnElement[bool],
        eq: dict[str, Any] | None = None,
        on_empty: Callable[[], Awaitable[object]] | None = None,
    ) -> Page[Any]:
        """A page of rows in scope; ``eq`` adds equality filters (cached statement), ``extra``
        any other condition."""
        scope = self.scope_values()
        return await paginate(
            self.session, self.model, scope | (eq or {}), query, extra=extra, on_empty=on_empty, scope=list(scope)
        )

    async def existing_ids(self, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        rows = await self.session.scalars(select(self.c.id).where(self.c.id.in_(list(ids)), *self.scope()))
        return set(rows)

    def add(self, row: M) -> M:
        self.session.add(row)
        return row

    async def delete_by_id(self, object_id: str) -> bool:
        """Delete the row; its place in the list is kept for clients paging past it."""
        row = (
            await self.session.execute(
                delete(self.model).where(self.c.id == object_id, *self.scope()).returning(self.c.seq)
            )
        ).first()
        if row is None:
            return False
        await record_deleted(self.session, self.model, self.scope_values(), [(object_id, row[0])], now())
        return True
