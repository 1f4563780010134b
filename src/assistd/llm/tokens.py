"""Token counting with tiktoken, offline: the ``o200k_base`` and ``cl100k_base`` rank files ship as package data.

``tiktoken.get_encoding`` downloads its rank files from ``openaipublic.blob.core.windows.net`` on first
use (and ``load_tiktoken_bpe`` copies even a local file into its cache directory, failing when a
user-set ``TIKTOKEN_CACHE_DIR`` is read-only). So this module never calls either: it reads the
files in ``assistd/llm/data/`` itself, checks their sha256 against the hashes tiktoken expects
(``tiktoken_ext/openai_public.py``), and builds :class:`tiktoken.Encoding` objects with the same
``pat_str`` and special tokens as tiktoken's own constructors (a test checks they agree). The
files are byte-identical to OpenAI's; they were taken from the ``litellm`` wheel, which ships them
under ``litellm/litellm_core_utils/tokenizers/<sha1 of the original URL>``.

Counts are estimates in the way OpenAI's cookbook estimates them: a chat message costs its text
plus about 3 tokens of framing, a reply is primed with 3 more, and tool definitions are counted
by their JSON (OpenAI renders them differently, so that part is rough).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Any, Final

import tiktoken

__all__ = [
    "ENCODINGS",
    "count_messages",
    "count_text",
    "count_tools",
    "encoding_for",
    "encoding_name_for",
    "get_encoding",
    "preload",
]

_ENDOFTEXT = "<|endoftext|>"
_FIM_PREFIX = "<|fim_prefix|>"
_FIM_MIDDLE = "<|fim_middle|>"
_FIM_SUFFIX = "<|fim_suffix|>"
_ENDOFPROMPT = "<|endofprompt|>"


class _Spec:
    __slots__ = ("file", "name", "pat_str", "sha256", "special_tokens")

    def __init__(self, name: str, sha256: str, pat_str: str, special_tokens: dict[str, int]) -> None:
        self.name = name
        self.file = f"{name}.tiktoken"
        self.sha256 = sha256
        self.pat_str = pat_str
        self.special_tokens = special_tokens


# Copied from tiktoken_ext/openai_public.py (tiktoken 0.7 .. 0.14); tests/llm/test_tokens.py checks them.
ENCODINGS: Final[dict[str, _Spec]] = {
    "cl100k_base": _Spec(
        "cl100k_base",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
        {_ENDOFTEXT: 100257, _FIM_PREFIX: 100258, _FIM_MIDDLE: 100259, _FIM_SUFFIX: 100260, _ENDOFPROMPT: 100276},
    ),
    "o200k_base": _Spec(
        "o200k_base",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    ),
}

_lock = threading.Lock()
_loaded: dict[str, tiktoken.Encoding] = {}


def _read_ranks(spec: _Spec) -> dict[bytes, int]:
    data = resources.files("assistd.llm").joinpath("data", spec.file).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != spec.sha256:
        raise RuntimeError(
            f"assistd/llm/data/{spec.file} is corrupt: sha256 {actual}, expected {spec.sha256} (reinstall assistd)"
        )
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def get_encoding(name: str) -> tiktoken.Encoding:
    """``o200k_base`` or ``cl100k_base``, loaded once per process from the shipped files (~0.3 s)."""
    encoding = _loaded.get(name)
    if encoding is not None:
        return encoding
    spec = ENCODINGS.get(name)
    if spec is None:
        raise ValueError(f"unknown encoding {name!r} (shipped: {', '.join(ENCODINGS)})")
    with _lock:
        encoding = _loaded.get(name)
        if encoding is None:
            encoding = tiktoken.Encoding(
                name=spec.name,
                pat_str=spec.pat_str,
                mergeable_ranks=_read_ranks(spec),
                special_tokens=dict(spec.special_tokens),
            )
            _loaded[name] = encoding
    return encoding


def preload() -> None:
    """Load both encodings now (~0.3 s of CPU), e.g. ``await asyncio.to_thread(preload)`` at start-up,
    so that the first count on the event loop does not stall it."""
    for name in ENCODINGS:
        get_encoding(name)


# Prefix → encoding, longest prefixes first. Anything else (gpt-4o, o1, o3, o4, gpt-4.1, gpt-4.5,
# gpt-5, gpt-oss, and every non-OpenAI model) is counted with o200k_base, the current tokenizer.
_CL100K_PREFIXES: Final = ("gpt-4-", "gpt-3.5", "gpt-35", "text-embedding-ada-002", "text-embedding-3")
_O200K_PREFIXES: Final = ("gpt-4o", "gpt-4.1", "gpt-4.5", "chatgpt-4o")


def encoding_name_for(model: str) -> str:
    """The encoding name for a model: ``cl100k_base`` for gpt-3.5 / gpt-4 (not 4o/4.1/4.5), else ``o200k_base``.

    Provider prefixes (``openai/gpt-4``, ``azure/gpt-35-turbo``) and fine-tune names
    (``ft:gpt-3.5-turbo:org::id``) are understood.
    """
    name = model.strip().lower()
    if name.startswith("ft:"):
        name = name[3:]
    name = name.rsplit("/", 1)[-1]
    if name.startswith(_O200K_PREFIXES):
        return "o200k_base"
    if name == "gpt-4" or name.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    return "o200k_base"


def encoding_for(model: str) -> tiktoken.Encoding:
    """The tiktoken encoding to count ``model``'s tokens with (see :func:`encoding_name_for`)."""
    return get_encoding(encoding_name_for(model))


