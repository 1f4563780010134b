"""CRUD benchmark: assistd against the bare-FastAPI ceiling on this machine.

Starts each server as a real process (uvicorn, one worker, loopback, log level warning), drives it
with concurrent httpx clients and prints p50/p99 latency and requests/s for

* create message     POST /v1/threads/{id}/messages
* list messages      GET  /v1/threads/{id}/messages?limit=20, on a thread of 100 messages
* get assistant      GET  /v1/assistants/{id}
* list messages      the same on a thread of 100,000 messages (seeded directly in the database)

on SQLite (fresh temporary data directory) and PostgreSQL (fresh database ``assistd_bench_<random>``
on postgresql://postgres@127.0.0.1:5432, dropped afterwards), plus a bare FastAPI endpoint returning
a fixed 2 KB JSON body, served the same way, as the framework ceiling; every assistd throughput is
also shown as a ratio to it.

No API key is created, so assistd runs in local single-user mode; requests still carry
``Authorization: Bearer bench`` and ``OpenAI-Beta: assistants=v2``.

Client, server (and PostgreSQL) share the machine's CPU cores, so figures are relative: compare
ratios, not absolute numbers, across machines. ``srv ms/req`` is the server process's CPU time per
request (immune to the client being the bottleneck); ``cli CPU`` near 100% means the client was.

Usage::

    .venv/bin/python bench/crud.py [--backends sqlite,postgres] [--seconds 5] [--warmup 1]
                                   [--concurrency 32] [--requests N] [--shared-pool] [--skip-bare]

Prints a table and writes it as JSON to bench/results/crud-<timestamp>.json. Exit status is 0
whatever the figures (PASS/FAIL lines are informational) unless something errored.
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
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"

PG_HOST_URL = "postgresql://postgres@127.0.0.1:5432"
PROJECT_ID = "proj_default"  # local single-user mode
HEADERS = {"Authorization": "Bearer bench", "OpenAI-Beta": "assistants=v2"}

SMALL_THREAD = 100
LARGE_THREAD = 100_000
SEED_BATCH = 5_000
BARE_BODY_BYTES = 2048

TARGET_LIST_RPS_RATIO = 0.40  # list messages >= 40% of the bare endpoint's requests/s
TARGET_DEEP_LATENCY_RATIO = 1.5  # list latency at 100,000 messages <= 1.5x that at 100

CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    pass


# --- server processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """One uvicorn server in a child process; ``stop`` is idempotent."""

    def __init__(self, name: str, argv: list[str], port: int, log_path: Path, env: dict[str, str] | None = None):
        self.name = name
        self.argv = argv
        self.port = port
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=str(self.log_path.parent),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    async def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise BenchError(f"{self.name} exited with status {self.proc.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(httpx.TransportError):
                    r = await client.get("/health")
                    if r.status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise BenchError(f"{self.name} was not healthy after {timeout:.0f} s:\n{self.log_tail()}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far."""
        assert self.proc is not None
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return float("nan")
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None


def assistd_server(port: int, data_dir: Path, database_url: str) -> ServerProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTD_")}
    env.update(ASSISTD_DATA_DIR=str(data_dir), ASSISTD_DATABASE_URL=database_url, ASSISTD_LOG_LEVEL="warning")
    argv = [sys.executable, "-m", "assistd", "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--log-level", "warning"]
    return ServerProcess("assistd", argv, port, data_dir / "server.log", env)


def bare_payload(size: int = BARE_BODY_BYTES) -> dict[str, Any]:
    """A message-list-like JSON object whose orjson encoding is exactly ``size`` bytes."""
    item = {
        "id": "msg_" + "0" * 24,
        "object": "thread.message",
        "created_at": 1_700_000_000,
        "role": "user",
        "content": [{"type": "text", "text": {"value": "hello world", "annotations": []}}],
        "metadata": {},
    }
    payload: dict[str, Any] = {"object": "list", "data": [item] * 8, "has_more": False, "pad": ""}
    while len(orjson.dumps(payload)) > size:
        payload["data"] = payload["data"][:-1]
    payload["pad"] = "x" * (size - len(orjson.dumps(payload)))
    assert len(orjson.dumps(payload)) == size
    return payload


