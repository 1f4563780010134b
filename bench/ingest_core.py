"""Ingestion core benchmark: parse, chunk and embed speed on this machine (no server, no database).

Measures

* PDF parsing of a generated 200-page PDF (about 45 lines of prose per page): pages/s in-process
  (pypdf alone) and through ``parse_file`` (the limited subprocess, as ingestion runs it);
* chunking its text at 800/400 tokens: chunks/s;
* the local embedder (all-MiniLM-L6-v2 in numpy) on 800-token chunks: chunks/s. The model reads the
  first 256 word pieces of each chunk (as sentence-transformers does), so this is the cost that
  matters for ingestion;
* the hash embedder on the same chunks, for scale.

Usage::

    .venv/bin/python bench/ingest_core.py [--pages 200] [--chunks 64] [--batch-size 32]

The other benchmarks import :func:`measure` (returns the figures as a dict). ``OPENBLAS_NUM_THREADS``
changes how many cores numpy's matrix products use; on a busy 2-core machine 1 can be faster.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.retrieval.docgen import make_pdf  # noqa: E402

from assistd.retrieval.chunking import chunk_text  # noqa: E402
from assistd.retrieval.embeddings import HashEmbedder, LocalEmbedder  # noqa: E402
from assistd.retrieval.parsing import parse_bytes_sync, parse_file  # noqa: E402

WORDS = [
    "retrieval",
    "vector",
    "index",
    "keyword",
    "search",
    "chunk",
    "token",
    "embedding",
    "document",
    "paragraph",
    "model",
    "answer",
    "question",
    "citation",
    "annotation",
    "assistant",
    "thread",
    "message",
    "run",
    "file",
    "store",
    "page",
    "section",
    "table",
    "figure",
    "result",
    "score",
]


def prose_pages(pages: int, lines: int = 45, words_per_line: int = 14) -> list[list[str]]:
    out = []
    for p in range(pages):
        page = []
        for line in range(lines):
            seed = p * 1000 + line * 7
            page.append(" ".join(WORDS[(seed + 3 * i + i * i) % len(WORDS)] for i in range(words_per_line)) + ".")
        out.append(page)
    return out


async def measure(pages: int = 200, chunks: int = 64, batch_size: int = 32) -> dict[str, Any]:
    results: dict[str, Any] = {"pages": pages}
    pdf = make_pdf(prose_pages(pages))
    results["pdf_bytes"] = len(pdf)

    started = time.perf_counter()
    doc = parse_bytes_sync(pdf, "bench.pdf")
    elapsed = time.perf_counter() - started
    results["pdf_parse_in_process_s"] = elapsed
    results["pdf_pages_per_s_in_process"] = pages / elapsed

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "blob"
        path.write_bytes(pdf)
        started = time.perf_counter()
        doc = await parse_file(path, "bench.pdf")
        elapsed = time.perf_counter() - started
    results["pdf_parse_subprocess_s"] = elapsed
    results["pdf_pages_per_s_subprocess"] = pages / elapsed
    results["text_chars"] = len(doc.text)

    started = time.perf_counter()
    pieces = chunk_text(doc.text, 800, 400)
    elapsed = time.perf_counter() - started
    results["chunks_800_400"] = len(pieces)
    results["chunking_chunks_per_s"] = len(pieces) / elapsed

    texts = [c.text for c in pieces]
    while len(texts) < chunks:
        texts += texts
    texts = texts[:chunks]

    local = LocalEmbedder(batch_size=batch_size)
    started = time.perf_counter()
    await asyncio.to_thread(local.model)
    results["local_model_load_s"] = time.perf_counter() - started
    await local.embed(texts[:2])  # warm-up
    started = time.perf_counter()
    await local.embed(texts)
    elapsed = time.perf_counter() - started
    results["local_chunks"] = len(texts)
    results["local_chunks_per_s"] = len(texts) / elapsed

    hashed = HashEmbedder()
    started = time.perf_counter()
    await hashed.embed(texts)
    results["hash_chunks_per_s"] = len(texts) / (time.perf_counter() - started)

    # Whole pipeline estimate for the 200-page PDF with the local embedder.
    results["pdf_pipeline_estimate_s"] = (
        results["pdf_parse_subprocess_s"]
        + len(pieces) / results["chunking_chunks_per_s"]
        + len(pieces) / results["local_chunks_per_s"]
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--chunks", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(default)')}"
    )
    results = asyncio.run(measure(args.pages, args.chunks, args.batch_size))
    print(f"PDF {results['pages']} pages ({results['pdf_bytes'] / 1e6:.1f} MB, {results['text_chars']:,} chars):")
    print(f"  parse in-process    {results['pdf_pages_per_s_in_process']:8.1f} pages/s")
    print(f"  parse subprocess    {results['pdf_pages_per_s_subprocess']:8.1f} pages/s")
    print(
        f"  chunk 800/400       {results['chunking_chunks_per_s']:8.1f} chunks/s ({results['chunks_800_400']} chunks)"
    )
    print(f"Embedding {results['local_chunks']} chunks of 800 tokens:")
    print(
        f"  local MiniLM        {results['local_chunks_per_s']:8.1f} chunks/s (model load {results['local_model_load_s']:.1f} s)"
    )
    print(f"  hash                {results['hash_chunks_per_s']:8.1f} chunks/s")
    print(f"200-page PDF end to end (parse + chunk + local embed): about {results['pdf_pipeline_estimate_s']:.0f} s")


if __name__ == "__main__":
    main()
