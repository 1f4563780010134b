"""Runs benchmark: what assistd adds on top of the model, on SQLite and PostgreSQL.

Starts the scripted fake upstream (``python -m assistd.fakellm``) and ``python -m assistd serve``
(uvicorn, one worker, log level warning, in-process executor, upstream = the fake) as real
processes, and measures

1. **first-delta latency**: ``--runs`` sequential streaming runs (``POST /v1/threads/{id}/runs``
   with ``stream: true``, each on a fresh thread created beforehand), from sending the request to
   the first ``thread.message.delta``, with the fake at 0 ms time to first token; and, with the
   same client, a direct streaming chat completion against the fake (its own floor).
   added = assistd - direct;
2. **completed runs per second** at each of ``--concurrency-levels``: every worker takes a fresh
   thread, creates a run and waits for it to complete, either by polling ``GET`` the run (``stream:
   false``, sleeping what ``openai-poll-after-ms`` says) or by reading the stream until ``done``
   (``stream: true``); the fake answers 20 words at once (no pacing);
3. **stream lag**: ``--streams`` concurrent streaming runs (started evenly over ``--ramp`` s, default 4:
   50 new runs/s, half what the server can start) whose fake answer is ``--lag-words`` (120) one-word
   chunks at 20 tokens/s, so every stream is open from the last start until the first ends (2 s). The fake sends text chunk j at r + (j+1)/20 s, r being
   when it received the upstream request (``received_at`` in its request log, ``GET /_fakellm/requests``;
   each stream's thread has its own user message, which identifies the request); the lag of delta j is
   its wall-clock arrival at the client minus that. p50/p99 over every delta of every stream, next to
   the same figure for direct streams from the fake (the fake's and the client's own share). Also shown:
   the lag relative to the stream's own first delta, a_j - (a_0 + j/20 s), which needs no clock from the
   fake but reads negative when the first delta is the late one;

on SQLite (fresh temporary data directory) and PostgreSQL (fresh database ``assistd_bench_<random>``
on postgresql://postgres@127.0.0.1:5432, dropped afterwards). PostgreSQL is measured with the API and
the executor in one process; ``--worker-mode`` adds ``postgres+worker``: ``assistd serve`` with
ASSISTD_EXECUTOR=false and ``--workers`` ``assistd worker`` processes (on a tree without that
command it prints "not available yet" and skips it).

Client, server, fake upstream and PostgreSQL share the machine's CPU cores (2 on the reference
machine): absolute figures are pessimistic; the CPU columns show who used them.

Usage::

    .venv/bin/python bench/runs.py [--backends sqlite,postgres] [--runs 200] [--concurrency-levels 1,10,50]
                                   [--streams 200] [--ramp 4] [--lag-words 120] [--skip-lag] [--throughput-runs 300]
                                   [--max-seconds 6] [--executor-concurrency N] [--cprofile DIR]
                                   [--worker-mode [--workers 1]]

Prints tables and writes them as JSON to bench/results/runs-<timestamp>.json. Exit status is 0
whatever the figures (PASS/FAIL lines are informational) unless something errored. Run it as a
script (it imports bench/crud.py's process and database helpers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from crud import (
    CLK_TCK,
    HEADERS,
    BenchError,
    ServerProcess,
    free_port,
    percentile,
    pg_create_database,
    pg_drop_database,
    verdict,
    write_report,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"

MODEL = "fake-model"
FAST_WORDS = 20  # the answer in sections 1 and 2: 20 one-word chunks, no pacing
LAG_WORDS = 120  # the answer in section 3 (default of --lag-words): 120 one-word chunks (6 s) ...
LAG_TPS = 20.0  # ... at 20 tokens/s
LAG_RAMP = 4.0  # default of --ramp: the streams start over 4 s, so all 200 are open from 4 s to 6 s
WARMUP_RUNS = 10
CREATE_WORKERS = 16  # concurrent requests creating the thread pools
STREAM_TIMEOUT = 120.0  # a stream without `done` by then is an error (keep-alive comments never end it)
TERMINAL = frozenset({"completed", "failed", "cancelled", "expired", "incomplete", "requires_action"})
DEFAULT_EXECUTOR_CONCURRENCY = 32  # assistd's default ASSISTD_EXECUTOR_CONCURRENCY

TARGET_ADDED_P50_MS = {"sqlite": 15.0, "postgres": 30.0}
TARGET_RUNS_PER_SECOND = 100.0  # at concurrency 50, SQLite, streaming variant
TARGET_RUNS_CONCURRENCY = 50
TARGET_LAG_P99_MS = 50.0

JSON_HEADERS = {"content-type": "application/json"}
INSTRUCTIONS = "You are a benchmark."
PROMPT = "Say twenty words, please."


def stream_prompt(k: int) -> str:
    """The user message of lag stream ``k``: how the fake's request log tells the streams apart."""
    return f"Stream {k}: say forty words, please."


def words(n: int) -> str:
    return " ".join(f"word{i:02d}" for i in range(1, n + 1))


FAST_SCRIPT: dict[str, Any] = {"models": [MODEL], "options": {"ttft_ms": 0}, "default": {"text": words(FAST_WORDS)}}


def lag_script(n: int) -> dict[str, Any]:
    return {
        "models": [MODEL],
        "options": {"ttft_ms": 0, "tokens_per_second": LAG_TPS, "chunk_size": 1, "chunk_unit": "words"},
        "default": {"text": words(n)},
    }


# --- processes and CPU accounting ------------------------------------------------------------------


class FakeProcess(ServerProcess):
    """``python -m assistd.fakellm`` on a port we chose (it has no /health; /v1/models answers when ready)."""

    async def wait_ready(self, timeout: float = 30.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise BenchError(f"fake upstream exited with status {self.proc.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get("/v1/models")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise BenchError(f"fake upstream was not ready after {timeout:.0f} s:\n{self.log_tail()}")

    async def set_script(self, script: dict[str, Any]) -> None:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10.0) as client:
            r = await client.put("/_fakellm/script", content=orjson.dumps(script), headers=JSON_HEADERS)
            if r.status_code != 200:
                raise BenchError(f"fake upstream refused the script: HTTP {r.status_code}: {r.text[:300]}")
            await client.delete("/_fakellm/requests")  # its request log only grows otherwise


class ProfiledProcess(ServerProcess):
    """Stopped with SIGINT: uvicorn re-raises the signal it shut down on, and only a KeyboardInterrupt (not
    a SIGTERM death) lets cProfile write its file."""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=30)
        super().stop()


