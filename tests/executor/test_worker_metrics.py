"""``assistd worker`` serves ``GET /metrics`` on a port of its own (PostgreSQL: a separate process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from assistd.fakellm import FakeLLM
from tests.api.test_serve import free_port
from tests.executor.test_workers import api, stop_worker, until  # noqa: F401 (api: a fixture)

pytestmark = pytest.mark.skipif(
    os.environ.get("ASSISTD_TEST_DATABASE", "sqlite") == "sqlite", reason="several processes need PostgreSQL"
)


def start_worker(settings: Any, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    """``assistd worker ARGS`` against the suite's database and fake upstream (the README's command)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTD_")}
    env.update(
        ASSISTD_DATABASE_URL=settings.database_url,
        ASSISTD_DATA_DIR=str(tmp_path / "worker"),
        ASSISTD_UPSTREAM_BASE_URL=settings.upstream_base_url,
        ASSISTD_LOG_LEVEL="warning",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "assistd", "worker", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def value(text: str, name: str, **labels: str) -> float:
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def test_the_worker_serves_its_metrics(
    api: Any,  # noqa: F811 (the fixture imported above)
    settings: Any,
    project: tuple[str, str],
    llm: FakeLLM,
    tmp_path: Path,
) -> None:
    llm.set_default({"text": "Executed by the worker.", "usage": {"prompt_tokens": 5, "completion_tokens": 4}})
    port = free_port()
    worker = start_worker(settings, tmp_path, "--metrics-port", str(port))
    key = {"Authorization": f"Bearer {project[0]}"}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as m:

            async def answering() -> httpx.Response | None:
                try:
                    return await m.get("/metrics")
                except httpx.TransportError:
                    return None

            denied = await until(answering)
            # keys exist in this suite: a key is needed, as on the API's /metrics
            assert denied.status_code == 401
            assert denied.json()["error"]["code"] == "invalid_api_key"
            assert (await m.get("/metrics", headers={"api-key": "sk-wrong"})).status_code == 401
            assert (await m.get("/v1/assistants", headers=key)).status_code == 404
            first = await m.get("/metrics", headers=key)
            assert first.status_code == 200 and first.headers["content-type"].startswith("text/plain; version=")
            assert value(first.text, "assistd_runs_total", status="completed") == 0  # a new process
            assert "assistd_runs_queued" in first.text and "process_cpu_seconds_total" in first.text

            async with api() as client:  # an API process that does not execute: the worker does
                a = (await client.post("/assistants", json={"model": "fake-model"})).json()["id"]
                body = {"assistant_id": a, "thread": {"messages": [{"role": "user", "content": "hi"}]}}
                run = (await client.post("/threads/runs", json=body)).json()

                async def completed() -> bool:
                    r = await client.get(f"/threads/{run['thread_id']}/runs/{run['id']}")
                    return r.json()["status"] == "completed"

                await until(completed)

            async def counted() -> str | None:
                text = (await m.get("/metrics", headers=key)).text
                return text if value(text, "assistd_runs_total", status="completed") == 1 else None

            text = await until(counted)
            assert value(text, "assistd_upstream_calls_total", model="fake-model", outcome="ok") == 1
            assert value(text, "assistd_upstream_tokens_total", model="fake-model", kind="completion") == 4
            assert value(text, "assistd_run_claim_delay_seconds_count") == 1  # claimed from the queue
    finally:
        out = stop_worker(worker)
    assert worker.returncode == 0, out
