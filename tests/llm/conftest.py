"""One scripted fake upstream on a real loopback port for the folder; each test loads its own script.

These tests need no database. Clients are built with small backoffs so retry tests stay fast.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from assistd.fakellm import FakeLLM
from assistd.llm import LLMClient, Route, Upstream, UpstreamConfig

FAST = {"backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05}


@pytest.fixture(scope="session")
async def fake_server() -> AsyncIterator[FakeLLM]:
    async with FakeLLM() as llm:
        yield llm


@pytest.fixture
async def fake(fake_server: FakeLLM) -> FakeLLM:
    """The shared fake, reset to the echo script with an empty request log."""
    fake_server.reset()
    return fake_server


MakeClient = Callable[..., LLMClient]


@pytest.fixture
async def make_client(fake: FakeLLM) -> AsyncIterator[MakeClient]:
    """``make_client(**upstream_fields, routes=[...])``: an LLMClient on the fake (closed after the test)."""
    clients: list[LLMClient] = []

    def make(*, routes: list[Route] | None = None, **fields: Any) -> LLMClient:
        upstream = Upstream(**{"base_url": fake.base_url, **FAST, **fields})
        client = LLMClient(UpstreamConfig(default=upstream, routes=routes or []))
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def client(make_client: MakeClient) -> LLMClient:
    return make_client()
