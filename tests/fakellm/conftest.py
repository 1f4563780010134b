"""One fake upstream on a real loopback port for the whole folder; each test loads its own script.

These tests need no database: they use none of the suite's DB fixtures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from assistd.fakellm import FakeLLM


@pytest.fixture(scope="session")
async def fake_server() -> AsyncIterator[FakeLLM]:
    async with FakeLLM() as llm:
        yield llm


@pytest.fixture
async def fake(fake_server: FakeLLM) -> FakeLLM:
    """The shared fake, reset to the echo script with an empty request log."""
    fake_server.reset()
    return fake_server


@pytest.fixture
async def http(fake: FakeLLM) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake.base_url, timeout=10) as client:
        yield client


@pytest.fixture
async def oai(fake: FakeLLM) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0, timeout=10)
    try:
        yield client
    finally:
        await client.close()
