"""The fake upstream as an ASGI app (Starlette): ``/v1/chat/completions``, ``/v1/models``, ``/v1/embeddings``, control API.

:class:`FakeLLMState` holds the script being played, the turns still pending and the log of
requests; it is safe to change from another thread while the server runs (see ``runner.FakeLLM``).
Faults and timing are applied while sending, by :class:`_ScriptedResponse`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from assistd.fakellm.chunks import Completion, completion_body, plan_completion, stream_chunks
from assistd.fakellm.script import Fault, Options, Script, ScriptError, Turn, as_script, parse_turns
from assistd.retrieval.embeddings import HashEmbedder

__all__ = ["ConnectionDropped", "FakeLLMState", "RecordedRequest", "create_fake_llm_app"]

log = logging.getLogger("assistd.fakellm")

_ROLES = ("system", "assistant", "user", "function", "tool", "developer")


class ConnectionDropped(Exception):
    """Raised inside a response to make the server close the connection without finishing it."""


class _HideDrops(logging.Filter):
    """Keeps uvicorn from logging a traceback for a connection the script dropped on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


_drop_filter_lock = threading.Lock()
_drop_filter: _HideDrops | None = None


def _install_drop_filter() -> None:
    global _drop_filter
    with _drop_filter_lock:
        if _drop_filter is None:
            _drop_filter = _HideDrops()
            logging.getLogger("uvicorn.error").addFilter(_drop_filter)


# --- errors -------------------------------------------------------------------------------------


def _request_id() -> str:
    return "req_" + uuid.uuid4().hex


@dataclass(frozen=True)
class ApiError:
    """An error in OpenAI's envelope: ``{"error": {message, type, param, code}}``."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers={"x-request-id": _request_id(), **self.headers})


_KINDS: dict[type, str] = {str: "a string", list: "an array", dict: "an object"}


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return _KINDS.get(type(value), "null")


def _invalid_type(param: str, expected: str, value: Any) -> ApiError:
    return ApiError(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {_kind(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _unsupported_parameter(param: str, hint: str = "") -> ApiError:
    message = f"Unsupported parameter: '{param}' is not supported with this model.{hint}"
    return ApiError(400, message, param=param, code="unsupported_parameter")


def validate_chat_request(body: Any) -> ApiError | None:
    """The checks OpenAI makes before anything else (loosely: only what clients commonly get wrong)."""
    if not isinstance(body, dict):
        return ApiError(400, "Invalid request body: expected a JSON object.")
    if "model" not in body or body["model"] in (None, ""):
        return ApiError(400, "you must provide a model parameter")
    if not isinstance(body["model"], str):
        return _invalid_type("model", "a string", body["model"])
    if "messages" not in body or body["messages"] is None:
        return ApiError(
            400, "Missing required parameter: 'messages'.", param="messages", code="missing_required_parameter"
        )
    messages = body["messages"]
    if not isinstance(messages, list):
        return _invalid_type("messages", "an array", messages)
    if not messages:
        return ApiError(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            return _invalid_type(where, "an object", message)
        if "role" not in message:
            return ApiError(
                400,
                f"Missing required parameter: '{where}.role'.",
                param=f"{where}.role",
                code="missing_required_parameter",
            )
        if message["role"] not in _ROLES:
            supported = ", ".join(f"'{r}'" for r in _ROLES[:-1]) + f", and '{_ROLES[-1]}'"
            return ApiError(
                400,
                f"Invalid value: '{message['role']}'. Supported values are: {supported}.",
                param=f"{where}.role",
                code="invalid_value",
            )
    if "stream" in body and body["stream"] is not None and not isinstance(body["stream"], bool):
        return _invalid_type("stream", "a boolean", body["stream"])
    if body.get("stream_options") is not None and not body.get("stream"):
        return ApiError(
            400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param="stream_options"
        )
    return None


def dialect_rejection(options: Options, body: Mapping[str, Any]) -> ApiError | None:
    """The 400 a picky upstream gives for a parameter it does not take (the turn stays pending)."""
    if options.reject_stream_options and "stream_options" in body:
        return _unsupported_parameter("stream_options")
    if options.reject_parallel_tool_calls and "parallel_tool_calls" in body:
        return _unsupported_parameter("parallel_tool_calls")
    if options.max_tokens_param == "max_tokens" and "max_completion_tokens" in body:
        return _unsupported_parameter("max_completion_tokens", " Use 'max_tokens' instead.")
    if options.max_tokens_param == "max_completion_tokens" and "max_tokens" in body:
        return _unsupported_parameter("max_tokens", " Use 'max_completion_tokens' instead.")
    for name in options.reject_params:
        if name in body:
            return _unsupported_parameter(name)
    if options.reject_tool_choice_required and body.get("tool_choice") == "required":
        return ApiError(
            400,
            "Unsupported value: 'tool_choice' does not support 'required' with this model.",
            param="tool_choice",
            code="unsupported_value",
        )
    if options.reject_developer_role:
        for i, message in enumerate(body.get("messages") or []):
            if isinstance(message, Mapping) and message.get("role") == "developer":
                return ApiError(
                    400,
                    f"Unsupported value: 'messages[{i}].role' does not support 'developer' with this model.",
                    param=f"messages[{i}].role",
                    code="unsupported_value",
                )
    return None


# --- state --------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request the fake received, as it arrived."""

    method: str
    path: str
    headers: dict[str, str]
    content: bytes
    body: Any = None  # the decoded JSON body, or None
    received_at: float = field(default_factory=time.time)
    turn: str | None = None  # which turn answered: its name, ``turns[i]`` or ``default``
    status: int | None = None  # the HTTP status sent (None if none was sent)
    peer: str | None = None  # the client's "host:port": requests on one kept-alive connection share it

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": self.body,
            "received_at": self.received_at,
            "turn": self.turn,
            "status": self.status,
            "peer": self.peer,
        }


