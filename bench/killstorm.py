"""Kill-storm benchmark: runs survive workers SIGKILLed and restarted while they stream.

On PostgreSQL (a fresh database ``assistd_bench_<random>`` on postgresql://postgres@127.0.0.1:5432,
dropped afterwards) it starts, as real processes, the scripted fake upstream (``python -m
assistd.fakellm``: every answer is ``--tokens`` one-word chunks at ``--tokens-per-second``), ``assistd
serve`` with ASSISTD_EXECUTOR=false (the API: it relays every stream) and ``--workers`` ``assistd
worker`` processes, all with assistd's default settings (30 s run lease, 3 resumes). Then:

- ``--clients`` concurrent clients stream ``--runs`` runs in all (``POST /v1/threads/{id}/runs`` with
  ``stream: true``, each on its own thread whose user message names the run), started evenly over
  ``--storm-seconds``, each client reading its stream to the end before taking the next run;
- meanwhile, every ``--kill-every`` seconds for ``--storm-seconds``, one worker (in turn) is SIGKILLed
  and started again at once;
- once every run has ended (or ``--settle-seconds`` after the storm), it reads the database and the
  fake's request log and prints:

  * completed / failed / stuck runs (stuck: still queued or in progress at the end);
  * runs with a dangling ``in_progress`` message, and runs with more than one assistant message
    (duplicates);
  * re-made model calls: upstream requests beyond one per run (the fake's log), next to the count
    the workers logged and the runs' ``resumes``;
  * streams: how many ended with their run's terminal event and ``done``, and how many of those
    carried the full answer (text accumulated as the SDKs do: a ``thread.message.created`` starts
    that message over, and a message's end event carries its final text).

Targets (PASS/FAIL, informational): >= 98 % completed, 0 stuck, 0 dangling, 0 duplicates.
Writes the figures to bench/results/killstorm-<timestamp>.json. Exit status 0 unless something errored.

Usage::

    .venv/bin/python bench/killstorm.py [--runs 200] [--clients 20] [--workers 2] [--tokens 40]
        [--tokens-per-second 20] [--kill-every 2.5] [--storm-seconds 40] [--settle-seconds 120] [--keep]
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
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from crud import HEADERS, PG_HOST_URL, BenchError, ServerProcess, free_port, pg_create_database, pg_drop_database

from runs import FakeProcess, assistd_env, background_load

MODEL = "fake-model"


@dataclass
class Stream:
    index: int
    run_id: str | None = None
    terminal: str | None = None  # the run's last thread.run.* event seen
    done: bool = False
    error: str | None = None
    text: str = ""  # accumulated as the SDKs' snapshots do
    restarts: int = 0  # thread.message.created seen again for a message
    seconds: float = 0.0  # from the request to the end of the stream


@dataclass
class Result:
    runs: int
    statuses: dict[str, int]
    completed_pct: float
    stuck: int
    dangling: int
    duplicates: int
    remade_upstream: int
    remade_logged: int
    resumes: int
    failed_errors: dict[str, int]
    streams_ended: int
    streams_restarted: int
    stream_seconds_p50: float
    stream_seconds_p99: float
    stream_seconds_max: float
    streams_full_text: int
    stream_errors: dict[str, int]
    kills: int
    seconds: float
    settle_seconds: float
    conditions: dict[str, Any] = field(default_factory=dict)


def answer(n: int) -> str:
    return "".join(f" w{i:02d}" for i in range(n)).strip()


def worker_process(n: int, workdir: Path, database_url: str, upstream: str, generation: int) -> ServerProcess:
    env = assistd_env(workdir, database_url, upstream, 32)
    env.pop("ASSISTD_EXECUTOR_CONCURRENCY")  # the default
    env["ASSISTD_LOG_LEVEL"] = "warning"
    argv = [sys.executable, "-m", "assistd", "worker", "--no-migrate", "--log-level", "warning"]
    return ServerProcess(f"worker {n}", argv, 0, workdir / f"worker-{n}-{generation}.log", env)


async def stream_run(client: httpx.AsyncClient, assistant: str, index: int) -> Stream:
    s = Stream(index)
    start = time.monotonic()
    t = (await client.post("/v1/threads", json={"messages": [{"role": "user", "content": f"run {index}"}]})).json()
    body = {"assistant_id": assistant, "stream": True}
    texts: dict[str, str] = {}
    name = ""
    try:
        async with client.stream("POST", f"/v1/threads/{t['id']}/runs", json=body) as r:
            if r.status_code != 200:
                s.error = f"HTTP {r.status_code}"
                return s
            async for line in r.aiter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    if name == "done":
                        s.done = True
                        continue
                    data = orjson.loads(line[6:])
                    if name == "error":
                        s.error = "error event"
                    elif name == "thread.run.created":
                        s.run_id = data["id"]
                    elif name.startswith("thread.run.") and not name.startswith("thread.run.step"):
                        s.terminal = name
                    elif name == "thread.message.created":
                        if data["id"] in texts:
                            s.restarts += 1
                        texts[data["id"]] = ""
                    elif name in ("thread.message.completed", "thread.message.incomplete"):
                        texts[data["id"]] = "".join(p["text"]["value"] for p in data["content"] if p["type"] == "text")
                    elif name == "thread.message.delta":
                        for part in data["delta"]["content"]:
                            texts[data["id"]] = texts.get(data["id"], "") + part.get("text", {}).get("value", "")
    except httpx.HTTPError as exc:
        s.error = type(exc).__name__
    s.text = "".join(texts.values())
    s.seconds = time.monotonic() - start
    return s


async def storm(workers: list[ServerProcess], make: Any, every: float, seconds: float) -> int:
    kills, n = 0, 0
    deadline = time.monotonic() + seconds
    while time.monotonic() + every <= deadline:
        await asyncio.sleep(every)
        i = n % len(workers)
        n += 1
        proc = workers[i].proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        workers[i] = make(i, n)
        workers[i].start()
    return kills


async def measure(args: argparse.Namespace, workdir: Path, database_url: str) -> Result:
    import asyncpg

    fport = free_port()
    script = workdir / "fake-script.json"
    text = answer(args.tokens)
    script.write_bytes(
        orjson.dumps({"models": [MODEL], "default": {"text": text, "tokens_per_second": args.tokens_per_second}})
    )
    argv = [sys.executable, "-m", "assistd.fakellm", "--script", str(script), "--port", str(fport)]
    fake = FakeProcess("fake upstream", [*argv, "--log-level", "warning"], fport, workdir / "fake.log")
    upstream = f"{fake.base_url}/v1"
    port = free_port()
    env = assistd_env(workdir, database_url, upstream, 32)
    env.pop("ASSISTD_EXECUTOR_CONCURRENCY")
    env["ASSISTD_EXECUTOR"] = "false"
    api_argv = [sys.executable, "-m", "assistd", "serve", "--host", "127.0.0.1", "--port", str(port)]
    api = ServerProcess("assistd serve", [*api_argv, "--log-level", "warning"], port, workdir / "api.log", env)

    def make(i: int, generation: int) -> ServerProcess:
        return worker_process(i, workdir, database_url, upstream, generation)

    workers = [make(i, 0) for i in range(args.workers)]
    procs: list[ServerProcess] = [fake, api]
    try:
        fake.start()
        await fake.wait_ready()
        api.start()
        await api.wait_ready(120)
        for w in workers:
            w.start()
        await asyncio.sleep(3)  # the workers connect
        limits = httpx.Limits(max_connections=args.clients + 5, max_keepalive_connections=args.clients + 5)
        timeout = httpx.Timeout(connect=10, read=None, write=30, pool=None)
        async with httpx.AsyncClient(base_url=api.base_url, headers=HEADERS, timeout=timeout, limits=limits) as client:
            a = (await client.post("/v1/assistants", json={"model": MODEL, "instructions": "Count."})).json()["id"]
            gate = asyncio.Semaphore(args.clients)
            started = time.monotonic()

            async def one(i: int) -> Stream:
                await asyncio.sleep(i * args.storm_seconds / args.runs)  # starts spread over the storm
                async with gate:
                    return await stream_run(client, a, i)

            killing = asyncio.create_task(storm(workers, make, args.kill_every, args.storm_seconds))
            streaming = asyncio.gather(*(one(i) for i in range(args.runs)))
            kills = await killing
            storm_end = time.monotonic()
            try:
                streams = await asyncio.wait_for(streaming, args.settle_seconds)
            except TimeoutError:
                streams = []
            settle = time.monotonic() - storm_end
            seconds = time.monotonic() - started
            requests = (await httpx.AsyncClient(base_url=fake.base_url).get("/_fakellm/requests")).json()
    finally:
        for p in [*workers, *procs[::-1]]:
            p.stop()
    chats = [r for r in requests["data"] if r.get("path", "").endswith("/chat/completions")]
    per_prompt = Counter(
        next(m["content"] for m in reversed(r["body"]["messages"]) if m["role"] == "user") for r in chats
    )
    remade_upstream = sum(n - 1 for n in per_prompt.values() if n > 1)
    remade_logged = sum(
        p.read_text(errors="replace").count("is made again") for p in workdir.glob("worker-*.log") if p.is_file()
    )
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = await conn.fetch("SELECT id, status, resumes, last_error->>'message' AS error FROM runs")
        dangling = await conn.fetchval(
            "SELECT count(DISTINCT run_id) FROM messages WHERE run_id IS NOT NULL AND status = 'in_progress'"
        )
        duplicates = await conn.fetchval(
            "SELECT count(*) FROM (SELECT run_id FROM messages WHERE role = 'assistant' AND run_id IS NOT NULL "
            "GROUP BY run_id HAVING count(*) > 1) d"
        )
    finally:
        await conn.close()
    statuses = Counter(r["status"] for r in rows)
    errors = Counter(r["error"][:80] for r in rows if r["error"])
    ended = [s for s in streams if s.done and s.terminal in ("thread.run.completed", "thread.run.failed")]
    durations = sorted(s.seconds for s in streams) or [0.0]
    return Result(
        runs=len(rows),
        statuses=dict(statuses),
        completed_pct=round(100 * statuses.get("completed", 0) / max(len(rows), 1), 1),
        stuck=sum(statuses.get(s, 0) for s in ("queued", "in_progress", "cancelling")),
        dangling=int(dangling),
        duplicates=int(duplicates),
        remade_upstream=remade_upstream,
        remade_logged=remade_logged,
        resumes=sum(r["resumes"] for r in rows),
        failed_errors=dict(errors),
        streams_ended=len(ended),
        streams_restarted=sum(1 for s in streams if s.restarts),
        stream_seconds_p50=round(durations[len(durations) // 2], 1),
        stream_seconds_p99=round(durations[min(len(durations) - 1, int(len(durations) * 0.99))], 1),
        stream_seconds_max=round(durations[-1], 1),
        streams_full_text=sum(1 for s in ended if s.terminal == "thread.run.completed" and s.text.strip() == text),
        stream_errors=dict(Counter(s.error for s in streams if s.error)),
        kills=kills,
        seconds=round(seconds, 1),
        settle_seconds=round(settle, 1),
    )


def report(r: Result, args: argparse.Namespace) -> None:
    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    print()
    print(f"kill storm: {r.kills} SIGKILLs in {args.storm_seconds:g} s (one every {args.kill_every:g} s), ")
    print(
        f"            {args.workers} workers, {args.clients} streaming clients, {r.runs} runs of {args.tokens} tokens"
    )
    print(f"            at {args.tokens_per_second:g} tokens/s; all ended {r.settle_seconds:g} s after the storm")
    print()
    print(
        f"  completed runs       {r.statuses.get('completed', 0):5d}  ({r.completed_pct:g} %)   {verdict(r.completed_pct >= 98)}"
    )
    print(f"  failed runs          {r.statuses.get('failed', 0):5d}")
    print(f"  stuck runs           {r.stuck:5d}   {verdict(r.stuck == 0)}")
    print(f"  dangling messages    {r.dangling:5d}   {verdict(r.dangling == 0)}")
    print(f"  duplicate answers    {r.duplicates:5d}   {verdict(r.duplicates == 0)}")
    print(
        f"  re-made model calls  {r.remade_upstream:5d}   (the workers logged {r.remade_logged}; resumes: {r.resumes})"
    )
    print(f"  streams ended        {r.streams_ended:5d}   ({r.streams_full_text} with the full answer)")
    print(f"  streams restarted    {r.streams_restarted:5d}   (a message created again: its answer made again)")
    print(
        f"  stream duration      p50 {r.stream_seconds_p50:g} s, p99 {r.stream_seconds_p99:g} s, "
        f"max {r.stream_seconds_max:g} s (the answer alone takes {args.tokens / args.tokens_per_second:g} s)"
    )
    if r.stream_errors:
        print(f"  stream errors        {r.stream_errors}")
    if r.failed_errors:
        print(f"  why runs failed      {r.failed_errors}")


async def main_async(args: argparse.Namespace) -> int:
    name = f"assistd_bench_{secrets.token_hex(4)}"
    workdir = Path(tempfile.mkdtemp(prefix="assistd-killstorm-"))
    load = await background_load()
    conditions = {
        "machine": platform.platform(),
        "cores": os.cpu_count(),
        "loadavg_before": os.getloadavg(),
        "background_load_pct_of_one_core": load,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    print(f"background load before start: {load:g} % of one core; load average {os.getloadavg()[0]:.2f}")
    await pg_create_database(name)
    try:
        result = await measure(args, workdir, f"{PG_HOST_URL.replace('postgresql', 'postgresql+asyncpg')}/{name}")
    finally:
        with contextlib.suppress(Exception):
            await pg_drop_database(name)
    conditions["loadavg_after"] = os.getloadavg()
    result.conditions = conditions
    report(result, args)
    out = Path(__file__).parent / "results" / f"killstorm-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_bytes(orjson.dumps({"args": vars(args), "result": asdict(result)}, option=orjson.OPT_INDENT_2))
    print(f"\nwritten to {out}")
    if args.keep:
        print(f"processes' logs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--tokens", type=int, default=40)
    p.add_argument("--tokens-per-second", type=float, default=20.0)
    p.add_argument("--kill-every", type=float, default=2.5)
    p.add_argument("--storm-seconds", type=float, default=40.0)
    p.add_argument("--settle-seconds", type=float, default=120.0)
    p.add_argument("--keep", action="store_true", help="keep the processes' logs (printed: their directory)")
    args = p.parse_args()
    try:
        return asyncio.run(main_async(args))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
