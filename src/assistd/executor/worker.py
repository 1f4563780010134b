"""The executor: claims queued runs and runs them, with leases, heartbeats and a reaper.

- **Claim**: one conditional UPDATE (``queued`` -> ``in_progress``) inside ``BEGIN IMMEDIATE`` on
  SQLite, or after ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL; the claimant writes its
  lease (owner, expiry) and bumps ``attempt``. One transaction claims the oldest queued runs up
  to ``CLAIM_BATCH`` (and the free slots): when runs arrive faster than one claim round trip,
  the backlog is taken in one go instead of one transaction per run. On PostgreSQL a run whose
  thread's code_interpreter kernel lives in another live executor is left to that one
  (executor/affinity.py).
- **Heartbeat**: every ``lease/3`` seconds the executor's own lease (executor/liveness.py) and
  each running run's lease are extended; the same UPDATE returns the runs' status, so a
  ``cancelling`` set by another process stops the local task.
- **Reaper**: a run ``in_progress`` whose lease expired, or whose executor's process is gone from
  this machine, is taken up again from its last completed step, a bounded number of times
  (executor/resume.py); ``requires_action`` runs past ``expires_at`` expire; ``cancelling`` runs
  nobody holds are finalised ``cancelled``.
- **Stop**: running tasks are cancelled with reason "shutdown" and hand their runs back.
- **Wake-ups**: the API wakes the local executor after a commit; otherwise a slow poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select, update

from assistd import metrics
from assistd.executor import affinity, liveness, resume
from assistd.executor.outcome import log_run_end
from assistd.executor.runner import RunRunner, StopReason
from assistd.executor.transitions import transition, transition_rows
from assistd.executor.writes import finalize_cancel
from assistd.ids import random_token
from assistd.models import Run, RunStep
from assistd.runs.protocol import step_to_object
from assistd.runs.protocol import to_object as run_object
from assistd.timeutil import now

if TYPE_CHECKING:
    from assistd.state import AppState

log = logging.getLogger("assistd.executor")

CLAIM_BATCH = 8  # runs claimed per transaction at most (other workers take the rest meanwhile)

# Is anything queued? (a plain read, before taking SQLite's write lock to claim)
_ANY_QUEUED = select(Run.__table__.c.seq).where(Run.__table__.c.status == "queued").limit(1)


class Executor:
    def __init__(
        self,
        state: AppState,
        *,
        concurrency: int = 32,
        lease_seconds: float = 30.0,
        poll_seconds: float = 1.0,
        max_resumes: int = 6,
    ) -> None:
        self.state = state
        self.owner = "exec_" + random_token(12)
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.max_resumes = max_resumes
        self._registered = False
        self.kernels: dict[str, float] = {}  # threads whose kernel this process holds -> when bound
        self._taking_up: set[str] = set()  # runs to take up after a pause (resume.backoff)
        self._wake = asyncio.Event()
        self._running: dict[str, tuple[asyncio.Task[None], RunRunner]] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = False
        self._reserved = 0  # slots kept for runs being created in this process (adopt)
        self._saturated = False  # the claim loop stopped at the concurrency limit

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="assistd-claim"),
            asyncio.create_task(self._heartbeat_loop(), name="assistd-heartbeat"),
            asyncio.create_task(self._reaper_loop(), name="assistd-reaper"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        running = list(self._running.values())
        for task, runner in running:
            runner.stop_reason = StopReason.SHUTDOWN
            task.cancel()
        for task, _ in running:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._registered:
            with contextlib.suppress(Exception):
                await liveness.unregister(self.state.db, self.owner)
            self._registered = False

    def wake(self) -> None:
        self._wake.set()

    async def drain(self, within: float = 30.0) -> None:
        """Tests: wait until no run is queued or executing here."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            async with self.state.db.session(inline=True) as s:
                queued = await s.scalar(
                    select(func.count()).select_from(Run).where(Run.status.in_(["queued", "in_progress", "cancelling"]))
                )
            if not queued and not self._running:
                return
            self.wake()
            await asyncio.sleep(0.01)
        raise TimeoutError("runs still active")

    # --- tokens ---------------------------------------------------------------------------------

    def count_tokens(self, model: str, messages: list[dict[str, Any]]) -> int:
        from assistd.llm.tokens import count_messages

        return count_messages(messages, model)

    # --- claiming -------------------------------------------------------------------------------

    async def _register(self) -> None:
        """Before the first claim: a run this executor holds must always name a registered process,
        or its death would be noticed only when its lease lapses."""
        pause = 0.1
        while not self._registered and not self._stopping:
            try:
                await liveness.register(self.state.db, self.owner, self.lease_seconds)
                self._registered = True
            except Exception:
                log.exception("could not register this executor; trying again")
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)

    async def _claim_loop(self) -> None:
        await self._register()
        while not self._stopping:
            try:
                self._saturated = False
                while True:
                    free = self.concurrency - len(self._running) - self._reserved
                    if free <= 0:
                        self._saturated = True  # a run ending frees a slot: look again then
                        break
                    runs = await self._claim(min(free, CLAIM_BATCH))
                    for run in runs:
                        self._start_runner(run)
                    if not runs:
                        break
            except Exception:
                log.exception("claim failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            self._wake.clear()

    async def _claim(self, limit: int = 1) -> list[Run]:
        """Claim the oldest queued runs, at most ``limit``: the claimed rows (status ``in_progress``),
        oldest first."""
        db, t = self.state.db, now()
        if db.fast is not None and db.is_sqlite and await db.fast.first(_ANY_QUEUED, {}) is None:
            return []  # nothing queued: no write transaction (SQLite has one writer at a time)
        async with db.session(write=True, inline=True) as s:
            stmt = select(Run.id).where(Run.status == "queued").order_by(Run.seq).limit(limit)
            if not db.is_sqlite:
                # a thread's runs go where its kernel lives, while that executor lives
                stmt = affinity.claimable(stmt, self.owner).with_for_update(skip_locked=True, of=Run)
            run_ids = list((await s.scalars(stmt)).all())
            if not run_ids:
                return []
            rows = await transition_rows(
                s,
                run_ids,
                "in_progress",
                only_from={"queued"},
                lease_owner=self.owner,
                lease_expires_at=time.time() + self.lease_seconds,
                attempt=Run.attempt + 1,
                started_at=func.coalesce(Run.started_at, t),
            )
        metrics.runs_claimed(rows)
        return sorted((Run(**row._mapping) for row in rows), key=lambda r: r.seq)

    # --- adopting a run as it is created -------------------------------------------------------

    def reserve(self) -> bool:
        """Keep a slot for a run being created in this process (see ``adopt``); False when full."""
        if self._stopping or not self._registered or len(self._running) + self._reserved >= self.concurrency:
            return False
        self._reserved += 1
        return True

    @property
    def free_slots(self) -> int:
        """Runs this executor could start now (neither running nor reserved)."""
        return self.concurrency - len(self._running) - self._reserved

    def release(self) -> None:
        """The reserved run was not created after all (its transaction rolled back)."""
        self._reserved -= 1
        if self._saturated:
            self.wake()

    def adopt(self, run: Run) -> None:
        """Execute a run whose row was inserted already claimed by this executor (after its commit).

        A streaming request then costs no claim transaction and no wake-up round: the run starts
        as soon as its creating transaction commits.
        """
        self._reserved -= 1
        metrics.run_adopted()
        # Its events can only be streamed by this process (the request that created it): they
        # need not go to the cross-process event log until the run rests (see runs/pgbus.py).
        self._start_runner(run, local_stream=True)

    def lease(self) -> dict[str, Any]:
        """The claim columns for a run created already claimed by this executor."""
        return {"lease_owner": self.owner, "lease_expires_at": time.time() + self.lease_seconds, "attempt": 1}

    def _start_runner(self, run: Run, *, local_stream: bool = False) -> None:
        run_id = run.id
        self.state.bus.renew_sequence()  # its events come after those published where it ran before
        runner = RunRunner(self, run_id, run, local_stream=local_stream)
        task = asyncio.create_task(runner.execute(), name=f"run-{run_id}")
        self._running[run_id] = (task, runner)

        def _done(_t: asyncio.Task[None]) -> None:
            self._running.pop(run_id, None)
            if self._saturated:
                self.wake()  # a slot is free and runs may be waiting for one

        task.add_done_callback(_done)

    # --- cancel ---------------------------------------------------------------------------------

    async def request_cancel(self, run_id: str) -> None:
        """After the API moved a run to ``cancelling``: stop it here, or finalise it if idle."""
        local = self._running.get(run_id)
        if local is not None:
            task, runner = local
            runner.stop_reason = StopReason.CANCEL
            task.cancel()
            return
        async with self.state.db.session(inline=True) as s:
            row = await s.execute(select(Run.lease_owner, Run.lease_expires_at).where(Run.id == run_id))
            owner, expires = row.one()
        if owner is None or (expires is not None and expires < time.time()):
            await finalize_cancel(self, run_id)
        # Otherwise another process holds it; its heartbeat sees `cancelling` and stops it.

    # --- heartbeat ------------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while not self._stopping:
            try:
                if self._registered:  # (the claim loop registers it first)
                    await liveness.renew(self.state.db, self.owner, self.lease_seconds)
                await affinity.sync(self)
            except Exception:
                log.exception("executor heartbeat failed")
            await asyncio.sleep(self.lease_seconds / 3)
            if not self._running:
                continue
            try:
                await self._heartbeat()
            except Exception:
                log.exception("heartbeat failed")

    async def _heartbeat(self) -> None:
        ids = list(self._running)
        async with self.state.db.session(write=True, inline=True) as s:
            rows = await s.execute(
                update(Run)
                .where(Run.id.in_(ids), Run.lease_owner == self.owner)
                .values(lease_expires_at=time.time() + self.lease_seconds)
                .returning(Run.id, Run.status)
                .execution_options(synchronize_session=False)
            )
            status = {r[0]: r[1] for r in rows}
        for run_id in ids:
            local = self._running.get(run_id)
            if local is None:
                continue
            task, runner = local
            if run_id not in status:
                runner.stop_reason = StopReason.LEASE_LOST
                task.cancel()
            elif status[run_id] == "cancelling" and runner.stop_reason is None:
                runner.stop_reason = StopReason.CANCEL
                task.cancel()

    # --- reaper ---------------------------------------------------------------------------------

    async def _reaper_loop(self) -> None:
        while not self._stopping:
            try:
                await self.reap()
            except Exception:
                log.exception("reaper failed")
            # often: finding a stopped process of this machine is one small query, and its runs
            # resume that much sooner
            await asyncio.sleep(max(min(self.lease_seconds / 2, 1.0), 0.05))

    async def reap(self) -> None:
        db, t, wall = self.state.db, now(), time.time()
        gone = await liveness.stopped_here(db, self.owner)
        lapsed = Run.lease_expires_at < wall
        async with db.session(inline=True) as s:
            stale = list(
                (
                    await s.execute(
                        select(Run.id, Run.status, Run.lease_owner, Run.resumes).where(
                            Run.status.in_(["in_progress", "cancelling"]),
                            Run.lease_expires_at.is_not(None),
                            or_(lapsed, Run.lease_owner.in_(gone)) if gone else lapsed,
                        )
                    )
                ).all()
            )
            expired = list(
                await s.scalars(
                    select(Run.id).where(
                        Run.status == "requires_action", Run.expires_at.is_not(None), Run.expires_at <= t
                    )
                )
            )
            orphaned_cancels = list(
                await s.scalars(select(Run.id).where(Run.status == "cancelling", Run.lease_owner.is_(None)))
            )
        for run_id, status, owner, resumes in stale:
            if run_id in self._running or run_id in self._taking_up:
                continue
            if status == "cancelling":
                async with db.session(write=True, inline=True) as s:
                    await s.execute(update(Run).where(Run.id == run_id).values(lease_owner=None, lease_expires_at=None))
                await finalize_cancel(self, run_id)
                continue
            delay = resume.backoff(resumes) if resumes < self.max_resumes else 0.0  # failing: at once
            if not delay:
                await resume.take_up(self, run_id, owner, dead=owner in gone)
                continue
            self._taking_up.add(run_id)
            task = asyncio.create_task(self._take_up_later(delay, run_id, owner, owner in gone))
            task.add_done_callback(functools.partial(self._taken_up, run_id))
        for run_id in expired:
            await self._expire(run_id, t)
        for run_id in orphaned_cancels:
            await finalize_cancel(self, run_id)
        if stale:
            self.wake()

    def _taken_up(self, run_id: str, _task: asyncio.Task[None]) -> None:
        self._taking_up.discard(run_id)

    async def _take_up_later(self, delay: float, run_id: str, owner: str | None, dead: bool) -> None:
        try:
            await asyncio.sleep(delay)
            await resume.take_up(self, run_id, owner, dead=dead)
        except Exception:
            log.exception("taking up run %s failed", run_id)

    async def _expire(self, run_id: str, t: int) -> None:
        async with self.state.db.session(write=True, inline=True) as s:
            ok = await transition(s, run_id, "expired", only_from={"requires_action"}, required_action=None)
            if not ok:
                return
            steps = list(
                (
                    await s.scalars(select(RunStep).where(RunStep.run_id == run_id, RunStep.status == "in_progress"))
                ).all()
            )
            for step in steps:
                step.status, step.expired_at = "expired", t
            run = await s.scalar(select(Run).where(Run.id == run_id))
        for step in steps:
            self.state.bus.publish(run_id, "thread.run.step.expired", step_to_object(step))
        if run is not None:
            self.state.bus.publish(run_id, "thread.run.expired", run_object(run))
            log_run_end(
                self.state.llm,
                run_id=run_id,
                thread_id=run.thread_id,
                model=run.model,
                status="expired",
                why="no tool outputs were submitted before expires_at",
            )

    async def hand_back(self, run_id: str) -> None:
        """Shutdown: requeue the run, keeping what it committed (see executor/resume.py)."""
        await resume.hand_back(self, run_id)
