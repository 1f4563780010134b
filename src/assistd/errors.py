"""Errors, and how they reach the client.

Every error leaves the server as OpenAI's envelope ``{"error": {message, type, param, code}}``
with all four keys present::

    APIError                       (status_code, type)
    ├── InvalidRequestError        400 invalid_request_error
    │   └── UnknownParameterError  400 invalid_request_error, code unknown_parameter
    ├── AuthenticationError        401 invalid_request_error, code invalid_api_key
    ├── PermissionDeniedError      403 invalid_request_error
    ├── NotFoundError              404 invalid_request_error
    ├── PayloadTooLargeError       413 invalid_request_error
    ├── RateLimitError             429 rate_limit_exceeded
    ├── ServerError                500 server_error
    ├── UpstreamUnavailableError   503 server_error (x-should-retry: true)
    └── PartUnavailableError       503 server_error (x-should-retry: false)

Services raise these; routers never build error JSON. ``register_error_handlers`` also turns
FastAPI's request validation (normally a 422) into a 400 naming the offending ``param`` in the
real API's wording, and unknown routes into ``Invalid URL (METHOD /path)``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = logging.getLogger("assistd.errors")


class APIError(Exception):
    status_code: ClassVar[int] = 500
    type: ClassVar[str] = "server_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


class InvalidRequestError(APIError):
    status_code = 400
    type = "invalid_request_error"


class UnknownParameterError(InvalidRequestError):
    def __init__(self, param: str) -> None:
        super().__init__(f"Unknown parameter: '{param}'.", param=param, code="unknown_parameter")


class AuthenticationError(APIError):
    status_code = 401
    type = "invalid_request_error"


class PermissionDeniedError(APIError):
    status_code = 403
    type = "invalid_request_error"


class NotFoundError(APIError):
    status_code = 404
    type = "invalid_request_error"


class PayloadTooLargeError(APIError):
    status_code = 413
    type = "invalid_request_error"


class RateLimitError(APIError):
    status_code = 429
    type = "rate_limit_exceeded"


class ServerError(APIError):
    status_code = 500
    type = "server_error"


class UpstreamUnavailableError(APIError):
    status_code = 503
    type = "server_error"


class PartUnavailableError(APIError):
    """A part of this server is missing (e.g. file_search's model weights): the message names it and
    the command that fixes it. A 503, because the fault is the server's, not the request's; with
    ``x-should-retry: false``, which the official SDKs obey before looking at the status, because
    retrying cannot help until someone installs the part."""

    status_code = 503
    type = "server_error"


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def invalid_id(param: str, value: str, kind_word: str) -> InvalidRequestError:
    """The real API's answer to an id with the wrong prefix."""
    return InvalidRequestError(
        f"Invalid '{param}': '{value}'. Expected an ID that begins with '{kind_word}'.",
        param=param,
        code="invalid_value",
    )


def invalid_value(param: str, value: object, allowed: Sequence[str]) -> InvalidRequestError:
    return InvalidRequestError(
        f"Invalid value: '{value}'. Supported values are: {_join_choices(allowed)}.",
        param=param,
        code="invalid_value",
    )


# --- request validation -> the real API's wording -------------------------------------------

JSON_PARSE_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
    "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
    "valid JSON.)"
)

_TYPE_WORDS = {
    "string_type": "a string",
    "str_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "an array",
    "tuple_type": "an array",
}


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "an unsupported value"


def _shown(value: object, limit: int = 300) -> str:
    """A value as an error message quotes it, clipped: a long value must not make a long message.
    (Request bodies nest at most ``routing.MAX_JSON_DEPTH`` levels, so ``str`` is safe on them.)"""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _join_choices(choices: Sequence[str]) -> str:
    quoted = [f"'{c}'" for c in choices]
    if len(quoted) <= 1:
        return "".join(quoted)
    if len(quoted) == 2:
        return f"{quoted[0]} and {quoted[1]}"
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def param_path(loc: Sequence[str | int], data: Any, *, missing: bool = True) -> str:
    """Turn a pydantic error location into the API's ``a.b[0].c`` form.

    Union members and validator names appear in pydantic locations but not in the input, so the
    location is walked against the input: only keys and indices that really exist are kept (plus
    the final missing key, for ``missing`` errors; otherwise a last item the input does not have
    is a union member's label, such as ``literal['auto']``).
    """
    parts: list[str] = []
    cur = data
    for i, item in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(item, int) and isinstance(cur, list) and 0 <= item < len(cur):
            parts.append(f"[{item}]")
            cur = cur[item]
        elif isinstance(item, str) and isinstance(cur, dict) and (item in cur or (last and missing)):
            parts.append(("." if parts else "") + item)
            cur = cur.get(item)
        # else: a union tag or validator name: not part of the wire path
    return "".join(parts)


