"""Everything a process builds once: database, blob store, authenticator, background tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from assistd.auth import DEFAULT_PROJECT_NAME, Authenticator, ensure_key, ensure_project
from assistd.config import Settings
from assistd.db.session import Database
from assistd.llm.client import LLMClient
from assistd.llm.config import UpstreamConfig
from assistd.runs.events import RunEventBus
from assistd.runs.pgbus import CANCEL, WAKE, PostgresEventBus
from assistd.storage.local import LocalBlobStore

if TYPE_CHECKING:
    from assistd.executor.worker import Executor
    from assistd.ingest.worker import Ingester
    from assistd.sandbox import SandboxManager

log = logging.getLogger("assistd")

Periodic = Callable[["AppState"], Awaitable[object]]


@dataclass
class AppState:
    settings: Settings
    db: Database
    blobs: LocalBlobStore
    auth: Authenticator
    bus: RunEventBus | PostgresEventBus
    llm: LLMClient
    executor: Executor | None = None
    sandbox: SandboxManager | None = None  # code_interpreter kernels (processes that execute runs)
    ingester: Ingester | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    spawned: set[asyncio.Task[Any]] = field(default_factory=set)

    @classmethod
    async def start(
        cls, settings: Settings, *, background: bool = True, executor: bool | None = None, relay: bool = True
    ) -> AppState:
        """``relay``: this process serves run streams (HTTP); ``assistd worker`` (no HTTP) passes False,
        so that it does not receive every run event of the database (see PostgresEventBus)."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(
            settings.resolved_database_url,
            pool_size=settings.db_pool_size,
            max_connections=settings.db_max_connections,
            connect_wait_seconds=settings.db_connect_wait_seconds,
            fast_reads=settings.fast_reads,
        )
        if settings.fast_reads:
            await db.start_fast_reader()
        db.start_housekeeping()
        async with db.session(write=True) as s:
            await ensure_project(s, DEFAULT_PROJECT_NAME)
            if settings.api_key:
                done = await ensure_key(s, settings.api_key)
                if done == "revoked":
                    log.warning("ASSISTD_API_KEY was revoked (`assistd keys revoke`): it stays revoked")
                elif done == "created":
                    log.info("ASSISTD_API_KEY: added it to the keys of project %r", DEFAULT_PROJECT_NAME)
        state = cls(
            settings=settings,
            db=db,
            blobs=LocalBlobStore(settings.files_dir),
            auth=Authenticator(db, settings.auth_cache_seconds),
            bus=RunEventBus()
            if db.budget is None
            else PostgresEventBus(
                db.url, relay=relay, pool_size=db.budget.bus, connect_wait_seconds=settings.db_connect_wait_seconds
            ),
            llm=LLMClient(
                UpstreamConfig.from_env_values(
                    settings.upstream_base_url, settings.upstream_api_key, settings.upstream_routes
                )
            ),
        )
        await state.bus.start()
        await state.report_missing_parts()
        if settings.executor if executor is None else executor:
            from assistd.executor.worker import Executor

            state.executor = Executor(
                state,
                concurrency=settings.executor_concurrency,
                lease_seconds=settings.run_lease_seconds,
                max_resumes=settings.run_max_resumes,
            )
            from assistd.llm.tokens import preload

            await asyncio.to_thread(preload)  # ~0.3 s, once: not on the loop during a run
            from assistd.sandbox import SandboxManager

            state.sandbox = SandboxManager.from_settings(settings)
            await state.sandbox.start(background=background)
            if isinstance(state.bus, PostgresEventBus):  # in one process, the executor is called directly
                state.bus.on_wake = state.executor.wake
                state.bus.on_cancel = state.executor.request_cancel
            state.executor.start()
            from assistd.ingest.worker import Ingester

            state.ingester = Ingester(
                state, concurrency=settings.ingest_concurrency, lease_seconds=settings.ingest_lease_seconds
            )
            if isinstance(state.bus, PostgresEventBus):
                state.bus.on_ingest = state.ingester.wake
            state.ingester.start()
        if background:
            from assistd.files.service import sweep_expired

            state.every(settings.sweep_interval_seconds, sweep_expired)
            from assistd.vector_stores.sweep import sweep_vector_stores

            state.every(settings.sweep_interval_seconds, sweep_vector_stores)
            from assistd.pagination import sweep_deleted_cursors

            state.every(settings.sweep_interval_seconds, sweep_deleted_cursors)
            if isinstance(state.bus, PostgresEventBus):
                bus = state.bus
                state.every(settings.sweep_interval_seconds, lambda _s: bus.prune())
        return state

    async def report_missing_parts(self) -> None:
        """One WARNING, with the command that fixes it, when file_search's embedder cannot work (the
        sandbox reports its own parts when it starts). Nothing is retried here: the embedder looks
        for its weights again on each use until it finds them."""
        from assistd.retrieval.index import get_embedder

        problem = getattr(get_embedder(self), "problem", None)
        message = await asyncio.to_thread(problem) if problem is not None else None
        if message:
            log.warning("%s", message)

    def run_queued(self) -> None:
        """A run became queued (after its commit): wake an executor now, here or elsewhere."""
        if self.executor is not None:
            self.executor.wake()
        if isinstance(self.bus, PostgresEventBus):
            self.spawn(self.bus.notify(WAKE))

    def cancel_requested(self, run_id: str) -> None:
        """A run moved to ``cancelling``: whoever executes it stops it; idle runs are finalised."""
        if isinstance(self.bus, PostgresEventBus):
            self.spawn(self.bus.notify(CANCEL, run_id))  # every executor, this process's included
        elif self.executor is not None:
            self.spawn(self.executor.request_cancel(run_id))

    def spawn(self, coro: Any) -> None:
        """Run a coroutine in the background, keeping a reference until it is done."""
        task = asyncio.create_task(coro)
        self.spawned.add(task)
        task.add_done_callback(self.spawned.discard)

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
        if self.ingester is not None:
            await self.ingester.stop()
        if self.executor is not None:
            await self.executor.stop()
        if self.sandbox is not None:
            await self.sandbox.close()
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self.tasks.clear()
        for t in list(self.spawned):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.bus.close()
        await self.llm.aclose()
        await self.db.dispose()
