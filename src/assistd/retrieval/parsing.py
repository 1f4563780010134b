"""File -> plain text for file_search, in a subprocess with time and memory limits.

:func:`parse_file` is what ingestion calls: it runs ``python -m assistd.retrieval._parse_worker`` with
a cleared environment, an address-space limit (``RLIMIT_AS``), a CPU-time backstop and a wall-clock
timeout, so that a malicious or pathological file (a decompression bomb, a PDF that makes pypdf
loop) costs one dead subprocess and a :class:`ParseError`, never the caller. :func:`parse_bytes_sync`
is the same parsing in-process (the worker's body, and handy in tests).

Errors are the two codes a vector-store file's ``last_error`` can carry: ``unsupported_file``
(extension not in :data:`SUPPORTED_EXTENSIONS`, or ``.doc`` without antiword) and ``invalid_file``
(empty, binary, corrupt, encrypted, scanned without text, too big for the limits).

Text output: paragraphs separated by blank lines; pages (PDF) and slides (PPTX) separated by a form
feed ``"\\f"`` on its own line, and ``page_offsets`` gives the character offset where each starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final, Literal

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "TEXT_EXTENSIONS",
    "ParseError",
    "ParsedDocument",
    "extension_of",
    "is_supported",
    "parse_bytes_sync",
    "parse_file",
    "unsupported_message",
]

ParseErrorCode = Literal["unsupported_file", "invalid_file"]

# OpenAI's file_search list (https://platform.openai.com/docs/assistants/tools/file-search#supported-files).
TEXT_EXTENSIONS: Final = frozenset(
    {
        ".c",
        ".cpp",
        ".cs",
        ".css",
        ".go",
        ".java",
        ".js",
        ".json",
        ".md",
        ".php",
        ".py",
        ".rb",
        ".sh",
        ".tex",
        ".ts",
        ".txt",
    }
)
SUPPORTED_EXTENSIONS: Final = TEXT_EXTENSIONS | frozenset({".doc", ".docx", ".html", ".pdf", ".pptx"})

PAGE_BREAK: Final = "\n\f\n"
_SURROGATE = re.compile("[\ud800-\udfff]")


class ParseError(Exception):
    """``code`` is ``unsupported_file`` or ``invalid_file``; ``message`` is for ``last_error.message``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(slots=True)
class ParsedDocument:
    text: str
    pages: int | None = None  # PDF pages, PPTX slides
    page_offsets: list[int] | None = None  # character offset of each page's first character


def extension_of(filename: str) -> str:
    """Lower-cased extension with its dot (``".pdf"``), or ``""``."""
    return PurePosixPath(filename.replace("\\", "/")).suffix.lower()


def is_supported(filename: str) -> bool:
    return extension_of(filename) in SUPPORTED_EXTENSIONS


def unsupported_message(filename: str) -> str:
    """OpenAI's wording for a file file_search cannot take."""
    ext = extension_of(filename) or "(none)"
    return (
        f"Files with extensions [{ext}] are not supported for retrieval. "
        "See https://platform.openai.com/docs/assistants/tools/file-search#supported-files"
    )


def parse_bytes_sync(data: bytes, filename: str, *, path: Path | None = None) -> ParsedDocument:
    """Parse in this process (no limits). Raises :class:`ParseError`."""
    from assistd.retrieval import _formats

    ext = extension_of(filename)
    if ext not in SUPPORTED_EXTENSIONS:
        raise ParseError("unsupported_file", unsupported_message(filename))
    if not data:
        raise ParseError("invalid_file", "The file is empty.")
    try:
        if ext in TEXT_EXTENSIONS:
            doc = ParsedDocument(_formats.decode_text(data))
        elif ext == ".html":
            doc = ParsedDocument(_formats.html_text(_formats.decode_text(data, html=True)))
        elif ext == ".pdf":
            doc = _formats.pdf(data)
        elif ext == ".docx":
            doc = ParsedDocument(_formats.docx(data))
        elif ext == ".pptx":
            doc = _formats.pptx(data)
        else:  # .doc
            doc = ParsedDocument(_formats.doc(data, path))
    except ParseError:
        raise
    except MemoryError:
        raise ParseError("invalid_file", "The file is too large to parse within the memory limit.") from None
    except RecursionError:
        raise ParseError("invalid_file", "The file is nested too deeply to parse.") from None
    except Exception as exc:
        raise ParseError("invalid_file", f"The file could not be parsed: {_describe(exc)}") from exc
    doc.text = _SURROGATE.sub("\ufffd", doc.text)  # lone surrogates cannot be stored or encoded
    if not doc.text.strip():
        if ext == ".pdf":
            raise ParseError("invalid_file", "No text could be extracted from the PDF (is it scanned images only?).")
        raise ParseError("invalid_file", "No text could be extracted from the file.")
    return doc


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text if len(text) <= 200 else text[:197] + "..."


