"""Kernel affinity: a thread's runs execute where its code_interpreter kernel lives.

A thread's kernel (its Python variables, the files its code wrote) lives in one process. When a
run executes code, that process's executor records itself in ``threads.kernel_owner``; while it
lives (its row in ``executors`` is current, executor/liveness.py), claims by other executors skip
the thread's runs (PostgreSQL; with SQLite one process executes everything), and a process that
creates a run does not take it for itself. So consecutive runs of a thread see the same variables,
whichever worker process first ran its code, as long as that process lives and keeps the kernel.

When the kernel's process has stopped (killed, restarted), the next execution anywhere runs in a
new kernel and the model is told first, as for a kernel stopped for being idle: "this thread's
previous Python session has ended …; variables and files created before are gone". When the
kernel ends in a live process (idle, evicted), the heartbeat clears ``kernel_owner`` and the
thread's runs may go anywhere again.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update

from assistd.models import ExecutorRecord, Run, Thread

if TYPE_CHECKING:
    from assistd.executor.worker import Executor
    from assistd.state import AppState

_THREADS, _EXECUTORS = Thread.__table__, ExecutorRecord.__table__
STOPPED = "the worker process that held it has stopped"
ELSEWHERE = "it is held by another worker process"


def claimable(stmt: Any, me: str) -> Any:
    """``stmt`` (a SELECT of queued runs) without the runs whose thread's kernel lives in another
    live executor."""
    return (
        stmt.outerjoin(_THREADS, _THREADS.c.id == Run.thread_id)
        .outerjoin(_EXECUTORS, _EXECUTORS.c.owner == _THREADS.c.kernel_owner)
        .where(
            or_(
                _THREADS.c.kernel_owner.is_(None),
                _THREADS.c.kernel_owner == me,
                _EXECUTORS.c.owner.is_(None),
                _EXECUTORS.c.expires_at < time.time(),
            )
        )
    )


async def held_elsewhere(session: Any, thread_id: str, me: str) -> bool:
    """Whether another live executor holds the thread's kernel (a run created here then stays
    queued for it rather than being executed by this process)."""
    row = (
        await session.execute(
            select(_THREADS.c.kernel_owner, _EXECUTORS.c.expires_at)
            .select_from(_THREADS)
            .outerjoin(_EXECUTORS, _EXECUTORS.c.owner == _THREADS.c.kernel_owner)
            .where(_THREADS.c.id == thread_id)
        )
    ).first()
    if row is None or row.kernel_owner in (None, me):
        return False
    return row.expires_at is not None and row.expires_at >= time.time()


async def bind(state: AppState, run: Run) -> None:
    """Before a run executes code: record this executor as the thread's kernel holder, and if the
    kernel was held by another process, tell the sandbox that the thread's session was lost (the
    model reads why with the code's output)."""
    ex, sandbox = state.executor, state.sandbox
    if ex is None or sandbox is None:
        return
    if run.thread_id in ex.kernels:
        ex.kernels[run.thread_id] = time.monotonic()
        return
    async with state.db.session(inline=True) as s:
        owner = await s.scalar(select(_THREADS.c.kernel_owner).where(_THREADS.c.id == run.thread_id))
    if owner is not None and owner != ex.owner:
        async with state.db.session(inline=True) as s:
            alive = await s.scalar(
                select(_EXECUTORS.c.owner).where(_EXECUTORS.c.owner == owner, _EXECUTORS.c.expires_at >= time.time())
            )
        sandbox.note_lost(run.thread_id, ELSEWHERE if alive else STOPPED)
    async with state.db.session(write=True, inline=True) as s:
        await s.execute(update(_THREADS).where(_THREADS.c.id == run.thread_id).values(kernel_owner=ex.owner))
    ex.kernels[run.thread_id] = time.monotonic()


async def sync(ex: Executor) -> None:
    """Heartbeat: threads whose kernel this process no longer holds are released."""
    sandbox = ex.state.sandbox
    if not ex.kernels:
        return
    live = sandbox.live_sessions() if sandbox is not None else set()
    recent = time.monotonic() - ex.lease_seconds  # bound just now: its kernel may be starting
    gone = {t for t, at in ex.kernels.items() if t not in live and at < recent}
    if not gone:
        return
    async with ex.state.db.session(write=True, inline=True) as s:
        await s.execute(
            update(_THREADS)
            .where(_THREADS.c.id.in_(sorted(gone)), _THREADS.c.kernel_owner == ex.owner)
            .values(kernel_owner=None)
        )
    for t in gone:
        ex.kernels.pop(t, None)
