"""Query parameters of list endpoints (``limit``/``order``/``after``/``before``), as a dependency."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Query

from assistd.pagination import ListQuery


async def list_query(
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    after: Annotated[str | None, Query()] = None,
    before: Annotated[str | None, Query()] = None,
) -> ListQuery:
    return ListQuery(limit=limit, order=order, after=after or None, before=before or None)


ListQueryDep = Annotated[ListQuery, Depends(list_query)]
