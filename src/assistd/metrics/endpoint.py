"""``GET /metrics``: who may read it, what is read at scrape time, and ``assistd worker``'s own server.

- **Access.** In local mode (no API key exists) anyone who reaches the port may read it. Once
  keys exist: a valid key (``Authorization: Bearer KEY`` or ``api-key: KEY``, any project's),
  or a client address in ``ASSISTD_METRICS_ALLOW`` (addresses and networks, e.g.
  ``127.0.0.1,10.0.0.0/8``); anything else is a 401 in OpenAI's error envelope.
- **At scrape time**: the database gauges (queued runs, files waiting for ingestion), one indexed
  ``count(*)`` each, read at most every ``DB_GAUGE_SECONDS`` however often Prometheus scrapes;
  and this process's own gauges (runs executing, files ingesting, sandbox kernels), from memory.
- **The worker's server**: ``assistd worker --metrics-port N`` answers ``GET /metrics`` (the same
  text, the same access rules) on a plain asyncio server in the worker's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
import weakref
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import func, select

from assistd import metrics
from assistd.errors import APIError, AuthenticationError, NotFoundError

if TYPE_CHECKING:
    from assistd.state import AppState

log = logging.getLogger("assistd.metrics")

CONTENT_TYPE = CONTENT_TYPE_LATEST
DB_GAUGE_SECONDS = 2.0
NEEDS_KEY = (
    "Reading /metrics needs an API key (Authorization: Bearer KEY, or api-key: KEY), or a client "
    "address listed in ASSISTD_METRICS_ALLOW."
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allow(value: str | None) -> tuple[Network, ...]:
    """``ASSISTD_METRICS_ALLOW``: comma-separated addresses or networks; ValueError names a bad one."""
    out: list[Network] = []
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network (e.g. 127.0.0.1 or 10.0.0.0/8)") from None
    return tuple(out)


def _allowed(host: str | None, allow: tuple[Network, ...]) -> bool:
    if not host or not allow:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in allow)


async def authorize(
    state: AppState, allow: tuple[Network, ...], client: str | None, authorization: str | None, api_key: str | None
) -> APIError | None:
    """None if this client may read the metrics, else the error to answer."""
    if not await state.auth._any_keys() or _allowed(client, allow):
        return None
    if api_key:
        authorization = f"Bearer {api_key}"
    if not authorization or not authorization.partition(" ")[2].strip():
        return AuthenticationError(NEEDS_KEY, code="invalid_api_key")
    try:
        await state.auth.project_for(authorization)
    except APIError as exc:
        return exc
    return None


# --- what is read at scrape time --------------------------------------------------------------

_refreshed: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
_refresh_lock = asyncio.Lock()


def _queries() -> tuple[Any, Any]:
    from assistd.models import Run, VectorStoreFile

    runs, files = Run.__table__.c, VectorStoreFile.__table__.c
    return (
        select(func.count()).where(runs.status == "queued"),  # ix_runs_status_lease
        select(func.count()).where(files.status == "in_progress"),  # ix_vector_store_files_status_lease
    )


async def _refresh_database_gauges(state: AppState) -> None:
    async with _refresh_lock:
        t = time.monotonic()
        if t - _refreshed.get(state.db, -DB_GAUGE_SECONDS) < DB_GAUGE_SECONDS:
            return
        queued, ingesting = _queries()
        try:
            async with state.db.session() as s:
                metrics.RUNS_QUEUED.set(await s.scalar(queued) or 0)
                metrics.INGEST_QUEUED.set(await s.scalar(ingesting) or 0)
        except Exception as exc:  # the scrape still answers, with the last values
            log.warning("metrics: could not read the queue depths from the database: %s", exc)
        _refreshed[state.db] = time.monotonic()


def _refresh_process_gauges(state: AppState) -> None:
    ex = state.executor
    metrics.RUNS_EXECUTING.set(ex.concurrency - ex.free_slots if ex is not None else 0)
    metrics.INGEST_ACTIVE.set(state.ingester.active if state.ingester is not None else 0)
    sandbox = state.sandbox
    metrics.SANDBOX_KERNELS.labels("live").set(sandbox.sessions if sandbox is not None else 0)
    metrics.SANDBOX_KERNELS.labels("warm").set(sandbox.pool_size if sandbox is not None else 0)


async def scrape(state: AppState) -> bytes:
    """The exposition text of every series of this process."""
    await _refresh_database_gauges(state)
    _refresh_process_gauges(state)
    return generate_latest(REGISTRY)


async def answer(
    state: AppState, allow: tuple[Network, ...], client: str | None, authorization: str | None, api_key: str | None
) -> tuple[int, str, bytes]:
    """``(status, content type, body)`` of ``GET /metrics``."""
    denied = await authorize(state, allow, client, authorization, api_key)
    if denied is not None:
        return denied.status_code, "application/json", orjson.dumps(denied.body())
    return 200, CONTENT_TYPE, await scrape(state)


# --- assistd worker's server -------------------------------------------------------------------

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}
_MAX_HEAD = 16 * 1024


async def start_server(state: AppState, host: str, port: int) -> asyncio.Server:
    """Serve ``GET /metrics`` on ``host:port`` in this event loop (``assistd worker``)."""
    allow = parse_allow(state.settings.metrics_allow)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                status, ctype, body = await _handle(state, allow, reader, writer)
                head = (
                    f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\ncontent-type: {ctype}\r\n"
                    f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
                )
                writer.write(head.encode() + body)
                await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except Exception:
            log.exception("metrics: could not answer a request")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, host, port, limit=_MAX_HEAD)
    bound = server.sockets[0].getsockname()
    log.info("metrics at http://%s:%d/metrics", bound[0], bound[1])
    return server


async def _handle(
    state: AppState, allow: tuple[Network, ...], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[int, str, bytes]:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        return 400, "text/plain", b"bad request\n"
    method, target, _ = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if target.split("?", 1)[0] != "/metrics":
        error = NotFoundError(f"Invalid URL ({method} {target}): this port serves GET /metrics only.")
        return error.status_code, "application/json", orjson.dumps(error.body())
    if method != "GET":
        return 405, "text/plain", b"GET only\n"
    peer = writer.get_extra_info("peername")
    client = peer[0] if isinstance(peer, tuple) and peer else None
    return await answer(state, allow, client, headers.get("authorization"), headers.get("api-key"))
