"""The upstream model client: streaming ``POST {base}/chat/completions`` with routing, retries and dialects.

:meth:`LLMClient.stream` picks the upstream for the request's model (the first matching route,
else the default), sends the body its dialect takes and yields normalized events
(:mod:`assistd.llm.protocol`). Policy:

- **Time-outs**: the first chunk is due within ``timeout_seconds`` (60 s). Past that, the upstream
  gets more time, up to ``load_timeout_seconds`` (600 s) in all, only while it still answers
  ``GET /models`` (checked then and every 15 s): it is alive, loading the model or reading a long
  prompt. An upstream that answers nothing is hung, and the request fails at ``timeout_seconds``.
  A time-out is not retried. Mid-stream, ``read_timeout_seconds`` (60 s) of silence fails it.
- **Retries**, up to ``max_retries`` (default 2) and only while nothing has been yielded: on a
  connection error, on 429, 408 and 5xx, and on a stream that breaks before its first event. The wait is ``retry-after-ms`` or
  ``Retry-After`` (seconds or an HTTP date) when given, else ``0.5 s·2ⁿ`` capped at 8 s, less up
  to 25 % jitter. A Retry-After over ``max_retry_after_seconds`` (30 s) gives up at once. Once an
  event has been yielded nothing is retried: the caller has seen part of the answer.
- **Errors** are :class:`UpstreamError`: 429 → ``rate_limit_exceeded``; a prompt too long for the
  model → ``invalid_prompt``; everything else → ``server_error``. The message names the upstream
  (base URL, model) and the reason: the HTTP status and the upstream's own message, "connection
  refused", "no first chunk within N s", "stream stalled for N s", "malformed chunk", "the stream
  was interrupted".
- **Learning**: a 400/422 naming a parameter the upstream does not take flips that dialect flag
  for (upstream, model) and resends at once, outside the retry budget (see ``dialect``).
- **Usage** comes from the upstream when it reports it (``stream_options.include_usage``), else is
  counted with tiktoken from the sent messages and tools and the received text, reasoning and
  tool calls.

Stop a stream early with ``aclose()`` on the iterator (or ``contextlib.aclosing``): that closes
the upstream connection at once, so a cancelled run stops the model.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import socket
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, Self, TypeVar

import httpx
import orjson

from assistd import metrics
from assistd.llm import tokens
from assistd.llm.config import Route, Upstream, UpstreamConfig
from assistd.llm.dialect import Body, Dialect, build_body, is_context_length_error, learn
from assistd.llm.errors import (
    UpstreamConnectionError,
    UpstreamContextLengthError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamRequestError,
    UpstreamServerError,
    UpstreamStatusError,
    UpstreamStreamError,
    UpstreamTimeoutError,
)
from assistd.llm.normalize import StreamNormalizer, completion_as_chunk
from assistd.llm.probe import PROBE_TIMEOUT_SECONDS, Probe, ProbeCache, probe_upstream
from assistd.llm.protocol import ChatRequest, StreamEvent, Usage
from assistd.llm.retry import backoff_delay, retry_after_seconds
from assistd.llm.sse import SSEDecoder, SSEEvent, split_payloads
from assistd.llm.transport import READ_TIMEOUT_EXTENSION, LeanTransport

__all__ = ["LLMClient", "ResolvedModel"]

log = logging.getLogger("assistd.llm")

T = TypeVar("T")

_MAX_ERROR_BODY = 64 * 1024
# While an upstream that answers GET /models is given more time for its first chunk, it is asked
# again this often (and a line is logged the first time).
_ALIVE_RECHECK_SECONDS = 15.0
_MAX_LEARNING = 6  # resends after a learned dialect change, per request
# Known context windows of OpenAI's models, used when the upstream's context_window is not set.
_KNOWN_WINDOWS: tuple[tuple[str, int], ...] = (
    ("gpt-4.1", 1_047_576),
    ("gpt-5", 400_000),
    ("gpt-4o", 128_000),
    ("chatgpt-4o", 128_000),
    ("gpt-4-turbo", 128_000),
    ("gpt-4-32k", 32_768),
    ("gpt-4", 8_192),
    ("gpt-3.5-turbo", 16_385),
    ("o1-mini", 128_000),
    ("o1", 200_000),
    ("o3", 200_000),
    ("o4-mini", 200_000),
)


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """Where a model name goes: the upstream, the name sent to it, and the route that matched (or None)."""

    upstream: Upstream
    model: str
    route: Route | None


class _Learned(Exception):
    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


POOL_SHARDS = 8  # small connection pools per upstream (see LLMClient._client)


@dataclass(slots=True)
class _Shard:
    client: httpx.AsyncClient
    busy: int = 0


class LLMClient:
    """Streams chat completions from the configured upstreams. One ``httpx.AsyncClient`` per (base URL, key)."""

    def __init__(self, config: UpstreamConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self._transport = transport
        self._clients: dict[tuple[str, str | None], list[_Shard]] = {}
        self._lean: LeanTransport | None = None  # plain-HTTP upstreams (see llm/transport.py)
        self._draining: set[asyncio.Task[None]] = set()  # finished responses read to their end
        self._dialects: dict[tuple[str, str], Dialect] = {}
        self._probes = ProbeCache()

    # -- routing ---------------------------------------------------------------------------------
    def resolve(self, model: str) -> ResolvedModel:
        upstream, sent, route = self.config.resolve(model)
        return ResolvedModel(upstream, sent, route)

    def route(self, model: str) -> Upstream:
        """The upstream that serves ``model``."""
        return self.config.resolve(model)[0]

    def context_window(self, model: str) -> int | None:
        """The model's context window: the upstream's setting, else OpenAI's published one, else None."""
        upstream, sent, _ = self.config.resolve(model)
        if upstream.context_window is not None:
            return upstream.context_window
        for name in (sent, model):
            bare = name.rsplit("/", 1)[-1].lower()
            for prefix, window in _KNOWN_WINDOWS:
                if bare == prefix or bare.startswith(prefix + "-"):
                    return window
        return None

    def upstreams(self) -> list[Upstream]:
        """Every distinct upstream the configuration can send to: the default first, then the routes'."""
        seen: dict[tuple[str, str | None], Upstream] = {}
        for upstream in (self.config.default, *(r.upstream for r in self.config.routes)):
            seen.setdefault((upstream.base_url, upstream.api_key), upstream)
        return list(seen.values())

    async def probe(
        self, upstream: Upstream, *, max_age: float | None = None, seconds: float = PROBE_TIMEOUT_SECONDS
    ) -> Probe:
        """``GET {base}/models`` on ``upstream`` (remembered for 10 s, or ``max_age``): what it lists,
        and whether it answers at all (within ``seconds``). Never raises for the upstream's faults."""

        async def make() -> Probe:
            shard = self._client(upstream)
            try:
                return await probe_upstream(shard.client, upstream.headers, seconds)
            finally:
                shard.busy -= 1

        return await self._probes.get((upstream.base_url, upstream.api_key), make, max_age=max_age)

    def dialect(self, model: str) -> Dialect:
        """What the upstream serving ``model`` takes, as learned so far (a live object)."""
        upstream, sent, _ = self.config.resolve(model)
        return self._dialect(upstream, sent)

    def _dialect(self, upstream: Upstream, model: str) -> Dialect:
        key = (upstream.base_url, model)
        dialect = self._dialects.get(key)
        if dialect is None:
            dialect = self._dialects[key] = Dialect.of(upstream)
        return dialect

    def _client(self, upstream: Upstream) -> _Shard:
        """The least busy of the upstream's clients (the caller releases it).

        Plain-HTTP upstreams go through the lean transport (llm/transport.py), one pool for all.
        For https ones, httpx's own: httpcore's pool scans every connection of a pool, checking
        each idle one with a syscall, whenever a request starts or ends (with 50 streams in flight
        that cost more CPU than the streams themselves), so they get several small pools instead of
        one big one."""
        key = (upstream.base_url, upstream.api_key)
        shards = self._clients.get(key)
        if shards is None:
            headers = {"Authorization": f"Bearer {upstream.api_key}"} if upstream.api_key else {}
            tls = httpx.create_ssl_context()  # loading the CA bundle takes ~30 ms: once per upstream
            transport = self._transport
            if transport is None and upstream.base_url.startswith("http://"):
                if self._lean is None:
                    self._lean = LeanTransport()
                transport = self._lean
            shards = self._clients[key] = [
                _Shard(
                    httpx.AsyncClient(
                        base_url=upstream.base_url + "/",
                        headers=headers,
                        transport=transport,
                        limits=httpx.Limits(max_connections=None, max_keepalive_connections=16),
                        follow_redirects=False,
                        verify=tls,
                    )
                )
                for _ in range(1 if transport is self._lean and transport is not None else POOL_SHARDS)
            ]
        shard = min(shards, key=lambda sh: sh.busy)
        shard.busy += 1
        return shard

    async def aclose(self) -> None:
        for task in list(self._draining):
            task.cancel()
        shards, self._clients = [sh for pool in self._clients.values() for sh in pool], {}
        for shard in shards:
            await shard.client.aclose()
        if self._lean is not None:
            await self._lean.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- streaming -------------------------------------------------------------------------------
    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Stream ``request`` from its upstream: text, reasoning and tool-call events, then Finish, then Usage.

        Raises :class:`UpstreamError` (see the module docstring for when it retries first).
        """
        resolved = self.resolve(request.model)
        upstream, model = resolved.upstream, resolved.model
        dialect = self._dialect(upstream, model)
        where = f"upstream {upstream.display_url} (model {model!r})"
        shard = self._client(upstream)
        call = metrics.upstream_call(upstream.display_url, model)  # recorded once, when the call ends
        outcome = "cancelled"  # closed early (a cancelled run) unless it ends another way
        try:
            async for event in self._stream(request, upstream, model, dialect, where, shard.client):
                if call.ttft is None:
                    call.first()
                if type(event) is Usage:
                    call.usage, outcome = event, "ok"
                yield event
        except UpstreamError as exc:
            outcome = exc.code
            raise
        except Exception:
            outcome = "server_error"
            raise
        finally:
            shard.busy -= 1
            call.end(outcome)

    async def _stream(
        self,
        request: ChatRequest,
        upstream: Upstream,
        model: str,
        dialect: Dialect,
        where: str,
        client: httpx.AsyncClient,
    ) -> AsyncIterator[StreamEvent]:
        failures = 0
        learned: list[str] = []
        while True:
            body = build_body(request, model, dialect, where=where)
            normalizer = StreamNormalizer(where=where, single_tool_call=body.single_tool_call)
            emitted = False
            try:
                attempt = self._attempt(client, upstream, body, normalizer, dialect, learned, where)
                async with contextlib.aclosing(attempt):  # a caller that stops early closes the response now
                    async for event in attempt:
                        emitted = True
                        yield event
            except _Learned as exc:
                learned.append(exc.what)
                log.warning("%s does not take %s: resending without it (remembered)", where, exc.what)
                continue
            except UpstreamError as exc:
                if emitted:
                    exc.partial = True
                    exc.retryable = False
                    exc.with_message(f"{exc.message} (the stream was interrupted after output had started)")
                    raise
                delay = self._retry_delay(exc, upstream, failures)
                if delay is None:
                    if failures:
                        exc.with_message(f"{exc.message} (gave up after {failures + 1} attempts)")
                    raise
                failures += 1
                metrics.upstream_retry(upstream.display_url)
                log.warning(
                    "%s (retrying in %.2f s, retry %d of %d)", exc.message, delay, failures, upstream.max_retries
                )
                await asyncio.sleep(delay)
                continue
            yield await self._usage(request, body, normalizer)
            return

    @staticmethod
    def _retry_delay(exc: UpstreamError, upstream: Upstream, failures: int) -> float | None:
        """Seconds to wait before the next attempt, or None to give up (raising ``exc``, maybe reworded)."""
        if not exc.retryable or failures >= upstream.max_retries:
            return None
        retry_after = exc.retry_after if isinstance(exc, UpstreamStatusError) else None
        if retry_after is not None:
            if retry_after > upstream.max_retry_after_seconds:
                exc.with_message(
                    f"{exc.message} (it asks to retry after {retry_after:g} s, "
                    f"longer than the {upstream.max_retry_after_seconds:g} s we wait)"
                )
                return None
            return retry_after
        return backoff_delay(failures, base=upstream.backoff_base_seconds, cap=upstream.backoff_max_seconds)

    async def _usage(self, request: ChatRequest, body: Body, normalizer: StreamNormalizer) -> Usage:
        reported = normalizer.usage or {}

        def number(key: str) -> int | None:
            value = reported.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

        prompt, completion = number("prompt_tokens"), number("completion_tokens")
        if prompt is not None and completion is not None:
            total = number("total_tokens")
            return Usage(prompt, completion, total if total is not None else prompt + completion)

        def count() -> tuple[int, int]:
            # tiktoken's first load takes ~0.3 s and long prompts take a while: off the event loop
            p = prompt
            if p is None:
                p = tokens.count_messages(body.json["messages"], request.model, body.json.get("tools"))
            c = completion
            if c is None:
                c = tokens.count_text("".join(normalizer.completion_parts), request.model)
            return p, c

        p, c = await asyncio.to_thread(count)
        return Usage(p, c, p + c)

    async def _attempt(
        self,
        client: httpx.AsyncClient,
        upstream: Upstream,
        body: Body,
        normalizer: StreamNormalizer,
        dialect: Dialect,
        learned: list[str],
        where: str,
    ) -> AsyncGenerator[StreamEvent, None]:
        """One HTTP exchange: events as they come, ending with Finish. Raises UpstreamError or _Learned."""
        connect = upstream.connect_timeout_seconds
        request = client.build_request(
            "POST",
            "chat/completions",
            content=orjson.dumps(body.json),
            headers={"content-type": "application/json", "accept": "text/event-stream", **upstream.headers},
            timeout=httpx.Timeout(connect=connect, read=None, write=connect, pool=connect),
        )
        first = _FirstChunkClock(self, upstream, where)
        try:
            response = await first.wait(client.send(request, stream=True))
        except TimeoutError:
            raise first.error("no response") from None
        except httpx.ConnectTimeout:
            raise UpstreamConnectionError(
                f"{where}: timed out connecting (no connection within {connect:g} s)", upstream=upstream.base_url
            ) from None
        except httpx.TransportError as exc:
            raise UpstreamConnectionError(
                f"{where}: {describe_transport_error(exc)}", upstream=upstream.base_url
            ) from exc
        try:
            if not 200 <= response.status_code < 300:
                raise await self._status_error(response, upstream, body, dialect, learned, where)
            content_type = response.headers.get("content-type", "")
            if "json" in content_type and "event-stream" not in content_type:
                for event in await self._whole_body(response, upstream, normalizer, first, where):
                    yield event
                return
            decoder = SSEDecoder()
            lines = LineReader(response.aiter_bytes())
            got_data = False
            # The lean transport (plain HTTP) times the silence between chunks itself, with one
            # timer per stream instead of one per chunk; with httpx's transport, a timer per read.
            set_read_timeout = response.extensions.get(READ_TIMEOUT_EXTENSION)
            transport_times = False
            while not normalizer.done:
                try:
                    line = lines.next_nowait()  # lines already received: no read, no timer
                    if line is None:
                        if transport_times:
                            line = await lines.next()
                        elif got_data:
                            if set_read_timeout is not None:
                                set_read_timeout(upstream.read_timeout_seconds)
                                transport_times = True
                                line = await lines.next()
                            else:
                                async with asyncio.timeout(upstream.read_timeout_seconds):
                                    line = await lines.next()
                        else:
                            line = await first.wait(lines.next())
                except StopAsyncIteration:
                    break
                except (TimeoutError, httpx.ReadTimeout):
                    if got_data:
                        raise UpstreamStreamError(
                            f"{where}: stream stalled for {upstream.read_timeout_seconds:g} s",
                            upstream=upstream.base_url,
                        ) from None
                    raise first.error("no first chunk") from None
                except httpx.TransportError as exc:
                    raise UpstreamStreamError(
                        f"{where}: the stream was interrupted ({describe_transport_error(exc)})",
                        upstream=upstream.base_url,
                    ) from exc
                sse = decoder.feed(line)
                if sse is not None:
                    got_data = True
                    for event in self._handle(sse, normalizer, upstream, where):
                        yield event
            tail = decoder.flush()
            if tail is not None and not normalizer.done:
                for event in self._handle(tail, normalizer, upstream, where):
                    yield event
            if not normalizer.finished:
                raise UpstreamStreamError(
                    f"{where}: the stream was interrupted (it ended without a finish_reason or [DONE])",
                    upstream=upstream.base_url,
                )
            try:
                events = normalizer.close()
            except UpstreamError as exc:
                exc.upstream = upstream.base_url
                raise
            for event in events:
                yield event
        finally:
            if normalizer.done and not response.is_closed:
                # Read the little that follows [DONE] (chunked encoding's end) in the background, so
                # httpx returns the connection to its pool instead of closing it (a new TCP
                # connection per run otherwise), without delaying the run.
                task = asyncio.create_task(_drain_and_close(lines, response))
                self._draining.add(task)
                task.add_done_callback(self._draining.discard)
            else:
                await response.aclose()

    @staticmethod
    def _handle(sse: SSEEvent, normalizer: StreamNormalizer, upstream: Upstream, where: str) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for payload in split_payloads(sse.data):
            text = payload.strip()
            if text == "[DONE]":
                normalizer.done = True
                break
            if not text:
                continue
            try:
                chunk = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise UpstreamStreamError(
                    f"{where}: malformed chunk in the stream: {_clip(text, 120)!r}",
                    upstream=upstream.base_url,
                    retryable=False,
                ) from None
            if sse.event == "error" and isinstance(chunk, Mapping) and "error" not in chunk:
                chunk = {"error": chunk}
            try:
                out.extend(normalizer.feed(chunk))
            except UpstreamError as exc:
                exc.upstream = upstream.base_url
                raise
        return out

    async def _whole_body(
        self,
        response: httpx.Response,
        upstream: Upstream,
        normalizer: StreamNormalizer,
        first: _FirstChunkClock,
        where: str,
    ) -> list[StreamEvent]:
        """A server that ignored ``stream: true`` and sent one ``chat.completion``: its events."""
        try:
            raw = await first.wait(response.aread())
        except TimeoutError:
            raise first.error("no complete response") from None
        except httpx.TransportError as exc:
            raise UpstreamStreamError(
                f"{where}: the response was interrupted ({describe_transport_error(exc)})", upstream=upstream.base_url
            ) from exc
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamStreamError(
                f"{where}: malformed response body: {_clip(raw.decode(errors='replace'), 120)!r}",
                upstream=upstream.base_url,
                retryable=False,
            ) from None
        events = normalizer.feed(completion_as_chunk(data))
        normalizer.done = True
        return events + normalizer.close()

    async def _status_error(
        self,
        response: httpx.Response,
        upstream: Upstream,
        body: Body,
        dialect: Dialect,
        learned: list[str],
        where: str,
    ) -> UpstreamError:
        """The error for a non-2xx answer; raises _Learned instead when it taught us a dialect flag."""
        status = response.status_code
        raw = bytearray()
        try:
            async with asyncio.timeout(upstream.connect_timeout_seconds):
                async for piece in response.aiter_bytes():
                    raw += piece
                    if len(raw) >= _MAX_ERROR_BODY:
                        break
        except (TimeoutError, httpx.TransportError):
            pass
        message, param, code = _error_fields(bytes(raw))
        reason = f"HTTP {status}" + (f": {message}" if message else f" {response.reason_phrase}".rstrip())
        text = f"{where}: {reason}"
        retry_after = retry_after_seconds(response.headers)
        kw: dict[str, Any] = {"upstream": upstream.base_url, "status": status}
        error: UpstreamStatusError
        if status == 429:
            error = UpstreamRateLimitError(text, **kw)
        elif status >= 500 or status == 408:
            error = UpstreamServerError(text, **kw)
        else:
            if status in (400, 422) and message and len(learned) < _MAX_LEARNING:
                what = learn(dialect, body.json, message, param, code, skip=learned)
                if what is not None:
                    raise _Learned(what)
            if is_context_length_error(message, code):
                error = UpstreamContextLengthError(text, **kw)
            else:
                error = UpstreamRequestError(text, **kw)
        error.retry_after = retry_after
        return error


class _FirstChunkClock:
    """When an upstream's first chunk is due (see the module docstring's time-outs)."""

    __slots__ = ("client", "deadline", "limit", "started", "upstream", "waited_alive", "where")

    def __init__(self, client: LLMClient, upstream: Upstream, where: str) -> None:
        self.client, self.upstream, self.where = client, upstream, where
        self.started = asyncio.get_running_loop().time()
        self.deadline = self.started + upstream.timeout_seconds
        self.limit = self.started + max(upstream.load_timeout_seconds, upstream.timeout_seconds)
        self.waited_alive = False  # the upstream was given more time because it answers GET /models

    async def wait(self, step: Awaitable[T]) -> T:
        """``step``'s result, or TimeoutError once the first chunk is overdue (``step`` is then cancelled)."""
        loop = asyncio.get_running_loop()
        remaining = self.deadline - loop.time()
        task: asyncio.Future[T] = asyncio.ensure_future(step)
        try:
            while True:
                done, _ = await asyncio.wait((task,), timeout=max(remaining, 0.0))
                if done:
                    return task.result()
                if not await self._still_alive(loop.time()):
                    raise TimeoutError
                self.deadline = min(self.limit, loop.time() + _ALIVE_RECHECK_SECONDS)
                remaining = self.deadline - loop.time()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def _still_alive(self, at: float) -> bool:
        if at >= self.limit:
            return False
        probe = await self.client.probe(
            self.upstream,
            max_age=_ALIVE_RECHECK_SECONDS / 2,
            seconds=min(PROBE_TIMEOUT_SECONDS, self.upstream.timeout_seconds),
        )
        if not probe.answered:
            return False
        if not self.waited_alive:
            self.waited_alive = True
            log.info(
                "%s: no first chunk after %.0f s, but it answers GET /models (loading the model or reading a "
                "long prompt?): waiting up to %g s in all (load_timeout_seconds)",
                self.where,
                at - self.started,
                self.upstream.load_timeout_seconds,
            )
        return True

    def error(self, what: str) -> UpstreamTimeoutError:
        waited = asyncio.get_running_loop().time() - self.started
        if self.waited_alive:
            reason = (
                f"timed out ({what} within {waited:.0f} s; it answered GET /models, so it was given up to "
                f"load_timeout_seconds = {self.upstream.load_timeout_seconds:g} s)"
            )
        else:
            reason = (
                f"timed out ({what} within {self.upstream.timeout_seconds:g} s, and it does not answer "
                "GET /models either: is it hung or overloaded?)"
            )
        return UpstreamTimeoutError(f"{self.where}: {reason}", upstream=self.upstream.base_url)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error_fields(raw: bytes) -> tuple[str, str | None, str | None]:
    """``(message, param, code)`` of an error body: OpenAI's envelope, Ollama's, FastAPI's, or text."""
    text = raw.decode(errors="replace").strip()
    if not text:
        return "", None, None
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _clip(" ".join(text.split()), 300), None, None
    if isinstance(data, list) and data and isinstance(data[0], Mapping):
        data = data[0]  # Gemini wraps its error in a list
    if not isinstance(data, Mapping):
        return _clip(text, 300), None, None
    error = data.get("error", data)
    if isinstance(error, str):
        return _clip(error, 300), None, None
    if isinstance(error, Mapping):
        message = error.get("message") or error.get("detail") or error.get("msg")
        if message is None and "detail" in data:
            message = data["detail"]
        if not isinstance(message, str):
            message = orjson.dumps(message).decode() if message is not None else _clip(text, 300)
        param = error.get("param")
        code = error.get("code")
        return (
            _clip(message, 300),
            param if isinstance(param, str) else None,
            code if isinstance(code, str) else None,
        )
    return _clip(text, 300), None, None


