"""Cursor pagination on the ``seq`` column (an index walk, whatever the table size).

``after``/``before`` are object ids; each is resolved to its ``seq`` with one indexed look-up,
inside the same scope as the list (so another project's id is "not found" here too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistd.db.base import ObjectMixin
from assistd.errors import InvalidRequestError

Order = Literal["asc", "desc"]
M = TypeVar("M", bound=ObjectMixin)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ListQuery:
    limit: int = 20
    order: Order = "desc"
    after: str | None = None
    before: str | None = None


@dataclass(slots=True)
class Page(Generic[T]):
    items: list[T]
    has_more: bool


async def _cursor_seq(
    session: AsyncSession,
    model: type[M],
    scope: Sequence[ColumnElement[bool]],
    cursor: str,
    param: str,
) -> int:
    seq = await session.scalar(select(model.seq).where(model.id == cursor, *scope))
    if seq is None:
        raise InvalidRequestError(
            f"Invalid '{param}': no object found with id '{cursor}' in this list.",
            param=param,
            code="invalid_value",
        )
    return seq


async def paginate(
    session: AsyncSession,
    model: type[M],
    scope: Sequence[ColumnElement[bool]],
    query: ListQuery,
) -> Page[M]:
    """One page of ``model`` rows matching ``scope`` in ``query.order``, plus ``has_more``."""
    where = list(scope)
    if query.after:
        s = await _cursor_seq(session, model, scope, query.after, "after")
        where.append(model.seq < s if query.order == "desc" else model.seq > s)
    if query.before:
        s = await _cursor_seq(session, model, scope, query.before, "before")
        where.append(model.seq > s if query.order == "desc" else model.seq < s)
    # With only `before`, walk backwards from the cursor so the page is the one right before it.
    backwards = bool(query.before) and not query.after
    ascending = (query.order == "asc") != backwards
    stmt = (
        select(model).where(*where).order_by(model.seq.asc() if ascending else model.seq.desc()).limit(query.limit + 1)
    )
    rows = list((await session.scalars(stmt)).all())
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    if backwards:
        rows.reverse()
    return Page(rows, has_more)


def list_object(page: Page[Any], to_object: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    data = [to_object(r) for r in page.items]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": page.has_more,
    }