BARE_APP = '''\
"""Bare FastAPI app for bench/crud.py: the framework ceiling (no middleware, no database)."""

import sys

import orjson
import uvicorn
from fastapi import FastAPI
from starlette.responses import Response


class JSONResponse(Response):  # what assistd.http.JSONResponse does
    media_type = "application/json"

    def render(self, content):
        return orjson.dumps(content)


PAYLOAD = orjson.loads({payload!r})
app = FastAPI()


@app.get("/health")
async def health():
    return JSONResponse({{"status": "ok"}})


@app.get("/bare")
async def bare():
    return JSONResponse(PAYLOAD)


if __name__ == "__main__":
    uvicorn.run(
        app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", proxy_headers=True, timeout_graceful_shutdown=10
    )
'''


def bare_server(port: int, workdir: Path) -> ServerProcess:
    module = workdir / "bare_app.py"
    module.write_text(BARE_APP.format(payload=orjson.dumps(bare_payload())))
    return ServerProcess("bare FastAPI", [sys.executable, str(module), str(port)], port, workdir / "bare.log")


# --- load generation -------------------------------------------------------------------------------


@dataclass
class OpResult:
    backend: str
    op: str
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    server_cpu_ms_per_req: float
    server_cpu_pct: float
    client_cpu_pct: float
    rps_vs_bare: float | None = None
    # bare server CPU per request / this one's: the throughput ratio if the server's CPU were the only limit
    cpu_vs_bare: float | None = None
    first_error: str | None = None


@dataclass
class Load:
    seconds: float
    warmup: float
    concurrency: int
    requests: int | None  # a request count instead of a duration
    shared_pool: bool = False


RequestFn = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


async def _phase(
    clients: list[httpx.AsyncClient], fn: RequestFn, seconds: float, count: int | None
) -> tuple[list[float], int, str | None, float]:
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None
    issued = 0
    start = time.perf_counter()
    deadline = start + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors, first_error, issued
        while True:
            if count is not None:
                if issued >= count:
                    return
                issued += 1
            elif time.perf_counter() >= deadline:
                return
            t0 = time.perf_counter()
            try:
                r = await fn(client)
                ok = r.status_code < 400
                detail = f"HTTP {r.status_code}: {r.text[:300]}"
            except httpx.HTTPError as e:
                ok = False
                detail = f"{type(e).__name__}: {e}"
            latencies.append(time.perf_counter() - t0)
            if not ok:
                errors += 1
                first_error = first_error or detail

    await asyncio.gather(*(worker(c) for c in clients))
    return latencies, errors, first_error, time.perf_counter() - start


async def measure(
    backend: str, op: str, clients: list[httpx.AsyncClient], server: ServerProcess, fn: RequestFn, load: Load
) -> OpResult:
    if load.warmup > 0:
        await _phase(clients, fn, load.warmup, None)
    cpu0, proc0 = server.cpu_seconds(), time.process_time()
    latencies, errors, first_error, elapsed = await _phase(clients, fn, load.seconds, load.requests)
    cpu = server.cpu_seconds() - cpu0
    client_cpu = time.process_time() - proc0
    latencies.sort()
    n = len(latencies)
    res = OpResult(
        backend=backend,
        op=op,
        requests=n,
        errors=errors,
        seconds=round(elapsed, 3),
        rps=round(n / elapsed, 1),
        p50_ms=round(percentile(latencies, 0.50) * 1000, 2),
        p99_ms=round(percentile(latencies, 0.99) * 1000, 2),
        mean_ms=round(sum(latencies) / n * 1000, 2) if n else float("nan"),
        server_cpu_ms_per_req=round(cpu / n * 1000, 3) if n else float("nan"),
        server_cpu_pct=round(cpu / elapsed * 100, 1),
        client_cpu_pct=round(client_cpu / elapsed * 100, 1),
        first_error=first_error,
    )
    print(
        f"  {backend:<8} {op:<22} {res.rps:>8.1f} req/s  p50 {res.p50_ms:>7.2f} ms  p99 {res.p99_ms:>7.2f} ms"
        f"  (n={n}, errors={errors}, server CPU {res.server_cpu_pct:.0f}%, client CPU {res.client_cpu_pct:.0f}%)",
        flush=True,
    )
    if first_error:
        print(f"    first error: {first_error}", flush=True)
    return res


