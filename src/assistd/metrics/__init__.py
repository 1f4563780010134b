"""Prometheus metrics: the series, and the one-line calls that move them.

Every series is per process (``serve`` on ``/metrics``, ``assistd worker`` on
``--metrics-port``); database gauges (queued runs, files waiting for ingestion) are the same
from every process. Served by :mod:`assistd.metrics.endpoint`; README "Metrics and logs" lists
them for operators. Hot paths pay per request, per run, per model call or per file, never per
delta: the one per-event figure, relay lag, goes to a lock-free histogram (:class:`FastHistogram`).

Calls for code elsewhere (each one line, cheap, safe from any task):

- ``metrics.run_resumed()``: a run whose worker died is continued by another (its lease lapsed).
- ``metrics.model_call_remade()``: a model call cut off by a dead worker is made again (it costs
  money: count every one).
- ``metrics.run_claimed(delay)`` (or ``metrics.runs_claimed(rows)``, the claimed rows) /
  ``metrics.run_adopted()``: an executor took a queued run after ``delay`` seconds (its first
  claim) / started a run its request created already claimed (claim delay 0).
- ``metrics.run_ended_on_commit(session, status, rows, values)``: called by
  ``executor.transitions`` for every move to a terminal status; counted once the transaction
  commits (a closing transaction that fails and is retried is counted once).
- ``metrics.upstream_call(upstream, model)`` → :class:`UpstreamCall`: ``first()``, ``.usage = u``,
  ``end(outcome)``; ``metrics.upstream_retry(upstream)``.
- ``metrics.stream_opened()`` / ``metrics.stream_closed()``; ``metrics.RELAY_LAG.observe(s)``.
- ``metrics.ingest_phase(phase, seconds)``, ``metrics.ingest_done(outcome, seconds)``.
- ``metrics.sandbox_execution(outcome, seconds)``.
"""

from __future__ import annotations

import functools
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.orm import Session

__all__ = [
    "RELAY_LAG",
    "FastHistogram",
    "UpstreamCall",
    "bounded",
    "ingest_done",
    "ingest_phase",
    "model_call_remade",
    "run_adopted",
    "run_claimed",
    "run_ended_on_commit",
    "run_resumed",
    "runs_claimed",
    "sandbox_execution",
    "stream_closed",
    "stream_opened",
    "upstream_call",
    "upstream_retry",
]

disable_created_metrics()  # type: ignore[no-untyped-call]  # a `_created` series beside every counter doubles them for little use

