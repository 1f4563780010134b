"""A subscription's event queue: order, wake-ups, and its silence timeout (runs/events.py)."""

from __future__ import annotations

import asyncio
import time

import pytest

from assistd.runs.events import EventQueue


async def test_events_come_out_in_order_and_wake_a_waiting_reader() -> None:
    q = EventQueue()
    q.put_nowait(("a", b"1"))
    assert await q.get(1.0) == ("a", b"1")
    reader = asyncio.ensure_future(q.get(5.0))
    await asyncio.sleep(0.01)
    assert not reader.done()
    q.put_nowait(("b", b"2"))
    q.put_nowait(("c", b"3"))
    assert await asyncio.wait_for(reader, 0.5) == ("b", b"2")
    assert (q.qsize(), q.get_nowait(), q.empty()) == (1, ("c", b"3"), True)
    with pytest.raises(asyncio.QueueEmpty):
        q.get_nowait()


async def test_silence_raises_timeout_after_the_wait_not_before() -> None:
    q = EventQueue()
    t = time.monotonic()
    with pytest.raises(TimeoutError):
        await q.get(0.1)
    assert 0.09 <= time.monotonic() - t < 0.5


async def test_steady_events_never_time_out_though_the_timer_was_armed_earlier() -> None:
    q = EventQueue()

    async def producer() -> None:
        for i in range(12):
            await asyncio.sleep(0.03)
            q.put_nowait(("delta", str(i).encode()))

    task = asyncio.ensure_future(producer())
    got = [await q.get(0.1) for _ in range(12)]  # 360 ms in all, never 100 ms of silence
    await task
    assert [data for _, data in got] == [str(i).encode() for i in range(12)]
    t = time.monotonic()
    with pytest.raises(TimeoutError):
        await q.get(0.1)
    assert time.monotonic() - t >= 0.09  # measured from this wait, not from when the timer was armed


async def test_a_shorter_wait_than_the_armed_timer_is_still_kept() -> None:
    q = EventQueue()
    long_wait = asyncio.ensure_future(q.get(10.0))
    await asyncio.sleep(0.01)
    q.put_nowait(("x", b""))
    await long_wait
    t = time.monotonic()
    with pytest.raises(TimeoutError):
        await q.get(0.05)
    assert time.monotonic() - t < 1.0
    q.close()
