"""The built-in tools as the model sees them, and the text conventions around them.

``file_search`` and ``code_interpreter`` are offered to the upstream model as function tools
(DESIGN.md); a call to one is executed here and becomes a ``file_search`` / ``code_interpreter``
tool call in the run step, never a ``requires_action``.

- file_search results reach the model as blocks headed by a marker ``【m:n†filename】`` (m = the
  run's m-th file_search call, n = the result's rank). Markers the model copies into its answer
  become ``file_citation`` annotations (code-point offsets into the text, CONTRACT §8).
- code_interpreter's ``code`` argument is streamed as ``input`` deltas while the model writes it
  (decoded from the partial JSON of the arguments), and ``sandbox:/mnt/data/<name>`` links in the
  answer become ``file_path`` annotations naming the File the sandbox produced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

FILE_SEARCH = "file_search"
CODE_INTERPRETER = "code_interpreter"
BUILTINS = frozenset({FILE_SEARCH, CODE_INTERPRETER})

FILE_SEARCH_FUNCTION: dict[str, Any] = {
    "name": FILE_SEARCH,
    "description": (
        "Search the files the user has provided (documents attached to this assistant or conversation) and "
        "return the most relevant passages. Use it whenever the answer may be in those files. Each result "
        "starts with a source marker such as 【0:1†report.pdf】; when you use a result, cite it by copying its "
        "marker verbatim right after the statement it supports."
    ),
    "parameters": {
        "type": "object",
        "properties": {
            "queries": {
                "type": "array",
                "items": {"type": "string"},
                "description": "One or more search queries (keywords or questions), most important first.",
            }
        },
        "required": ["queries"],
    },
}

CODE_INTERPRETER_FUNCTION: dict[str, Any] = {
    "name": CODE_INTERPRETER,
    "description": (
        "Run Python code in a stateful Jupyter kernel (variables persist between calls in this conversation). "
        "Files the user provided are in /mnt/data; save files you create there too, and link them in your "
        "answer as [name](sandbox:/mnt/data/<name>). The kernel has no internet access. numpy, pandas and "
        "matplotlib are installed; plt.show() displays a chart. Printed output, results and errors are returned."
    ),
    "parameters": {
        "type": "object",
        "properties": {"code": {"type": "string", "description": "The Python code to run."}},
        "required": ["code"],
    },
}


def builtin_functions(run_tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The function definitions offered for the run's built-in tools."""
    out = []
    kinds = {t["type"] for t in run_tools}
    if FILE_SEARCH in kinds:
        out.append({"type": "function", "function": FILE_SEARCH_FUNCTION})
    if CODE_INTERPRETER in kinds:
        out.append({"type": "function", "function": CODE_INTERPRETER_FUNCTION})
    return out


# --- code_interpreter: the `code` string out of streamed JSON arguments ----------------------------

_CODE_KEY = re.compile(r'"code"\s*:\s*"')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def partial_code(arguments: str) -> str:
    """The decoded prefix of the ``code`` value in possibly incomplete JSON ``arguments``.

    Stops before an escape sequence that is not complete yet, so successive calls on a growing
    string answer growing prefixes (their differences are the ``input`` deltas)."""
    m = _CODE_KEY.search(arguments)
    if m is None:
        return ""
    out: list[str] = []
    i, n = m.end(), len(arguments)
    while i < n:
        ch = arguments[i]
        if ch == '"':
            break
        if ch != "\\":
            j = i
            while j < n and arguments[j] not in '"\\':
                j += 1
            out.append(arguments[i:j])
            i = j
            continue
        if i + 1 >= n:
            break
        esc = arguments[i + 1]
        if esc == "u":
            if i + 6 > n:
                break
            code = int(arguments[i + 2 : i + 6], 16)
            if 0xD800 <= code < 0xDC00:  # a surrogate pair needs its second half
                if i + 12 > n:
                    break
                low = int(arguments[i + 8 : i + 12], 16)
                out.append(chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)))
                i += 12
                continue
            out.append(chr(code))
            i += 6
            continue
        out.append(_ESCAPES.get(esc, esc))
        i += 2
    return "".join(out)