def fake_server(port: int, workdir: Path) -> FakeProcess:
    script = workdir / "fake-script.json"
    script.write_bytes(orjson.dumps(FAST_SCRIPT))
    argv = [sys.executable, "-m", "assistd.fakellm", "--script", str(script), "--port", str(port)]
    argv += ["--log-level", "warning"]
    return FakeProcess("fake upstream", argv, port, workdir / "fake.log")


def assistd_server(
    port: int,
    data_dir: Path,
    database_url: str,
    upstream: str,
    executor_concurrency: int,
    profile: Path | None = None,
    executor: bool = True,
) -> ServerProcess:
    env = assistd_env(data_dir, database_url, upstream, executor_concurrency)
    env["ASSISTD_EXECUTOR"] = "true" if executor else "false"
    argv = [sys.executable, "-m", "assistd", "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--log-level", "warning"]
    if profile is None:
        return ServerProcess("assistd", argv, port, data_dir / "server.log", env)
    # cProfile sees the event loop's thread only (token counting runs in worker threads)
    argv[1:1] = ["-m", "cProfile", "-o", str(profile)]
    return ProfiledProcess("assistd", argv, port, data_dir / "server.log", env)


async def background_load(seconds: float = 1.0) -> float:
    """% of one core the machine is busy before we start anything (other people's processes)."""
    t, busy = time.perf_counter(), machine_busy_seconds()
    await asyncio.sleep(seconds)
    return round((machine_busy_seconds() - busy) / (time.perf_counter() - t) * 100, 1)


