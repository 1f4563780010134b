"""``GET /metrics``: Prometheus text that Prometheus' own parser reads, counters that move with the
traffic of each test, and who may read it."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from assistd.app import create_app
from assistd.config import Settings
from assistd.fakellm import FakeLLM
from assistd.metrics import bounded
from assistd.state import AppState
from tests.conftest import asgi_client, assert_error
from tests.runs.test_runs_http import setup, wait_status
from tests.runs.util import sse
from tests.vector_stores.test_vector_stores import poll_file, upload

METRICS = "http://test/metrics"


class Scrape:
    """One scrape, parsed with prometheus_client's parser (as Prometheus would read it)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels`` (0 if none)."""
        return sum(
            s.value
            for f in self.families.values()
            for s in f.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )


async def scrape(client: httpx.AsyncClient) -> Scrape:
    r = await client.get(METRICS)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=")
    return Scrape(r.text)


async def until(
    client: httpx.AsyncClient, name: str, holds: Callable[[float], bool], *, within: float = 10.0, **labels: str
) -> Scrape:
    """Scrape until ``name{labels}`` satisfies ``holds``: a figure is recorded a moment after what a
    client sees (a commit, a file's status), so a test reads it as Prometheus would, a bit later."""
    deadline = time.monotonic() + within
    while True:
        got = await scrape(client)
        if holds(got.value(name, **labels)):
            return got
        assert time.monotonic() < deadline, f"{name}{labels} stayed {got.value(name, **labels)}"
        await asyncio.sleep(0.02)


async def reaches(client: httpx.AsyncClient, name: str, target: float, **labels: str) -> Scrape:
    return await until(client, name, lambda v: v >= target, **labels)


def upstream_of(state: AppState, model: str) -> str:
    return state.llm.resolve(model).upstream.display_url


class TestAccess:
    async def test_with_keys_a_key_is_needed(self, app: Any, project: tuple[str, str]) -> None:
        async with asgi_client(app, None) as anonymous:
            err = assert_error(await anonymous.get(METRICS), 401, code="invalid_api_key")
            assert "ASSISTD_METRICS_ALLOW" in err["message"] and "api-key" in err["message"]
            wrong = await anonymous.get(METRICS, headers={"Authorization": "Bearer sk-not-a-key"})
            assert_error(wrong, 401, code="invalid_api_key", contains="Incorrect API key provided")
            assert_error(await anonymous.get(METRICS, headers={"api-key": "sk-wrong"}), 401, code="invalid_api_key")
            by_api_key = await anonymous.get(METRICS, headers={"api-key": project[0]})
            assert by_api_key.status_code == 200 and "assistd_http_requests_total" in by_api_key.text
        async with asgi_client(app, project[0]) as client:  # Authorization: Bearer
            assert "assistd_runs_queued" in (await scrape(client)).families

    async def test_an_allowed_address_needs_no_key(self, settings: Settings, state: AppState) -> None:
        allowed = create_app(settings.model_copy(update={"metrics_allow": "10.0.0.0/8, 127.0.0.1"}), state)

        def from_address(host: str) -> httpx.AsyncClient:
            return httpx.AsyncClient(transport=httpx.ASGITransport(app=allowed, client=(host, 40000)))

        async with from_address("127.0.0.1") as local, from_address("192.0.2.7") as other:
            assert (await local.get(METRICS)).status_code == 200
            assert_error(await other.get(METRICS), 401, code="invalid_api_key")
            # the address list opens /metrics only, never the API
            assert_error(await local.get("http://test/v1/assistants"), 401, code="invalid_api_key")

    def test_a_bad_address_list_is_refused_by_name(self) -> None:
        with pytest.raises(ValidationError, match=re.escape("'10.0.0.300' is not an IP address or network")):
            Settings(metrics_allow="127.0.0.1,10.0.0.300")


