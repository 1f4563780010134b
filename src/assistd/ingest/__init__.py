"""Background ingestion of vector-store files (worker.py) and how requests wake it.

``vector_store_files`` rows in status ``in_progress`` are the queue. A request that queued files
calls :func:`files_queued` inside its transaction: on PostgreSQL that sends ``NOTIFY
assistd_ingest`` (delivered at commit, to every process), and in every case the ingesters of this
process are woken right after the commit.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

from assistd.runs.pgbus import INGEST

_wakers: set[Callable[[], None]] = set()


def add_waker(fn: Callable[[], None]) -> None:
    _wakers.add(fn)


def remove_waker(fn: Callable[[], None]) -> None:
    _wakers.discard(fn)


def wake_local() -> None:
    for fn in list(_wakers):
        fn()


async def files_queued(session: AsyncSession) -> None:
    """Call in the transaction that queued files: ingesters everywhere wake once it commits."""
    if session.info.get("ingest_wake"):
        return
    session.info["ingest_wake"] = True
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": INGEST})

    def _after_commit(_session: object) -> None:
        session.info.pop("ingest_wake", None)
        wake_local()

    event.listen(session.sync_session, "after_commit", _after_commit, once=True)
