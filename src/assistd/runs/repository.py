from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistd.executor.transitions import ACTIVE
from assistd.models import Run, RunStep
from assistd.repository import RepositoryBase

_RUNS = Run.__table__
_ACTIVE = (
    select(_RUNS.c.id)
    .where(
        _RUNS.c.thread_id == bindparam("thread_id"),
        _RUNS.c.project_id == bindparam("project_id"),
        _RUNS.c.status.in_(sorted(ACTIVE)),
    )
    .limit(1)
)


class RunRepository(RepositoryBase[Run]):
    """Runs of one thread."""

    model = Run

    def __init__(self, session: AsyncSession, project_id: str, thread_id: str) -> None:
        super().__init__(session, project_id)
        self.thread_id = thread_id

    def scope_values(self) -> dict[str, Any]:
        return {"thread_id": self.thread_id, "project_id": self.project_id}

    async def active(self) -> str | None:
        """The id of the thread's active run, if any."""
        found: str | None = await self.session.scalar(
            _ACTIVE, {"thread_id": self.thread_id, "project_id": self.project_id}
        )
        return found


class RunStepRepository(RepositoryBase[RunStep]):
    """Steps of one run."""

    model = RunStep

    def __init__(self, session: AsyncSession, project_id: str, run_id: str) -> None:
        super().__init__(session, project_id)
        self.run_id = run_id

    def scope_values(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "project_id": self.project_id}

    async def all(self) -> list[RunStep]:
        return list((await self.session.scalars(select(RunStep).where(*self.scope()).order_by(RunStep.seq))).all())
