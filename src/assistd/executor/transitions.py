"""The run state machine, as data: which status may follow which (CONTRACT §4).

Every status change is ``transition()``: one conditional UPDATE whose WHERE admits only the
allowed prior statuses, so two actors racing (a cancel and a completion, two workers, the reaper
and a worker) can never both win or skip a state.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any, Final, Literal

from sqlalchemy import and_, bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import ClauseElement

from assistd import metrics
from assistd.models import Run
from assistd.pagination import row_columns

RunStatus = Literal[
    "queued",
    "in_progress",
    "requires_action",
    "cancelling",
    "cancelled",
    "failed",
    "completed",
    "incomplete",
    "expired",
]
StepStatus = Literal["in_progress", "cancelled", "failed", "completed", "expired"]

ACTIVE: Final[frozenset[str]] = frozenset({"queued", "in_progress", "requires_action", "cancelling"})
TERMINAL: Final[frozenset[str]] = frozenset({"completed", "incomplete", "failed", "cancelled", "expired"})
# The usage of an ended run that never called the model (usage is null only while a run is active).
NO_USAGE: Final[dict[str, int]] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
# An ended run has nothing left to expire: its ``expires_at`` is null (an expired one keeps it).
NO_LONGER_EXPIRES: Final[frozenset[str]] = TERMINAL - {"expired"}

ALLOWED: Final[dict[str, frozenset[str]]] = {
    "queued": frozenset({"in_progress", "cancelling", "failed", "expired"}),
    # "queued" again: a run whose worker stopped is taken up again (executor/resume.py).
    "in_progress": frozenset(
        {"requires_action", "completed", "incomplete", "failed", "cancelling", "expired", "queued"}
    ),
    "requires_action": frozenset({"queued", "cancelling", "expired", "failed"}),
    # A cancel is best-effort: the run may still finish another way if it loses the race.
    "cancelling": frozenset({"cancelled", "completed", "incomplete", "failed", "expired"}),
    "completed": frozenset(),
    "incomplete": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
    "expired": frozenset(),
}


_RUNS = Run.__table__  # Core statements: the ORM's bulk-update path costs more and adds nothing here


def predecessors(to: str) -> frozenset[str]:
    return frozenset(s for s, nxt in ALLOWED.items() if to in nxt)


async def transition(
    session: AsyncSession,
    run_id: str,
    to: str,
    *,
    only_from: Iterable[str] | None = None,
    where: Sequence[Any] = (),
    **values: Any,
) -> bool:
    """Move ``run_id`` to ``to`` if its current status allows it (and is in ``only_from``)."""
    row = await transition_row(session, run_id, to, only_from=only_from, returning=False, where=where, **values)
    return row is not None


async def transition_row(
    session: AsyncSession,
    run_id: str,
    to: str,
    *,
    only_from: Iterable[str] | None = None,
    returning: bool = True,
    where: Sequence[Any] = (),
    **values: Any,
) -> Any | None:
    """``transition()`` that answers the updated run row (``to_object`` takes it), or None."""
    rows = await transition_rows(session, [run_id], to, only_from=only_from, returning=returning, where=where, **values)
    return rows[0] if rows else None


async def transition_rows(
    session: AsyncSession,
    run_ids: list[str],
    to: str,
    *,
    only_from: Iterable[str] | None = None,
    returning: bool = True,
    where: Sequence[Any] = (),
    **values: Any,
) -> list[Any]:
    """``transition_row()`` for several runs in one statement: the rows that moved, in no order.
    ``where``: more conditions on the row (e.g. the lease it must still carry)."""
    if to in NO_LONGER_EXPIRES and "expires_at" not in values:
        values = {**values, "expires_at": None}  # as the spec's examples of ended runs show
    allowed = predecessors(to)
    if only_from is not None:
        allowed = allowed & frozenset(only_from)
    if not allowed or not run_ids:
        return []
    if where or any(isinstance(v, ClauseElement) for v in values.values()):  # SQL expressions: built here
        cond = _RUNS.c.id == run_ids[0] if len(run_ids) == 1 else _RUNS.c.id.in_(run_ids)
        cond = and_(cond, *where)
        result = await session.execute(_update(cond, tuple(sorted(allowed)), to, values, returning))
        return _counted(session, to, list(result.all()), values)
    keys = tuple(sorted(values))
    stmt = _transition_statement(to, tuple(sorted(allowed)), len(run_ids) > 1, keys, returning)
    params = {f"v_{k}": values[k] for k in keys}
    if len(run_ids) > 1:
        params["b_ids"] = list(run_ids)
    else:
        params["b_id"] = run_ids[0]
    result = await session.execute(stmt, params)
    return _counted(session, to, list(result.all()), values)


def _counted(session: AsyncSession, to: str, rows: list[Any], values: dict[str, Any]) -> list[Any]:
    """Runs that reached a final status go to the metrics (by status, once the transaction commits)."""
    if to in TERMINAL and rows:
        metrics.run_ended_on_commit(session, to, rows, values)
    return rows


@functools.lru_cache(maxsize=512)
def _transition_statement(to: str, allowed: tuple[str, ...], many: bool, keys: tuple[str, ...], returning: bool) -> Any:
    """The UPDATE of a transition, built once per shape (SQLAlchemy takes longer to build a
    statement than to run this one on SQLite): values come as bound parameters."""
    cond = _RUNS.c.id.in_(bindparam("b_ids", expanding=True)) if many else _RUNS.c.id == bindparam("b_id")
    return _update(cond, allowed, to, {k: bindparam(f"v_{k}", type_=_RUNS.c[k].type) for k in keys}, returning)


def _update(cond: Any, allowed: tuple[str, ...], to: str, values: dict[str, Any], returning: bool) -> Any:
    return (
        update(_RUNS)
        .where(cond, _RUNS.c.status.in_(allowed))
        .values(status=to, **values)
        .returning(*(row_columns(Run) if returning else (_RUNS.c.seq, _RUNS.c.created_at)))
    )
