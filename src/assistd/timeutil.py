from __future__ import annotations

import time


def now() -> int:
    """Unix seconds, the API's only time unit."""
    return int(time.time())
