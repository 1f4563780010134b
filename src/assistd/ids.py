"""Object ids: one prefix table, random base62 bodies (24 characters, like OpenAI's)."""

from __future__ import annotations

import secrets
from typing import Final

PREFIXES: Final[dict[str, str]] = {
    "assistant": "asst_",
    "thread": "thread_",
    "message": "msg_",
    "run": "run_",
    "step": "step_",
    "call": "call_",
    "file": "file-",
    "vector_store": "vs_",
    "file_batch": "vsfb_",
    "upload": "upload_",
    "part": "part_",
    "project": "proj_",
    "key": "key_",
}

_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def random_token(length: int = 24) -> str:
    raw = int.from_bytes(secrets.token_bytes(length), "big")
    out = []
    for _ in range(length):
        raw, rem = divmod(raw, 62)
        out.append(_ALPHABET[rem])
    return "".join(out)


def new_id(kind: str) -> str:
    """``new_id("assistant") -> "asst_…"``."""
    return PREFIXES[kind] + random_token()


def has_prefix(kind: str, value: str) -> bool:
    return value.startswith(PREFIXES[kind])
