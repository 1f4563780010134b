"""PostgreSQL connections: how many one process may hold, when idle ones close, and what happens
when the server has no connection slot left.

**The budget** (``ASSISTD_DB_MAX_CONNECTIONS``, default 20) is the most connections one process
(``serve`` or ``worker``) holds at once, all its pools together:

=================  ============================================================================
LISTEN             1: wake-ups, cancels and (API processes) run events from other processes
event writer       1: the executor's run events, batched (opened on demand)
bus                2 (1 under a budget of 12): NOTIFY, a stream's first read, relaying events
                   too big for a notification, pruning
fast reads         a quarter of the rest (asyncpg pool: get by id, list pages, vector search)
executor writes    a quarter of the rest (the executor's own pool: a stream's next event never
                   waits behind a burst of API requests)
everything else    the rest (SQLAlchemy: API requests, claims, heartbeats, ingestion)
=================  ============================================================================

With the default 20: 1 + 1 + 2 + 4 + 4 + 8. A pool that is full makes its next user wait for a
connection to come back; it never opens one more.

**Idle connections close** after ``IDLE_SECONDS`` (10 s) unused: every pooled connection but one per
SQLAlchemy pool, and the event writer's. An idle process keeps 3: the LISTEN connection and one
per SQLAlchemy pool.

**When the server is out of connections** (``too many clients``, a role's ``CONNECTION LIMIT``, the
slots reserved for superusers, a server still starting), opening a connection is retried with
backoff (0.1 s doubling to 5 s) for up to ``ASSISTD_DB_CONNECT_WAIT_SECONDS`` (120 s), with a WARNING
(at most one every 10 s per process): the request or run that needed it waits instead of failing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import make_url

log = logging.getLogger("assistd.db")

IDLE_SECONDS = 10.0
BACKOFF_START, BACKOFF_MAX = 0.1, 5.0
WARN_EVERY_SECONDS = 10.0
# SQLSTATEs of "no slot for you now": too_many_connections (53300: "too many clients already",
# "too many connections for role", reserved slots) and cannot_connect_now (57P03: starting up)
RETRY_SQLSTATES = frozenset({"53300", "57P03"})


@dataclass(frozen=True, slots=True)
class Budget:
    total: int
    listen: int
    writer: int
    bus: int
    fast: int
    urgent: int
    main: int


def split(total: int, *, fast_reads: bool = True) -> Budget:
    """The budget's share for each pool (see the module docstring); ``total`` >= 6."""
    if total < 6:
        raise ValueError("ASSISTD_DB_MAX_CONNECTIONS must be at least 6")
    bus = 2 if total >= 12 else 1
    rest = total - 2 - bus
    fast = max(1, rest // 4) if fast_reads else 0
    urgent = max(1, rest // 4)
    return Budget(total, 1, 1, bus, fast, urgent, rest - fast - urgent)


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class _Shortage:
    warned = 0.0  # when the last WARNING was logged
    seen = float("-inf")  # when a connection was last refused for want of a slot


def short_of_slots() -> bool:
    """Whether the server refused this process a connection for want of a slot in the last
    ``IDLE_SECONDS``: idle pooled connections are then closed sooner, for the pools that need one."""
    return time.monotonic() - _Shortage.seen < IDLE_SECONDS


def connection_wait(reason: str, attempt: int) -> None:
    """A connection could not be opened for want of a server slot; it is tried again (logged at most
    every ``WARN_EVERY_SECONDS``)."""
    t = time.monotonic()
    _Shortage.seen = t
    if t - _Shortage.warned >= WARN_EVERY_SECONDS:
        _Shortage.warned = t
        log.warning(
            "PostgreSQL has no connection slot for this process (%s): waiting, with backoff (attempt %d)",
            reason,
            attempt,
        )


def connection_waited(seconds: float) -> None:
    """A connection was opened after waiting ``seconds`` for a server slot."""
    log.info("PostgreSQL connection opened after waiting %.1f s for a slot", seconds)


def no_slot(exc: BaseException) -> bool:
    """Whether ``exc`` (asyncpg's, possibly wrapped by SQLAlchemy) says the server has no slot now."""
    for e in (exc, getattr(exc, "orig", None), exc.__cause__):
        if e is not None and getattr(e, "sqlstate", None) in RETRY_SQLSTATES:
            return True
    return False


async def connect(dsn: str, *, wait_seconds: float, **kwargs: Any) -> Any:
    """``asyncpg.connect``, retried with backoff while the server has no slot (see module docstring)."""
    import asyncpg

    started = time.monotonic()
    delay, attempt = BACKOFF_START, 0
    while True:
        try:
            conn = await asyncpg.connect(dsn, **kwargs)
        except Exception as exc:
            waited = time.monotonic() - started
            if not no_slot(exc) or waited >= wait_seconds:
                raise
            attempt += 1
            connection_wait(str(exc), attempt)
            await asyncio.sleep(min(delay, max(wait_seconds - waited, 0.01)))
            delay = min(delay * 2, BACKOFF_MAX)
            continue
        if attempt:
            connection_waited(time.monotonic() - started)
        return conn


def connector(url: str, wait_seconds: float) -> Any:
    """A ``connect`` for asyncpg pools (they pass the DSN and keyword arguments)."""

    async def connect_for_pool(dsn: str | None = None, **kwargs: Any) -> Any:
        return await connect(dsn or asyncpg_dsn(url), wait_seconds=wait_seconds, **kwargs)

    return connect_for_pool


def creator(url: str, wait_seconds: float = 0.0) -> Any:
    """An ``async_creator`` for SQLAlchemy engines. Pooled ones try once: their pool (db/session.py,
    ``RetainingQueuePool``) waits for a slot, or for one of its own connections to come back."""
    dsn = asyncpg_dsn(url)

    async def create() -> Any:
        return await connect(dsn, wait_seconds=wait_seconds)

    return create
