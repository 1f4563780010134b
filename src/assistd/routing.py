"""``APIRoute`` whose request bodies are parsed with orjson.

Python's ``json`` accepts lone UTF-16 surrogates, ``NaN``/``Infinity`` and integers of any size;
none of these can be stored in PostgreSQL or written back as JSON, so they would surface as 500s
after validation. orjson rejects them at parse time (a 400 "could not parse the JSON body"), and
is faster. ``orjson.JSONDecodeError`` subclasses ``json.JSONDecodeError``, which FastAPI turns
into a request validation error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response


class ORJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


class ORJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def orjson_handler(request: Request) -> Response:
            return await handler(ORJSONRequest(request.scope, request.receive))

        return orjson_handler


def api_router(**kwargs: Any) -> APIRouter:
    """An ``APIRouter`` using ``ORJSONRoute``; every resource router is built with it."""
    return APIRouter(route_class=ORJSONRoute, **kwargs)