class TestHTTP:
    async def test_requests_by_route_template_and_status(self, client: httpx.AsyncClient) -> None:
        before = await scrape(client)
        route = {"method": "GET", "route": "/v1/threads/{thread_id}"}
        for _ in range(3):
            assert (await client.get("/threads/thread_doesnotexist4242")).status_code == 404
        assert (await client.get("/no/such/route/xyz4242")).status_code == 404
        t = (await client.post("/threads", json={})).json()["id"]
        assert (await client.get(f"/threads/{t}")).status_code == 200
        after = await scrape(client)

        def delta(name: str, **labels: str) -> float:
            return after.value(name, **labels) - before.value(name, **labels)

        assert delta("assistd_http_requests_total", **route, status="404") == 3
        assert delta("assistd_http_requests_total", **route, status="200") == 1
        assert delta("assistd_http_requests_total", method="GET", route="unrouted", status="404") == 1
        assert delta("assistd_http_requests_total", method="POST", route="/v1/threads", status="200") == 1
        assert delta("assistd_http_request_duration_seconds_count", **route) == 4
        assert delta("assistd_http_request_duration_seconds_sum", **route) > 0
        # raw paths never become labels: the number of series stays bounded
        assert "4242" not in after.text and t not in after.text

    async def test_azure_and_v1_requests_keep_bounded_labels(
        self, app: Any, client: httpx.AsyncClient, project: tuple[str, str]
    ) -> None:
        before = await scrape(client)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as raw:
            azure = {"api-key": project[0]}
            for _ in range(2):
                r = await raw.get("/openai/threads/thread_azure4242?api-version=2024-05-01-preview", headers=azure)
                assert r.status_code == 404
            assert (await raw.get("/openai/threads/thread_azure4242", headers=azure)).status_code == 400
            v1 = {"Authorization": f"Bearer {project[0]}", "OpenAI-Beta": "assistants=v1"}
            assert (await raw.get("/v1/assistants/asst_v14242", headers=v1)).status_code == 404
        after = await scrape(client)

        def delta(**labels: str) -> float:
            name = "assistd_http_requests_total"
            return after.value(name, method="GET", **labels) - before.value(name, method="GET", **labels)

        # the Azure wire is served by the /v1 routes, under their templates
        assert delta(route="/v1/threads/{thread_id}", status="404") == 2
        assert delta(route="unrouted", status="400") == 1  # refused before routing: no api-version
        assert delta(route="/v1/assistants/{assistant_id}", status="404") == 1  # the v1 dialect's route
        assert "4242" not in after.text


