"""The run state machine, as data: which status may follow which (CONTRACT §4).

Every status change is ``transition()``: one conditional UPDATE whose WHERE admits only the
allowed prior statuses, so two actors racing (a cancel and a completion, two workers, the reaper
and a worker) can never both win or skip a state.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, Literal

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from assistd.models import Run

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

ALLOWED: Final[dict[str, frozenset[str]]] = {
    "queued": frozenset({"in_progress", "cancelling", "failed", "expired"}),
    # "queued" again: the reaper hands back a run whose worker died before doing anything.
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


def predecessors(to: str) -> frozenset[str]:
    return frozenset(s for s, nxt in ALLOWED.items() if to in nxt)


async def transition(
    session: AsyncSession,
    run_id: str,
    to: str,
    *,
    only_from: Iterable[str] | None = None,
    **values: Any,
) -> bool:
    """Move ``run_id`` to ``to`` if its current status allows it (and is in ``only_from``)."""
    allowed = predecessors(to)
    if only_from is not None:
        allowed = allowed & frozenset(only_from)
    if not allowed:
        return False
    result = await session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status.in_(sorted(allowed)))
        .values(status=to, **values)
        .returning(Run.seq)
        .execution_options(synchronize_session=False)
    )
    return result.first() is not None
