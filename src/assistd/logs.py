"""Logging set-up: the classic text lines, or one JSON object per line (``ASSISTD_LOG_FORMAT=json``).

A JSON line carries ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger`` and
``message``, then ``request_id`` and ``run_id`` whenever they are known, then every ``extra``
the call passed (``log.warning(..., extra={"model": m})``), then ``exception`` (the traceback)
if there is one. ``request_id`` is the request's ``x-request-id`` (set by the request middleware
for everything the request does, the tasks it starts included); ``run_id`` is set by the executor
for everything a run's task does. Uvicorn's own lines (start-up, errors, the access log) come
out the same way: an access line adds ``client``, ``method``, ``path`` and ``status``.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

LogFormat = Literal["text", "json"]

request_id_var: ContextVar[str | None] = ContextVar("assistd_request_id", default=None)
run_id_var: ContextVar[str | None] = ContextVar("assistd_run_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

# Attributes every LogRecord has: anything else on a record came from ``extra``.
_STANDARD = frozenset(
    (
        *logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None).__dict__,
        "message",
        "asctime",
        "color_message",  # uvicorn's copy of the message with terminal colours
        "taskName",
    )
)


def set_run_id(run_id: str) -> None:
    """The current task works on this run: its log lines carry ``run_id`` (the executor calls this
    at the start of a run's task; a task's context is its own, so nothing needs resetting)."""
    run_id_var.set(run_id)


class JSONFormatter(logging.Formatter):
    """One JSON object per line (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            out["request_id"] = request_id
        run_id = run_id_var.get()
        if run_id is not None:
            out["run_id"] = run_id
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, _version, status = record.args
            out.update(client=client, method=method, path=path, status=status)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(out, default=str).decode()


def configure(level: str, fmt: LogFormat = "text") -> None:
    """Configure the root logger on stderr (every command calls this once)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    if fmt == "json":
        logging.captureWarnings(True)  # warnings.warn() lines would not be JSON
        # Loggers that libraries configured with their own handlers (uvicorn's, when a config was
        # applied earlier in this process) go through the root's JSON handler instead.
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            lg = logging.getLogger(name)
            lg.handlers.clear()
            lg.propagate = True
