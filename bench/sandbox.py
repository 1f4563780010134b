"""Code-interpreter sandbox benchmark: kernel start, round trip, concurrency.

Drives ``assistd.sandbox.SandboxManager`` directly (no HTTP, no database): every figure is what
the sandbox itself costs. Measures

1. **cold start**: ``--cold`` new threads, one after another, with no warm pool: from ``execute``
   to the result of ``1+1`` (bubblewrap, the kernel's start, the handshake, the first execution);
2. **warm-pool start**: the same with a warm pool of one kernel, waiting until the pool is refilled
   (and its preload done) before each new thread: what a thread's first execution costs in a
   server that is not overloaded;
3. **warm round trip**: ``--round-trips`` executions of ``1+1`` on one thread's kernel, p50/p99;
4. **ten threads at once**: ten threads whose kernels are warm each execute a small pandas job
   at the same moment (wall time of the slowest, and of ``1+1``); then ten *new* threads at once
   with a warm pool of one (nine cold starts in parallel on the machine's cores).

5. **added run time**: the whole app in this process (``AppState`` with its executor, SQLite in a
   temporary directory, the scripted fake model as a loopback HTTP server, the client over ASGI):
   ``--runs`` streamed runs, each on the same thread, read until ``done``, with and without one
   code step (the fake calls ``code_interpreter`` with ``1+1``, then answers); the median
   difference is what a trivial code step adds (a second model turn, the step's rows and events,
   and the execution), on a warm kernel and on a new thread's first run (warm pool).

Targets (PASS/FAIL, informational): cold start (the first execution of a new thread, with the
default warm pool) <= 1 s; warm round trip p50 <= 20 ms; added run time p50 <= 150 ms.

Usage::

    .venv/bin/python bench/sandbox.py [--cold 7] [--round-trips 300] [--runs 30] [--venv DIR]

Needs bubblewrap and the kernel venv (``assistd setup``, default ./data/sandbox/venv).
Writes bench/results/sandbox-<timestamp>.json. Run it as a script (it imports bench/crud.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import sys
import tempfile
import textwrap
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crud import ROOT, percentile, verdict, write_report

from assistd.sandbox import SandboxConfig, SandboxManager

PANDAS_JOB = "import pandas as pd\ndf = pd.DataFrame({'x': range(10_000)})\nint(df.x.sum())"


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def summary(samples: list[float]) -> dict[str, float]:
    s = sorted(samples)
    return {"n": len(s), "p50_ms": ms(percentile(s, 0.5)), "p99_ms": ms(percentile(s, 0.99)), "max_ms": ms(s[-1])}


def new_thread() -> str:
    return f"thread_{uuid.uuid4().hex[:12]}"


async def timed(m: SandboxManager, thread: str, code: str) -> float:
    t0 = time.perf_counter()
    result = await m.execute(thread, code)
    elapsed = time.perf_counter() - t0
    if result.error:
        raise RuntimeError(f"execution failed: {result.logs[-500:]}")
    return elapsed


async def wait_warm(m: SandboxManager, size: int) -> None:
    for _ in range(1200):
        if m.warm_ready >= size:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("the warm pool did not fill within 60 s")


async def cold_starts(config: SandboxConfig, n: int) -> list[float]:
    m = SandboxManager(replace(config, warm_pool=0))
    await m.start()
    try:
        return [await timed(m, new_thread(), "1+1") for _ in range(n)]
    finally:
        await m.close()


async def pooled_starts(config: SandboxConfig, n: int) -> list[float]:
    m = SandboxManager(replace(config, warm_pool=1))
    await m.start()
    try:
        samples = []
        for _ in range(n):
            await wait_warm(m, 1)
            samples.append(await timed(m, new_thread(), "1+1"))
        return samples
    finally:
        await m.close()


async def round_trips(config: SandboxConfig, n: int) -> list[float]:
    m = SandboxManager(replace(config, warm_pool=0))
    await m.start()
    try:
        t = new_thread()
        for _ in range(10):  # warm-up: kernel start, first-execution costs
            await timed(m, t, "1+1")
        return [await timed(m, t, "1+1") for _ in range(n)]
    finally:
        await m.close()


async def ten_at_once(config: SandboxConfig) -> dict[str, Any]:
    m = SandboxManager(replace(config, warm_pool=0, max_sessions=16))
    await m.start()
    try:
        threads = [new_thread() for _ in range(10)]
        await asyncio.gather(*(m.execute(t, "import pandas") for t in threads))  # kernels up and warm
        out: dict[str, Any] = {}
        for label, code in (("one_plus_one", "1+1"), ("pandas_job", PANDAS_JOB)):
            t0 = time.perf_counter()
            each = await asyncio.gather(*(timed(m, t, code) for t in threads))
            out[label] = {"wall_ms": ms(time.perf_counter() - t0), "slowest_ms": ms(max(each))}
        return out
    finally:
        await m.close()


async def ten_new_at_once(config: SandboxConfig) -> dict[str, Any]:
    m = SandboxManager(replace(config, warm_pool=1, max_sessions=16))
    await m.start()
    try:
        await wait_warm(m, 1)
        t0 = time.perf_counter()
        each = await asyncio.gather(*(timed(m, new_thread(), "1+1") for _ in range(10)))
        return {"wall_ms": ms(time.perf_counter() - t0), "fastest_ms": ms(min(each)), "slowest_ms": ms(max(each))}
    finally:
        await m.close()


async def _streamed_run(client: Any, thread: str, assistant: str) -> float:
    t0 = time.perf_counter()
    async with client.stream(
        "POST", f"/threads/{thread}/runs", json={"assistant_id": assistant, "stream": True}
    ) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("event: thread.run.failed"):
                raise RuntimeError("a benchmark run failed")
            if line == "event: done":
                break
    return time.perf_counter() - t0


async def added_run_time(venv: Path, runs: int) -> dict[str, Any]:
    """Streamed runs with and without one trivial code step, through the whole app in-process."""
    import httpx

    from assistd.app import create_app
    from assistd.config import Settings
    from assistd.db.migrate import upgrade
    from assistd.fakellm import FakeLLM
    from assistd.state import AppState

    code_turns = [{"tool_calls": [{"name": "code_interpreter", "arguments": {"code": "1+1"}}]}, {"text": "It is 2."}]
    with tempfile.TemporaryDirectory(prefix="assistd-bench-runs-") as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/assistd.db"
        upgrade(url)
        async with FakeLLM() as llm:
            settings = Settings(
                data_dir=Path(tmp),
                database_url=url,
                upstream_base_url=llm.base_url,
                sandbox_venv=venv,
                log_level="warning",
            )
            state = await AppState.start(settings)
            headers = {"Authorization": "Bearer bench", "OpenAI-Beta": "assistants=v2"}
            transport = httpx.ASGITransport(app=create_app(settings, state))
            try:
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://bench/v1", headers=headers
                ) as client:
                    body = {"model": "fake-model", "tools": [{"type": "code_interpreter"}]}
                    assistant = (await client.post("/assistants", json=body)).json()["id"]

                    async def new_thread_id() -> str:
                        msg = {"messages": [{"role": "user", "content": "What is 1+1?"}]}
                        return (await client.post("/threads", json=msg)).json()["id"]

                    async def series(turns: list[Any], thread: str | None) -> list[float]:
                        samples = []
                        for _ in range(runs + 3):  # the first three warm up (kernel, caches)
                            if state.sandbox is not None and thread is None:
                                await wait_warm(state.sandbox, 1)
                            llm.set_turns(turns)
                            samples.append(await _streamed_run(client, thread or await new_thread_id(), assistant))
                        return samples[3:]

                    plain = await series([{"text": "It is 2."}], await new_thread_id())
                    warm = await series(code_turns, await new_thread_id())
                    first = await series(code_turns, None)
            finally:
                await state.stop()
    p_plain, p_warm, p_first = (percentile(sorted(x), 0.5) for x in (plain, warm, first))
    return {
        "runs": runs,
        "no_code_p50_ms": ms(p_plain),
        "one_code_step_warm_kernel_p50_ms": ms(p_warm),
        "one_code_step_new_thread_p50_ms": ms(p_first),
        "added_warm_ms": ms(p_warm - p_plain),
        "added_new_thread_ms": ms(p_first - p_plain),
    }


async def main(args: argparse.Namespace) -> int:
    venv = Path(args.venv or os.environ.get("ASSISTD_SANDBOX_VENV") or ROOT / "data" / "sandbox" / "venv")
    outbox = Path(tempfile.mkdtemp(prefix="assistd-bench-sandbox-"))
    config = SandboxConfig(venv=venv.absolute(), runtime_dir=outbox)
    probe_m = SandboxManager(replace(config, warm_pool=0))
    status = await probe_m.start(background=False)
    await probe_m.close()
    if not status.available:
        print(f"sandbox unavailable: {status.reason}", file=sys.stderr)
        return 2
    print(f"sandbox: {status.reason}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )

    cold = await cold_starts(config, args.cold)
    pooled = await pooled_starts(config, args.cold)
    warm = await round_trips(config, args.round_trips)
    ten = await ten_at_once(config)
    ten_new = await ten_new_at_once(config)
    added = await added_run_time(venv.absolute(), args.runs)

    report = {
        "timestamp": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "sandbox": status.reason,
        "cold_start_no_pool": summary(cold),
        "first_execution_with_warm_pool": summary(pooled),
        "warm_round_trip": summary(warm),
        "ten_warm_threads_at_once": ten,
        "ten_new_threads_at_once_pool_of_one": ten_new,
        "added_run_time": added,
    }
    c, p, w = report["cold_start_no_pool"], report["first_execution_with_warm_pool"], report["warm_round_trip"]
    cold_ok = p["p50_ms"] <= 1000
    warm_ok = w["p50_ms"] <= 20
    added_ok = added["added_warm_ms"] <= 150
    print(
        textwrap.dedent(
            f"""
            kernel cold start, no pool (1+1 on a new thread)   p50 {c["p50_ms"]:>7} ms   max {c["max_ms"]:>7} ms   (n={c["n"]})
            new thread, warm pool of 1 (1+1)                    p50 {p["p50_ms"]:>7} ms   max {p["max_ms"]:>7} ms   (n={p["n"]})
            warm round trip (1+1)                               p50 {w["p50_ms"]:>7} ms   p99 {w["p99_ms"]:>7} ms   (n={w["n"]})
            ten warm threads at once, 1+1                       wall {ten["one_plus_one"]["wall_ms"]:>6} ms
            ten warm threads at once, pandas sum of 10k rows    wall {ten["pandas_job"]["wall_ms"]:>6} ms
            ten new threads at once (pool of 1, 9 cold starts)  wall {ten_new["wall_ms"]:>6} ms   fastest {ten_new["fastest_ms"]} ms
            run without code (streamed, in-process)             p50 {added["no_code_p50_ms"]:>7} ms   (n={added["runs"]})
            run with one 1+1 code step, warm kernel             p50 {added["one_code_step_warm_kernel_p50_ms"]:>7} ms   added {added["added_warm_ms"]} ms
            run with one 1+1 code step, new thread (warm pool)  p50 {added["one_code_step_new_thread_p50_ms"]:>7} ms   added {added["added_new_thread_ms"]} ms

            target: first execution of a new thread <= 1 s (warm pool)   {verdict(cold_ok)}  ({p["p50_ms"]} ms; no pool: {c["p50_ms"]} ms)
            target: warm round trip p50 <= 20 ms                         {verdict(warm_ok)}  ({w["p50_ms"]} ms)
            target: added run time of a trivial code step <= 150 ms      {verdict(added_ok)}  ({added["added_warm_ms"]} ms)
            """
        )
    )
    code = write_report("sandbox", report["timestamp"], report, 0, "measurement(s)")
    shutil.rmtree(outbox, ignore_errors=True)
    return code


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--cold", type=int, default=7, help="new threads started per start measurement (default 7)")
    p.add_argument("--round-trips", type=int, default=300, help="warm 1+1 executions (default 300)")
    p.add_argument("--runs", type=int, default=30, help="measured runs per kind for the added run time (default 30)")
    p.add_argument("--venv", help="the kernel venv (default ASSISTD_SANDBOX_VENV or ./data/sandbox/venv)")
    return p.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse_args())))
