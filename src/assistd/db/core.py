"""Core statements for ORM-shaped rows: cheaper than the ORM's unit of work on hot paths.

The executor builds rows as transient ORM instances (``to_object`` reads them like any row) but
writes them with Core ``INSERT`` statements: a flush costs ~0.5 ms of bookkeeping per object that
a run, written once and never reloaded through the session, does not need.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

from sqlalchemy import Table, event, insert
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession

P = ParamSpec("P")
R = TypeVar("R")


def cache(fn: Callable[P, R]) -> Callable[P, R]:
    """``functools.cache``, typed as the function it wraps: these caches are keyed by mapped
    classes, and mypy does not accept a class where ``functools.cache`` asks for ``Hashable``."""
    return cast("Callable[P, R]", functools.cache(fn))


@cache
def _columns(model: type[Any]) -> tuple[tuple[str, str], ...]:
    """(attribute name, column name) of every mapped column but the autoincrement ``seq``."""
    return tuple(
        (attr.key, col.key) for attr in sa_inspect(model).column_attrs for col in attr.columns if attr.key != "seq"
    )


def row_values(obj: Any) -> dict[str, Any]:
    """The column values of a transient ORM instance, keyed by column name."""
    return {col: getattr(obj, attr) for attr, col in _columns(type(obj))}


@cache
def _insert(table: Table) -> Any:
    return insert(table)


async def insert_rows(session: AsyncSession, *objs: Any) -> None:
    """INSERT transient ORM instances with Core (no identity map, no flush)."""
    for obj in objs:
        await session.execute(_insert(type(obj).__table__), [row_values(obj)])


def on_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the session's transaction has committed (e.g. wake the executor)."""
    event.listen(session.sync_session, "after_commit", lambda _s: callback(), once=True)
