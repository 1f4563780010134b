"""``APIRoute`` whose request bodies are parsed with orjson.

Python's ``json`` accepts lone UTF-16 surrogates, ``NaN``/``Infinity`` and integers of any size;
none of these can be stored in PostgreSQL or written back as JSON, so they would surface as 500s
after validation. orjson rejects them at parse time (a 400 "could not parse the JSON body"), and
is faster. ``orjson.JSONDecodeError`` subclasses ``json.JSONDecodeError``, which FastAPI turns
into a request validation error.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from assistd.errors import InvalidRequestError

# Deeper bodies are refused with a 400 before anything reads them: no real request comes near it
# (OpenAI's structured-output schemas nest at most 10 levels, about 25 in JSON), and values this
# deep reach the limits of orjson's encoder (254 levels, where a stored value could no longer be
# sent back) and of Python's recursion (error messages that show the value).
MAX_JSON_DEPTH = 100


class ORJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json

    async def check_body(self) -> None:
        """Refuse what no backend can take: JSON nested deeper than ``MAX_JSON_DEPTH``, and NUL
        characters (PostgreSQL cannot store them in text or JSONB; refused for every backend alike)."""
        ctype = self.headers.get("content-type", "")
        if ctype and "json" not in ctype:
            return
        body = await self.body()
        if not body:
            return
        try:
            data = await self.json()
        except ValueError:
            return  # FastAPI reports the parse error itself
        deep = _too_deep(data, MAX_JSON_DEPTH)
        if deep is not None:
            raise InvalidRequestError(
                f"Invalid '{deep or 'body'}': the value is nested too deeply "
                f"(more than {MAX_JSON_DEPTH} levels of objects and arrays).",
                param=deep or None,
                code="invalid_value",
            )
        if b"\\u0000" not in body:
            return
        where = _find_nul(data, "")
        if where is not None:
            raise InvalidRequestError(
                f"Invalid '{where or 'body'}': strings must not contain NUL (\\u0000) characters.",
                param=where or None,
                code="invalid_value",
            )


def _too_deep(data: Any, limit: int) -> str | None:
    """The top-level field (``""``: the body itself) under which ``data`` nests deeper than
    ``limit`` levels of objects and arrays, or None. Iterative: any depth is safe to check."""
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    while stack:
        node, depth, top = stack.pop()
        if isinstance(node, dict):
            children: Any = node.items()
        elif isinstance(node, list):
            children = enumerate(node)
        else:
            continue
        if depth > limit:
            return top
        for key, child in children:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1, top or (str(key) if isinstance(node, dict) else "")))
    return None


def _find_nul(node: Any, path: str) -> str | None:
    """The API path of the first string (or key) holding a NUL character, if any."""
    if isinstance(node, str):
        return path if "\x00" in node else None
    if isinstance(node, dict):
        for k, v in node.items():
            sub = f"{path}.{k}" if path else str(k)
            if "\x00" in k:
                return sub
            found = _find_nul(v, sub)
            if found is not None:
                return found
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found = _find_nul(v, f"{path}[{i}]")
            if found is not None:
                return found
    return None


class ORJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def orjson_handler(request: Request) -> Response:
            if self.body_field is not None:
                _force_json_content_type(request.scope)
            req = ORJSONRequest(request.scope, request.receive)
            if req.method in ("POST", "PUT", "PATCH") and self.body_field is not None:
                await req.check_body()
            return await handler(req)

        return orjson_handler


def _force_json_content_type(scope: Scope) -> None:
    """JSON routes read the body as JSON whatever the declared type: curl's ``-d`` sends
    ``application/x-www-form-urlencoded`` unless told otherwise, and the real API answered it."""
    headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
    headers.append((b"content-type", b"application/json"))
    scope["headers"] = headers


def api_router(**kwargs: Any) -> APIRouter:
    """An ``APIRouter`` using ``ORJSONRoute``; every resource router is built with it."""
    return APIRouter(route_class=ORJSONRoute, **kwargs)