@dataclass
class _Pending:
    label: str
    turn: Turn
    left: int


class FakeLLMState:
    """The script being played, the pending turns and the request log (thread-safe)."""

    def __init__(self, script: Script | None = None) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._stops: set[asyncio.Event] = set()
        self.closing = False
        self._script = Script()
        self._pending: list[_Pending] = []
        self._added = 0
        self.load(script or Script())

    # script
    @property
    def script(self) -> Script:
        return self._script

    def load(self, script: Any) -> None:
        """Play ``script`` from its first turn (the request log is kept)."""
        script = as_script(script)
        with self._lock:
            self._script = script
            self._pending, self._added = [], 0
            self._append(script.turns)

    def _append(self, turns: Iterable[Turn]) -> None:
        for turn in turns:
            self._pending.append(_Pending(turn.name or f"turns[{self._added}]", turn, turn.times))
            self._added += 1

    def add_turns(self, *turns: Any) -> None:
        """Append turns (``Turn`` objects, or dicts/strings in the script format) after the pending ones."""
        with self._lock:
            self._append(parse_turns(turns, self._added))

    def set_turns(self, turns: Iterable[Any]) -> None:
        """Replace the pending turns."""
        with self._lock:
            self._pending = []
            self._append(parse_turns(turns, self._added))

    def set_default(self, turn: Any) -> None:
        parsed = Turn.parse(turn, "default")
        if parsed.match is not None:
            raise ScriptError("default: a default turn cannot have 'match'")
        with self._lock:
            self._script = dataclasses.replace(self._script, default=dataclasses.replace(parsed, name="default"))

    @property
    def remaining_turns(self) -> list[Turn]:
        """The turns not used up yet, in order (a turn with ``times: n`` appears once)."""
        with self._lock:
            return [p.turn for p in self._pending]

    def select(self, body: Mapping[str, Any]) -> tuple[str, Turn, Options] | ApiError:
        """The turn that answers ``body`` (consumed), or the 400 its dialect gives (nothing consumed)."""
        with self._lock:
            chosen = next((p for p in self._pending if p.turn.match is None or p.turn.match.matches(body)), None)
            turn = chosen.turn if chosen else self._script.default
            options = self._script.options.merged(turn.options)
            error = dialect_rejection(options, body)
            if error is not None:
                return error
            if chosen is not None:
                chosen.left -= 1
                if chosen.left <= 0:
                    self._pending.remove(chosen)
            return (chosen.label if chosen else turn.name or "default"), turn, options

    # request log
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def record(self, entry: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(entry)

    def clear_requests(self) -> int:
        with self._lock:
            n = len(self._requests)
            self._requests.clear()
            return n

    @property
    def active_responses(self) -> int:
        """Scripted responses being sent right now (a stalled stream counts until its client leaves)."""
        return len(self._stops)

    # shutdown (call on the server's event loop)
    def begin_shutdown(self) -> None:
        """Ends every stalled or paced stream now: the server is going away."""
        self.closing = True
        for stop in list(self._stops):
            stop.set()

    def _watch(self, stop: asyncio.Event) -> None:
        self._stops.add(stop)
        if self.closing:
            stop.set()

    def _unwatch(self, stop: asyncio.Event) -> None:
        self._stops.discard(stop)


# --- the scripted response ------------------------------------------------------------------------


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _seconds_header(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


_HTTP_ERRORS = {
    429: ("Rate limit reached for requests. Please try again later.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


def http_error_response(fault: Fault) -> Response:
    """The response of an ``http_error`` fault (OpenAI's envelope unless the script gives a body)."""
    headers = {"x-request-id": _request_id()}
    if fault.retry_after is not None:
        headers["retry-after"] = _seconds_header(fault.retry_after)
    if fault.retry_after_ms is not None:
        headers["retry-after-ms"] = _seconds_header(fault.retry_after_ms)
    headers.update(fault.headers)
    if isinstance(fault.body, str):
        return Response(fault.body, status_code=fault.status, headers=headers, media_type="text/plain")
    if isinstance(fault.body, dict):
        return JSONResponse(fault.body, status_code=fault.status, headers=headers)
    message, kind, code = _HTTP_ERRORS.get(
        fault.status,
        (
            f"Scripted HTTP {fault.status} error.",
            "server_error" if fault.status >= 500 else "invalid_request_error",
            None,
        ),
    )
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=fault.status, headers=headers)


class _ScriptedResponse(Response):
    """Sends a planned completion, as JSON or SSE, with the turn's timing and mid-response fault."""

    def __init__(
        self,
        state: FakeLLMState,
        record: RecordedRequest,
        completion: Completion,
        fault: Fault | None,
        *,
        stream: bool,
        include_usage: bool,
    ) -> None:
        super().__init__(status_code=200)
        self.state = state
        self.record = record
        self.completion = completion
        self.fault = fault
        self.stream = stream
        self.include_usage = include_usage
        self._stop = asyncio.Event()

    async def __call__(self, _scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.create_task(self._watch_disconnect(receive))
        self.state._watch(self._stop)
        try:
            if self.stream:
                await self._send_stream(send)
            else:
                await self._send_json(send)
        finally:
            self.state._unwatch(self._stop)
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _watch_disconnect(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self._stop.set()
                return

    async def _pause(self, seconds: float | None) -> None:
        """Wait; if the client goes away or the server stops meanwhile, drop the connection."""
        if seconds is None:
            await self._stop.wait()
        elif seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), seconds)
        if self._stop.is_set():
            raise ConnectionDropped

    async def _start(self, send: Send, status: int, content_type: str, length: int | None = None) -> None:
        headers = [(b"content-type", content_type.encode()), (b"x-request-id", _request_id().encode())]
        if length is None:
            headers.append((b"cache-control", b"no-cache"))
        else:
            headers.append((b"content-length", str(length).encode()))
        self.record.status = status
        await send({"type": "http.response.start", "status": status, "headers": headers})

    async def _send_json(self, send: Send) -> None:
        c, fault, options = self.completion, self.fault, self.completion.options
        if fault is not None and fault.type == "stall":
            await self._pause(fault.seconds)
        pieces = len(stream_chunks(c, include_usage=False)) - 1
        interval = 1 / options.tokens_per_second if options.tokens_per_second else 0.0
        await self._pause(options.ttft_ms / 1000 + pieces * interval)
        if fault is not None and fault.type == "stream_error":
            error = {"error": {"message": fault.message, "type": fault.error_type, "param": None, "code": fault.code}}
            payload, status = _dumps(error), 500
        elif fault is not None and fault.type == "malformed_chunk":
            payload, status = fault.data.encode(), 200
        else:
            payload, status = _dumps(completion_body(c)), 200
        await self._start(send, status, "application/json", len(payload))
        if fault is not None and fault.type == "drop":
            await send({"type": "http.response.body", "body": payload[: len(payload) // 2], "more_body": True})
            raise ConnectionDropped
        await send({"type": "http.response.body", "body": payload, "more_body": False})

    async def _send_stream(self, send: Send) -> None:
        c, fault, options = self.completion, self.fault, self.completion.options
        lines = [b"data: " + _dumps(chunk) + b"\n\n" for chunk in stream_chunks(c, include_usage=self.include_usage)]
        await self._start(send, 200, "text/event-stream; charset=utf-8")
        loop = asyncio.get_running_loop()
        interval = 1 / options.tokens_per_second if options.tokens_per_second else 0.0
        next_at = loop.time() + options.ttft_ms / 1000
        fault_at = min(fault.after_chunks, len(lines)) if fault is not None else -1
        for i in range(len(lines) + 1):
            if i == fault_at and fault is not None:
                if await self._stream_fault(send, fault):
                    return
                next_at = max(next_at, loop.time())
            if i == len(lines):
                break
            await self._pause(next_at - loop.time())
            await send({"type": "http.response.body", "body": lines[i], "more_body": True})
            next_at += interval
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

    async def _stream_fault(self, send: Send, fault: Fault) -> bool:
        """Apply a mid-stream fault; True when the stream has ended."""
        if fault.type == "drop":
            raise ConnectionDropped
        if fault.type == "stall":
            await self._pause(fault.seconds)
        elif fault.type == "malformed_chunk":
            await send(
                {"type": "http.response.body", "body": b"data: " + fault.data.encode() + b"\n\n", "more_body": True}
            )
        elif fault.type == "stream_error":
            error = {"error": {"message": fault.message, "type": fault.error_type, "param": None, "code": fault.code}}
            await send({"type": "http.response.body", "body": b"data: " + _dumps(error) + b"\n\n", "more_body": False})
            return True
        return False


# --- the app ------------------------------------------------------------------------------------


def _headers(request: Request) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in request.headers.items():
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def _check_key(state: FakeLLMState, request: Request) -> ApiError | None:
    expected = state.script.api_key
    if expected is None:
        return None
    auth = request.headers.get("authorization", "")
    given = auth[7:] if auth.lower().startswith("bearer ") else ""
    if given == expected:
        return None
    shown = (given[:3] + "*" * max(len(given) - 7, 0) + given[-4:]) if len(given) > 8 else given
    return ApiError(
        401,
        f"Incorrect API key provided: {shown or '(none)'}. You can find your API key at https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def _embeddings_input(body: Any) -> ApiError | None:
    if not isinstance(body, dict):
        return ApiError(400, "We could not parse the JSON body of your request.")
    if not isinstance(body.get("model"), str):
        return ApiError(400, "you must provide a model parameter", param="model")
    raw = body.get("input")
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(t, str) and t for t in raw):
        return ApiError(
            400, "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."
        )
    dim = body.get("dimensions")
    if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool) or not 8 <= dim <= 4096):
        return _invalid_type("dimensions", "an integer between 8 and 4096", dim)
    return None


def create_fake_llm_app(script: Any = None, *, state: FakeLLMState | None = None) -> Starlette:
    """The fake upstream's ASGI app. ``script``: a :class:`Script`, its dict/list form, or a file path.

    The app's state object (turns, request log) is ``app.state.fakellm``; pass ``state`` to share one.
    """
    if state is None:
        state = FakeLLMState(as_script(script))
    elif script is not None:
        state.load(script)
    _install_drop_filter()

    async def record(request: Request) -> RecordedRequest:
        content = await request.body()
        body = None
        with contextlib.suppress(ValueError):
            body = json.loads(content) if content else None
        peer = f"{request.client.host}:{request.client.port}" if request.client else None
        entry = RecordedRequest(request.method, request.url.path, _headers(request), content, body, peer=peer)
        state.record(entry)
        return entry

    async def chat_completions(request: Request) -> Response:
        entry = await record(request)
        error = _check_key(state, request)
        if error is None and entry.body is None:
            error = ApiError(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
                "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
            )
        body: dict[str, Any] = entry.body
        if error is None:
            error = validate_chat_request(body)
        if error is None and state.script.strict_models and body["model"] not in state.script.models:
            error = ApiError(
                404,
                f"The model `{body['model']}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        selected = state.select(body) if error is None else error
        if isinstance(selected, ApiError):
            entry.status = selected.status
            log.info("%s %s -> %d %s", request.method, request.url.path, selected.status, selected.message)
            return selected.response()
        label, turn, options = selected
        entry.turn = label
        stream = bool(body.get("stream"))
        fault = turn.fault
        log.info(
            "%s %s -> %s (%s%s)",
            request.method,
            request.url.path,
            label,
            "stream" if stream else "json",
            f", fault {fault.type}" if fault else "",
        )
        if fault is not None and fault.type == "http_error":
            entry.status = fault.status
            return http_error_response(fault)
        stream_options = body.get("stream_options")
        include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
        completion = plan_completion(turn, options, body)
        return _ScriptedResponse(state, entry, completion, fault, stream=stream, include_usage=include_usage)

    def model_object(model_id: str) -> dict[str, Any]:
        return {"id": model_id, "object": "model", "created": 1700000000, "owned_by": "assistd-fakellm"}

    async def list_models(request: Request) -> Response:
        entry = await record(request)
        error = _check_key(state, request)
        if error is not None:
            entry.status = error.status
            return error.response()
        entry.status = 200
        return JSONResponse({"object": "list", "data": [model_object(m) for m in state.script.models]})

    async def get_model(request: Request) -> Response:
        entry = await record(request)
        model_id = request.path_params["model"]
        error = _check_key(state, request)
        if error is None and model_id not in state.script.models:
            error = ApiError(404, f"The model '{model_id}' does not exist", param="model", code="model_not_found")
        if error is not None:
            entry.status = error.status
            return error.response()
        entry.status = 200
        return JSONResponse(model_object(model_id))

    async def embeddings(request: Request) -> Response:
        """Deterministic embeddings (assistd's hashed bag of words, 384-d or ``dimensions``): texts
        that share words are close, so retrieval can be tested end to end without a model."""
        entry = await record(request)
        error = _check_key(state, request)
        body = entry.body
        texts: list[str] = []
        if error is None:
            error = _embeddings_input(body)
        if error is None:
            raw = body["input"]
            texts = [raw] if isinstance(raw, str) else list(raw)
        if error is not None:
            entry.status = error.status
            return error.response()
        dim = body.get("dimensions") or 384
        vectors = HashEmbedder(int(dim)).embed_sync(texts)
        entry.status = 200
        tokens = sum(len(t.split()) for t in texts)
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": i, "embedding": [float(x) for x in row]}
                    for i, row in enumerate(vectors)
                ],
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    # control API, for a fake run as its own process (`assistd fake-llm`)
    async def control_requests(request: Request) -> Response:
        if request.method == "DELETE":
            return JSONResponse({"deleted": state.clear_requests()})
        return JSONResponse({"object": "list", "data": [r.to_dict() for r in state.requests]})

    async def control_turns(request: Request) -> Response:
        try:
            data = json.loads(await request.body())
            state.add_turns(*(data if isinstance(data, list) else [data]))
        except (ValueError, ScriptError) as exc:
            return ApiError(400, str(exc)).response()
        return JSONResponse({"remaining_turns": len(state.remaining_turns)})

    async def control_script(request: Request) -> Response:
        if request.method == "PUT":
            try:
                state.load(Script.parse(json.loads(await request.body())))
            except (ValueError, ScriptError) as exc:
                return ApiError(400, str(exc)).response()
        turns = state.remaining_turns
        return JSONResponse(
            {"remaining_turns": len(turns), "names": [t.name for t in turns], "models": list(state.script.models)}
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        message = (
            f"Invalid URL ({request.method} {request.url.path})"
            if status == 404
            else f"Method {request.method} not allowed for {request.url.path}"
        )
        return ApiError(status, message).response()

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", get_model, methods=["GET"]),
            Route("/_fakellm/requests", control_requests, methods=["GET", "DELETE"]),
            Route("/_fakellm/turns", control_turns, methods=["POST"]),
            Route("/_fakellm/script", control_script, methods=["GET", "PUT"]),
        ],
        exception_handlers={404: not_found, 405: not_found},
    )
    app.state.fakellm = state
    return app