class LineReader:
    """Lines of a byte stream (``\n``, ``\r\n`` or ``\r`` endings), one network read per chunk:
    every line a chunk holds is handed out without another read (or another timer per line, as
    ``aiter_lines`` would cost), which matters with many streams of small SSE events."""

    __slots__ = ("_buf", "_chunks", "_lines")

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self._lines: collections.deque[str] = collections.deque()

    def next_nowait(self) -> str | None:
        return self._lines.popleft() if self._lines else None

    async def next(self) -> str:
        while not self._lines:
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                if not self._buf:
                    raise
                tail, self._buf = self._buf, b""
                return tail.decode("utf-8", "replace").rstrip("\r")
            self._split(self._buf + chunk)
        return self._lines.popleft()

    def _split(self, buf: bytes) -> None:
        if b"\r" in buf:
            # keep a final \r back: its \n may come with the next chunk
            held = buf.endswith(b"\r")
            buf = (buf[:-1] if held else buf).replace(b"\r\n", b"\n").replace(b"\r", b"\n") + (b"\r" if held else b"")
        *complete, self._buf = buf.split(b"\n")
        self._lines.extend(line.decode("utf-8", "replace") for line in complete)


async def _drain_and_close(lines: LineReader, response: httpx.Response, seconds: float = 1.0) -> None:
    """Read what little follows ``[DONE]``, then close (reusing the connection if it ended)."""
    try:
        with contextlib.suppress(StopAsyncIteration, TimeoutError, httpx.TransportError):
            async with asyncio.timeout(seconds):
                for _ in range(16):
                    if lines.next_nowait() is None:
                        await lines.next()
    finally:
        await response.aclose()


def describe_transport_error(exc: BaseException) -> str:
    """A short human reason for an httpx transport error: "connection refused", "host not found", ..."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError) or getattr(current, "errno", None) == errno.ECONNREFUSED:
            return "connection refused"
        if isinstance(current, socket.gaierror):
            return f"host not found ({current.strerror or current})"
        if isinstance(current, ssl.SSLError):
            return f"TLS error ({current.reason or current})"
        if isinstance(current, ConnectionResetError):
            return "connection reset"
        current = current.__cause__ or current.__context__
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"connection closed by the upstream ({exc})" if str(exc) else "connection closed by the upstream"
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
