"""A lean HTTP/1.1 transport for httpx: asyncio protocols and httptools' C parser (llhttp).

Used for plain-``http://`` upstreams (Ollama, vLLM, llama.cpp, LM Studio on the same host or
network), where a busy server reads thousands of small SSE chunks a second. httpx's own transport
reads each chunk through httpcore's connection pool, its anyio backend (a cancel scope per read)
and h11's pure-Python chunked decoder: about half of the executor's CPU when 100 streams deliver
2,000 chunks a second. Here a chunk costs one ``data_received`` call, the C parser and one future.

What it does: keep-alive connections (a LIFO pool per host and port, idle ones dropped after
``keepalive_expiry`` seconds or as soon as the server closes them), ``Content-Length``, chunked and
read-until-close bodies, httpx's ``connect``, ``write``, ``read`` and ``pool`` timeouts, and
httpx's exceptions (a refused connection is an ``httpx.ConnectError`` caused by the OSError), so
the client above it cannot tell the difference. What it does not: TLS, proxies, HTTP/2 and
``Expect: 100-continue``; ``https://`` upstreams keep httpx's default transport, and so does any
URL an ``HTTP_PROXY``-style variable applies to (httpx mounts its proxy transport for those).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, Final

import httptools
import httpx

__all__ = ["READ_TIMEOUT_EXTENSION", "LeanTransport"]

# A response extension: a callable that sets the longest silence between body chunks from now on
# (``_Connection.set_read_timeout``), for callers whose first chunk may take longer than later ones.
READ_TIMEOUT_EXTENSION: Final = "assistd.set_read_timeout"

HIGH_WATER: Final = 256 * 1024  # body bytes buffered before reading from the socket pauses
MAX_IDLE_PER_HOST: Final = 64


class _Connection(asyncio.Protocol):
    """One TCP connection and the response being read on it (httptools calls the ``on_*`` methods)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self._parser: Any = None
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.keep_alive = False
        self._until_close = False  # a body without Content-Length or chunked encoding: it ends at EOF
        self.headers_done = False
        self.complete = False
        self.closed = False
        self._error: Exception | None = None
        self._body: list[bytes] = []
        self._buffered = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self.idle_since = 0.0
        self.stall: float | None = None  # longest silence between body bytes (set_read_timeout)
        self._last_data = 0.0
        self._stall_timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._last_data = self._loop.time()
        if self._parser is None:  # bytes while idle in the pool: not HTTP we can trust
            self._fail(httpx.RemoteProtocolError("the upstream sent data without a request"))
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the upstream switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed HTTP response ({exc})"))
        if self._buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.headers_done and self._until_close and not self.complete and self._error is None:
            self.complete = True  # the body ends where the connection does
        elif not self.complete and self._error is None and self._parser is not None:
            reason = f" ({exc})" if exc is not None else ""
            what = "sending the complete message body" if self.headers_done else "sending a response"
            self._error = httpx.RemoteProtocolError(f"peer closed connection without {what}{reason}")
            if exc is not None:
                self._error.__cause__ = exc
        self._wake()

    # -- httptools callbacks ---------------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        self.status = parser.get_status_code()
        self.keep_alive = parser.should_keep_alive()
        names = {name.lower() for name, _ in self.headers}
        self._until_close = (
            b"content-length" not in names and b"transfer-encoding" not in names and self.status not in (204, 304)
        )
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._buffered += len(body)

    def on_message_complete(self) -> None:
        self.complete = True

    # -- used by the transport -------------------------------------------------------------------
    def start(self) -> None:
        """Ready the connection for a new response."""
        self._parser = httptools.HttpResponseParser(self)
        self.status, self.headers, self.keep_alive, self._until_close = 0, [], False, False
        self.headers_done = self.complete = False
        self._body, self._buffered = [], 0
        self.stall = None

    def finish(self) -> None:
        """The response was read to its end and the connection may carry another."""
        self._parser = None
        self._disarm()

    def set_read_timeout(self, seconds: float | None) -> None:
        """From now on, fail a read with httpx.ReadTimeout after ``seconds`` without body bytes,
        counted from the last bytes received: what a timeout around every read would do, for
        the cost of one timer per ``seconds`` instead of one per chunk."""
        self.stall = seconds
        self._last_data = self._loop.time()
        self._disarm()

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self._error is None and not self._body

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True
        self._disarm()

    async def wait_headers(self) -> None:
        while not self.headers_done:
            await self._wait()

    async def read(self) -> bytes | None:
        """The body bytes received since the last call (waiting for some), or None at its end."""
        while True:
            if self._body:
                data = self._body[0] if len(self._body) == 1 else b"".join(self._body)
                self._body.clear()
                self._buffered = 0
                if self._paused and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                return data
            if self.complete:
                return None
            await self._wait()

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        if self.closed:
            raise httpx.RemoteProtocolError("peer closed connection without sending a response")
        if self.stall is not None and self._stall_timer is None:
            self._stall_timer = self._loop.call_at(self._last_data + self.stall, self._on_stall)
        waiter = self._waiter = self._loop.create_future()
        try:
            await waiter
        finally:
            self._waiter = None
        if self._error is not None:
            raise self._error

    def _on_stall(self) -> None:
        """The silence timer: armed once per wait that has none, moved only when it fires early
        (no timer per chunk; a stall is noticed within the timer's own lateness)."""
        self._stall_timer = None
        if self._waiter is None or self._waiter.done() or self.stall is None:
            return  # nobody waits: the next wait arms it again
        due = self._last_data + self.stall
        if self._loop.time() >= due:
            self._fail(httpx.ReadTimeout(f"no data for {self.stall:g} s"))
            self._wake()
        else:
            self._stall_timer = self._loop.call_at(due, self._on_stall)

    def _disarm(self) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error
        self.close()


