"""Which executing processes are alive.

Every executor registers a row in ``executors`` (its owner name, its machine, pid and process start
time) and renews its lease with each heartbeat, busy or not. Two things follow:

- A stopped process on **this machine** is recognised at once, without waiting for its leases to
  lapse: its pid no longer runs the process that registered (the start time tells a reused pid
  apart). So a restarted ``serve`` on SQLite, or a worker restarted on the same host, takes up the
  previous process's runs immediately. Processes on other machines (or in other containers: the
  machine key includes the pid namespace) are only judged by their lease.
- Claims can tell whether the worker that holds a thread's code_interpreter kernel is still alive
  (executor/affinity.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, delete, select, update

from assistd.db.core import insert_rows
from assistd.models import ExecutorRecord

if TYPE_CHECKING:
    from assistd.db.session import Database

log = logging.getLogger("assistd.executor")

FORGET_AFTER_SECONDS = 3600.0  # rows of processes whose lease lapsed this long ago are removed
_EXECUTORS = ExecutorRecord.__table__


@cache
def machine_key() -> str:
    """This machine's boot and pid namespace: pids are comparable between processes with the same key."""
    parts = []
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    with contextlib.suppress(OSError):
        parts.append(os.readlink("/proc/self/ns/pid"))
    if not parts:
        parts.append(socket.gethostname())
    return ":".join(parts)[:200]


def process_start(pid: int) -> int | None:
    """The process's start time (clock ticks after boot, /proc/<pid>/stat field 22), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    try:
        return int(stat[stat.rindex(b")") + 2 :].split()[19])
    except (ValueError, IndexError):
        return None


def is_running(pid: int, start: int | None) -> bool:
    """Whether ``pid`` still runs the process that started at ``start`` (on this machine)."""
    if start is not None and os.path.isdir("/proc"):
        return process_start(pid) == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def register(db: Database, owner: str, lease_seconds: float) -> None:
    t, pid = time.time(), os.getpid()
    row = ExecutorRecord(
        owner=owner,
        machine=machine_key(),
        pid=pid,
        process_start=process_start(pid),
        started_at=t,
        expires_at=t + lease_seconds,
    )
    async with db.session(write=True, inline=True) as s:
        await insert_rows(s, row)


async def renew(db: Database, owner: str, lease_seconds: float) -> None:
    async with db.session(write=True, inline=True) as s:
        result = await s.execute(
            update(_EXECUTORS).where(_EXECUTORS.c.owner == owner).values(expires_at=time.time() + lease_seconds)
        )
    if cast("CursorResult[Any]", result).rowcount == 0:  # taken for stopped and removed: register again
        await register(db, owner, lease_seconds)


async def unregister(db: Database, owner: str) -> None:
    async with db.session(write=True, inline=True) as s:
        await s.execute(delete(_EXECUTORS).where(_EXECUTORS.c.owner == owner))


async def stopped_here(db: Database, me: str) -> list[str]:
    """Executors of this machine whose process is gone (their rows are removed): their runs need
    not wait for their leases to lapse. Rows of long-lapsed executors anywhere are removed too."""
    async with db.session(inline=True) as s:
        rows = (
            await s.execute(
                select(_EXECUTORS.c.owner, _EXECUTORS.c.pid, _EXECUTORS.c.process_start).where(
                    _EXECUTORS.c.machine == machine_key(), _EXECUTORS.c.owner != me
                )
            )
        ).all()
    gone = [r.owner for r in rows if not is_running(r.pid, r.process_start)]
    old = time.time() - FORGET_AFTER_SECONDS
    async with db.session(inline=True) as s:
        lapsed = await s.scalar(select(_EXECUTORS.c.owner).where(_EXECUTORS.c.expires_at < old).limit(1))
    if gone or lapsed is not None:
        async with db.session(write=True, inline=True) as s:
            if gone:
                await s.execute(delete(_EXECUTORS).where(_EXECUTORS.c.owner.in_(gone)))
            await s.execute(delete(_EXECUTORS).where(_EXECUTORS.c.expires_at < old))
    for owner in gone:
        log.info("executor %s: its process on this machine has stopped", owner)
    return gone
