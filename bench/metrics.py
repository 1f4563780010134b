"""What the metrics and the request id cost the hot path, per unit of work, in this process.

The instrumentation's share of a request, a run or a stream event is too small for the runs
benchmark (bench/runs.py) to tell apart from a shared machine's noise, so this times each piece
directly (best of 7 rounds, the way ``timeit`` reports):

- **per request**: the request-id context variable and the request's count and latency (route
  template from the scope, the lock-free HTTP collector) — what RequestIdMiddleware adds;
- **per run**: its claim delay, its final status counted at commit (duration included), one model
  call (first chunk, duration, tokens, outcome), a stream opened and closed;
- **per event**: an event through a stream's queue (``EventQueue.put_nowait`` + ``get_nowait``),
  whose relay lag is recorded, next to the same two calls on a bare deque (the queue's floor);
- a commit with nothing to count (the ``after_commit`` hook every commit pays).

Usage: ``.venv/bin/python bench/metrics.py [--rounds 7] [--n 20000]``
"""

from __future__ import annotations

import argparse
import collections
import time
import types
from collections.abc import Callable

from sqlalchemy.orm import Session

from assistd import metrics
from assistd.llm.protocol import Usage
from assistd.logs import request_id_var
from assistd.metrics.http import observe_request
from assistd.runs.events import EventQueue


class _Route:  # a route as FastAPI leaves it in the scope
    path_format = "/threads/{thread_id}"


SCOPE = {
    "type": "http",
    "method": "GET",
    "path": "/v1/threads/thread_abc",
    "route": _Route(),
    "path_params": {"thread_id": "thread_abc"},
    "root_path": "",
    "state": {},
}


def best(fn: Callable[[], object], n: int, rounds: int) -> float:
    """Nanoseconds per call, the best round's."""
    for _ in range(min(n, 1000)):
        fn()
    fastest = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        fastest = min(fastest, (time.perf_counter() - t) / n)
    return fastest * 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--n", type=int, default=20_000, help="calls per round")
    args = p.parse_args()

    def per_request() -> None:
        token = request_id_var.set("req_x")
        observe_request(SCOPE, "", 200, time.perf_counter())
        request_id_var.reset(token)

    session = Session()
    row = types.SimpleNamespace(created_at=int(time.time()) - 1, attempt=1)

    def per_run() -> None:
        metrics.runs_claimed([row])
        metrics.run_ended_on_commit(session, "completed", [row], {})
        metrics._count_ended(session)  # what the after_commit hook does
        call = metrics.upstream_call("http://127.0.0.1:11434/v1", "llama3.1")
        call.first()
        call.usage = Usage(100, 20, 120)
        call.end("ok")
        metrics.stream_opened()
        metrics.stream_closed()

    queue, bare = EventQueue(), collections.deque[tuple[str, bytes]]()
    event = ("thread.message.delta", b"{}")

    def per_event() -> None:
        queue.put_nowait(event)
        queue.get_nowait()

    def per_event_floor() -> None:
        bare.append(event)
        bare.popleft()

    rows = [
        ("per request (request id, count, latency)", best(per_request, args.n, args.rounds)),
        ("per run (claim, end, model call, stream)", best(per_run, args.n // 4, args.rounds)),
        ("per event through a stream's queue", best(per_event, args.n, args.rounds)),
        ("  the same on a bare deque (floor)", best(per_event_floor, args.n, args.rounds)),
        ("a commit with nothing to count", best(lambda: metrics._count_ended(session), args.n, args.rounds)),
    ]
    width = max(len(name) for name, _ in rows)
    for name, ns in rows:
        print(f"{name:<{width}}  {ns / 1000:7.2f} µs")


if __name__ == "__main__":
    main()
