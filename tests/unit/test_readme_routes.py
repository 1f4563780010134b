"""Every ASSISTD_UPSTREAM_ROUTES value the README shows parses as it says (a route list the
server accepts at start-up), and the Ollama example gives its models the stated context window."""

from __future__ import annotations

import re
from pathlib import Path

from assistd.llm import UpstreamConfig

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def shown_routes() -> list[str]:
    return [m.group(1) for m in re.finditer(r"ASSISTD_UPSTREAM_ROUTES='(.*?)'", README, re.S)]


def test_every_routes_example_parses() -> None:
    examples = shown_routes()
    assert len(examples) >= 3
    for text in examples:
        config = UpstreamConfig.from_env_values("http://127.0.0.1:11434/v1", None, text)
        assert config.routes


def test_ollama_context_window_example() -> None:
    [text] = [t for t in shown_routes() if "llama3.1*" in t]
    config = UpstreamConfig.from_env_values(None, None, text)
    for model in ("llama3.1", "llama3.1:8b"):
        upstream, sent, _ = config.resolve(model)
        assert (upstream.context_window, sent, upstream.base_url) == (16384, model, "http://127.0.0.1:11434/v1")
    assert config.resolve("qwen2.5:7b")[0].context_window is None


def test_time_out_example_sets_the_default_upstreams_load_time_out() -> None:
    [text] = [t for t in shown_routes() if "load_timeout_seconds" in t]
    config = UpstreamConfig.from_env_values(None, None, text)
    assert config.resolve("anything")[0].load_timeout_seconds == 1200
