"""Split a document's text into overlapping windows of tokens, keeping exact character offsets.

OpenAI's static chunking strategy: windows of ``max_tokens`` tokens (100..4096), each starting
``max_tokens - overlap`` tokens after the previous one (``overlap`` at most half the window); "auto"
is 800/400. Tokens are counted with ``o200k_base`` from the encodings shipped in
:mod:`assistd.llm.tokens` (never downloaded).

A token may end in the middle of a UTF-8 character (tiktoken works on bytes), so token boundaries
are mapped to character boundaries by widening: a chunk starts at the character holding its first
byte and ends after the character holding its last byte. ``text[c.start:c.end] == c.text`` always
holds; ``c.tokens`` is the number of tokens in the window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import numpy as np

from assistd.llm.tokens import get_encoding

__all__ = [
    "AUTO_MAX_TOKENS",
    "AUTO_OVERLAP",
    "ENCODING",
    "MAX_CHUNK_TOKENS",
    "MIN_CHUNK_TOKENS",
    "Chunk",
    "chunk_text",
    "count_tokens",
    "validate_static",
]

ENCODING: Final = "o200k_base"
MIN_CHUNK_TOKENS: Final = 100
MAX_CHUNK_TOKENS: Final = 4096
AUTO_MAX_TOKENS: Final = 800
AUTO_OVERLAP: Final = 400

_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Chunk:
    index: int
    text: str
    start: int  # character offset into the document text
    end: int  # exclusive
    tokens: int


def validate_static(max_tokens: int, overlap: int) -> None:
    """Raise ValueError unless 100 <= max_tokens <= 4096 and 0 <= overlap <= max_tokens / 2."""
    if not MIN_CHUNK_TOKENS <= max_tokens <= MAX_CHUNK_TOKENS:
        raise ValueError(f"max_tokens must be between {MIN_CHUNK_TOKENS} and {MAX_CHUNK_TOKENS}, got {max_tokens}")
    if overlap < 0:
        raise ValueError(f"overlap must not be negative, got {overlap}")
    if overlap * 2 > max_tokens:
        raise ValueError(f"overlap ({overlap}) must not exceed half of max_tokens ({max_tokens})")


def _clean(text: str) -> str:
    # Lone surrogates cannot be encoded; swapping each for U+FFFD keeps every offset.
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def count_tokens(text: str) -> int:
    """Tokens in ``text`` as the chunker counts them."""
    return len(get_encoding(ENCODING).encode_ordinary(_clean(text))) if text else 0


def chunk_text(text: str, max_tokens: int = AUTO_MAX_TOKENS, overlap: int = AUTO_OVERLAP) -> list[Chunk]:
    """Windows of ``max_tokens`` tokens advancing by ``max_tokens - overlap``; the last may be shorter.

    An empty or all-whitespace text has no chunks. CPU-bound (about 1 s per 4 MB of text): call it
    through ``asyncio.to_thread`` from async code.
    """
    validate_static(max_tokens, overlap)
    if not text or text.isspace():
        return []
    clean = _clean(text)
    encoding = get_encoding(ENCODING)
    tokens = encoding.encode_ordinary(clean)
    n = len(tokens)
    if n == 0:
        return []

    # Byte offset of each token boundary, then byte -> character.
    lengths = np.fromiter((len(encoding.decode_single_token_bytes(t)) for t in tokens), dtype=np.int64, count=n)
    byte_bounds = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=byte_bounds[1:])
    raw = np.frombuffer(clean.encode("utf-8"), dtype=np.uint8)
    if int(byte_bounds[-1]) != raw.size:  # tiktoken's tokens always cover the input exactly
        raise RuntimeError("token bytes do not cover the text")
    is_char_start = (raw & 0xC0) != 0x80
    char_of_byte = np.cumsum(is_char_start) - 1  # index of the character each byte belongs to
    total_chars = len(clean)

    def start_char(b: int) -> int:
        return total_chars if b >= raw.size else int(char_of_byte[b])

    def end_char(b: int) -> int:
        if b >= raw.size:
            return total_chars
        # b is the first byte after the window: if it continues a character, include that character.
        return int(char_of_byte[b]) + (0 if is_char_start[b] else 1)

    step = max_tokens - overlap
    chunks: list[Chunk] = []
    first = 0
    while True:
        last = min(first + max_tokens, n)
        start = start_char(int(byte_bounds[first]))
        end = end_char(int(byte_bounds[last]))
        chunks.append(Chunk(index=len(chunks), text=text[start:end], start=start, end=end, tokens=last - first))
        if last >= n:
            break
        first += step
    return chunks
