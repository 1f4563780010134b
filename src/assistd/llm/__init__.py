"""The upstream model client: streaming chat completions from any OpenAI-compatible server.

    from assistd.llm import ChatRequest, LLMClient, UpstreamConfig

    async with LLMClient(UpstreamConfig.from_env_values(base_url, api_key, routes_json)) as llm:
        async for event in llm.stream(ChatRequest(model="gpt-4o", messages=[...])):
            ...  # TextDelta | ReasoningDelta | ToolCallStart | ToolCallArgsDelta | Finish | Usage

Modules: ``protocol`` (request and events), ``config`` (upstreams and routes), ``client``
(HTTP, retries), ``dialect`` (request bodies, learning from 400s), ``normalize`` (chunks to
events), ``sse``, ``retry``, ``errors`` (the ``UpstreamError`` tree), ``tokens`` (tiktoken, offline).
"""

from assistd.llm.client import LLMClient, ResolvedModel
from assistd.llm.config import Route, Upstream, UpstreamConfig
from assistd.llm.dialect import Dialect
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
from assistd.llm.protocol import (
    ChatRequest,
    Finish,
    FinishReason,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallArgsDelta,
    ToolCallStart,
    Usage,
)

__all__ = [
    "ChatRequest",
    "Dialect",
    "Finish",
    "FinishReason",
    "LLMClient",
    "ReasoningDelta",
    "ResolvedModel",
    "Route",
    "StreamEvent",
    "TextDelta",
    "ToolCallArgsDelta",
    "ToolCallStart",
    "Upstream",
    "UpstreamConfig",
    "UpstreamConnectionError",
    "UpstreamContextLengthError",
    "UpstreamError",
    "UpstreamRateLimitError",
    "UpstreamRequestError",
    "UpstreamServerError",
    "UpstreamStatusError",
    "UpstreamStreamError",
    "UpstreamTimeoutError",
    "Usage",
]