def _strip_prefix(loc: Sequence[str | int]) -> tuple[Sequence[str | int], str]:
    if loc and loc[0] in ("body", "query", "path", "header", "form"):
        return loc[1:], str(loc[0])
    return loc, ""


def _score(err: dict[str, Any]) -> tuple[int, int]:
    # Prefer the error that went deepest into the input; prefer non-type errors on ties. A literal
    # refusing an object or array (``"auto"`` or an object) says less than the object's own error.
    kind = err.get("type")
    literal_vs_object = kind in ("literal_error", "enum") and isinstance(err.get("input"), dict | list)
    depth = len(err.get("loc", ())) - (1 if literal_vs_object else 0)  # its loc ends with the member's label
    return (depth, 0 if kind in _TYPE_WORDS or literal_vs_object else 1)


def validation_error_to_api_error(errors: Sequence[Any], body: Any) -> APIError:
    """Map pydantic/FastAPI validation errors to one 400 in the real API's wording."""
    if not errors:
        return InvalidRequestError("Invalid request.")
    errs = [dict(e) for e in errors]
    for e in errs:
        if e.get("type") == "json_invalid":
            return InvalidRequestError(JSON_PARSE_MESSAGE)
    # Unknown parameters and missing ones are reported first, as the real API does.
    for kind in ("extra_forbidden", "missing"):
        for e in errs:
            if e.get("type") == kind:
                return _one_error(e, body)
    return _one_error(max(errs, key=_score), body)


