"""The periodic expiry of vector stores (``expires_after`` past ``last_active_at``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from assistd.timeutil import now
from assistd.vector_stores.repository import expire_stores

if TYPE_CHECKING:
    from assistd.state import AppState

log = logging.getLogger("assistd.vector_stores")


async def sweep_vector_stores(state: AppState) -> int:
    """Mark every store whose ``expires_at`` has passed ``expired``; how many."""
    async with state.db.session(write=True) as s:
        n = await expire_stores(s, now())
    if n:
        log.info("expired %d vector stores", n)
    return n
