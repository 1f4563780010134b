"""SQL for projects."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistd.models import Project


async def get_project(session: AsyncSession, project_id: str) -> Project | None:
    return await session.scalar(select(Project).where(Project.id == project_id))
