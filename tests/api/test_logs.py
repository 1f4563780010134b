"""``ASSISTD_LOG_FORMAT=json`` on a real ``assistd serve`` (uvicorn): every line it writes is one JSON
object, requests' lines carry their ``x-request-id`` and runs' lines their run id; and, on that real
server, ``/metrics`` counts a stream while it is open."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from assistd.fakellm import FakeLLM
from tests.api.test_serve import base_env, serving

BETA = {"OpenAI-Beta": "assistants=v2"}
SCRIPT = {
    "turns": [
        {"match": {"last_user_contains": "fail me"}, "fault": {"type": "http_error", "status": 400}, "times": 5},
        {"match": {"last_user_contains": "stream me"}, "text": "word " * 30, "tokens_per_second": 40, "times": 5},
    ]
}


def gauge(base: str, name: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=5).text  # local mode: open without a key
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name)


def wait_run(c: httpx.Client, thread_id: str, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        run = c.get(f"/v1/threads/{thread_id}/runs/{run_id}").json()
        if run["status"] not in ("queued", "in_progress"):
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.02)


def test_json_lines_with_request_and_run_ids(tmp_path: Path) -> None:
    with FakeLLM(SCRIPT) as llm:
        upstream = llm.base_url
        env = base_env(tmp_path, None)
        env.update(ASSISTD_LOG_FORMAT="json", ASSISTD_UPSTREAM_BASE_URL=llm.base_url, ASSISTD_EMBEDDER="hash")
        with serving(env) as server, httpx.Client(base_url=server.base, headers=BETA, timeout=20) as c:
            created = c.post("/v1/assistants", json={"model": "fake-model"})
            assistant_id, request_id = created.json()["id"], created.headers["x-request-id"]
            body = {"assistant_id": assistant_id, "thread": {"messages": [{"role": "user", "content": "fail me"}]}}
            run = c.post("/v1/threads/runs", json=body).json()
            assert wait_run(c, run["thread_id"], run["id"])["status"] == "failed"

            body["thread"] = {"messages": [{"role": "user", "content": "stream me"}]}
            open_during: list[float] = []
            with c.stream("POST", "/v1/threads/runs", json={**body, "stream": True}) as r:
                for line in r.iter_lines():
                    if line == "event: thread.message.delta" and not open_during:
                        open_during.append(gauge(server.base, "assistd_streams_open"))
            assert open_during == [1.0]
            assert gauge(server.base, "assistd_streams_open") == 0.0

    lines = [line for line in server.output.splitlines() if line.strip()]
    records = []
    for line in lines:
        record = json.loads(line)  # every line, uvicorn's included, is one JSON object
        assert isinstance(record, dict) and {"time", "level", "logger", "message"} <= set(record), line
        records.append(record)
    assert any(r["logger"] == "uvicorn.error" and "startup complete" in r["message"] for r in records)
    [access] = [r for r in records if r["logger"] == "uvicorn.access" and r.get("path") == "/v1/assistants"]
    assert access["request_id"] == request_id
    assert access["method"] == "POST" and access["status"] == 200 and access["level"] == "INFO"
    [ended] = [r for r in records if r["logger"] == "assistd.runs"]
    assert ended["run_id"] == run["id"] and ended["level"] == "WARNING"
    assert ended["message"].startswith(f"run {run['id']} ended failed")
    # the `extra` fields of the call come along
    assert ended["thread_id"] == run["thread_id"] and ended["model"] == "fake-model" and ended["status"] == "failed"
    assert ended["upstream"] == upstream
    assert records[0]["time"].endswith("Z") and "T" in records[0]["time"]
