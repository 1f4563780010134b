from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from assistd.models import Assistant
from assistd.repository import RepositoryBase


class AssistantRepository(RepositoryBase[Assistant]):
    model = Assistant

    async def tool_resources_of(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``{assistant_id: tool_resources}`` for those of ``ids`` that exist (one query)."""
        if not ids:
            return {}
        rows = await self.session.execute(
            select(self.c.id, self.c.tool_resources).where(self.c.id.in_(list(set(ids))), *self.scope())
        )
        return {i: tr or {} for i, tr in rows}