def code_argument(arguments: str) -> str:
    """The whole ``code`` argument (complete JSON; falls back to the streamed prefix, or raw text
    when a model sent bare code instead of JSON)."""
    import orjson

    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return partial_code(arguments) or arguments
    code = parsed.get("code") if isinstance(parsed, dict) else None
    if isinstance(code, str):
        return code
    return partial_code(arguments)


def search_queries(arguments: str) -> list[str]:
    """The ``queries`` of a file_search call (a lone ``query`` string is accepted too)."""
    import orjson

    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return [arguments.strip()] if arguments.strip() else []
    if not isinstance(parsed, dict):
        return []
    raw = parsed.get("queries", parsed.get("query", []))
    if isinstance(raw, str):
        raw = [raw]
    return [q for q in raw if isinstance(q, str) and q.strip()][:5] if isinstance(raw, list) else []


# --- annotations -----------------------------------------------------------------------------------

CITATION = re.compile(r"【(\d+):(\d+)†([^】\n]{0,200})】")
SANDBOX_LINK = re.compile(r"sandbox:/mnt/data/[^\s()\[\]<>\"'`]+")
LONGEST_MARKER = 220  # characters: a marker cut by a chunk boundary is found once the rest arrives


def marker(call_index: int, rank: int, filename: str) -> str:
    return f"【{call_index}:{rank}†{filename}】"


QUOTE_MAX_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Citation:
    """What a marker cites: the File, and the passage's text (``file_citation.quote``, cut to
    ``QUOTE_MAX_CHARS``: Assistants v1 clients read it, and v2's delta schema still lists it)."""

    file_id: str
    quote: str

    @classmethod
    def of_result(cls, result: dict[str, Any]) -> Citation:
        """From a step's file_search result (its ``content`` holds the passage)."""
        text = "".join(part.get("text", "") for part in result.get("content") or [])
        return cls(result["file_id"], text[:QUOTE_MAX_CHARS])


@dataclass(slots=True)
class Annotator:
    """Finds citation markers and sandbox links in a growing answer, each once, as annotations."""

    citations: dict[tuple[int, int], Citation]  # (m, n) -> what it cites
    sandbox_files: dict[str, str]  # "/mnt/data/name" -> file_id
    rescan_from: int = 0
    seen: set[tuple[str, int]] = field(default_factory=set)
    all: list[dict[str, Any]] = field(default_factory=list)

    def scan(self, text: str, final: bool = False) -> list[dict[str, Any]]:
        """New annotations (with their ``index``) for matches in ``text``; a sandbox link that
        touches the end of ``text`` may still grow and waits for more text unless ``final``."""
        found: list[dict[str, Any]] = []
        start = self.rescan_from
        next_from = max(0, len(text) - LONGEST_MARKER)
        for m in CITATION.finditer(text, start):
            key = ("c", m.start())
            if key in self.seen:
                continue
            self.seen.add(key)
            cited = self.citations.get((int(m.group(1)), int(m.group(2))))
            if cited is not None:
                found.append(
                    {
                        "type": "file_citation",
                        "text": m.group(0),
                        "start_index": m.start(),
                        "end_index": m.end(),
                        "file_citation": {"file_id": cited.file_id, "quote": cited.quote},
                    }
                )
        for m in SANDBOX_LINK.finditer(text, start):
            key = ("p", m.start())
            if key in self.seen:
                continue
            if m.end() == len(text) and not final:
                next_from = min(next_from, m.start())  # the path may continue in the next chunk
                continue
            self.seen.add(key)
            path = m.group(0)[len("sandbox:") :].rstrip(".,;:!?")
            file_id = self.sandbox_files.get(path)
            if file_id is not None:
                end = m.start() + len("sandbox:") + len(path)
                found.append(
                    {
                        "type": "file_path",
                        "text": text[m.start() : end],
                        "start_index": m.start(),
                        "end_index": end,
                        "file_path": {"file_id": file_id},
                    }
                )
        self.rescan_from = next_from
        found.sort(key=lambda a: a["start_index"])
        for a in found:
            a["index"] = len(self.all)
            self.all.append({k: v for k, v in a.items() if k != "index"})
        return found