def assistd_env(data_dir: Path, database_url: str, upstream: str, executor_concurrency: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTD_")}
    env.update(
        ASSISTD_DATA_DIR=str(data_dir),
        ASSISTD_DATABASE_URL=database_url,
        ASSISTD_LOG_LEVEL="warning",
        ASSISTD_UPSTREAM_BASE_URL=upstream,
        ASSISTD_EXECUTOR_CONCURRENCY=str(executor_concurrency),
    )
    return env


def assistd_worker(
    n: int, data_dir: Path, database_url: str, upstream: str, executor_concurrency: int
) -> ServerProcess:
    """``python -m assistd worker`` (no HTTP: ``port`` is unused; ``stop`` sends SIGTERM, which hands runs back)."""
    env = assistd_env(data_dir, database_url, upstream, executor_concurrency)
    argv = [sys.executable, "-m", "assistd", "worker", "--no-migrate", "--log-level", "warning"]
    return ServerProcess(f"assistd worker {n}", argv, 0, data_dir / f"worker-{n}.log", env)


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle (nor waiting on I/O) since boot, from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return float("nan")
    ticks = [int(x) for x in fields]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / CLK_TCK  # minus idle, iowait (guest is in user)


def postgres_cpu_seconds() -> float:
    """User + system CPU time so far of every process named ``postgres`` (the server and its backends)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        head, _, rest = text.rpartition(")")
        if head.endswith("(postgres"):
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


class CpuMeter:
    """CPU used between ``start`` and ``stop``, in % of one core: server, fake, client, whole machine."""

    def __init__(self, servers: list[ServerProcess], fake: ServerProcess) -> None:
        self.servers, self.fake = servers, fake
        self.result: dict[str, float] = {}

    def _srv_each(self) -> list[float]:
        return [s.cpu_seconds() for s in self.servers]

    def start(self) -> CpuMeter:
        self._t = time.perf_counter()
        self._srv = self._srv_each()
        self._fake = self.fake.cpu_seconds()
        self._cli = time.process_time()
        self._all = machine_busy_seconds()
        self._pg = postgres_cpu_seconds()
        return self

    def stop(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self._t

        def pct(x: float) -> float:
            return round(x / elapsed * 100, 1)

        each = [b - a for a, b in zip(self._srv, self._srv_each(), strict=True)]
        srv = sum(each)
        fake = self.fake.cpu_seconds() - self._fake
        cli = time.process_time() - self._cli
        busy = machine_busy_seconds() - self._all
        pg = postgres_cpu_seconds() - self._pg
        self.result = {
            "server_cpu_pct": pct(srv),
            "fake_cpu_pct": pct(fake),
            "client_cpu_pct": pct(cli),
            "postgres_cpu_pct": pct(pg),
            "machine_busy_pct": pct(busy),
            # interrupts / loopback networking not charged to a process, and unrelated processes
            "other_cpu_pct": pct(max(busy - srv - fake - cli - pg, 0.0)),
            "server_cpu_seconds": round(srv, 3),
        }
        if len(each) > 1:  # API process, then workers
            self.result["server_cpu_pct_by_process"] = [pct(x) for x in each]  # type: ignore[assignment]
        return self.result


# --- one client's view of a stream -----------------------------------------------------------------


@dataclass
class Trace:
    """A streamed response as the client saw it; times are seconds since the request was sent."""

    ok: bool = False
    error: str | None = None
    marks: dict[str, float] = field(default_factory=dict)  # event name -> first arrival
    deltas: list[float] = field(default_factory=list)  # arrival of each text delta
    total: float = float("nan")
    sent_at: float = float("nan")  # time.time() when the request was sent (the fake logs time.time() too)


def _sse_events(buf: bytearray) -> list[tuple[str, bytes]]:
    """Complete events at the head of ``buf`` (consumed): (event name or "", data)."""
    out: list[tuple[str, bytes]] = []
    while True:
        end = buf.find(b"\n\n")
        if end < 0:
            return out
        block = bytes(buf[:end])
        del buf[: end + 2]
        name, data = "", b""
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data = line[5:].strip()
        if name or data:
            out.append((name, data))


async def stream_run(client: httpx.AsyncClient, thread_id: str, body: bytes, timeout: float | None = None) -> Trace:
    """Create a streaming run and read its events until ``done`` (an error after ``timeout`` s)."""
    tr = Trace()
    try:
        async with asyncio.timeout(STREAM_TIMEOUT if timeout is None else timeout):
            await _stream_run(client, thread_id, body, tr)
    except TimeoutError:
        last = max(tr.marks, key=lambda k: tr.marks[k]) if tr.marks else "none"
        tr.ok = False
        tr.error = (
            f"no `done` within {STREAM_TIMEOUT if timeout is None else timeout:g} s (the server kept the stream "
            f"open); {len(tr.deltas)} text deltas, last new event {last}, events seen: {sorted(tr.marks)}"
        )
    return tr


async def _stream_run(client: httpx.AsyncClient, thread_id: str, body: bytes, tr: Trace) -> None:
    tr.sent_at = time.time()
    t0 = time.perf_counter()
    try:
        async with client.stream("POST", f"/v1/threads/{thread_id}/runs", content=body, headers=JSON_HEADERS) as r:
            if r.status_code != 200:
                tr.error = f"HTTP {r.status_code}: {(await r.aread())[:300].decode(errors='replace')}"
                return
            buf = bytearray()
            async for chunk in r.aiter_raw():
                t = time.perf_counter() - t0
                buf += chunk
                for name, data in _sse_events(buf):
                    if name == "thread.message.delta":
                        tr.deltas.append(t)
                    tr.marks.setdefault(name, t)
                    if name in ("thread.run.failed", "thread.run.incomplete", "thread.run.cancelled"):
                        tr.error = f"{name}: {data[:300].decode(errors='replace')}"
                    if name == "done":
                        tr.total = t
                        tr.ok = tr.error is None and "thread.run.completed" in tr.marks
                        if not tr.ok and tr.error is None:
                            tr.error = f"stream ended without thread.run.completed ({sorted(tr.marks)})"
                        return
            tr.error = "stream closed before done"
    except httpx.HTTPError as e:
        tr.error = f"{type(e).__name__}: {e}"


async def stream_direct(client: httpx.AsyncClient, body: bytes) -> Trace:
    """A streaming chat completion straight from the fake: ``deltas`` are its non-empty content chunks."""
    tr = Trace(sent_at=time.time())
    t0 = time.perf_counter()
    try:
        async with client.stream("POST", "/v1/chat/completions", content=body, headers=JSON_HEADERS) as r:
            if r.status_code != 200:
                tr.error = f"HTTP {r.status_code}: {(await r.aread())[:300].decode(errors='replace')}"
                return tr
            buf = bytearray()
            async for chunk in r.aiter_raw():
                t = time.perf_counter() - t0
                buf += chunk
                for _, data in _sse_events(buf):
                    if data == b"[DONE]":
                        tr.total, tr.ok = t, True
                        return tr
                    choices = orjson.loads(data).get("choices") or [{}]
                    if (choices[0].get("delta") or {}).get("content"):
                        tr.deltas.append(t)
            tr.error = "stream closed before [DONE]"
    except httpx.HTTPError as e:
        tr.error = f"{type(e).__name__}: {e}"
    return tr


async def poll_run(client: httpx.AsyncClient, thread_id: str, body: bytes) -> Trace:
    """Create a run (``stream: false``) and GET it until it rests, sleeping ``openai-poll-after-ms``."""
    tr = Trace(sent_at=time.time())
    t0 = time.perf_counter()
    try:
        r = await client.post(f"/v1/threads/{thread_id}/runs", content=body, headers=JSON_HEADERS)
        if r.status_code != 200:
            tr.error = f"HTTP {r.status_code}: {r.text[:300]}"
            return tr
        run_id = r.json()["id"]
        polls = 0
        while True:
            g = await client.get(f"/v1/threads/{thread_id}/runs/{run_id}")
            polls += 1
            if g.status_code != 200:
                tr.error = f"GET run: HTTP {g.status_code}: {g.text[:300]}"
                return tr
            run = g.json()
            if run["status"] in TERMINAL:
                break
            await asyncio.sleep(int(g.headers.get("openai-poll-after-ms", "100")) / 1000)
        tr.total = time.perf_counter() - t0
        tr.marks["polls"] = polls
        tr.ok = run["status"] == "completed"
        if not tr.ok:
            tr.error = f"run ended {run['status']}: {run.get('last_error')}"
    except httpx.HTTPError as e:
        tr.error = f"{type(e).__name__}: {e}"
    return tr


def _client(base_url: str) -> httpx.AsyncClient:
    """One keep-alive connection per client, as in crud.py (a shared httpx pool costs the client far more CPU)."""
    return httpx.AsyncClient(
        base_url=base_url,
        headers=HEADERS,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        timeout=httpx.Timeout(60.0),
    )


@contextlib.asynccontextmanager
async def clients(base_url: str, n: int) -> AsyncIterator[list[httpx.AsyncClient]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(_client(base_url)) for _ in range(n)]


async def api(client: httpx.AsyncClient, method: str, url: str, body: Any = None) -> dict[str, Any]:
    r = await client.request(method, url, json=body)
    if r.status_code >= 400:
        raise BenchError(f"{method} {url} -> HTTP {r.status_code}: {r.text[:500]}")
    data: dict[str, Any] = r.json()
    return data


async def create_threads(base_url: str, n: int, text: Callable[[int], str] = lambda _k: PROMPT) -> list[str]:
    """``n`` fresh threads, the k-th holding one user message ``text(k)`` (created concurrently, not timed).

    Fresh connections each time: a keep-alive connection left idle through a phase may be closed by
    uvicorn (5 s) just as it is reused, and httpx does not retry a POST that met a closed connection."""
    ids = [""] * n
    todo = iter(range(n))

    async def worker(client: httpx.AsyncClient) -> None:
        for k in todo:
            body = {"messages": [{"role": "user", "content": text(k)}]}
            ids[k] = (await api(client, "POST", "/v1/threads", body))["id"]

    async with clients(base_url, min(CREATE_WORKERS, n)) as cl:
        await asyncio.gather(*(worker(c) for c in cl))
    return ids


def direct_body(text: str = PROMPT, stream: bool = True) -> bytes:
    """Roughly what assistd sends the upstream for a run on a fresh thread."""
    return orjson.dumps(
        {
            "model": MODEL,
            "messages": [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": text}],
            "stream": stream,
            "stream_options": {"include_usage": True},
        }
    )


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def dist(values: list[float]) -> dict[str, float]:
    """p50/p90/p99/max in milliseconds of ``values`` (seconds)."""
    v = sorted(values)
    if not v:
        return {"n": 0, "p50_ms": float("nan"), "p90_ms": float("nan"), "p99_ms": float("nan"), "max_ms": float("nan")}
    return {
        "n": len(v),
        "p50_ms": ms(percentile(v, 0.50)),
        "p90_ms": ms(percentile(v, 0.90)),
        "p99_ms": ms(percentile(v, 0.99)),
        "max_ms": ms(v[-1]),
    }


# --- 1. first-delta latency ------------------------------------------------------------------------

MARKS = [
    ("thread.run.created", "created"),
    ("thread.run.in_progress", "in_progress"),
    ("thread.message.created", "msg created"),
    ("first delta", "1st delta"),
    ("thread.run.completed", "completed"),
]


async def bench_latency(
    client: httpx.AsyncClient, fake_client: httpx.AsyncClient, threads: list[str], run_body: bytes, n: int
) -> dict[str, Any]:
    """``n`` sequential streaming runs (after ``WARMUP_RUNS``), then ``n`` direct streams from the fake."""
    errors, first_error = 0, None
    traces: list[Trace] = []
    for i, thread_id in enumerate(threads[: n + WARMUP_RUNS]):
        tr = await stream_run(client, thread_id, run_body)
        if not tr.ok or not tr.deltas:
            errors += 1
            first_error = first_error or tr.error or "no text delta"
            continue
        if i >= WARMUP_RUNS:
            traces.append(tr)
    direct: list[float] = []
    body = direct_body()
    for i in range(n + WARMUP_RUNS):
        tr = await stream_direct(fake_client, body)
        if not tr.ok or not tr.deltas:
            errors += 1
            first_error = first_error or tr.error or "no text delta from the fake"
            continue
        if i >= WARMUP_RUNS:
            direct.append(tr.deltas[0])
    first = dist([t.deltas[0] for t in traces])
    direct_d = dist(direct)
    breakdown = {}
    for key, label in MARKS:
        values = [t.deltas[0] if key == "first delta" else t.marks.get(key, float("nan")) for t in traces]
        breakdown[label] = ms(percentile(sorted(values), 0.5)) if values else float("nan")
    return {
        "runs": len(traces),
        "errors": errors,
        "first_error": first_error,
        "assistd": first,
        "direct": direct_d,
        "added_p50_ms": round(first["p50_ms"] - direct_d["p50_ms"], 2),
        "added_p99_ms": round(first["p99_ms"] - direct_d["p99_ms"], 2),
        "breakdown_p50_ms": breakdown,
    }


# --- 2. completed runs per second ------------------------------------------------------------------


@dataclass
class ThroughputResult:
    variant: str
    concurrency: int
    runs: int
    errors: int
    seconds: float
    runs_per_second: float
    p50_ms: float
    p99_ms: float
    polls_per_run: float | None
    server_cpu_ms_per_run: float
    cpu: dict[str, float]
    capped: bool  # stopped by --max-seconds before --throughput-runs
    first_error: str | None = None


async def bench_throughput(
    base_url: str,
    pool: deque[str],
    run_body: dict[str, Any],
    variant: str,
    concurrency: int,
    max_runs: int,
    max_seconds: float,
    meter: CpuMeter,
) -> ThroughputResult:
    stream = variant == "streaming"
    body = orjson.dumps({**run_body, "stream": stream})
    fn: Callable[[httpx.AsyncClient, str, bytes], Awaitable[Trace]] = stream_run if stream else poll_run
    latencies: list[float] = []
    polls: list[float] = []
    errors, first_error, issued, capped = 0, None, 0, False

    async with clients(base_url, concurrency) as cl:
        meter.start()
        started = time.perf_counter()
        deadline = started + max_seconds

        async def worker(client: httpx.AsyncClient) -> None:
            nonlocal errors, first_error, issued, capped
            while issued < max_runs and pool:
                if time.perf_counter() >= deadline:
                    capped = True
                    return
                issued += 1
                tr = await fn(client, pool.popleft(), body)
                if tr.ok:
                    latencies.append(tr.total)
                    if "polls" in tr.marks:
                        polls.append(tr.marks["polls"])
                else:
                    errors += 1
                    first_error = first_error or tr.error

        await asyncio.gather(*(worker(c) for c in cl))
        elapsed = time.perf_counter() - started
        cpu = meter.stop()
    d = dist(latencies)
    n = len(latencies)
    res = ThroughputResult(
        variant=variant,
        concurrency=concurrency,
        runs=n,
        errors=errors,
        seconds=round(elapsed, 3),
        runs_per_second=round(n / elapsed, 1),
        p50_ms=d["p50_ms"],
        p99_ms=d["p99_ms"],
        polls_per_run=round(sum(polls) / len(polls), 2) if polls else None,
        server_cpu_ms_per_run=round(cpu["server_cpu_seconds"] / n * 1000, 2) if n else float("nan"),
        cpu=cpu,
        capped=capped,
        first_error=first_error,
    )
    return res


# --- 3. stream lag ---------------------------------------------------------------------------------


async def fake_receipts(fake: FakeProcess) -> dict[int, float]:
    """Lag stream number -> ``time.time()`` at which the fake received its chat request (from its log)."""
    async with httpx.AsyncClient(base_url=fake.base_url, timeout=30.0) as client:
        r = await client.get("/_fakellm/requests")
    out: dict[int, float] = {}
    for entry in r.json()["data"]:
        body = entry.get("body") or {}
        users = [m for m in body.get("messages") or [] if m.get("role") == "user"]
        text = str(users[-1].get("content")) if users else ""
        if entry.get("path") == "/v1/chat/completions" and text.startswith("Stream "):
            out.setdefault(int(text.split()[1].rstrip(":")), entry["received_at"])
    return out


def peak_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    peak = cur = 0
    for _, step in edges:
        cur += step
        peak = max(peak, cur)
    return peak


async def run_streams(n: int, ramp: float, start_one: Callable[[int], Awaitable[Trace]]) -> tuple[list[Trace], float]:
    """``n`` streams, the k-th started k*ramp/n s after the first; (traces in order of k, seconds)."""
    started = time.perf_counter()

    async def one(k: int) -> Trace:
        await asyncio.sleep(max(0.0, started + k * ramp / n - time.perf_counter()))
        return await start_one(k)

    traces = await asyncio.gather(*(one(k) for k in range(n)))
    return list(traces), time.perf_counter() - started


def lag_summary(
    traces: list[Trace], received: dict[int, float], elapsed: float, cpu: dict[str, float], n_words: int
) -> dict[str, Any]:
    """Lag of every text delta of every complete stream, two ways (see the module docstring)."""
    interval = 1 / LAG_TPS
    absolute: list[float] = []  # a_j - (fake received the request + (j+1)/tps): vs the fake's own schedule
    relative: list[float] = []  # a_j - (a_0 + j/tps), j >= 1: vs the stream's first delta
    first: list[float] = []  # request sent -> first text delta
    start_delay: list[float] = []  # request sent -> the fake received the upstream request
    spans: list[tuple[float, float]] = []
    timed: list[tuple[float, float]] = []  # (arrival, lag) of every delta
    first_lag: list[float] = []  # lag of each stream's first text delta
    rest_lag: list[float] = []  # lag of the others
    errors, first_error = 0, None
    for k, tr in enumerate(traces):
        if not tr.ok or len(tr.deltas) != n_words or k not in received:
            errors += 1
            why = f"{len(tr.deltas)} text deltas instead of {n_words}" if tr.ok else tr.error
            first_error = first_error or (why if k in received else f"the fake never saw stream {k}: {why}")
            continue
        arrivals = [tr.sent_at + d for d in tr.deltas]  # wall clock
        # chunk 0 is the role chunk, sent at once (ttft 0); text chunk j is chunk j+1
        lags = [a - (received[k] + (j + 1) * interval) for j, a in enumerate(arrivals)]
        absolute.extend(lags)
        first_lag.append(lags[0])
        rest_lag.extend(lags[1:])
        timed.extend(zip(arrivals, lags, strict=True))
        relative.extend(a - (arrivals[0] + j * interval) for j, a in enumerate(arrivals) if j)
        first.append(tr.deltas[0])
        start_delay.append(received[k] - tr.sent_at)
        spans.append((arrivals[0], arrivals[-1]))
    # deltas that arrived once the fake had received every stream's request: no run creation competing
    last_start = max((received[k] for k in range(len(traces)) if k in received), default=float("inf"))
    settled = [lag for a, lag in timed if a > last_start]
    return {
        "streams": len(first),
        "errors": errors,
        "first_error": first_error,
        "deltas": len(absolute),
        "seconds": round(elapsed, 2),
        "peak_concurrent_streams": peak_overlap(spans),
        "lag": dist(absolute),
        "lag_min_ms": ms(min(absolute, default=float("nan"))),
        "lag_after_last_start": dist(settled),
        "lag_first_delta": dist(first_lag),
        "lag_later_deltas": dist(rest_lag),
        "lag_vs_first_delta": dist(relative),
        "lag_vs_first_delta_min_ms": ms(min(relative, default=float("nan"))),
        "first_delta": dist(first),
        "upstream_request_delay": dist(start_delay),
        "cpu": cpu,
    }


async def bench_lag_direct(fake: FakeProcess, streams: int, ramp: float, n_words: int) -> dict[str, Any]:
    bodies = [direct_body(stream_prompt(k)) for k in range(streams)]
    async with clients(fake.base_url, streams) as cl:
        meter = CpuMeter([], fake).start()
        traces, elapsed = await run_streams(streams, ramp, lambda k: stream_direct(cl[k], bodies[k]))
        cpu = meter.stop()
    return lag_summary(traces, await fake_receipts(fake), elapsed, cpu, n_words)


async def bench_lag(
    base_url: str,
    fake: FakeProcess,
    threads: list[str],
    run_body: bytes,
    streams: int,
    ramp: float,
    meter: CpuMeter,
    n_words: int,
) -> dict[str, Any]:
    async with clients(base_url, streams) as cl:
        meter.start()
        traces, elapsed = await run_streams(streams, ramp, lambda k: stream_run(cl[k], threads[k], run_body))
        cpu = meter.stop()
    return lag_summary(traces, await fake_receipts(fake), elapsed, cpu, n_words)


# --- one backend -----------------------------------------------------------------------------------


async def bench_backend(backend: str, fake: FakeProcess, args: argparse.Namespace) -> dict[str, Any]:
    """``backend``: ``sqlite``, ``postgres`` (API and executor in one process) or ``postgres+worker``
    (``assistd serve`` with ASSISTD_EXECUTOR=false and ``--workers`` ``assistd worker`` processes)."""
    db = backend.split("+")[0]
    n_workers = args.workers if backend.endswith("+worker") else 0
    workdir = Path(tempfile.mkdtemp(prefix=f"assistd-bench-runs-{db}-"))
    dbname: str | None = None
    server: ServerProcess | None = None
    workers: list[ServerProcess] = []
    if n_workers:
        label = f"{db} (API process, no executor + {n_workers} `assistd worker` process(es))"
    else:
        label = f"{db} (API + in-process executor, 1 process)"
    out: dict[str, Any] = {"backend": backend, "db": db, "label": label, "workers": n_workers, "throughput": []}
    try:
        if db == "postgres":
            dbname = f"assistd_bench_{secrets.token_hex(4)}"
            await pg_create_database(dbname)
            database_url = PG_URL.format(name=dbname)
            out["database"] = database_url.split("@")[-1]
        else:
            database_url = f"sqlite+aiosqlite:///{workdir / 'assistd.db'}"
            out["database"] = "sqlite (temp data dir)"
        profile = None
        if args.cprofile is not None:
            args.cprofile.mkdir(parents=True, exist_ok=True)
            profile = (args.cprofile / f"runs-{backend}.prof").resolve()
            out["profile"] = str(profile)
        upstream = f"{fake.base_url}/v1"
        server = assistd_server(
            free_port(), workdir, database_url, upstream, args.executor_concurrency, profile, executor=not n_workers
        )
        t0 = time.perf_counter()
        server.start()
        await server.wait_ready()  # it has migrated the database: the workers need not
        for i in range(n_workers):
            workers.append(assistd_worker(i, workdir, database_url, upstream, args.executor_concurrency))
            workers[-1].start()
        out["startup_seconds"] = round(time.perf_counter() - t0, 2)
        print(f"\n[{label}] server ready in {out['startup_seconds']:.1f} s", flush=True)
        await fake.set_script(FAST_SCRIPT)

        base = server.base_url
        async with _client(base) as client, _client(fake.base_url) as fake_client:
            assistant = await api(
                client,
                "POST",
                "/v1/assistants",
                {"model": MODEL, "name": "bench", "instructions": INSTRUCTIONS},
            )
            run_body: dict[str, Any] = {"assistant_id": assistant["id"]}
            stream_body = orjson.dumps({**run_body, "stream": True})
            if workers:  # ready once a run completes (a worker has no HTTP endpoint to ask)
                probe = await stream_run(client, (await create_threads(base, 1))[0], stream_body, timeout=60.0)
                for w in workers:
                    if w.proc is not None and w.proc.poll() is not None:
                        raise BenchError(f"{w.name} exited with status {w.proc.returncode}:\n{w.log_tail()}")
                if not probe.ok:
                    raise BenchError(f"no worker completed a run: {probe.error}\n{workers[0].log_tail()}")

            # 1. first-delta latency, sequential
            threads = await create_threads(base, args.runs + WARMUP_RUNS)
            lat = await bench_latency(client, fake_client, threads, stream_body, args.runs)
            out["latency"] = lat
            a, d = lat["assistd"], lat["direct"]
            print(
                f"  first delta   assistd p50 {a['p50_ms']:.2f} ms p99 {a['p99_ms']:.2f} ms | direct p50 "
                f"{d['p50_ms']:.2f} ms p99 {d['p99_ms']:.2f} ms | added p50 {lat['added_p50_ms']:.2f} ms "
                f"(n={lat['runs']}, errors={lat['errors']})",
                flush=True,
            )
            if lat["first_error"]:
                print(f"    first error: {lat['first_error']}", flush=True)

            # 2. completed runs per second
            pool: deque[str] = deque()
            meter = CpuMeter([server, *workers], fake)
            for variant in ("polling", "streaming"):
                for c in args.levels:
                    need = args.throughput_runs + c - len(pool)
                    if need > 0:
                        pool.extend(await create_threads(base, need))
                    res = await bench_throughput(
                        server.base_url, pool, run_body, variant, c, args.throughput_runs, args.max_seconds, meter
                    )
                    out["throughput"].append(res)
                    cap = " (capped by --max-seconds)" if res.capped else ""
                    print(
                        f"  {variant:<9} c={c:<3} {res.runs_per_second:>7.1f} runs/s  p50 {res.p50_ms:>7.1f} ms  "
                        f"p99 {res.p99_ms:>7.1f} ms  (n={res.runs}, errors={res.errors}, server CPU "
                        f"{res.cpu['server_cpu_pct']:.0f}%, machine {res.cpu['machine_busy_pct']:.0f}%){cap}",
                        flush=True,
                    )
                    if res.first_error:
                        print(f"    first error: {res.first_error}", flush=True)

            # 3. stream lag
            if not args.skip_lag:
                threads = await create_threads(base, args.streams, stream_prompt)
                await fake.set_script(lag_script(args.lag_words))
                lag = await bench_lag(base, fake, threads, stream_body, args.streams, args.ramp, meter, args.lag_words)
                await fake.set_script(FAST_SCRIPT)
                out["lag"] = lag
                lg = lag["lag"]
                print(
                    f"  stream lag    {lag['streams']} streams (peak {lag['peak_concurrent_streams']} at once): p50 "
                    f"{lg['p50_ms']:.1f} ms p99 {lg['p99_ms']:.1f} ms max {lg['max_ms']:.1f} ms over {lag['deltas']} "
                    f"deltas; upstream delay p99 {lag['upstream_request_delay']['p99_ms']:.0f} ms "
                    f"(errors={lag['errors']}, server CPU {lag['cpu']['server_cpu_pct']:.0f}%, "
                    f"machine {lag['cpu']['machine_busy_pct']:.0f}%)",
                    flush=True,
                )
                if lag["first_error"]:
                    print(f"    first error: {lag['first_error']}", flush=True)
        for proc in (server, *workers):
            if proc.proc is not None and proc.proc.poll() is not None:
                raise BenchError(f"{proc.name} exited during the run:\n{proc.log_tail()}")
        out["server_log_errors"] = [
            f"{proc.name}: {line}"
            for proc in (server, *workers)
            for line in proc.log_tail(200).splitlines()
            if "ERROR" in line or "Traceback" in line
        ][:20]
        for line in out["server_log_errors"][:5]:
            print(f"    server log: {line}", flush=True)
        return out
    finally:
        for w in workers:
            w.stop()
        if server is not None:
            server.stop()
        if dbname is not None:
            try:
                await pg_drop_database(dbname)
            except Exception as e:
                print(f"  warning: could not drop database {dbname}: {e}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)


# --- report ----------------------------------------------------------------------------------------


def evaluate(b: dict[str, Any]) -> dict[str, Any]:
    backend = b["db"]
    targets: dict[str, Any] = {}
    added = b["latency"]["added_p50_ms"]
    limit = TARGET_ADDED_P50_MS[backend]
    targets["added_first_delta_p50"] = {"target": f"<= {limit:g} ms", "value": added, "pass": added <= limit}
    if backend == "sqlite":
        rows = [r for r in b["throughput"] if r.concurrency == TARGET_RUNS_CONCURRENCY and r.variant == "streaming"]
        value = rows[0].runs_per_second if rows else None
        targets["runs_per_second_c50_streaming"] = {
            "target": f">= {TARGET_RUNS_PER_SECOND:g} runs/s",
            "value": value,
            "pass": None if value is None else value >= TARGET_RUNS_PER_SECOND,
        }
    if "lag" in b:
        p99 = b["lag"]["lag"]["p99_ms"]
        targets["stream_lag_p99"] = {
            "target": f"<= {TARGET_LAG_P99_MS:g} ms",
            "value": p99,
            "pass": p99 <= TARGET_LAG_P99_MS if b["lag"]["streams"] else None,
        }
    return targets


def cpu_cols(cpu: dict[str, float]) -> str:
    return (
        f"{cpu['server_cpu_pct']:>6.0f}%{cpu['fake_cpu_pct']:>6.0f}%{cpu['client_cpu_pct']:>6.0f}%"
        f"{cpu['postgres_cpu_pct']:>6.0f}%{cpu['other_cpu_pct']:>6.0f}%{cpu['machine_busy_pct']:>7.0f}%"
    )


CPU_HEADER = f"{'srv':>7}{'fake':>7}{'cli':>7}{'pg':>7}{'other':>7}{'machine':>8}"


def print_summary(
    results: list[dict[str, Any]], lag_direct: dict[str, Any] | None, args: argparse.Namespace, cores: int
) -> None:
    print()
    print(f"Results. Client, assistd, the fake upstream and PostgreSQL all share this machine's {cores} CPU core(s);")
    print("CPU columns are % of one core (max 100% x cores): srv = assistd, fake = fake upstream, cli = this")
    print("client, pg = every `postgres` process, other = the rest (interrupts, loopback networking, unrelated")
    print("processes), machine = all cores busy.")
    print(f"assistd: uvicorn, 1 worker, ASSISTD_EXECUTOR_CONCURRENCY={args.executor_concurrency}, log level warning.")
    for b in results:
        print(f"  {b['backend']}: {b['label']}")

    print(f"\n1. Time from POST .../runs (stream: true) to the first thread.message.delta; {args.runs} sequential")
    print("   runs, fresh threads, fake at 0 ms TTFT. direct = a streaming chat completion from the fake itself,")
    print("   same client, to its first content chunk. added = assistd - direct.")
    header = (
        f"{'backend':<16}{'assistd p50':>12}{'p99':>8}{'direct p50':>11}{'p99':>8}{'added p50':>10}{'p99':>8}"
        f"  | p50 arrival (ms) of " + " / ".join(label for _, label in MARKS)
    )
    print(header)
    print("-" * len(header))
    for b in results:
        lat = b["latency"]
        a, d = lat["assistd"], lat["direct"]
        marks = " / ".join(f"{lat['breakdown_p50_ms'][label]:.1f}" for _, label in MARKS)
        print(
            f"{b['backend']:<16}{a['p50_ms']:>12.2f}{a['p99_ms']:>8.2f}{d['p50_ms']:>11.2f}{d['p99_ms']:>8.2f}"
            f"{lat['added_p50_ms']:>10.2f}{lat['added_p99_ms']:>8.2f}  | {marks}"
        )

    print(f"\n2. Completed runs per second ({FAST_WORDS}-word answer, fake unpaced). polling = stream: false, then")
    print("   GET the run until it rests, sleeping openai-poll-after-ms (100 ms); streaming = stream: true, read")
    print("   until done. Each run on a fresh thread. latency = create -> completion seen by the client.")
    header = (
        f"{'backend':<16}{'variant':<11}{'conc':>5}{'runs':>6}{'err':>5}{'runs/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'polls':>7}{'srv ms/run':>11}" + CPU_HEADER
    )
    print(header)
    print("-" * len(header))
    for b in results:
        for r in b["throughput"]:
            polls = "" if r.polls_per_run is None else f"{r.polls_per_run:.2f}"
            print(
                f"{b['backend']:<16}{r.variant:<11}{r.concurrency:>5}{r.runs:>6}{r.errors:>5}"
                f"{r.runs_per_second:>9.1f}{r.p50_ms:>9.1f}{r.p99_ms:>9.1f}{polls:>7}{r.server_cpu_ms_per_run:>11.2f}"
                + cpu_cols(r.cpu)
            )

    if not args.skip_lag:
        print(
            f"\n3. Stream lag: {args.streams} concurrent streams (started over {args.ramp:g} s), "
            f"{args.lag_words} one-word chunks at {LAG_TPS:g} tokens/s each."
        )
        print("   lag (the target) = a_j - (r + (j+1)/20 s): a_j = wall-clock arrival of text delta j at the client,")
        print("   r = when the fake received the stream's upstream request (its request log), so r + (j+1)/20 s is")
        print("   when the fake meant to send chunk j. vs 1st = a_j - (a_0 + j/20 s), j >= 1: relative to the")
        print("   stream's first delta (hides a late first delta: negative when the first delta was the late one).")
        print("   upstream delay = request sent -> the fake got the upstream request (run creation + queueing);")
        print("   peak = most streams receiving deltas at once. settled = lag of the n deltas that arrived after the")
        print("   last stream's upstream request (no run creation competing with the relay).")
        header = (
            f"{'backend':<16}{'streams':>8}{'err':>5}{'peak':>5}{'lag p50':>9}{'p90':>7}{'p99':>7}{'max':>7}"
            f"{'vs 1st p50':>11}{'p99':>7}{'min':>8}{'upstr delay p50':>16}{'p99':>7}{'settled p99':>12}{'n':>6}"
            + CPU_HEADER
        )
        print(header)
        print("-" * len(header))
        rows = ([("direct", lag_direct)] if lag_direct else []) + [(b["backend"], b.get("lag")) for b in results]
        for name, lag in rows:
            if not lag:
                continue
            lg, rel, up = lag["lag"], lag["lag_vs_first_delta"], lag["upstream_request_delay"]
            settled = lag["lag_after_last_start"]
            print(
                f"{name:<16}{lag['streams']:>8}{lag['errors']:>5}{lag['peak_concurrent_streams']:>5}"
                f"{lg['p50_ms']:>9.1f}{lg['p90_ms']:>7.1f}{lg['p99_ms']:>7.1f}{lg['max_ms']:>7.1f}"
                f"{rel['p50_ms']:>11.1f}{rel['p99_ms']:>7.1f}{lag['lag_vs_first_delta_min_ms']:>8.1f}"
                f"{up['p50_ms']:>16.1f}{up['p99_ms']:>7.1f}{settled['p99_ms']:>12.1f}{settled['n']:>6}"
                + cpu_cols(lag["cpu"])
            )
        print("   direct = the same streams straight from the fake, same client: the fake's and the client's own lag.")

    print("\nTargets")
    names = {
        "added_first_delta_p50": "added first-delta latency p50",
        "runs_per_second_c50_streaming": "completed runs/s at c=50 (streaming)",
        "stream_lag_p99": f"stream lag p99 ({args.streams} streams)",
    }
    for b in results:
        for key, t in b["targets"].items():
            value = "n/a" if t["value"] is None else f"{t['value']:g}"
            print(f"  {b['backend']:<16}{names[key]:<40}{t['target']:<16}{value:<9}{verdict(t['pass'])}")
    if not any(b["workers"] for b in results):
        print("  (PostgreSQL measured with the API and the executor in one process; see --worker-mode)")


# --- main ------------------------------------------------------------------------------------------


def git_state() -> dict[str, Any]:
    """The commit measured and the files that differ from it (others may be editing src/ meanwhile)."""

    def git(*argv: str) -> str:
        r = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False)
        return r.stdout.strip() if r.returncode == 0 else ""

    changed = [line[3:] for line in git("status", "--porcelain", "--", "src").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD") or None, "uncommitted_src": changed}


def worker_mode_available() -> bool:
    """Whether this tree has ``assistd worker`` (added with the PostgreSQL event bus, run_events + NOTIFY)."""
    r = subprocess.run(
        [sys.executable, "-m", "assistd", "worker", "--help"], capture_output=True, timeout=60, check=False
    )
    return r.returncode == 0


async def main_async(args: argparse.Namespace) -> int:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    print(
        f"assistd runs benchmark: {', '.join(args.backend_list)}; {args.runs} sequential runs, concurrency "
        f"{','.join(map(str, args.levels))} (up to {args.throughput_runs} runs or {args.max_seconds:g} s each), "
        + ("no lag test" if args.skip_lag else f"{args.streams} concurrent streams at {LAG_TPS:g} tokens/s")
        + "."
    )
    print(
        f"Note: this client, assistd, the fake upstream and PostgreSQL all share this machine's {cores} CPU core(s) "
        f"(os.cpu_count()={os.cpu_count()}); the figures are pessimistic, see the CPU columns.",
        flush=True,
    )
    tree = git_state()
    dirty = f"; uncommitted changes in {', '.join(tree['uncommitted_src'])}" if tree["uncommitted_src"] else ""
    print(f"Tree: commit {tree['commit']}{dirty}.")
    idle_load = await background_load()
    print(f"Machine busy before start: {idle_load:.0f}% of one core (processes that are not this benchmark's).")
    if idle_load > 15:
        print("  warning: something else is using the CPU; the figures will be worse than on an idle machine.")
    worker_mode = None
    backends = list(args.backend_list)
    if args.worker_mode:
        if worker_mode_available():
            worker_mode = (
                f"measured: assistd serve (ASSISTD_EXECUTOR=false) + {args.workers} assistd worker process(es)"
            )
            backends.append("postgres+worker")
        else:
            worker_mode = "not available yet (assistd worker is not implemented)"
            print(f"--worker-mode: {worker_mode}; skipped (PostgreSQL is measured with the in-process executor)")

    workdir = Path(tempfile.mkdtemp(prefix="assistd-bench-fake-"))
    fake = fake_server(free_port(), workdir)
    results: list[dict[str, Any]] = []
    lag_direct = None
    try:
        fake.start()
        await fake.wait_ready()
        if not args.skip_lag:
            await fake.set_script(lag_script(args.lag_words))
            lag_direct = await bench_lag_direct(fake, args.streams, args.ramp, args.lag_words)
            await fake.set_script(FAST_SCRIPT)
            lg = lag_direct["lag"]
            print(
                f"\n[direct from the fake] {args.streams} streams: lag p50 {lg['p50_ms']:.1f} ms p99 "
                f"{lg['p99_ms']:.1f} ms max {lg['max_ms']:.1f} ms (errors={lag_direct['errors']}, fake CPU "
                f"{lag_direct['cpu']['fake_cpu_pct']:.0f}%, client CPU {lag_direct['cpu']['client_cpu_pct']:.0f}%)",
                flush=True,
            )
        for backend in backends:
            res = await bench_backend(backend, fake, args)
            res["targets"] = evaluate(res)
            results.append(res)
    finally:
        fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print_summary(results, lag_direct, args, cores)
    total = time.perf_counter() - started
    print(f"\ntotal run time {total:.0f} s")

    errors = sum(
        b["latency"]["errors"] + sum(r.errors for r in b["throughput"]) + (b["lag"]["errors"] if "lag" in b else 0)
        for b in results
    ) + (lag_direct["errors"] if lag_direct else 0)
    report = {
        "timestamp": stamp,
        "machine": {
            "cpu_count": os.cpu_count(),
            "usable_cores": cores,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "note": "client, assistd, the fake upstream and PostgreSQL share the same CPU cores",
            "busy_before_start_pct_of_one_core": idle_load,
        },
        "settings": {
            "backends": backends,
            "workers": args.workers if "postgres+worker" in backends else 0,
            "runs": args.runs,
            "warmup_runs": WARMUP_RUNS,
            "concurrency_levels": args.levels,
            "throughput_runs": args.throughput_runs,
            "max_seconds": args.max_seconds,
            "streams": None if args.skip_lag else args.streams,
            "ramp_seconds": args.ramp,
            "executor_concurrency": args.executor_concurrency,
            "executor": "in-process (assistd serve)",
            "worker_mode": worker_mode,
            "fake_scripts": {"fast": FAST_SCRIPT, "lag": lag_script(args.lag_words)},
            "client": "httpx, one client (1 keep-alive connection) per worker/stream",
        },
        "git": tree,
        "lag_direct": lag_direct,
        "backends": {
            b["backend"]: {
                **{k: v for k, v in b.items() if k not in ("throughput", "backend")},
                "throughput": [asdict(r) for r in b["throughput"]],
            }
            for b in results
        },
        "errors": errors,
        "total_seconds": round(total, 1),
    }
    return write_report("runs", stamp, report, errors, "run(s)/stream(s)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=textwrap.dedent(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite,postgres (default both)")
    p.add_argument("--runs", type=int, default=200, help="sequential runs for the first-delta latency (default 200)")
    p.add_argument(
        "--concurrency-levels",
        default="1,10,50",
        help="concurrent workers for runs/s, comma-separated (default 1,10,50)",
    )
    p.add_argument(
        "--throughput-runs", type=int, default=300, help="runs per concurrency level and variant (default 300)"
    )
    p.add_argument(
        "--max-seconds", type=float, default=6.0, help="stop starting runs in a runs/s phase after this (default 6)"
    )
    p.add_argument("--streams", type=int, default=200, help="concurrent streams for the lag test (default 200)")
    p.add_argument(
        "--ramp",
        type=float,
        default=LAG_RAMP,
        help=f"seconds over which the streams start (default {LAG_RAMP:g}: 50 new runs/s; 1 = the burst test)",
    )
    p.add_argument(
        "--lag-words",
        type=int,
        default=LAG_WORDS,
        help=f"one-word chunks per lag stream, at {LAG_TPS:g}/s (default {LAG_WORDS}: 6 s streams, longer than the "
        "ramp, so that all of them overlap)",
    )
    p.add_argument("--skip-lag", action="store_true", help="do not run the stream-lag test")
    p.add_argument(
        "--executor-concurrency",
        type=int,
        default=None,
        help=f"ASSISTD_EXECUTOR_CONCURRENCY for the server (default: enough for --streams and the highest level; "
        f"assistd's own default is {DEFAULT_EXECUTOR_CONCURRENCY})",
    )
    p.add_argument(
        "--cprofile",
        type=Path,
        default=None,
        metavar="DIR",
        help="run assistd under cProfile and write DIR/runs-<backend>.prof (slows the server down)",
    )
    p.add_argument(
        "--worker-mode",
        action="store_true",
        help="also measure PostgreSQL with the API and `assistd worker` in separate processes (postgres+worker)",
    )
    p.add_argument("--workers", type=int, default=1, help="assistd worker processes with --worker-mode (default 1)")
    args = p.parse_args(argv)
    args.backend_list = [b.strip() for b in args.backends.split(",") if b.strip()]
    for b in args.backend_list:
        if b not in ("sqlite", "postgres"):
            p.error(f"unknown backend {b!r} (sqlite, postgres)")
    try:
        args.levels = [int(x) for x in args.concurrency_levels.split(",") if x.strip()]
    except ValueError:
        p.error("--concurrency-levels: comma-separated integers")
    if min([*args.levels, args.runs, args.streams, args.throughput_runs, args.lag_words, args.workers], default=0) < 1:
        p.error("--runs, --streams, --throughput-runs, --lag-words, --workers and the levels must be positive")
    if args.executor_concurrency is None:
        needed = max([*args.levels, 0 if args.skip_lag else args.streams])
        args.executor_concurrency = max(DEFAULT_EXECUTOR_CONCURRENCY, needed)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The client's own garbage-collector pauses (up to 300 ms with 200 streams' objects) would be
    # measured as stream lag: the same settings as assistd's servers (src/assistd/gctune.py).
    from assistd.gctune import tune_after_startup

    tune_after_startup()
    try:
        import uvloop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(main_async(args))
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except httpx.HTTPError as e:  # a set-up request failed (measured requests count as errors instead)
        try:
            where = f" ({e.request.method} {e.request.url})"
        except RuntimeError:  # no request attached
            where = ""
        print(f"error: {type(e).__name__}: {e}{where}", file=sys.stderr)
        return 1
    except asyncio.CancelledError:
        print("interrupted; servers stopped and temporary data removed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