class TestRuns:
    async def test_a_completed_run_and_its_model_call(
        self, client: httpx.AsyncClient, state: AppState, llm: FakeLLM
    ) -> None:
        llm.set_turns([{"text": "Counted.", "usage": {"prompt_tokens": 11, "completion_tokens": 7}}])
        call = {"upstream": upstream_of(state, "fake-model"), "model": "fake-model"}
        before = await scrape(client)
        a, t = await setup(client)
        run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
        assert (await wait_status(client, t, run["id"], "completed", "failed"))["status"] == "completed"
        done = before.value("assistd_runs_total", status="completed") + 1
        after = await reaches(client, "assistd_runs_total", done, status="completed", code="")
        assert after.value("assistd_runs_total", status="completed") == done
        assert after.value("assistd_run_duration_seconds_count", status="completed") == (
            before.value("assistd_run_duration_seconds_count", status="completed") + 1
        )
        calls = after.value("assistd_upstream_calls_total", **call, outcome="ok")
        assert calls == before.value("assistd_upstream_calls_total", **call, outcome="ok") + 1
        for kind, n in (("prompt", 11), ("completion", 7)):
            tokens = after.value("assistd_upstream_tokens_total", **call, kind=kind)
            assert tokens == before.value("assistd_upstream_tokens_total", **call, kind=kind) + n
        for hist in ("assistd_upstream_first_chunk_seconds_count", "assistd_upstream_call_duration_seconds_count"):
            assert after.value(hist, **call) == before.value(hist, **call) + 1
        # created by this process's request and executed here: it never waited in the queue
        claims = after.value("assistd_run_claim_delay_seconds_bucket", le="0.01")
        assert claims == before.value("assistd_run_claim_delay_seconds_bucket", le="0.01") + 1

    async def test_a_failed_run_counts_its_error_code(
        self, client: httpx.AsyncClient, state: AppState, llm: FakeLLM
    ) -> None:
        # fast-* models: two quick retries (tests/conftest.py); three 429s use them up
        llm.set_turns([{"fault": {"type": "http_error", "status": 429}, "times": 3}])
        upstream = upstream_of(state, "fast-model")
        call = {"upstream": upstream, "model": "fast-model"}
        before = await scrape(client)
        a, t = await setup(client, model="fast-model")
        run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
        failed = await wait_status(client, t, run["id"], "completed", "failed")
        assert failed["status"] == "failed" and failed["last_error"]["code"] == "rate_limit_exceeded"
        labels = {"status": "failed", "code": "rate_limit_exceeded"}
        after = await reaches(client, "assistd_runs_total", before.value("assistd_runs_total", **labels) + 1, **labels)
        assert after.value("assistd_runs_total", **labels) == before.value("assistd_runs_total", **labels) + 1
        outcome = {**call, "outcome": "rate_limit_exceeded"}
        assert after.value("assistd_upstream_calls_total", **outcome) == (
            before.value("assistd_upstream_calls_total", **outcome) + 1
        )
        retries = after.value("assistd_upstream_retries_total", upstream=upstream)
        assert retries == before.value("assistd_upstream_retries_total", upstream=upstream) + 2
        assert after.value("assistd_upstream_calls_total", **call, outcome="ok") == before.value(
            "assistd_upstream_calls_total", **call, outcome="ok"
        )

    async def test_streams_and_relay_lag(self, client: httpx.AsyncClient, llm: FakeLLM) -> None:
        """(Open streams are counted mid-stream in tests/api/test_logs.py, on a real server: the ASGI
        transport of these tests hands the response over once it has ended.)"""
        llm.set_turns([{"text": "one two three four five six", "chunk_size": 1}])
        a, t = await setup(client)
        before = await scrape(client)
        events = await sse(client, f"/threads/{t}/runs", {"assistant_id": a})
        after = await scrape(client)
        assert after.value("assistd_streams_open") == before.value("assistd_streams_open")
        # every event but the closing `done` went through the relay queue, each one timed
        relayed = after.value("assistd_stream_relay_lag_seconds_count")
        assert relayed - before.value("assistd_stream_relay_lag_seconds_count") == len(events) - 1
        lag = after.value("assistd_stream_relay_lag_seconds_sum") - before.value("assistd_stream_relay_lag_seconds_sum")
        assert 0 <= lag < len(events)

    async def test_queue_depth_and_claim_delay(self, client: httpx.AsyncClient, state: AppState, llm: FakeLLM) -> None:
        assert state.executor is not None
        llm.set_turns(["Claimed."])
        a, t = await setup(client)
        await state.executor.stop()  # nothing claims: the run waits in the queue
        try:
            before = await scrape(client)
            run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
            assert run["status"] == "queued"
            # read from the database at scrape time (at most every 2 s)
            await reaches(client, "assistd_runs_queued", before.value("assistd_runs_queued") + 1)
        finally:
            state.executor.start()
        assert (await wait_status(client, t, run["id"], "completed", "failed"))["status"] == "completed"
        # claimed from the queue once (its first claim is timed), and the queue is empty again
        after = await until(client, "assistd_runs_queued", lambda v: v == before.value("assistd_runs_queued"))
        assert after.value("assistd_run_claim_delay_seconds_count") == (
            before.value("assistd_run_claim_delay_seconds_count") + 1
        )

    async def test_a_final_status_counts_once_its_transaction_commits(
        self, client: httpx.AsyncClient, state: AppState, llm: FakeLLM
    ) -> None:
        from assistd.executor.transitions import transition

        assert state.executor is not None
        a, t = await setup(client)
        await state.executor.stop()  # the run stays queued: this test ends it itself
        try:
            run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
            labels = {"status": "failed", "code": "server_error"}
            before = (await scrape(client)).value("assistd_runs_total", **labels)
            error = {"code": "server_error", "message": "closed by the test"}

            async def close_then_fail() -> None:
                async with state.db.session(write=True) as s:
                    assert await transition(s, run["id"], "failed", last_error=error, failed_at=0)
                    raise RuntimeError("the closing transaction fails")  # rolled back: not counted

            with pytest.raises(RuntimeError):
                await close_then_fail()
            assert (await scrape(client)).value("assistd_runs_total", **labels) == before
            assert (await client.get(f"/threads/{t}/runs/{run['id']}")).json()["status"] == "queued"
            async with state.db.session(write=True) as s:
                assert await transition(s, run["id"], "failed", last_error=error, failed_at=0)
            assert (await scrape(client)).value("assistd_runs_total", **labels) == before + 1
        finally:
            state.executor.start()