def _client(base_url: str, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        headers=HEADERS,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=httpx.Timeout(60.0),
    )


@contextlib.asynccontextmanager
async def make_clients(base_url: str, load: Load) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One httpx client per concurrent worker (each a keep-alive pool of one connection), or, with
    ``--shared-pool``, one client whose pool has ``concurrency`` connections shared by all workers.

    A single httpx pool serving 32 concurrent requests costs the client ~5x more CPU per request
    than 32 one-connection pools (its pool bookkeeping grows with the number of waiting requests),
    and on a 2-core machine that makes the client, not the server, the bottleneck.
    """
    async with contextlib.AsyncExitStack() as stack:
        if load.shared_pool:
            shared = await stack.enter_async_context(_client(base_url, load.concurrency))
            yield [shared] * load.concurrency
        else:
            yield [await stack.enter_async_context(_client(base_url, 1)) for _ in range(load.concurrency)]


def get(url: str) -> RequestFn:
    def fn(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        return client.get(url)

    return fn


def post_json(url: str, body: Any) -> RequestFn:
    content = orjson.dumps(body)
    headers = {"content-type": "application/json"}

    def fn(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        return client.post(url, content=content, headers=headers)

    return fn


async def api(client: httpx.AsyncClient, method: str, url: str, body: Any = None) -> dict[str, Any]:
    r = await client.request(method, url, json=body)
    if r.status_code >= 400:
        raise BenchError(f"{method} {url} -> HTTP {r.status_code}: {r.text[:500]}")
    data: dict[str, Any] = r.json()
    return data


# --- database set-up -------------------------------------------------------------------------------


async def pg_create_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{PG_HOST_URL}/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def pg_drop_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"{PG_HOST_URL}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def seed_messages(database_url: str, thread_id: str, n: int) -> float:
    """Insert ``n`` completed user messages into ``thread_id`` with batched Core INSERTs; seconds taken.

    Uses the ORM model's table (so columns and any column defaults match) and the server's own
    driver; ``seq`` is assigned by the database. On PostgreSQL the table is ANALYZEd afterwards, as
    autovacuum would do shortly after a bulk load.
    """
    from sqlalchemy import insert, text
    from sqlalchemy.ext.asyncio import create_async_engine

    from assistd.ids import new_id
    from assistd.models import Message

    table = Message.__table__
    sqlite = database_url.startswith("sqlite")
    engine = create_async_engine(database_url, connect_args={"timeout": 30} if sqlite else {})
    started = time.perf_counter()
    created = int(time.time())
    try:
        async with engine.begin() as conn:
            for lo in range(0, n, SEED_BATCH):
                rows = [
                    {
                        "id": new_id("message"),
                        "project_id": PROJECT_ID,
                        "created_at": created,
                        "thread_id": thread_id,
                        "role": "user" if i % 2 == 0 else "assistant",
                        "content": [{"type": "text", "text": {"value": f"seeded message {i}", "annotations": []}}],
                        "attachments": [],
                        "metadata": {},
                        "status": "completed",
                        "incomplete_details": None,
                        "completed_at": created,
                        "incomplete_at": None,
                        "assistant_id": None,
                        "run_id": None,
                    }
                    for i in range(lo, min(n, lo + SEED_BATCH))
                ]
                await conn.execute(insert(table), rows)
        if not sqlite:
            async with engine.connect() as conn:
                await conn.execute(text("ANALYZE messages"))
                await conn.commit()
    finally:
        await engine.dispose()
    return time.perf_counter() - started


# --- the runs ------------------------------------------------------------------------------------


async def bench_bare(load: Load) -> OpResult:
    workdir = Path(tempfile.mkdtemp(prefix="assistd-bench-bare-"))
    server = bare_server(free_port(), workdir)
    try:
        server.start()
        await server.wait_ready()
        async with make_clients(server.base_url, load) as clients:
            r = await clients[0].get("/bare")
            if r.status_code != 200 or len(r.content) != BARE_BODY_BYTES:
                raise BenchError(f"bare endpoint answered {r.status_code} with {len(r.content)} bytes")
            return await measure("bare", "GET /bare (2 KB JSON)", clients, server, get("/bare"), load)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def bench_backend(backend: str, load: Load) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix=f"assistd-bench-{backend}-"))
    dbname: str | None = None
    server: ServerProcess | None = None
    out: dict[str, Any] = {"backend": backend, "ops": {}}
    try:
        if backend == "postgres":
            dbname = f"assistd_bench_{secrets.token_hex(4)}"
            await pg_create_database(dbname)
            database_url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{dbname}"
        else:
            database_url = f"sqlite+aiosqlite:///{workdir / 'assistd.db'}"
        out["database"] = database_url.split("@")[-1] if dbname else "sqlite (temp data dir)"
        server = assistd_server(free_port(), workdir, database_url)
        t0 = time.perf_counter()
        server.start()
        await server.wait_ready()
        out["startup_seconds"] = round(time.perf_counter() - t0, 2)

        async with make_clients(server.base_url, load) as clients:
            client = clients[0]
            assistant = await api(client, "POST", "/v1/assistants", {"model": "gpt-4o-mini", "name": "bench"})
            write_thread = await api(client, "POST", "/v1/threads", {})
            small_thread = await api(client, "POST", "/v1/threads", {})
            large_thread = await api(client, "POST", "/v1/threads", {})

            # 100 messages through the API ...
            for i in range(SMALL_THREAD):
                body = {"role": "user", "content": f"message {i}"}
                await api(client, "POST", f"/v1/threads/{small_thread['id']}/messages", body)

            # ... and 100,000 straight into the database, while the server runs.
            seed_s = await seed_messages(database_url, large_thread["id"], LARGE_THREAD)
            out["seed_seconds"] = round(seed_s, 2)
            print(f"  {backend:<8} seeded {LARGE_THREAD:,} messages in {seed_s:.1f} s", flush=True)
            for thread, expect in ((small_thread, SMALL_THREAD), (large_thread, LARGE_THREAD)):
                page = await api(client, "GET", f"/v1/threads/{thread['id']}/messages?limit=100")
                if len(page["data"]) != min(expect, 100) or page["has_more"] != (expect > 100):
                    raise BenchError(
                        f"thread of {expect} messages listed {len(page['data'])}, has_more={page['has_more']}"
                    )
            last = await api(client, "GET", f"/v1/threads/{large_thread['id']}/messages?limit=1&order=asc")
            text0 = last["data"][0]["content"][0]["text"]["value"]
            if text0 != "seeded message 0":
                raise BenchError(f"seeded thread starts with {text0!r}")

            ops: list[tuple[str, RequestFn]] = [
                (
                    "create message",
                    post_json(f"/v1/threads/{write_thread['id']}/messages", {"role": "user", "content": "hello world"}),
                ),
                ("list messages (100)", get(f"/v1/threads/{small_thread['id']}/messages?limit=20")),
                ("get assistant", get(f"/v1/assistants/{assistant['id']}")),
                ("list messages (100k)", get(f"/v1/threads/{large_thread['id']}/messages?limit=20")),
            ]
            for name, fn in ops:
                out["ops"][name] = await measure(backend, name, clients, server, fn, load)
        if server.proc is not None and server.proc.poll() is not None:
            raise BenchError(f"assistd exited during the run:\n{server.log_tail()}")
        return out
    finally:
        if server is not None:
            server.stop()
        if dbname is not None:
            try:
                await pg_drop_database(dbname)
            except Exception as e:
                print(f"  warning: could not drop database {dbname}: {e}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)


def evaluate(backend_result: dict[str, Any], bare: OpResult | None) -> dict[str, Any]:
    ops: dict[str, OpResult] = backend_result["ops"]
    small, large = ops["list messages (100)"], ops["list messages (100k)"]
    if bare is not None:
        for r in ops.values():
            r.rps_vs_bare = round(r.rps / bare.rps, 3) if bare.rps else None
            r.cpu_vs_bare = (
                round(bare.server_cpu_ms_per_req / r.server_cpu_ms_per_req, 3) if r.server_cpu_ms_per_req else None
            )
    targets: dict[str, Any] = {}
    ratio = small.rps_vs_bare
    targets["list_rps_vs_bare"] = {
        "target": f">= {TARGET_LIST_RPS_RATIO:.2f}",
        "value": ratio,
        "server_cpu_ratio": small.cpu_vs_bare,
        "pass": None if ratio is None else ratio >= TARGET_LIST_RPS_RATIO,
    }
    p50_ratio = round(large.p50_ms / small.p50_ms, 3) if small.p50_ms else None
    targets["list_latency_100k_vs_100"] = {
        "target": f"<= {TARGET_DEEP_LATENCY_RATIO:.1f} (p50)",
        "value": p50_ratio,
        "p99_ratio": round(large.p99_ms / small.p99_ms, 3) if small.p99_ms else None,
        "rps_ratio": round(large.rps / small.rps, 3) if small.rps else None,
        "pass": None if p50_ratio is None else p50_ratio <= TARGET_DEEP_LATENCY_RATIO,
    }
    return targets


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def print_summary(bare: OpResult | None, backends: list[dict[str, Any]], cores: int | None, load: Load) -> None:
    print()
    mode = "one shared httpx pool" if load.shared_pool else "one httpx client per worker"
    print(f"Results: concurrency {load.concurrency} ({mode}); client, server and PostgreSQL share {cores} CPU cores.")
    print("  vs bare = req/s over the bare endpoint's; cpu vs bare = bare server CPU per request over this one's")
    print("  (the req/s ratio if the server's CPU were the only limit); srv/cli CPU = % of one core.")
    header = (
        f"{'backend':<9}{'operation':<23}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'vs bare':>9}"
        f"{'srv ms/req':>11}{'cpu vs bare':>12}{'srv CPU':>9}{'cli CPU':>9}{'errors':>7}"
    )
    print(header)
    print("-" * len(header))
    rows = ([bare] if bare else []) + [r for b in backends for r in b["ops"].values()]
    for r in rows:
        vs = "" if r.rps_vs_bare is None else f"{r.rps_vs_bare:.2f}x"
        cpu_vs = "" if r.cpu_vs_bare is None else f"{r.cpu_vs_bare:.3f}x"
        print(
            f"{r.backend:<9}{r.op:<23}{r.rps:>9.1f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{vs:>9}"
            f"{r.server_cpu_ms_per_req:>11.3f}{cpu_vs:>12}{r.server_cpu_pct:>8.0f}%{r.client_cpu_pct:>8.0f}%{r.errors:>7}"
        )
    print()
    print("Targets")
    for b in backends:
        t = b["targets"]
        lr, ll = t["list_rps_vs_bare"], t["list_latency_100k_vs_100"]
        value = "n/a" if lr["value"] is None else f"{lr['value']:.3f}"
        extra = "" if lr["server_cpu_ratio"] is None else f"   (server-CPU ratio {lr['server_cpu_ratio']:.3f})"
        print(
            f"  {b['backend']:<9}list-messages (100) req/s vs bare        {lr['target']:<14} {value:<7} "
            f"{verdict(lr['pass'])}{extra}"
        )
        print(
            f"  {b['backend']:<9}list latency p50, 100,000 vs 100 msgs   {ll['target']:<14} {ll['value']:<7} "
            f"{verdict(ll['pass'])}   (p99 ratio {ll['p99_ratio']}, req/s ratio {ll['rps_ratio']})"
        )


async def main_async(args: argparse.Namespace) -> int:
    # SIGINT/SIGTERM cancel the run, so the finally blocks stop servers and drop the database.
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    load = Load(
        seconds=args.seconds,
        warmup=args.warmup,
        concurrency=args.concurrency,
        requests=args.requests,
        shared_pool=args.shared_pool,
    )
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for b in backends:
        if b not in ("sqlite", "postgres"):
            raise SystemExit(f"unknown backend {b!r} (sqlite, postgres)")
    cores = os.cpu_count()
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    what = f"{load.requests} requests" if load.requests else f"{load.seconds:g} s"
    print(
        f"assistd CRUD benchmark: {', '.join(backends)}; concurrency {load.concurrency}, {what} per operation "
        f"after a {load.warmup:g} s warm-up; uvicorn, 1 worker, log level warning, local mode (no API keys)."
    )
    print(
        f"Note: the benchmark client, the server process and PostgreSQL all share this machine's {affinity} CPU "
        f"core(s) (os.cpu_count()={cores}); numbers are relative, read the ratios.",
        flush=True,
    )
    bare = None if args.skip_bare else await bench_bare(load)
    results = []
    for b in backends:
        res = await bench_backend(b, load)
        res["targets"] = evaluate(res, bare)
        results.append(res)
    print_summary(bare, results, affinity, load)
    total = time.perf_counter() - started
    print(f"\ntotal run time {total:.0f} s")

    errors = (bare.errors if bare else 0) + sum(r.errors for b in results for r in b["ops"].values())
    report = {
        "timestamp": stamp,
        "machine": {
            "cpu_count": cores,
            "usable_cores": affinity,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "note": "client, server and PostgreSQL share the same CPU cores",
        },
        "settings": {
            "seconds": load.seconds,
            "warmup": load.warmup,
            "concurrency": load.concurrency,
            "requests": load.requests,
            "backends": backends,
            "client": "shared httpx pool" if load.shared_pool else "one httpx client (1 connection) per worker",
            "small_thread": SMALL_THREAD,
            "large_thread": LARGE_THREAD,
            "bare_body_bytes": BARE_BODY_BYTES,
        },
        "bare": asdict(bare) if bare else None,
        "backends": {
            b["backend"]: {
                **{k: v for k, v in b.items() if k not in ("ops", "backend")},
                "ops": {name: asdict(r) for name, r in b["ops"].items()},
            }
            for b in results
        },
        "errors": errors,
        "total_seconds": round(total, 1),
    }
    return write_report("crud", stamp, report, errors, "request(s)")


def write_report(kind: str, stamp: str, report: dict[str, Any], errors: int, noun: str) -> int:
    """Write bench/results/<kind>-<stamp>.json; the exit status (1 if anything failed)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{kind}-{stamp}.json"
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print(f"results written to {path.relative_to(ROOT)}")
    if errors:
        print(f"{errors} {noun} failed", file=sys.stderr)
        return 1
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=textwrap.dedent(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite,postgres (default both)")
    p.add_argument("--seconds", type=float, default=5.0, help="measured seconds per operation (default 5)")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per operation, not measured (default 1)")
    p.add_argument(
        "--requests", type=int, default=None, help="a fixed request count per operation instead of --seconds"
    )
    p.add_argument("--concurrency", type=int, default=32, help="concurrent clients / pooled connections (default 32)")
    p.add_argument(
        "--shared-pool",
        action="store_true",
        help="all workers share one httpx client/pool (default: one single-connection client per worker)",
    )
    p.add_argument("--skip-bare", action="store_true", help="do not measure the bare FastAPI ceiling")
    args = p.parse_args(argv)
    if args.concurrency < 1 or args.seconds <= 0 or (args.requests is not None and args.requests < 1):
        p.error("--concurrency, --seconds and --requests must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
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
    except asyncio.CancelledError:
        print("interrupted; servers stopped and temporary data removed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
