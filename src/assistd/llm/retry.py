"""Backoff and ``Retry-After``: how long to wait before trying an upstream again."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["backoff_delay", "retry_after_seconds"]


def backoff_delay(retry: int, *, base: float, cap: float) -> float:
    """Exponential backoff with jitter: ``min(base·2ⁿ, cap)``, less up to a quarter (n = 0 for the first retry)."""
    delay = min(base * (2.0**retry), cap)
    return delay * (1.0 - 0.25 * random.random())


def retry_after_seconds(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """The wait an error response asks for: ``retry-after-ms``, else ``Retry-After`` (seconds or an HTTP date).

    None when there is neither or the value makes no sense; never negative.
    """
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
        except ValueError:
            value = float("nan")
        if value == value and value >= 0:  # not NaN
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        return seconds if seconds == seconds and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)