class TestIngestion:
    async def test_files_ingested_and_failed(self, client: httpx.AsyncClient, state: AppState) -> None:
        before = await scrape(client)
        vs = (await client.post("/vector_stores", json={"name": "metrics"})).json()["id"]
        good = await upload(client, "notes.txt", "Herons nest in tall trees near water.")
        bad = await upload(client, "archive.xyz", "not a type file_search reads")
        for fid in (good, bad):
            assert (await client.post(f"/vector_stores/{vs}/files", json={"file_id": fid})).status_code == 200
        assert (await poll_file(client, vs, good))["status"] == "completed"
        failed = await poll_file(client, vs, bad)
        assert failed["status"] == "failed" and failed["last_error"]["code"] == "unsupported_file"
        completed = before.value("assistd_ingest_files_total", outcome="completed") + 1
        await reaches(client, "assistd_ingest_files_total", completed, outcome="completed")
        after = await reaches(
            client,
            "assistd_ingest_files_total",
            before.value("assistd_ingest_files_total", outcome="unsupported_file") + 1,
            outcome="unsupported_file",
        )
        assert after.value("assistd_ingest_files_total", outcome="completed") == completed

        def count(phase: str) -> float:
            name = "assistd_ingest_duration_seconds_count"
            return after.value(name, phase=phase) - before.value(name, phase=phase)

        # the good file was parsed and embedded; the bad one was refused while parsing
        assert count("embed") == 1 and count("total") == 2 and count("parse") == 1
        assert "assistd_ingest_files_queued" in after.families and "assistd_ingest_files_active" in after.families


def code_call(code: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "code_interpreter", "arguments": {"code": code}}]}


class TestSandbox:
    async def test_code_executions_by_outcome(self, client: httpx.AsyncClient, llm: FakeLLM) -> None:
        before = await scrape(client)
        a = await client.post("/assistants", json={"model": "fake-model", "tools": [{"type": "code_interpreter"}]})
        t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "compute"}]})).json()["id"]
        llm.set_turns([code_call("print(6 * 7)"), code_call("1 / 0"), {"text": "42, then an error."}])
        run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a.json()["id"]})).json()
        done = await wait_status(client, t, run["id"], "completed", "failed")
        assert done["status"] == "completed", done["last_error"]
        after = await scrape(client)

        def delta(name: str, **labels: str) -> float:
            return after.value(name, **labels) - before.value(name, **labels)

        assert delta("assistd_sandbox_executions_total", outcome="ok") == 1
        assert delta("assistd_sandbox_executions_total", outcome="error") == 1
        assert delta("assistd_sandbox_execution_duration_seconds_count") == 2
        assert after.value("assistd_sandbox_kernels", state="live") >= 1  # the thread's kernel lives on


async def test_resumption_counters_move_when_called(client: httpx.AsyncClient) -> None:
    """The calls the executor makes when it resumes a run or re-makes a model call."""
    from assistd import metrics

    before = await scrape(client)
    metrics.run_resumed()
    metrics.model_call_remade()
    metrics.model_call_remade()
    after = await scrape(client)
    assert after.value("assistd_runs_resumed_total") == before.value("assistd_runs_resumed_total") + 1
    assert after.value("assistd_model_calls_remade_total") == before.value("assistd_model_calls_remade_total") + 2


def test_label_values_from_requests_are_bounded() -> None:
    seen: set[str] = set()
    assert [bounded(f"model-{i}", seen, limit=3) for i in range(5)] == [
        "model-0",
        "model-1",
        "model-2",
        "other",
        "other",
    ]
    assert bounded("model-1", seen, limit=3) == "model-1"