def count_text(text: str, model: str) -> int:
    """Tokens in ``text`` (special-token strings such as ``<|endoftext|>`` count as plain text)."""
    return len(encoding_for(model).encode_ordinary(text)) if text else 0


# OpenAI's framing, per its cookbook ("How to count tokens with tiktoken"): every message costs 3
# tokens besides its fields, a name 1 more, and the reply is primed with 3.
_PER_MESSAGE: Final = 3
_PER_NAME: Final = 1
_REPLY_PRIMING: Final = 3
# An image part: the low-detail price. High-detail images cost more (by tile), unknowable here.
_PER_IMAGE: Final = 85
_PER_TOOL_CALL: Final = 3


def _encode_len(encoding: tiktoken.Encoding, text: str) -> int:
    return len(encoding.encode_ordinary(text)) if text else 0


def _content_tokens(encoding: tiktoken.Encoding, content: Any) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return _encode_len(encoding, content)
    if isinstance(content, Sequence):
        total = 0
        for part in content:
            if not isinstance(part, Mapping):
                continue
            kind = part.get("type")
            if isinstance(part.get("text"), str):
                total += _encode_len(encoding, part["text"])
            elif kind in ("image_url", "image_file", "input_image", "image"):
                total += _PER_IMAGE
            elif isinstance(part.get("refusal"), str):
                total += _encode_len(encoding, part["refusal"])
        return total
    return _encode_len(encoding, json.dumps(content, ensure_ascii=False))


def _message_tokens(encoding: tiktoken.Encoding, message: Mapping[str, Any]) -> int:
    total = _PER_MESSAGE
    for key, value in message.items():
        if value is None:
            continue
        if key == "content":
            total += _content_tokens(encoding, value)
        elif key == "tool_calls" and isinstance(value, Sequence):
            for call in value:
                fn = call.get("function") if isinstance(call, Mapping) else None
                if isinstance(fn, Mapping):
                    total += _PER_TOOL_CALL
                    total += _encode_len(encoding, str(fn.get("name") or ""))
                    total += _encode_len(encoding, str(fn.get("arguments") or ""))
        elif isinstance(value, str):
            total += _encode_len(encoding, value)
            if key == "name":
                total += _PER_NAME
    return total


def count_tools(tools: Iterable[Mapping[str, Any]] | None, model: str) -> int:
    """A rough count for tool definitions: the tokens of their compact JSON."""
    if not tools:
        return 0
    encoding = encoding_for(model)
    return sum(
        _encode_len(encoding, json.dumps(tool.get("function", tool), separators=(",", ":"), ensure_ascii=False))
        for tool in tools
    )


def count_messages(
    messages: Iterable[Mapping[str, Any]], model: str, tools: Iterable[Mapping[str, Any]] | None = None
) -> int:
    """Estimated prompt tokens of a chat request: messages with OpenAI's framing, plus tools roughly."""
    encoding = encoding_for(model)
    total = _REPLY_PRIMING
    for message in messages:
        if isinstance(message, Mapping):
            total += _message_tokens(encoding, message)
    return total + count_tools(tools, model)
