"""GET /v1/models and /v1/models/{id}: what the configured upstreams list, merged with the routes'
fixed names, in OpenAI's shape (checked with the SDK's own Model type); an upstream that does not
answer is left out, never a 500."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from openai.types import Model

from assistd.catalog.service import list_models
from assistd.fakellm import FakeLLM
from assistd.llm import LLMClient, UpstreamConfig
from tests.conftest import assert_error


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TestThroughTheAPI:
    async def test_sdk_lists_the_fake_upstreams_models(self, sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
        page = await sdk.models.list()
        ids = [m.id for m in page.data]
        assert "fake-model" in ids  # the default upstream's (the suite's fake); unreachable-* is skipped
        model = next(m for m in page.data if m.id == "fake-model")
        assert Model.model_validate(model.model_dump(), strict=True) == model
        assert (model.object, model.created, model.owned_by) == ("model", 1700000000, "assistd-fakellm")

    async def test_list_shape(self, client: httpx.AsyncClient, llm: FakeLLM) -> None:
        r = await client.get("/models")
        assert r.status_code == 200
        body = r.json()
        assert set(body) == {"object", "data"} and body["object"] == "list"
        for item in body["data"]:
            assert set(item) == {"id", "object", "created", "owned_by"}

    async def test_retrieve(self, sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
        model = await sdk.models.retrieve("fake-model")
        assert model.id == "fake-model" and model.owned_by == "assistd-fakellm"

    async def test_retrieve_unknown_is_openais_404(self, client: httpx.AsyncClient, llm: FakeLLM) -> None:
        r = await client.get("/models/no-such-model")
        assert_error(
            r,
            404,
            code="model_not_found",
            message="The model 'no-such-model' does not exist or you do not have access to it.",
        )

    async def test_needs_a_key_when_keys_exist(self, app) -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test/v1") as c:
            assert_error(await c.get("/models"), 401, code="invalid_api_key")


@pytest.fixture
async def second() -> AsyncIterator[FakeLLM]:
    async with FakeLLM({"models": ["llama3.1:8b", "qwen2.5:7b", "library/phi4"]}) as llm:
        yield llm


class TestMerging:
    async def test_routes_and_upstreams_merge(self, llm: FakeLLM, second: FakeLLM) -> None:
        dead = f"http://127.0.0.1:{closed_port()}/v1"
        config = UpstreamConfig.from_env_values(
            llm.base_url,
            None,
            f"""[
              {{"pattern": "gpt-4o", "model": "fake-model"}},
              {{"pattern": "qwen*", "base_url": "{second.base_url}"}},
              {{"pattern": "org/fixed-name", "base_url": "{dead}"}},
              {{"pattern": "renamed-*", "base_url": "{second.base_url}", "model": "llama3.1:8b"}}
            ]""",
        )
        async with LLMClient(config) as client:
            models = await list_models(client)
        ids = [m["id"] for m in models]
        # fake-model: the default's own; gpt-4o: a fixed route name (with its target's created/owner);
        # qwen2.5:7b: the second upstream's model its route sends there; org/fixed-name: a fixed name
        # whose upstream is down (listed: the route exists). llama3.1:8b and library/phi4 would go to
        # the default upstream, which does not have them: not listed.
        assert ids == ["fake-model", "gpt-4o", "org/fixed-name", "qwen2.5:7b"]
        by_id = {m["id"]: m for m in models}
        assert by_id["gpt-4o"] == {
            "id": "gpt-4o",
            "object": "model",
            "created": 1700000000,
            "owned_by": "assistd-fakellm",
        }
        host = dead.split("/")[2]
        assert by_id["org/fixed-name"] == {"id": "org/fixed-name", "object": "model", "created": 0, "owned_by": host}

    async def test_unreachable_default_is_left_out(self) -> None:
        config = UpstreamConfig.from_env_values(f"http://127.0.0.1:{closed_port()}/v1", None, None)
        async with LLMClient(config) as client:
            assert await list_models(client) == []

    async def test_ids_with_slashes_retrieve_through_http(self, app, project, second: FakeLLM, state) -> None:
        # The suite's app routes to the suite's fake; point a fresh client at a second fake by route.
        config = UpstreamConfig.from_env_values(second.base_url, None, None)
        original = state.llm
        state.llm = LLMClient(config)
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://test/v1",
                headers={"Authorization": f"Bearer {project[0]}"},
            ) as c:
                r = await c.get("/models/library/phi4")
                assert r.status_code == 200, r.text
                assert r.json()["id"] == "library/phi4"
        finally:
            await state.llm.aclose()
            state.llm = original
