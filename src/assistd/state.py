"""Everything a process builds once: database, blob store, authenticator, background tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from assistd.auth import DEFAULT_PROJECT_NAME, Authenticator, ensure_project
from assistd.config import Settings
from assistd.db.session import Database
from assistd.storage.local import LocalBlobStore

log = logging.getLogger("assistd")

Periodic = Callable[["AppState"], Awaitable[object]]


@dataclass
class AppState:
    settings: Settings
    db: Database
    blobs: LocalBlobStore
    auth: Authenticator
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(cls, settings: Settings, *, background: bool = True) -> AppState:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url, pool_size=settings.db_pool_size)
        if settings.fast_reads:
            await db.start_fast_reader()
        async with db.session(write=True) as s:
            await ensure_project(s, DEFAULT_PROJECT_NAME)
        state = cls(
            settings=settings,
            db=db,
            blobs=LocalBlobStore(settings.files_dir),
            auth=Authenticator(db, settings.auth_cache_seconds),
        )
        if background:
            from assistd.files.service import sweep_expired

            state.every(settings.sweep_interval_seconds, sweep_expired)
        return state

    def every(self, seconds: float, job: Periodic) -> None:
        async def _loop() -> None:
            while True:
                try:
                    await job(self)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("background job %s failed", getattr(job, "__name__", job))
                await asyncio.sleep(seconds)

        self.tasks.append(asyncio.create_task(_loop(), name=f"assistd-{getattr(job, '__name__', 'job')}"))

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self.tasks.clear()
        await self.db.dispose()
