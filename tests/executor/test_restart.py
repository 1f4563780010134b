"""A ``serve`` process on SQLite, killed mid-run and started again, finishes the run at once.

With SQLite one process executes every run, so a run ``in_progress`` when ``serve`` starts belongs
to a process that is gone; the new one sees that process's pid no longer running and takes its
runs up immediately, instead of waiting out their 30 s lease. Real processes: ``python -m assistd
serve`` on a fresh SQLite file, the suite's fake model as upstream. (This test is about SQLite
and uses its own file: it runs in the SQLite pass of the suite.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistd.fakellm import FakeLLM
from tests.conftest import BETA

pytestmark = pytest.mark.skipif(
    os.environ.get("ASSISTD_TEST_DATABASE", "sqlite") != "sqlite", reason="a SQLite test: runs in the SQLite pass"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(data_dir: Path, port: int, upstream: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTD_")}
    env.update(
        ASSISTD_DATA_DIR=str(data_dir),
        ASSISTD_PORT=str(port),
        ASSISTD_UPSTREAM_BASE_URL=upstream,
        ASSISTD_LOG_LEVEL="warning",
        ASSISTD_SANDBOX_WARM_POOL="0",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "assistd", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def _up(client: httpx.AsyncClient, proc: subprocess.Popen[str]) -> None:
    for _ in range(600):
        assert proc.poll() is None, proc.communicate()[0]
        try:
            if (await client.get("/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("serve did not start")


async def test_a_restarted_serve_finishes_the_run_in_well_under_its_lease(tmp_path: Path, llm: FakeLLM) -> None:
    answer = "".join(f" w{i}" for i in range(200))
    llm.set_default({"text": answer, "tokens_per_second": 40})  # 5 s of answer
    port = _free_port()
    procs: list[subprocess.Popen[str]] = [_serve(tmp_path, port, llm.base_url)]
    headers = {**BETA, "Authorization": "Bearer local"}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/v1", headers=headers, timeout=30) as c:
            await _up(c, procs[0])
            a = (await c.post("/assistants", json={"model": "fake-model"})).json()["id"]
            t = (await c.post("/threads", json={"messages": [{"role": "user", "content": "hi"}]})).json()["id"]
            run = (await c.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
            for _ in range(1000):  # until the answer is streaming
                msgs = (await c.get(f"/threads/{t}/messages", params={"run_id": run["id"]})).json()["data"]
                if msgs and llm.active_responses:
                    break
                await asyncio.sleep(0.02)
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait()
            restarted = time.monotonic()
            procs.append(_serve(tmp_path, port, llm.base_url))
            await _up(c, procs[1])
            final: dict[str, Any] = {}
            for _ in range(1500):
                final = (await c.get(f"/threads/{t}/runs/{run['id']}")).json()
                if final["status"] not in ("queued", "in_progress"):
                    break
                await asyncio.sleep(0.02)
            took = time.monotonic() - restarted
            msgs = (await c.get(f"/threads/{t}/messages", params={"run_id": run["id"]})).json()["data"]
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            try:
                p.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
    assert final["status"] == "completed", final
    assert took < 15, took  # the lease is 30 s: its process was seen gone at start-up, not waited for
    assert [(m["status"], m["content"][0]["text"]["value"]) for m in msgs] == [("completed", answer)]
    db = sqlite3.connect(tmp_path / "assistd.db")
    try:
        assert db.execute("SELECT resumes FROM runs WHERE id = ?", (run["id"],)).fetchone() == (1,)
    finally:
        db.close()
