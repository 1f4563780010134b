"""Routing model names to upstreams (keys, headers, renames, context windows) and the config's env form."""

from __future__ import annotations

import json

import pytest

from assistd.fakellm import FakeLLM
from assistd.llm import LLMClient, Route, Upstream, UpstreamConfig
from tests.llm.conftest import FAST, MakeClient
from tests.llm.helpers import collect


class TestRouting:
    async def test_routes_with_their_own_key_headers_and_model(self, fake: FakeLLM, make_client: MakeClient):
        fake.load({"api_key": "sk-default", "default": {"text": "from A"}})
        async with FakeLLM({"api_key": "sk-b", "default": {"text": "from B"}}) as other:
            b = Upstream(base_url=other.base_url, api_key="sk-b", headers={"X-Team": "blue"}, **FAST)
            client = make_client(
                api_key="sk-default",
                headers={"X-Default": "1"},
                routes=[
                    Route(pattern="gpt-4o*", upstream=b, model="b-model"),
                    Route(pattern="gpt-*", upstream=b),
                ],
            )
            assert (await collect(client, model="gpt-4o-mini")).text == "from B"
            assert (await collect(client, model="gpt-5")).text == "from B"
            assert (await collect(client, model="llama3.2:3b")).text == "from A"
            first, second = other.chat_requests
            assert first.headers["authorization"] == "Bearer sk-b"
            assert first.headers["x-team"] == "blue"
            assert "x-default" not in first.headers
            assert first.body["model"] == "b-model"  # renamed by the first matching route
            assert second.body["model"] == "gpt-5"
            (default,) = fake.chat_requests
            assert default.headers["authorization"] == "Bearer sk-default"
            assert default.headers["x-default"] == "1"
            assert "x-team" not in default.headers
            assert default.body["model"] == "llama3.2:3b"

    async def test_one_http_client_per_base_url_and_key(self, fake: FakeLLM, make_client: MakeClient):
        same = Upstream(base_url=fake.base_url, headers={"X-Route": "r"}, **FAST)
        other_key = Upstream(base_url=fake.base_url, api_key="k2", **FAST)
        client = make_client(
            routes=[Route(pattern="r-*", upstream=same), Route(pattern="k-*", upstream=other_key)],
        )
        for model in ("m", "r-1", "k-1", "k-2"):
            await collect(client, model=model)
        assert len(client._clients) == 2
        assert [r.headers.get("x-route") for r in fake.chat_requests] == [None, "r", None, None]

    def test_route_and_context_window(self):
        local = Upstream(base_url="http://gpu-box:8000/v1", context_window=32_768)
        client = LLMClient(
            UpstreamConfig(routes=[Route(pattern="qwen*", upstream=local, model="Qwen/Qwen3-32B")]),
        )
        assert client.route("qwen3") is local
        assert client.resolve("qwen3").model == "Qwen/Qwen3-32B"
        assert client.route("llama3").base_url == "http://127.0.0.1:11434/v1"
        assert client.context_window("qwen3") == 32_768
        assert client.context_window("llama3") is None
        assert client.context_window("gpt-4o-mini") == 128_000  # OpenAI's published window
        assert client.context_window("gpt-4-0613") == 8_192
        assert client.context_window("gpt-4.1") == 1_047_576

    def test_patterns_are_case_sensitive_globs(self):
        config = UpstreamConfig(routes=[Route(pattern="gpt-?o*", upstream=Upstream(base_url="http://x/v1"))])
        assert config.resolve("gpt-4o")[0].base_url == "http://x/v1"
        assert config.resolve("GPT-4o")[2] is None


class TestFromEnv:
    def test_defaults(self):
        config = UpstreamConfig.from_env_values(None, None, None)
        assert config.default.base_url == "http://127.0.0.1:11434/v1"
        assert config.default.api_key is None
        assert config.routes == []

    def test_routes_flat_and_nested(self):
        routes = [
            {"pattern": "gpt-*", "base_url": "https://api.openai.com/v1/", "api_key": "sk-o", "context_window": 128000},
            {
                "pattern": "claude-*",
                "model": "claude-x",
                "upstream": {"base_url": "http://c/v1", "headers": {"a": "b"}},
            },
            {"pattern": "big-*", "model": "llama3.3:70b", "timeout_seconds": 600},
        ]
        config = UpstreamConfig.from_env_values("http://ollama:11434/v1", "sk-default", json.dumps(routes))
        openai_, claude, big = config.routes
        assert openai_.upstream.base_url == "https://api.openai.com/v1"
        assert openai_.upstream.api_key == "sk-o"
        assert openai_.upstream.context_window == 128000
        assert claude.upstream.headers == {"a": "b"}
        assert claude.upstream.api_key is None  # another server: the default's key is not sent there
        assert claude.model == "claude-x"
        assert big.upstream.base_url == "http://ollama:11434/v1"  # same server: inherits the default
        assert big.upstream.api_key == "sk-default"
        assert big.upstream.timeout_seconds == 600

    @pytest.mark.parametrize(
        ("routes_json", "message"),
        [
            ("{", "invalid JSON"),
            ('{"pattern": "x"}', "expected a JSON list"),
            ('[{"pattern": "x", "base_url": "ftp://x"}]', "routes[0]"),
            ('[{"pattern": "x", "colour": "red"}]', "routes[0]"),
            ('[{"model": "x"}]', "routes[0]"),
            ('["x"]', "routes[0]: expected an object"),
        ],
    )
    def test_bad_routes(self, routes_json: str, message: str):
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            UpstreamConfig.from_env_values(None, None, routes_json)

    def test_the_key_is_not_in_reprs(self):
        upstream = Upstream(api_key="sk-secret", headers={"x-api-key": "secret2"})
        assert "sk-secret" not in repr(upstream)
        assert "secret2" not in repr(upstream)

    def test_credentials_in_the_url_are_not_shown(self):
        assert Upstream(base_url="https://user:pw@host/v1").display_url == "https://host/v1"
