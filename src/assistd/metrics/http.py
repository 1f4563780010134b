"""HTTP request metrics, labelled by route template (``/v1/threads/{thread_id}``), never by the raw
path: the number of series stays bounded whatever clients send.

- ``assistd_http_requests_total{method, route, status}``: requests answered;
- ``assistd_http_request_duration_seconds{method, route}``: from a request's arrival to its
  response's start (headers sent; for a stream, its first byte).

Every request passes here, so the figures are kept in plain lists by a collector of their own
(a bisection and two additions per request; prometheus_client's metrics take a lock per update
and a lock per label look-up): requests are observed on the event loop's thread, which is also
where ``/metrics`` reads them.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Receive, Scope, Send

from assistd.metrics import FAST_BUCKETS, bounded

ROUTED = "assistd.routed_scope"  # scope["state"] key: the scope routing writes into (see RouteScope)
UNROUTED = "unrouted"  # answered before a route was chosen: no route matches, or refused first (no key)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

_prefixes: set[str] = set()
_endpoints: dict[Any, str] = {}


def route_label(scope: Scope, root_path: str) -> str:
    """The template of the route that took the request: ``/v1/threads/{thread_id}``.

    ``root_path`` is the scope's before routing. The route in the scope may know only its path
    inside its router (FastAPI's included routers, mounted routers): the prefix it was reached
    under is the part of the path before what the route matched."""
    route = scope.get("route")
    template = getattr(route, "path_format", None)
    if isinstance(template, str):
        path = scope.get("path", "")
        params = scope.get("path_params")
        try:
            rendered = template.format_map(params) if params else template
        except (KeyError, IndexError, ValueError):
            return template
        if rendered and path.endswith(rendered) and len(path) > len(rendered):
            return bounded(path[: len(path) - len(rendered)], _prefixes, 16) + template
        return template
    endpoint = scope.get("endpoint")
    if endpoint is None:
        return UNROUTED
    mounted = scope.get("root_path", "")
    if mounted != root_path:  # a mounted app (static files)
        return bounded(mounted[len(root_path) :], _prefixes, 16) + "/{path}"
    return _plain_route(scope, endpoint)


def _plain_route(scope: Scope, endpoint: Any) -> str:
    """A route that did not put itself in the scope (Starlette's plain ``Route`` under FastAPI's
    router, e.g. /openapi.json): found among the app's routes by its endpoint, once."""
    template = _endpoints.get(endpoint)
    if template is None:
        router = getattr(scope.get("app"), "router", None)
        found = [r for r in getattr(router, "routes", ()) if getattr(r, "endpoint", None) is endpoint]
        template = getattr(found[0], "path_format", UNROUTED) if len(found) == 1 else UNROUTED
        if len(_endpoints) < 1000:
            _endpoints[endpoint] = template
    return template


class HTTPMetrics(Collector):
    """Per (method, route, status): counts per latency bucket, then the latencies' sum."""

    REQUESTS = ("assistd_http_requests", "HTTP requests answered, by route template and status.")
    LATENCY = (
        "assistd_http_request_duration_seconds",
        "Time from a request's arrival to its response's start (headers sent; a stream's first byte).",
    )

    def __init__(self, buckets: Iterable[float] = FAST_BUCKETS) -> None:
        self.bounds = tuple(float(b) for b in buckets)
        self.series: dict[tuple[str, str, int], list[Any]] = {}

    def observe(self, key: tuple[str, str, int], seconds: float) -> None:
        counts = self.series.get(key)
        if counts is None:
            counts = self.series[key] = [0] * (len(self.bounds) + 1) + [0.0]
        counts[bisect_left(self.bounds, seconds)] += 1
        counts[-1] += seconds

    def describe(self) -> Iterable[Any]:
        return [CounterMetricFamily(*self.REQUESTS), HistogramMetricFamily(*self.LATENCY)]

    def collect(self) -> Iterator[Any]:
        requests = CounterMetricFamily(*self.REQUESTS, labels=["method", "route", "status"])
        latency = HistogramMetricFamily(*self.LATENCY, labels=["method", "route"])
        by_route: dict[tuple[str, str], list[Any]] = {}
        for (method, route, status), counts in list(self.series.items()):
            requests.add_metric([method, route, str(status)], sum(counts[:-1]))
            merged = by_route.setdefault((method, route), [0] * len(counts))
            for i, n in enumerate(counts):
                merged[i] += n
        for labels, counts in by_route.items():
            total, buckets = 0, []
            for bound, n in zip((*map(str, self.bounds), "+Inf"), counts[:-1], strict=True):
                total += n
                buckets.append((bound, total))
            latency.add_metric(list(labels), buckets, sum_value=counts[-1])
        yield requests
        yield latency


HTTP = HTTPMetrics()
REGISTRY.register(HTTP)


def observe_request(scope: Scope, root_path: str, status: int, started: float) -> None:
    """One answered request: counted and timed (called when its response starts, by the outermost
    middleware, with its scope: the route is read from the one routing wrote into, see RouteScope)."""
    method = scope.get("method", "")
    routed = scope["state"].get(ROUTED, scope) if "state" in scope else scope
    key = (method if method in METHODS else "other", route_label(routed, root_path), status)
    HTTP.observe(key, time.perf_counter() - started)


class RouteScope:
    """Lends the outermost middleware the scope that routing writes the route into.

    A middleware that rewrites a request passes a copy of its scope on (the Azure wire: another
    path), so the router's ``scope["route"]`` is not seen outside it; ``scope["state"]`` is the
    same dict in every copy. Add it inside every middleware that copies the scope. The reference
    is dropped when the request ends (no cycle outlives it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state[ROUTED] = scope
        try:
            await self.app(scope, receive, send)
        finally:
            state.pop(ROUTED, None)
