"""SQLite's writer lock: one holder; urgent waiters first; cancelled waiters never wedge it."""

from __future__ import annotations

import asyncio

import pytest

from assistd.db.session import WriterLock


async def test_urgent_waiters_go_first_and_each_queue_keeps_its_order() -> None:
    lock, order = WriterLock(), []
    release = asyncio.Event()

    async def holder() -> None:
        async with lock.hold():
            await release.wait()

    async def waiter(name: str, urgent: bool) -> None:
        async with lock.hold(urgent):
            order.append(name)
            await asyncio.sleep(0)

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(waiter(n, n.startswith("u"))) for n in ("n1", "u1", "n2", "u2")]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *tasks)
    assert order == ["u1", "u2", "n1", "n2"]


async def test_a_cancelled_waiter_passes_the_lock_on() -> None:
    lock = WriterLock()
    release = asyncio.Event()
    got: list[str] = []

    async def holder() -> None:
        async with lock.hold():
            await release.wait()

    async def waiter(name: str) -> None:
        async with lock.hold():
            got.append(name)

    h = asyncio.create_task(holder())
    await asyncio.sleep(0)
    doomed, later = asyncio.create_task(waiter("doomed")), asyncio.create_task(waiter("later"))
    await asyncio.sleep(0)
    release.set()
    doomed.cancel()  # cancelled in the same step the lock is handed to it
    with pytest.raises(asyncio.CancelledError):
        await doomed
    await asyncio.wait_for(asyncio.gather(h, later), 1)
    assert got == ["later"]
    async with lock.hold():  # and it is free again
        pass