FAST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SLOW_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
CLAIM_BUCKETS = (0.01, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class FastHistogram(Collector):
    """A histogram without labels whose ``observe`` is a bisection and two additions, with no lock:
    for figures taken per event on the event loop's thread. Read at scrape time (a scrape from
    another thread may see an observation in a bucket a moment before it is in the sum)."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float], registry: Any = REGISTRY) -> None:
        self.name, self.documentation = name, documentation
        self._bounds = tuple(float(b) for b in buckets)
        self._counts = [0] * (len(self._bounds) + 1)
        self._sum = 0.0
        if registry is not None:
            registry.register(self)

    def observe(self, value: float) -> None:
        self._counts[bisect_left(self._bounds, value)] += 1
        self._sum += value

    def describe(self) -> Iterable[Any]:
        return [HistogramMetricFamily(self.name, self.documentation)]

    def collect(self) -> Iterator[Any]:
        counts, total, acc = list(self._counts), self._sum, 0
        buckets: list[tuple[str, float]] = []
        for bound, n in zip((*map(str, self._bounds), "+Inf"), counts, strict=True):
            acc += n
            buckets.append((bound, acc))
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], buckets, sum_value=total)
        yield family


def bounded(value: str, seen: set[str], limit: int = 64) -> str:
    """``value`` as a label, or ``"other"`` once ``limit`` distinct values were seen: a label taken
    from a request (a model name) must not make series without bound."""
    if value in seen:
        return value
    if len(seen) >= limit:
        return "other"
    seen.add(value)
    return value


# HTTP requests: a lock-free collector of their own, observed by the request middleware (metrics/http.py).

# --- runs --------------------------------------------------------------------------------------

RUNS_ENDED = Counter(
    "assistd_runs", "Runs that reached a final status; code is last_error.code for failed runs.", ["status", "code"]
)
RUN_DURATION = Histogram(
    "assistd_run_duration_seconds",
    "Time from a run's creation to its final status (created_at has one-second resolution).",
    ["status"],
    buckets=SLOW_BUCKETS,
)
CLAIM_DELAY = Histogram(
    "assistd_run_claim_delay_seconds",
    "Time from a run's creation to an executor claiming it (0 for a run started by the process "
    "that created it; created_at has one-second resolution).",
    buckets=CLAIM_BUCKETS,
)
RUNS_QUEUED = Gauge("assistd_runs_queued", "Runs waiting for an executor (the whole database, read at scrape time).")
RUNS_EXECUTING = Gauge("assistd_runs_executing", "Runs this process is executing now.")
RUNS_RESUMED = Counter("assistd_runs_resumed", "Runs continued by another worker after theirs died.")
MODEL_CALLS_REMADE = Counter(
    "assistd_model_calls_remade", "Model calls made again because the worker making them died (they cost twice)."
)

_ENDED = "assistd_runs_ended"  # session.info key: (status, code, created_at) waiting for the commit


def run_resumed() -> None:
    RUNS_RESUMED.inc()


def model_call_remade() -> None:
    MODEL_CALLS_REMADE.inc()


def run_claimed(delay: float) -> None:
    """An executor took a run from the queue ``delay`` seconds after it was created (its first claim)."""
    CLAIM_DELAY.observe(delay)


def runs_claimed(rows: Iterable[Any]) -> None:
    """Runs just claimed from the queue: the claim delay of their first claim (later claims are of
    runs that waited for tool outputs, not for an executor)."""
    t = time.time()
    for row in rows:
        if row.attempt == 1:
            run_claimed(max(0.0, t - row.created_at))


def run_adopted() -> None:
    """A run started by the process that created it, as it was created: it never waited."""
    CLAIM_DELAY.observe(0.0)


def run_ended_on_commit(session: Any, status: str, rows: Sequence[Any], values: dict[str, Any]) -> None:
    """Runs moved to a final status in ``session``'s transaction: counted when it commits."""
    code = ""
    if status == "failed":
        error = values.get("last_error")
        code = str(error.get("code") or "") if isinstance(error, dict) else ""
    pending = session.info.setdefault(_ENDED, [])
    pending.extend((status, code, row.created_at) for row in rows)


@event.listens_for(Session, "after_commit")
def _count_ended(session: Session) -> None:
    info = session.__dict__.get("info")  # Session.info is created on first use: most sessions have none
    if not info:
        return
    pending = info.pop(_ENDED, None)
    if not pending:
        return
    t = time.time()
    for status, code, created_at in pending:
        ended, duration = _ended_children(status, code)
        ended.inc()
        duration.observe(max(0.0, t - created_at))


@functools.lru_cache(maxsize=64)
def _ended_children(status: str, code: str) -> tuple[Any, Any]:  # a label look-up takes a lock: once
    return RUNS_ENDED.labels(status, code), RUN_DURATION.labels(status)


@event.listens_for(Session, "after_soft_rollback")
def _drop_ended(session: Session, _previous: Any) -> None:
    info = session.__dict__.get("info")
    if info:
        info.pop(_ENDED, None)


# --- upstream model calls ------------------------------------------------------------------------

UPSTREAM_CALLS = Counter(
    "assistd_upstream_calls",
    "Model calls (one per streamed chat completion, retries included) by outcome: ok, cancelled, or the "
    "last_error code it failed with.",
    ["upstream", "model", "outcome"],
)
UPSTREAM_FIRST_CHUNK = Histogram(
    "assistd_upstream_first_chunk_seconds",
    "Time from a model call's start to its first event (retries included).",
    ["upstream", "model"],
    buckets=SLOW_BUCKETS,
)
UPSTREAM_DURATION = Histogram(
    "assistd_upstream_call_duration_seconds",
    "Time from a model call's start to its end, whatever the outcome.",
    ["upstream", "model"],
    buckets=SLOW_BUCKETS,
)
UPSTREAM_TOKENS = Counter(
    "assistd_upstream_tokens", "Tokens of model calls (as reported, else counted).", ["upstream", "model", "kind"]
)
UPSTREAM_RETRIES = Counter(
    "assistd_upstream_retries", "Model call attempts retried (429, 5xx, connection).", ["upstream"]
)
_models: set[str] = set()


class UpstreamCall:
    """One model call's figures, recorded when it ends (nothing per chunk)."""

    __slots__ = ("model", "started", "ttft", "upstream", "usage")

    def __init__(self, upstream: str, model: str) -> None:
        self.upstream, self.model = upstream, bounded(model, _models)
        self.started = time.perf_counter()
        self.ttft: float | None = None
        self.usage: Any = None

    def first(self) -> None:
        self.ttft = time.perf_counter() - self.started

    def end(self, outcome: str) -> None:
        duration, first_chunk, prompt, completion = _upstream_children(self.upstream, self.model)
        _upstream_calls(self.upstream, self.model, outcome).inc()
        duration.observe(time.perf_counter() - self.started)
        if self.ttft is not None:
            first_chunk.observe(self.ttft)
        if self.usage is not None:
            prompt.inc(self.usage.prompt_tokens)
            completion.inc(self.usage.completion_tokens)


@functools.lru_cache(maxsize=4096)  # labels are bounded: upstreams configured, models capped
def _upstream_children(upstream: str, model: str) -> tuple[Any, Any, Any, Any]:
    return (
        UPSTREAM_DURATION.labels(upstream, model),
        UPSTREAM_FIRST_CHUNK.labels(upstream, model),
        UPSTREAM_TOKENS.labels(upstream, model, "prompt"),
        UPSTREAM_TOKENS.labels(upstream, model, "completion"),
    )


@functools.lru_cache(maxsize=4096)
def _upstream_calls(upstream: str, model: str, outcome: str) -> Any:
    return UPSTREAM_CALLS.labels(upstream, model, outcome)


def upstream_call(upstream: str, model: str) -> UpstreamCall:
    return UpstreamCall(upstream, model)


def upstream_retry(upstream: str) -> None:
    UPSTREAM_RETRIES.labels(upstream).inc()


# --- streams -----------------------------------------------------------------------------------

STREAMS_OPEN = Gauge("assistd_streams_open", "Run event streams (SSE responses) open now.")
RELAY_LAG = FastHistogram(
    "assistd_stream_relay_lag_seconds",
    "Time from a run event's creation (in whichever process executes the run) to its being handed to "
    "the client's connection.",
    FAST_BUCKETS,
)


def stream_opened() -> None:
    STREAMS_OPEN.inc()


def stream_closed() -> None:
    STREAMS_OPEN.dec()


# --- ingestion ---------------------------------------------------------------------------------

INGEST_QUEUED = Gauge(
    "assistd_ingest_files_queued",
    "Vector-store files waiting for or in ingestion (status in_progress; the whole database, read at scrape time).",
)
INGEST_ACTIVE = Gauge("assistd_ingest_files_active", "Files this process is ingesting now.")
INGEST_FILES = Counter(
    "assistd_ingest_files",
    "Files ingested, by outcome: completed, the last_error code (unsupported_file, invalid_file, "
    "server_error), or dropped (cancelled or detached meanwhile).",
    ["outcome"],
)
INGEST_DURATION = Histogram(
    "assistd_ingest_duration_seconds",
    "Ingestion time of one file: phase parse, embed, or total (claim to outcome).",
    ["phase"],
    buckets=SLOW_BUCKETS,
)


def ingest_phase(phase: str, seconds: float) -> None:
    INGEST_DURATION.labels(phase).observe(seconds)


def ingest_done(outcome: str, seconds: float) -> None:
    INGEST_FILES.labels(outcome).inc()
    INGEST_DURATION.labels("total").observe(seconds)


# --- code interpreter sandbox ----------------------------------------------------------------

SANDBOX_KERNELS = Gauge(
    "assistd_sandbox_kernels", "Code interpreter kernels of this process: live (bound to a thread), warm.", ["state"]
)
SANDBOX_EXECUTIONS = Counter(
    "assistd_sandbox_executions",
    "Code executions by outcome: ok, error (the code raised, or its kernel died), timeout, oom, failed "
    "(no kernel could run it).",
    ["outcome"],
)
SANDBOX_DURATION = Histogram(
    "assistd_sandbox_execution_duration_seconds",
    "Time of one code execution, kernel start and file staging included.",
    buckets=SLOW_BUCKETS,
)


def sandbox_execution(outcome: str, seconds: float) -> None:
    SANDBOX_EXECUTIONS.labels(outcome).inc()
    SANDBOX_DURATION.observe(seconds)