class _Body(httpx.AsyncByteStream):
    def __init__(
        self, owner: LeanTransport, key: tuple[str, int], conn: _Connection, read_timeout: float | None
    ) -> None:
        self._owner = owner
        self._key = key
        self._conn = conn
        self._read_timeout = read_timeout
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn, timeout = self._conn, self._read_timeout
        while True:
            if timeout is None:
                data = await conn.read()
            else:
                try:
                    async with asyncio.timeout(timeout):
                        data = await conn.read()
                except TimeoutError:
                    raise httpx.ReadTimeout(f"no data for {timeout:g} s") from None
            if data is None:
                return
            yield data

    async def aclose(self) -> None:
        if not self._released:
            self._released = True
            self._owner._release(self._key, self._conn)


class LeanTransport(httpx.AsyncBaseTransport):
    """httpx transport for ``http://`` URLs (see the module docstring)."""

    def __init__(self, *, keepalive_expiry: float = 4.0) -> None:
        # 4 s: under the 5 s after which uvicorn (and so many model servers) closes idle connections
        self.keepalive_expiry = keepalive_expiry
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self.connections_opened = 0  # for tests and curiosity

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http":
            raise httpx.UnsupportedProtocol(f"the lean transport speaks plain HTTP only, not {url.scheme}://")
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        key = (url.host, url.port or 80)
        body = b"".join([part async for part in request.stream])  # type: ignore[union-attr]
        head = [request.method.encode("ascii") + b" " + url.raw_path + b" HTTP/1.1"]
        sized = False
        for name, value in request.headers.raw:
            lowered = name.lower()
            if lowered == b"transfer-encoding":
                continue  # the body is sent whole, with its length
            sized = sized or lowered == b"content-length"
            head.append(name + b": " + value)
        if not sized and (body or request.method not in ("GET", "HEAD", "DELETE", "OPTIONS")):
            head.append(b"Content-Length: " + str(len(body)).encode("ascii"))
        message = b"\r\n".join(head) + b"\r\n\r\n" + body

        conn = self._take(key) or await self._connect(key, timeouts.get("connect"))
        conn.start()
        try:
            assert conn.transport is not None
            conn.transport.write(message)
            read_timeout = timeouts.get("read")
            if read_timeout is None:
                await conn.wait_headers()
            else:
                try:
                    async with asyncio.timeout(read_timeout):
                        await conn.wait_headers()
                except TimeoutError:
                    raise httpx.ReadTimeout(f"no response within {read_timeout:g} s") from None
        except BaseException:
            conn.close()
            raise
        return httpx.Response(
            conn.status,
            headers=conn.headers,
            stream=_Body(self, key, conn, read_timeout),
            extensions={"http_version": b"HTTP/1.1", READ_TIMEOUT_EXTENSION: conn.set_read_timeout},
        )

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    # -- the pool --------------------------------------------------------------------------------
    def _take(self, key: tuple[str, int]) -> _Connection | None:
        conns = self._idle.get(key)
        if not conns:
            return None
        now = time.monotonic()
        while conns:
            conn = conns.pop()
            if not conn.closed and now - conn.idle_since < self.keepalive_expiry:
                return conn
            conn.close()
        return None

    def _release(self, key: tuple[str, int], conn: _Connection) -> None:
        if not conn.reusable():
            conn.close()
            return
        conn.finish()
        conn.idle_since = time.monotonic()
        conns = self._idle.setdefault(key, [])
        if len(conns) >= MAX_IDLE_PER_HOST:
            conns.pop(0).close()
        conns.append(conn)

    async def _connect(self, key: tuple[str, int], connect_timeout: float | None) -> _Connection:
        loop = asyncio.get_running_loop()
        host, port = key
        try:
            async with asyncio.timeout(connect_timeout):
                _, conn = await loop.create_connection(lambda: _Connection(loop), host, port)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"no connection to {host}:{port} within {connect_timeout:g} s") from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        self.connections_opened += 1
        return conn