def _one_error(e: dict[str, Any], body: Any) -> APIError:
    loc, where = _strip_prefix(e.get("loc", ()))
    data = body if where in ("body", "") else None
    in_body = where not in ("query", "path", "header", "form")
    etype: str = e.get("type", "")
    param = param_path(loc, data, missing=etype == "missing") if in_body else ".".join(str(x) for x in loc)
    ctx: dict[str, Any] = e.get("ctx") or {}
    value = e.get("input")

    if etype == "openai":  # raised by our own validators with a finished message
        at = ctx.get("at")
        if at is not None:  # relative to the field: its path in this request
            path = f"{param}.{at}" if param and at else (param or at)
            return InvalidRequestError(ctx["message"].replace("{path}", path), param=path or None, code=ctx.get("code"))
        return InvalidRequestError(
            ctx["message"],
            param=ctx.get("param") or param or None,
            code=ctx.get("code"),
        )
    if where == "body" and not param:
        if etype == "missing":
            return InvalidRequestError(
                "You must provide a JSON object as the request body.",
                code="missing_required_parameter",
            )
        if isinstance(value, bytes | bytearray):
            return InvalidRequestError(JSON_PARSE_MESSAGE)
        return InvalidRequestError(
            f"Invalid type for body: expected an object, but got {_describe(value)} instead.",
            code="invalid_type",
        )
    if etype == "extra_forbidden":
        return UnknownParameterError(param)
    if etype == "missing":
        return InvalidRequestError(
            f"Missing required parameter: '{param}'.",
            param=param,
            code="missing_required_parameter",
        )
    if etype in ("literal_error", "enum"):
        expected = ctx.get("expected", "")
        choices = [c.strip().strip("'\"") for c in expected.replace(" or ", ",").split(",") if c.strip()]
        return InvalidRequestError(
            f"Invalid value: '{_shown(value)}'. Supported values are: {_join_choices(choices)}.",
            param=param,
            code="invalid_value",
        )
    if etype == "union_tag_invalid":
        choices = [c.strip().strip("'\"") for c in str(ctx.get("expected_tags", "")).split(",") if c.strip()]
        tag = ctx.get("tag")
        return InvalidRequestError(
            f"Invalid value: '{tag}'. Supported values are: {_join_choices(choices)}.",
            param=f"{param}.{ctx.get('discriminator', 'type').strip(chr(39))}",
            code="invalid_value",
        )
    if etype == "union_tag_not_found":
        disc = str(ctx.get("discriminator", "type")).strip("'")
        p = f"{param}.{disc}" if param else disc
        return InvalidRequestError(
            f"Missing required parameter: '{p}'.",
            param=p,
            code="missing_required_parameter",
        )
    if etype in _TYPE_WORDS:
        return InvalidRequestError(
            f"Invalid type for '{param}': expected {_TYPE_WORDS[etype]}, but got {_describe(value)} instead.",
            param=param,
            code="invalid_type",
        )
    if etype == "string_too_long":
        n = ctx.get("max_length")
        return InvalidRequestError(
            f"Invalid '{param}': string too long. Expected a string with maximum length {n}, "
            f"but got a string with length {len(value) if isinstance(value, str) else '?'} instead.",
            param=param,
            code="string_above_max_length",
        )
    if etype == "string_too_short":
        n = ctx.get("min_length")
        return InvalidRequestError(
            f"Invalid '{param}': string too short. Expected a string with minimum length {n}, "
            f"but got a string with length {len(value) if isinstance(value, str) else '?'} instead.",
            param=param,
            code="string_below_min_length",
        )
    if etype == "too_long":
        return InvalidRequestError(
            f"Invalid '{param}': array too long. Expected an array with maximum length "
            f"{ctx.get('max_length')}, but got an array with length {ctx.get('actual_length')} instead.",
            param=param,
            code="array_above_max_length",
        )
    if etype == "too_short":
        if ctx.get("actual_length") == 0:
            return InvalidRequestError(
                f"Invalid '{param}': empty array. Expected an array with minimum length "
                f"{ctx.get('min_length')}, but got an empty array instead.",
                param=param,
                code="empty_array",
            )
        return InvalidRequestError(
            f"Invalid '{param}': array too short. Expected an array with minimum length "
            f"{ctx.get('min_length')}, but got an array with length {ctx.get('actual_length')} instead.",
            param=param,
            code="array_below_min_length",
        )
    if etype in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound_any = ctx.get("ge", ctx.get("gt", ctx.get("le", ctx.get("lt"))))
        kind = "decimal" if isinstance(value, float) or isinstance(bound_any, float) else "integer"
        if etype.startswith("greater"):
            bound, word, op, code = (
                ctx.get("ge", ctx.get("gt")),
                "below minimum",
                ">=" if etype == "greater_than_equal" else ">",
                "below_min_value",
            )
        else:
            bound, word, op, code = (
                ctx.get("le", ctx.get("lt")),
                "above maximum",
                "<=" if etype == "less_than_equal" else "<",
                "above_max_value",
            )
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return InvalidRequestError(
            f"Invalid '{param}': {kind} {word} value. Expected a value {op} {bound}, but got {value} instead.",
            param=param,
            code=f"{kind}_{code}",
        )
    if etype == "string_pattern_mismatch":
        return InvalidRequestError(
            f"Invalid '{param}': string does not match pattern. Expected a string that matches the "
            f"pattern '{ctx.get('pattern')}'.",
            param=param,
            code="invalid_value",
        )
    msg = str(e.get("msg", "Invalid value"))
    msg = msg.removeprefix("Value error, ")
    return InvalidRequestError(
        f"Invalid '{param}': {msg}.".replace("..", "."),
        param=param or None,
        code="invalid_value",
    )


# --- handlers ---------------------------------------------------------------------------------


def _request_id(request: Request) -> str | None:
    rid = request.scope.get("state", {}).get("request_id")
    return rid if isinstance(rid, str) else None


def register_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_request: Request, exc: APIError) -> Response:
        headers = None
        if isinstance(exc, RateLimitError | UpstreamUnavailableError):
            headers = {"x-should-retry": "true"}
        elif isinstance(exc, PartUnavailableError):
            headers = {"x-should-retry": "false"}
        return error_response(exc.status_code, exc.body(), headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        err = validation_error_to_api_error(exc.errors(), exc.body)
        return error_response(err.status_code, err.body())

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code in (404, 405):
            msg = f"Invalid URL ({request.method} {request.url.path})"
            return error_response(404, error_body(msg, "invalid_request_error"))
        return error_response(
            exc.status_code,
            error_body(
                str(exc.detail),
                "invalid_request_error" if exc.status_code < 500 else "server_error",
            ),
        )

    @app.exception_handler(Exception)
    async def _unhandled(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error (request %s)", _request_id(request), exc_info=exc)
        return error_response(
            500,
            error_body(
                "The server had an error while processing your request. Sorry about that! "
                f"You can retry your request, or report the request ID {_request_id(request) or ''} "
                "if the error persists.",
                "server_error",
            ),
        )
