"""Subprocess body of :func:`assistd.retrieval.parsing.parse_file`.

``python -m assistd.retrieval._parse_worker --memory-mb N --cpu-seconds S --filename NAME PATH``
limits itself (address space, CPU time, file size) before importing any parser, parses PATH and
prints one JSON object on stdout: ``{"ok": true, "text", "pages", "page_offsets"}`` or
``{"ok": false, "code", "message"}``.
"""

from __future__ import annotations

import argparse
import json
import resource
import signal
import sys
from pathlib import Path

MB = 1024 * 1024


def _limit(memory_mb: int, cpu_seconds: int) -> None:
    limits = [
        (resource.RLIMIT_AS, memory_mb * MB),
        (resource.RLIMIT_CPU, cpu_seconds),
        # antiword may write a temporary file; nothing else should write at all.
        (resource.RLIMIT_FSIZE, 64 * MB),
        (resource.RLIMIT_CORE, 0),
    ]
    for which, value in limits:
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, hard))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails with EFBIG instead of killing us


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="assistd.retrieval._parse_worker")
    parser.add_argument("--memory-mb", type=int, default=1024)
    parser.add_argument("--cpu-seconds", type=int, default=125)
    parser.add_argument("--filename", required=True)
    parser.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    _limit(args.memory_mb, args.cpu_seconds)

    from assistd.retrieval.parsing import ParseError, parse_bytes_sync

    try:
        try:
            data = args.path.read_bytes()
        except MemoryError:
            raise ParseError("invalid_file", "The file is too large to parse within the memory limit.") from None
        except OSError as exc:
            raise ParseError("invalid_file", f"The file could not be read: {exc.strerror or exc}") from None
        doc = parse_bytes_sync(data, args.filename, path=args.path)
        del data
        payload = {"ok": True, "text": doc.text, "pages": doc.pages, "page_offsets": doc.page_offsets}
    except ParseError as exc:
        payload = {"ok": False, "code": exc.code, "message": exc.message}
    try:
        out = json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass")
    except MemoryError:
        out = json.dumps(
            {"ok": False, "code": "invalid_file", "message": "The file's text is too large for the memory limit."}
        ).encode()
    sys.stdout.buffer.write(out)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