# ------------------------------------------------------------------------------------------ subprocess

# What the worker needs from the environment; nothing else (no API keys, no database URL) is passed on.
_PASS_ENV: Final = ("PATH", "PYTHONPATH", "TMPDIR", "SYSTEMROOT")


def _worker_env() -> dict[str, str]:
    env = {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
    env.update(
        {
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1",
            "PYTHONIOENCODING": "utf-8",
            "PYTHONHASHSEED": "0",
            # One thread per BLAS/OpenMP pool if anything imports numpy: threads cost address space.
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
        }
    )
    return env


async def parse_file(
    path: Path,
    filename: str,
    *,
    timeout: float = 120,  # noqa: ASYNC109 (the subprocess's wall-clock limit)
    memory_mb: int = 1024,
) -> ParsedDocument:
    """Parse the file at ``path`` (named ``filename`` by its uploader) in a limited subprocess.

    Raises :class:`ParseError` for anything wrong with the file, including running out of time or
    memory. Never raises for a crash of the parser itself (that is an ``invalid_file`` too).
    """
    if not is_supported(filename):
        raise ParseError("unsupported_file", unsupported_message(filename))
    try:
        size = os.stat(path).st_size  # one syscall; a stat does not block meaningfully
    except OSError as exc:
        raise ParseError("invalid_file", f"The file could not be read: {exc.strerror or exc}") from None
    if size == 0:
        raise ParseError("invalid_file", "The file is empty.")

    args = _worker_args(path, filename, timeout, memory_mb)
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_worker_env(),
        cwd="/",
        start_new_session=True,  # its own process group: a kill takes antiword along
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        _kill(proc)
        await proc.wait()
        raise ParseError("invalid_file", f"Parsing the file took longer than {timeout:g} seconds.") from None
    except BaseException:  # cancelled: never leave the child behind
        _kill(proc)
        with contextlib.suppress(BaseException):
            await asyncio.shield(proc.wait())
        raise
    return _result(proc.returncode, out, err)


def _worker_args(path: Path, filename: str, timeout: float, memory_mb: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "assistd.retrieval._parse_worker",
        "--memory-mb",
        str(memory_mb),
        "--cpu-seconds",
        str(int(timeout) + 5),
        f"--filename={filename}",  # one token: a name starting with "-" is not taken for an option
        "--",
        os.path.abspath(path),
    ]


def _kill(proc: asyncio.subprocess.Process) -> None:
    # Called before the child is reaped, so its process group id cannot belong to anyone else yet.
    _kill_group(proc)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _result(returncode: int | None, out: bytes, err: bytes) -> ParsedDocument:
    if returncode == 0:
        try:
            payload = json.loads(out)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            if payload.get("ok"):
                return ParsedDocument(
                    text=payload["text"], pages=payload.get("pages"), page_offsets=payload.get("page_offsets")
                )
            raise ParseError(str(payload.get("code", "invalid_file")), str(payload.get("message", "")))
    if returncode is not None and returncode < 0:
        sig = -returncode
        if sig in (signal.SIGXCPU, signal.SIGKILL):
            raise ParseError("invalid_file", "Parsing the file took too long (CPU time limit).")
        raise ParseError("invalid_file", f"The parser crashed on this file (signal {sig}).")
    tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    if "MemoryError" in tail[0]:
        raise ParseError("invalid_file", "The file is too large to parse within the memory limit.")
    raise ParseError("invalid_file", f"The parser failed on this file (exit {returncode}): {tail[0][:200]}")
