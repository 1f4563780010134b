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

The added run time of a run with one trivial code step (target <= 150 ms) needs the run
executor's code_interpreter integration and a server; it is not measured here.

Targets (PASS/FAIL, informational): cold start (the first execution of a new thread, with the
default warm pool) <= 1 s; warm round trip p50 <= 20 ms.

Usage::

    .venv/bin/python bench/sandbox.py [--cold 7] [--round-trips 300] [--venv DIR]

Needs bubblewrap and the kernel venv (``assistd sandbox install``, default ./data/sandbox/venv).
Writes bench/results/sandbox-<timestamp>.json. Run it as a script (it imports bench/crud.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
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

    report = {
        "timestamp": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "sandbox": status.reason,
        "cold_start_no_pool": summary(cold),
        "first_execution_with_warm_pool": summary(pooled),
        "warm_round_trip": summary(warm),
        "ten_warm_threads_at_once": ten,
        "ten_new_threads_at_once_pool_of_one": ten_new,
        "added_run_time": "not measured: needs the run executor's code_interpreter integration",
    }
    c, p, w = report["cold_start_no_pool"], report["first_execution_with_warm_pool"], report["warm_round_trip"]
    cold_ok = p["p50_ms"] <= 1000
    warm_ok = w["p50_ms"] <= 20
    print(
        textwrap.dedent(
            f"""
            kernel cold start, no pool (1+1 on a new thread)   p50 {c["p50_ms"]:>7} ms   max {c["max_ms"]:>7} ms   (n={c["n"]})
            new thread, warm pool of 1 (1+1)                    p50 {p["p50_ms"]:>7} ms   max {p["max_ms"]:>7} ms   (n={p["n"]})
            warm round trip (1+1)                               p50 {w["p50_ms"]:>7} ms   p99 {w["p99_ms"]:>7} ms   (n={w["n"]})
            ten warm threads at once, 1+1                       wall {ten["one_plus_one"]["wall_ms"]:>6} ms
            ten warm threads at once, pandas sum of 10k rows    wall {ten["pandas_job"]["wall_ms"]:>6} ms
            ten new threads at once (pool of 1, 9 cold starts)  wall {ten_new["wall_ms"]:>6} ms   fastest {ten_new["fastest_ms"]} ms
            added run time of a trivial code step               not measured here (needs the runner integration)

            target: first execution of a new thread <= 1 s (warm pool)   {verdict(cold_ok)}  ({p["p50_ms"]} ms; no pool: {c["p50_ms"]} ms)
            target: warm round trip p50 <= 20 ms                         {verdict(warm_ok)}  ({w["p50_ms"]} ms)
            """
        )
    )
    code = write_report("sandbox", report["timestamp"], report, 0, "measurement(s)")
    os.rmdir(outbox) if outbox.exists() and not any(outbox.iterdir()) else None
    return code


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--cold", type=int, default=7, help="new threads started per start measurement (default 7)")
    p.add_argument("--round-trips", type=int, default=300, help="warm 1+1 executions (default 300)")
    p.add_argument("--venv", help="the kernel venv (default ASSISTD_SANDBOX_VENV or ./data/sandbox/venv)")
    return p.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse_args())))
