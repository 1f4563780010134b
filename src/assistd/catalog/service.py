"""The model catalog: what the configured upstreams list, merged with the routes' fixed names.

A name is listed when a request for it would reach a model that exists: an upstream's own model
is listed under its name only if that name routes back to that upstream unchanged (a route to
another server, or one that renames, would send it elsewhere); a route whose pattern has no
wildcard (``"pattern": "gpt-4o"``) is a fixed name and always listed. An upstream that does not
answer ``GET /models`` is left out (and named in the log), never an error. Upstreams are asked
at once, and their answers are kept for 10 seconds (see ``assistd.llm.probe``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

from assistd.errors import NotFoundError
from assistd.llm.client import LLMClient
from assistd.llm.config import Upstream
from assistd.llm.probe import Probe

log = logging.getLogger("assistd.llm")

_GLOB = frozenset("*?[")


def _owner(upstream: Upstream) -> str:
    return urlsplit(upstream.display_url).netloc or "assistd"


def _model(model_id: str, listed: dict[str, Any] | None, upstream: Upstream) -> dict[str, Any]:
    created = listed.get("created") if listed else None
    owned_by = listed.get("owned_by") if listed else None
    return {
        "id": model_id,
        "object": "model",
        "created": created if isinstance(created, int) and not isinstance(created, bool) else 0,
        "owned_by": owned_by if isinstance(owned_by, str) and owned_by else _owner(upstream),
    }


async def list_models(llm: LLMClient) -> list[dict[str, Any]]:
    """Every model a run can name, sorted by id."""
    upstreams = llm.upstreams()
    probes: list[Probe] = await asyncio.gather(*(llm.probe(u) for u in upstreams))
    same = {(u.base_url, u.api_key): p for u, p in zip(upstreams, probes, strict=True)}
    out: dict[str, dict[str, Any]] = {}
    for upstream, probe in zip(upstreams, probes, strict=True):
        if not probe.listed:
            log.debug("GET /v1/models: leaving out upstream %s (%s)", upstream.display_url, probe.error)
        for item in probe.models:
            resolved = llm.resolve(item["id"])
            if resolved.model == item["id"] and resolved.upstream.base_url == upstream.base_url:
                out.setdefault(item["id"], _model(item["id"], item, upstream))
    for route in llm.config.routes:
        if _GLOB & set(route.pattern) or route.pattern in out:
            continue
        probe = same[(route.upstream.base_url, route.upstream.api_key)]
        listed = next((m for m in probe.models if m["id"] == (route.model or route.pattern)), None)
        out[route.pattern] = _model(route.pattern, listed, route.upstream)
    return [out[k] for k in sorted(out)]


async def retrieve_model(llm: LLMClient, model_id: str) -> dict[str, Any]:
    for model in await list_models(llm):
        if model["id"] == model_id:
            return model
    raise NotFoundError(
        f"The model '{model_id}' does not exist or you do not have access to it.", code="model_not_found"
    )


async def log_upstreams(llm: LLMClient) -> None:
    """At start-up: one line per upstream runs may call, saying whether it answers ``GET /models``."""
    upstreams = llm.upstreams()
    probes: list[Probe] = await asyncio.gather(*(llm.probe(u) for u in upstreams))
    default = llm.config.default
    for upstream, probe in zip(upstreams, probes, strict=True):
        patterns = [r.pattern for r in llm.config.routes if r.upstream.base_url == upstream.base_url]
        if upstream.base_url == default.base_url:
            role = "the default upstream" + (f", and routes {', '.join(patterns)}" if patterns else "")
            fix = (
                "Start the model server (Ollama: `ollama serve`, then `ollama pull llama3.1`) or set "
                "ASSISTD_UPSTREAM_BASE_URL to one; to try assistd offline, run `assistd fake-llm`."
            )
        else:
            role = f"routes {', '.join(patterns)}"
            fix = "Start it, or correct the route's base_url in ASSISTD_UPSTREAM_ROUTES."
        where = f"upstream {upstream.display_url} ({role})"
        if probe.listed:
            names = [m["id"] for m in probe.models]
            shown = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
            log.info("%s answers GET /models: %d model(s)%s", where, len(names), f": {shown}" if names else "")
        elif probe.answered:
            log.warning(
                "%s answered GET /models with %s; runs may still work (some servers list no models), "
                "but check its base_url and api_key.",
                where,
                probe.error,
            )
        else:
            log.warning(
                "%s does not answer GET /models (%s): runs on its models will fail until it does. %s",
                where,
                probe.error,
                fix,
            )
