"""``GET {base}/models`` on an upstream: which models it lists, and whether it answers at all.

Three users: ``GET /v1/models`` (the catalog merges what the upstreams list), start-up (a line per
upstream saying whether it answered), and the wait for a first chunk (an upstream that still
answers ``/models`` is alive, loading a model or reading a long prompt, and gets more time; one
that answers nothing is hung). Answers are kept for a few seconds per upstream, and concurrent
asks share one request, so none of these can flood an upstream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

__all__ = ["Probe", "ProbeCache", "probe_upstream"]

PROBE_TIMEOUT_SECONDS = 5.0
FRESH_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Probe:
    """What one ``GET /models`` found. ``answered``: the upstream sent an HTTP answer (even an error
    status, which still shows it is alive); ``models``: the model objects it listed (empty when it
    answered with an error or no list); ``error``: why it did not list models, for people."""

    answered: bool
    models: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    at: float = field(default_factory=time.monotonic)

    @property
    def listed(self) -> bool:
        return self.answered and self.error is None


async def probe_upstream(client: httpx.AsyncClient, headers: dict[str, str], seconds: float) -> Probe:
    """One ``GET models`` with ``client`` (whose base URL is the upstream's ``/v1/``)."""
    try:
        async with asyncio.timeout(seconds):
            response = await client.get(
                "models",
                headers={"accept": "application/json", **headers},
                timeout=httpx.Timeout(seconds),
            )
    except TimeoutError:
        return Probe(False, error=f"no answer within {seconds:g} s")
    except httpx.TransportError as exc:
        from assistd.llm.client import describe_transport_error

        return Probe(False, error=describe_transport_error(exc))
    if not 200 <= response.status_code < 300:
        return Probe(True, error=f"HTTP {response.status_code}")
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return Probe(True, error="the answer is not JSON")
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return Probe(True, error="the answer has no model list")
    models = [m for m in items if isinstance(m, dict) and isinstance(m.get("id"), str) and m["id"]]
    return Probe(True, models=models)


class ProbeCache:
    """Recent probes, one per key; a probe older than ``fresh`` seconds is made again."""

    def __init__(self, fresh: float = FRESH_SECONDS) -> None:
        self.fresh = fresh
        self._done: dict[Any, Probe] = {}
        self._pending: dict[Any, asyncio.Future[Probe]] = {}

    async def get(self, key: Any, make: Callable[[], Awaitable[Probe]], *, max_age: float | None = None) -> Probe:
        age = self.fresh if max_age is None else max_age
        done = self._done.get(key)
        if done is not None and time.monotonic() - done.at < age:
            return done
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = asyncio.ensure_future(make())

            def _settle(f: asyncio.Future[Probe]) -> None:
                self._pending.pop(key, None)
                if not f.cancelled() and f.exception() is None:
                    self._done[key] = f.result()

            pending.add_done_callback(_settle)
        # shielded: one caller giving up (a cancelled run) does not cancel the others' probe
        return await asyncio.shield(pending)
