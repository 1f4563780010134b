"""Server-sent events, leniently: the ``data:`` payloads of a ``text/event-stream``, one per event.

Lines come already split (httpx splits on ``\\n``, ``\\r\\n`` and ``\\r``). Comments (``: ...``,
keep-alives) and ``id:``/``retry:`` fields are skipped; an ``event:`` name is kept beside the
data (``event: error`` is how some servers report a failure). A multi-line ``data`` is joined
with ``\\n`` as the SSE spec says, but servers that forget the blank line between events send
several JSON documents that way, so :func:`split_payloads` takes such a block apart again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

__all__ = ["SSEDecoder", "SSEEvent", "split_payloads"]


@dataclass(slots=True)
class SSEEvent:
    data: str
    event: str | None = None


@dataclass(slots=True)
class SSEDecoder:
    """Feed lines; get an :class:`SSEEvent` back at each blank line that ends an event with data."""

    _data: list[str] = field(default_factory=list)
    _event: str | None = None

    def feed(self, line: str) -> SSEEvent | None:
        line = line.rstrip("\r\n")
        if not line:
            return self.flush()
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if not sep:  # a field with no colon: the whole line is the field name, value empty
            name, value = line, ""
        elif value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value or None
        return None

    def flush(self) -> SSEEvent | None:
        """The pending event, if any (call at end of stream too: the last blank line may be missing)."""
        if not self._data:
            self._event = None
            return None
        event = SSEEvent("\n".join(self._data), self._event)
        self._data, self._event = [], None
        return event


def split_payloads(data: str) -> list[str]:
    """The JSON documents of one event's data: itself, or its lines when it is several documents."""
    if "\n" not in data:
        return [data]
    try:
        json.loads(data)
    except ValueError:
        lines = [line for line in data.split("\n") if line.strip()]
        if len(lines) > 1:
            return lines
    return [data]
