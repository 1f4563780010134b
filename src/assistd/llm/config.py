"""Where model requests go: a default upstream and a routing table from model-name globs to upstreams.

An :class:`Upstream` is one OpenAI-compatible server (base URL, key, extra headers, context
window, timeouts, retries) plus its dialect: which parameter names and roles it takes. The
dialect fields are starting points; the client learns from a 400 that names an unsupported
parameter and adjusts for the rest of the process (see ``assistd.llm.dialect``).

From the environment (``UpstreamConfig.from_env_values``)::

    ASSISTD_UPSTREAM_BASE_URL=http://127.0.0.1:11434/v1
    ASSISTD_UPSTREAM_API_KEY=...
    ASSISTD_UPSTREAM_ROUTES='[{"pattern": "gpt-*", "base_url": "https://api.openai.com/v1", "api_key": "sk-..."},
                              {"pattern": "claude-*", "upstream": {"base_url": "...", "headers": {"x-k": "v"}},
                               "model": "claude-sonnet-4-5"}]'

A route gives its upstream's fields either nested under ``upstream`` or flat beside ``pattern``
and ``model``. Fields it leaves out come from the default upstream, but only when the route
keeps the default's ``base_url``: a route to another server never inherits the default's key
or headers.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = ["Route", "Upstream", "UpstreamConfig"]

DEFAULT_BASE_URL = "http://127.0.0.1:11434/v1"


class Upstream(BaseModel):
    """One OpenAI-compatible ``/chat/completions`` server and how to talk to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = DEFAULT_BASE_URL
    api_key: str | None = Field(default=None, repr=False)
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    context_window: int | None = Field(default=None, gt=0)

    # timeouts
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="From sending the request to the first chunk, unless the upstream shows it is alive "
        "(see load_timeout_seconds). A time-out is not retried.",
    )
    load_timeout_seconds: float = Field(
        default=600.0,
        gt=0,
        description="Longest wait for the first chunk while the upstream still answers GET /models: it is "
        "alive, loading the model or reading a long prompt (Ollama loads a model on first use).",
    )
    read_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Longest silence between chunks once the stream has started."
    )

    # retries (before the first event only)
    max_retries: int = Field(default=2, ge=0)
    backoff_base_seconds: float = Field(default=0.5, ge=0)
    backoff_max_seconds: float = Field(default=8.0, ge=0)
    max_retry_after_seconds: float = Field(
        default=30.0, ge=0, description="A longer Retry-After gives up at once (rate_limit_exceeded)."
    )

    # dialect (learned further from 400s at run time)
    max_tokens_param: Literal["max_completion_tokens", "max_tokens"] = "max_completion_tokens"
    system_role: Literal["system", "developer"] = "system"
    send_stream_options: bool = True
    supports_parallel_tool_calls: bool = True
    supports_tool_choice_required: bool = True
    supports_tool_choice: bool = True

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"expected an http(s) URL such as {DEFAULT_BASE_URL}, got {value!r}")
        return value

    @property
    def display_url(self) -> str:
        """``base_url`` without any user:password part, for messages and logs."""
        parts = urlsplit(self.base_url)
        if "@" not in parts.netloc:
            return self.base_url
        return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


class Route(BaseModel):
    """Models whose name matches ``pattern`` (an fnmatch glob, case-sensitive) go to ``upstream``.

    ``model``, when set, is the name sent upstream instead of the requested one.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    pattern: str = Field(min_length=1)
    upstream: Upstream
    model: str | None = Field(default=None, min_length=1)

    def matches(self, model: str) -> bool:
        return fnmatch.fnmatchcase(model, self.pattern)


_ROUTE_KEYS = frozenset({"pattern", "model", "upstream"})


class UpstreamConfig(BaseModel):
    """The default upstream and the routing table; the first matching route wins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: Upstream = Field(default_factory=Upstream)
    routes: list[Route] = Field(default_factory=list)

    def resolve(self, model: str) -> tuple[Upstream, str, Route | None]:
        """``(upstream, model name to send, the route that matched or None)``."""
        for route in self.routes:
            if route.matches(model):
                return route.upstream, route.model or model, route
        return self.default, model, None

    @classmethod
    def from_env_values(
        cls, base_url: str | None = None, api_key: str | None = None, routes_json: str | None = None
    ) -> UpstreamConfig:
        """Build from the three environment values (any may be empty: defaults apply).

        Raises ``ValueError`` naming the bad route when ``routes_json`` is not a JSON list of routes.
        """
        default = Upstream(base_url=base_url or DEFAULT_BASE_URL, api_key=api_key or None)
        if not routes_json or not routes_json.strip():
            return cls(default=default)
        try:
            items = json.loads(routes_json)
        except json.JSONDecodeError as exc:
            raise ValueError(f"upstream routes: invalid JSON: {exc}") from None
        if not isinstance(items, list):
            raise ValueError("upstream routes: expected a JSON list of {pattern, model?, upstream fields}")
        routes = []
        for i, item in enumerate(items):
            try:
                routes.append(_route_from_dict(item, default))
            except (ValidationError, TypeError, ValueError) as exc:
                raise ValueError(f"upstream routes[{i}]: {exc}") from None
        return cls(default=default, routes=routes)


def _route_from_dict(item: Any, default: Upstream) -> Route:
    if not isinstance(item, dict):
        raise TypeError("expected an object")
    fields = dict(item["upstream"]) if isinstance(item.get("upstream"), dict) else {}
    if "upstream" in item and not isinstance(item["upstream"], dict):
        raise TypeError("'upstream' must be an object")
    fields.update({k: v for k, v in item.items() if k not in _ROUTE_KEYS})
    base = Upstream(**fields).base_url if "base_url" in fields else default.base_url
    # the same server: inherit the default's key, headers and settings; another server: inherit nothing
    inherited = default.model_dump() if base == default.base_url else {}
    upstream = Upstream(**{**inherited, **fields})
    return Route.model_validate({"pattern": item.get("pattern"), "model": item.get("model"), "upstream": upstream})
