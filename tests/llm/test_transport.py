"""The lean HTTP/1.1 transport (llm/transport.py) against raw loopback servers that send exact bytes.

Each server reads one request at a time (head, then Content-Length bytes of body) and answers with
what the test's ``respond`` returns or writes, so framing, keep-alive and every way a connection can
go wrong are under the test's control.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from assistd.llm import LLMClient, Upstream, UpstreamConfig
from assistd.llm.protocol import ChatRequest, Finish, TextDelta
from assistd.llm.transport import READ_TIMEOUT_EXTENSION, LeanTransport

Respond = Callable[[bytes, bytes, asyncio.StreamWriter], Awaitable[bool]]  # -> keep the connection open


@dataclass
class RawServer:
    respond: Respond
    connections: int = 0
    requests: list[tuple[bytes, bytes]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                self.requests.append((head, body))
                if not await self.respond(head, body, writer):
                    return
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


@contextlib.asynccontextmanager
async def raw_server(respond: Respond) -> AsyncIterator[RawServer]:
    server = RawServer(respond)
    srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = srv.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        srv.close()


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


async def fixed(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")
    return True


async def test_a_request_goes_out_whole_and_keep_alive_reuses_one_connection() -> None:
    async with raw_server(fixed) as srv, httpx.AsyncClient(transport=LeanTransport(), base_url=srv.url) as client:
        for n in range(3):
            response = await client.post("/v1/chat/completions", content=b'{"n": %d}' % n, headers={"x-k": "v"})
            assert (response.status_code, response.text) == (200, "hello")
            assert response.headers["content-type"] == "text/plain"
    assert srv.connections == 1
    head, body = srv.requests[2]
    assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"\r\nx-k: v\r\n" in head and b"\r\nHost: 127.0.0.1:" in head
    assert body == b'{"n": 2}'


async def test_chunked_bodies_arrive_as_they_are_sent() -> None:
    release = asyncio.Event()

    async def respond(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(b"b\r\ndata: one\n\n\r\n")
        await release.wait()  # the client must get the first event before the rest exists
        writer.write(b"b\r\ndata: two\n\n\r\n0\r\n\r\n")
        return True

    async with raw_server(respond) as srv, httpx.AsyncClient(transport=LeanTransport(), base_url=srv.url) as client:
        async with client.stream("POST", "/x", content=b"{}") as response:
            parts = response.aiter_bytes()
            assert await anext(parts) == b"data: one\n\n"
            release.set()
            assert b"".join([p async for p in parts]) == b"data: two\n\n"
        again = await client.post("/x", content=b"{}")
        assert again.text == "data: one\n\ndata: two\n\n"
    assert srv.connections == 1


async def test_a_body_without_length_ends_with_the_connection() -> None:
    async def respond(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
        return False

    async with raw_server(respond) as srv, httpx.AsyncClient(transport=LeanTransport(), base_url=srv.url) as client:
        assert (await client.post("/x", content=b"{}")).text == "all of it"
        assert (await client.post("/x", content=b"{}")).text == "all of it"
    assert srv.connections == 2  # not reused: the server closed it


async def test_a_big_body_is_read_whole_through_flow_control() -> None:
    blob = bytes(range(256)) * 8192  # 2 MiB, eight times the transport's buffer

    async def respond(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(blob) + blob)
        await writer.drain()
        return True

    async with raw_server(respond) as srv, httpx.AsyncClient(transport=LeanTransport(), base_url=srv.url) as client:
        async with client.stream("GET", "/big") as response:
            got = bytearray()
            async for part in response.aiter_raw():
                got += part
                await asyncio.sleep(0)  # a slow reader
        assert bytes(got) == blob
        assert (await client.get("/big")).content == blob
    assert srv.connections == 1


async def test_a_connection_dropped_mid_body_is_a_protocol_error_and_is_not_reused() -> None:
    async def respond(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        if len(srv.requests) == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
            return False
        return await fixed(head, body, writer)

    async with raw_server(respond) as srv, httpx.AsyncClient(transport=LeanTransport(), base_url=srv.url) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending the complete message body"):
            await client.post("/x", content=b"{}")
        assert (await client.post("/x", content=b"{}")).text == "hello"
    assert srv.connections == 2


async def test_no_response_at_all_is_a_protocol_error() -> None:
    async def respond(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        return False

    async with raw_server(respond) as srv, httpx.AsyncClient(transport=LeanTransport(), base_url=srv.url) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await client.post("/x", content=b"{}")


async def test_a_malformed_response_is_a_protocol_error() -> None:
    async def respond(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 two hundred\r\n\r\n")
        return True

    async with raw_server(respond) as srv, httpx.AsyncClient(transport=LeanTransport(), base_url=srv.url) as client:
        with pytest.raises(httpx.RemoteProtocolError, match="malformed HTTP response"):
            await client.post("/x", content=b"{}")


async def test_an_idle_connection_the_server_closed_is_not_used_again() -> None:
    async def respond(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        await fixed(head, body, writer)
        await writer.drain()
        return False  # keep-alive announced, then closed while idle

    async with raw_server(respond) as srv, httpx.AsyncClient(transport=LeanTransport(), base_url=srv.url) as client:
        assert (await client.post("/x", content=b"{}")).text == "hello"
        await asyncio.sleep(0.05)  # the FIN arrives
        assert (await client.post("/x", content=b"{}")).text == "hello"
    assert srv.connections == 2


async def test_idle_connections_expire() -> None:
    async with raw_server(fixed) as srv:
        transport = LeanTransport(keepalive_expiry=0.05)
        async with httpx.AsyncClient(transport=transport, base_url=srv.url) as client:
            await client.post("/x", content=b"{}")
            await client.post("/x", content=b"{}")
            await asyncio.sleep(0.1)
            await client.post("/x", content=b"{}")
    assert srv.connections == 2


async def test_a_stream_closed_early_closes_its_connection() -> None:
    async def respond(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        if len(srv.requests) > 1:
            return await fixed(head, body, writer)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        return True  # the rest never comes

    async with raw_server(respond) as srv, httpx.AsyncClient(transport=LeanTransport(), base_url=srv.url) as client:
        async with client.stream("POST", "/x", content=b"{}") as response:
            async for part in response.aiter_bytes():
                assert part == b"first"
                break
        assert (await client.post("/x", content=b"{}")).text == "hello"
    assert srv.connections == 2  # the half-read stream's connection was not handed out again


async def test_read_and_connect_failures_are_httpx_errors() -> None:
    async def silent(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    async with raw_server(silent) as srv, httpx.AsyncClient(transport=LeanTransport(), base_url=srv.url) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post("/x", content=b"{}", timeout=httpx.Timeout(5, read=0.1))
    # a port nothing listens on (the server above is gone)
    async with httpx.AsyncClient(transport=LeanTransport(), base_url=srv.url) as client:
        with pytest.raises(httpx.ConnectError) as info:
            await client.post("/x", content=b"{}")
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


async def test_https_is_not_its_business() -> None:
    async with httpx.AsyncClient(transport=LeanTransport()) as client:
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get("https://127.0.0.1:1/")


async def test_the_model_client_streams_many_runs_over_one_connection() -> None:
    """LLMClient on a plain-HTTP upstream: every run's stream parsed, one keep-alive connection."""

    async def sse(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        for word in (b"Hel", b"lo"):
            event = b'data: {"choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n' % word
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            await writer.drain()
        done = (
            b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],'
            b'"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\ndata: [DONE]\n\n'
        )
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done))
        return True

    async with raw_server(sse) as srv, LLMClient(UpstreamConfig(default=Upstream(base_url=srv.url + "/v1"))) as llm:
        for _ in range(5):
            request = ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}])
            events = [e async for e in llm.stream(request)]
            assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello"
            assert [e.reason for e in events if isinstance(e, Finish)] == ["stop"]
            await asyncio.sleep(0.01)  # the drain of the previous response hands the connection back
    assert srv.connections == 1
    assert all(head.startswith(b"POST /v1/chat/completions HTTP/1.1") for head, _ in srv.requests)


async def test_the_read_timeout_extension_counts_silence_between_chunks() -> None:
    async def respond(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(10):  # 500 ms of chunks, 50 ms apart
            writer.write(b"1\r\nx\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)
        await asyncio.sleep(5)  # then silence
        return False

    got = b""
    t = 0.0

    async def read_all(response: httpx.Response) -> None:
        nonlocal got, t
        async for part in response.aiter_raw():
            got += part
            t = asyncio.get_running_loop().time()

    async with (
        raw_server(respond) as srv,
        httpx.AsyncClient(transport=LeanTransport(), base_url=srv.url) as client,
        client.stream("POST", "/x", content=b"{}") as response,
    ):
        response.extensions[READ_TIMEOUT_EXTENSION](0.2)
        with pytest.raises(httpx.ReadTimeout, match=r"no data for 0\.2 s"):
            await read_all(response)
        silence = asyncio.get_running_loop().time() - t
    assert got == b"x" * 10  # the steady chunks never timed out
    assert 0.19 <= silence < 1.0
