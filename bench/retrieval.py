"""Retrieval benchmark: ingestion throughput, search latency at scale, and search quality.

Measures, through the real ingester and ``search_stores`` (no HTTP):

* **ingest**: a generated 200-page PDF and 1,000 small text files ingested by the background
  ingester with the LOCAL embedder (MiniLM): pages/s, files/s, chunks/s (SQLite);
* **latency**: search p50/p99 over a store of 100,000 chunks (synthetic 384-d unit vectors and
  generated prose, inserted directly; the query is embedded by the local embedder, which is
  included) on SQLite (numpy), PostgreSQL with numpy, and PostgreSQL with pgvector HNSW;
* **quality**: recall@5 and MRR for hybrid vs vector-only vs keyword-only on a labelled set built
  here, deterministically: 120 short "fact" documents about made-up entities (each names an
  entity, a place, a year and an attribute), mixed with 600 distractor documents; each question
  paraphrases one fact without repeating all of its words (some share only rare names with it,
  some only meaning). The right answer is the fact's file.

Usage::

    .venv/bin/python bench/retrieval.py [--only ingest,latency,quality] [--chunks 100000] [--backends sqlite,postgres]

Targets (issue 4): search p50 <= 20 ms at 100k chunks (<= 10 ms with pgvector HNSW); hybrid
recall@5 >= the better of vector-only and keyword-only.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.crud import write_report  # noqa: E402
from bench.ingest_core import prose_pages  # noqa: E402
from tests.conftest import PG_DEFAULT, _create_pg_database, _drop_pg_database  # noqa: E402
from tests.retrieval.docgen import make_pdf  # noqa: E402

from assistd.config import Settings  # noqa: E402
from assistd.db.migrate import upgrade  # noqa: E402
from assistd.retrieval import search as search_mod  # noqa: E402
from assistd.retrieval.index import backend, ensure_hnsw, insert_chunks  # noqa: E402
from assistd.retrieval.search import search_stores  # noqa: E402
from assistd.state import AppState  # noqa: E402
from assistd.vector_stores.service import attach_files, new_store  # noqa: E402


async def open_state(kind: str, tmp: Path, **overrides: Any) -> tuple[AppState, Any]:
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp / f'r-{uuid.uuid4().hex[:6]}.db'}"
        drop = None
    else:
        url, name = await _create_pg_database(PG_DEFAULT)
        drop = name
    upgrade(url)
    settings = Settings(data_dir=tmp / uuid.uuid4().hex[:6], database_url=url, **overrides)
    state = await AppState.start(settings, background=False, executor=True)
    return state, drop


async def close_state(state: AppState, drop: Any) -> None:
    await state.stop()
    if drop:
        await _drop_pg_database(PG_DEFAULT, drop)


async def add_file(state: AppState, project: str, name: str, data: bytes) -> str:
    from assistd.files.service import new_file
    from assistd.ids import new_id

    fid = new_id("file")
    path = state.blobs.path(fid)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    async with state.db.session(write=True) as s:
        s.add(
            new_file(project, fid, filename=name, purpose="assistants", size=len(data), created_at=0, expires_at=None)
        )
    return fid


async def project_id(state: AppState) -> str:
    from assistd.auth import DEFAULT_PROJECT_NAME, ensure_project

    async with state.db.session(write=True) as s:
        p = await ensure_project(s, DEFAULT_PROJECT_NAME)
    return p.id if hasattr(p, "id") else str(p)


async def ingest_files(state: AppState, project: str, files: list[tuple[str, bytes]]) -> tuple[float, int, str]:
    fids = [await add_file(state, project, n, d) for n, d in files]
    t0 = time.perf_counter()
    async with state.db.session(write=True) as s:
        store = await new_store(s, project)
        await attach_files(s, project, store.id, [(f, None, None) for f in fids])
    assert state.ingester is not None
    await state.ingester.drain(within=3600)
    elapsed = time.perf_counter() - t0
    async with state.db.session() as s:
        from sqlalchemy import func, select

        from assistd.models import Chunk, VectorStoreFile

        chunks = await s.scalar(select(func.count()).select_from(Chunk).where(Chunk.vector_store_id == store.id))
        failed = await s.scalar(
            select(func.count())
            .select_from(VectorStoreFile)
            .where(VectorStoreFile.vector_store_id == store.id, VectorStoreFile.status != "completed")
        )
    assert not failed, f"{failed} files did not complete"
    return elapsed, int(chunks or 0), store.id


async def bench_ingest(tmp: Path) -> dict[str, Any]:
    state, drop = await open_state("sqlite", tmp, embedder="local", ingest_concurrency=2)
    try:
        project = await project_id(state)
        pdf = make_pdf(prose_pages(200))
        secs, chunks, _ = await ingest_files(state, project, [("book.pdf", pdf)])
        out: dict[str, Any] = {
            "pdf_200_pages": {
                "seconds": secs,
                "pages_per_s": 200 / secs,
                "chunks": chunks,
                "chunks_per_s": chunks / secs,
            }
        }
        print(
            f"ingest 200-page PDF: {secs:.1f} s, {200 / secs:.1f} pages/s, {chunks} chunks, {chunks / secs:.1f} chunks/s"
        )
        rng = random.Random(1)
        words = " ".join(" ".join(p) for p in prose_pages(40)).split()
        texts = [(f"note{i}.txt", " ".join(rng.choice(words) for _ in range(150)).encode()) for i in range(1000)]
        secs, chunks, _ = await ingest_files(state, project, texts)
        out["text_files_1000"] = {
            "seconds": secs,
            "files_per_s": 1000 / secs,
            "chunks": chunks,
            "chunks_per_s": chunks / secs,
        }
        print(f"ingest 1,000 text files: {secs:.1f} s, {1000 / secs:.1f} files/s, {chunks / secs:.1f} chunks/s")
        return out
    finally:
        await close_state(state, drop)


# --- latency ---------------------------------------------------------------------------------------


async def fill_store(state: AppState, project: str, n: int, dim: int = 384) -> str:
    fids = [await add_file(state, project, f"doc{i}.txt", b"x") for i in range(100)]
    async with state.db.session(write=True) as s:
        store = await new_store(s, project)
    async with state.db.session(write=True) as s:
        from assistd.models import VectorStoreFile

        for fid in fids:
            s.add(
                VectorStoreFile(
                    vector_store_id=store.id,
                    id=fid,
                    project_id=project,
                    created_at=0,
                    status="completed",
                    usage_bytes=0,
                    chunking_strategy={},
                    attempt=0,
                    attributes={"n": fids.index(fid)},
                )
            )
    b = await backend(state)
    emb_name = "all-MiniLM-L6-v2"
    from assistd.retrieval.index import get_embedder

    emb_name = get_embedder(state).name
    await ensure_hnsw(state, b, dim)
    rng = np.random.default_rng(7)
    words = " ".join(" ".join(p) for p in prose_pages(60)).split()
    pyr = random.Random(7)
    batch = 5000
    for start in range(0, n, batch):
        m = min(batch, n - start)
        vecs = rng.standard_normal((m, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        rows = [
            {
                "vector_store_id": store.id,
                "file_id": fids[(start + i) % len(fids)],
                "idx": start + i,
                "text": " ".join(pyr.choice(words) for _ in range(60)),
                "start_offset": 0,
                "end_offset": 0,
                "tokens": 60,
                "embedder": emb_name,
                "dim": dim,
                "embedding": vecs[i].tobytes(),
            }
            for i in range(m)
        ]
        async with state.db.session(write=True) as s:
            await insert_chunks(s, b, rows, vecs)
    if not state.db.is_sqlite:
        async with state.db.session(write=True) as s:
            from sqlalchemy import text

            await s.execute(text("ANALYZE chunks"))
    return store.id


async def bench_latency(tmp: Path, kinds: list[tuple[str, str]], n: int, reps: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    queries = [
        "how do tides depend on the moon",
        "history of the river trade",
        "quiet garden in spring",
        "machines and their engines",
        "the old library archive",
    ]
    for kind, index in kinds:
        state, drop = await open_state(kind, tmp, embedder="local", vector_index=index)
        try:
            b = await backend(state)
            label = f"{kind}/{b.kind}"
            project = await project_id(state)
            t0 = time.perf_counter()
            sid = await fill_store(state, project, n)
            fill = time.perf_counter() - t0
            for q in queries:  # warm-up: loads the matrix / index pages, the embedder
                await search_stores(state, project, [sid], [q], max_num_results=10)
            lat: list[float] = []
            flt_lat: list[float] = []
            from assistd.vector_stores.protocol import ComparisonFilter

            flt = ComparisonFilter(type="lt", key="n", value=50)
            for r in range(reps):
                q = queries[r % len(queries)] + f" {r}"
                t = time.perf_counter()
                await search_stores(state, project, [sid], [q], max_num_results=10)
                lat.append((time.perf_counter() - t) * 1000)
                t = time.perf_counter()
                await search_stores(state, project, [sid], [q], max_num_results=10, filters=flt)
                flt_lat.append((time.perf_counter() - t) * 1000)
            # index-only: the same searches with the query vectors cached (embedding excluded)
            from assistd.retrieval.index import get_embedder as _ge

            emb0 = _ge(state)
            cache: dict[str, Any] = {}
            real_embed = emb0.embed

            async def cached(texts: list[str], cache: dict[str, Any] = cache, real_embed: Any = real_embed) -> Any:
                key = "\x00".join(texts)
                if key not in cache:
                    cache[key] = await real_embed(texts)
                return cache[key]

            emb0.embed = cached  # type: ignore[method-assign]
            idx_lat: list[float] = []
            for r in range(reps):
                q = queries[r % len(queries)] + f" {r}"
                await cached([q])
                t = time.perf_counter()
                await search_stores(state, project, [sid], [q], max_num_results=10)
                idx_lat.append((time.perf_counter() - t) * 1000)
            emb0.embed = real_embed  # type: ignore[method-assign]
            res = {
                "index_only_p50_ms": statistics.median(idx_lat),
                "index_only_p99_ms": float(np.percentile(idx_lat, 99)),
                "chunks": n,
                "fill_seconds": fill,
                "p50_ms": statistics.median(lat),
                "p99_ms": float(np.percentile(lat, 99)),
                "filtered_p50_ms": statistics.median(flt_lat),
                "filtered_p99_ms": float(np.percentile(flt_lat, 99)),
            }
            # the query embedding alone, to separate it from the index work
            from assistd.retrieval.index import get_embedder

            emb = get_embedder(state)
            et = []
            for r in range(20):
                t = time.perf_counter()
                await emb.embed([queries[r % len(queries)] + f" {r}"])
                et.append((time.perf_counter() - t) * 1000)
            res["embed_query_p50_ms"] = statistics.median(et)
            out[label] = res
            print(
                f"search {label} @ {n} chunks: index-only p50 {res['index_only_p50_ms']:.1f} ms, "
                f"p99 {res['index_only_p99_ms']:.1f} ms; end-to-end p50 {res['p50_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms "
                f"(filtered p50 {res['filtered_p50_ms']:.1f} ms; query embedding alone {res['embed_query_p50_ms']:.1f} ms)"
            )
        finally:
            await close_state(state, drop)
    return out


# --- quality ---------------------------------------------------------------------------------------

ENTITIES = ["Varnholt", "Quessaly", "Orbrin", "Talmuth", "Zerevan", "Ilkanor", "Pessaro", "Dunmere", "Cavrell", "Hosk"]
THINGS = [
    ("lighthouse", "beacon on the coast"),
    ("brewery", "place that makes beer"),
    ("observatory", "building for watching stars"),
    ("shipyard", "place where boats are built"),
    ("orchard", "farm of fruit trees"),
    ("foundry", "works that casts metal"),
]
PLACES = ["the northern fjords", "a desert oasis", "the river delta", "the high plateau"]
TRAITS = [
    ("painted bright red", "colour"),
    ("powered by windmills", "energy"),
    ("run by a cooperative of widows", "owners"),
    ("closed every winter", "season"),
    ("famous for its copper roof", "roof"),
]


def labelled_set() -> tuple[list[tuple[str, str]], list[tuple[str, int]]]:
    rng = random.Random(42)
    docs: list[tuple[str, str]] = []
    questions: list[tuple[str, int]] = []
    for i in range(120):
        ent = f"{ENTITIES[i % 10]}-{i // 10}"
        thing, gloss = THINGS[i % len(THINGS)]
        place = PLACES[(i // 3) % len(PLACES)]
        trait, aspect = TRAITS[(i // 2) % len(TRAITS)]
        year = 1700 + (i * 37) % 300
        docs.append(
            (
                f"fact{i}.txt",
                f"The {thing} of {ent}, founded in {year} near {place}, is {trait}. Locals visit it often.",
            )
        )
        if i % 2:  # by meaning: the gloss instead of the word, no entity name
            questions.append((f"Which {gloss} near {place} from {year} is {trait.split()[0]} {trait.split()[1]}?", i))
        else:  # by rare name: the entity and the aspect asked about
            questions.append((f"What is special about the {aspect} of {ent}'s {thing}?", i))
    for j in range(600):
        ent = f"{ENTITIES[rng.randrange(10)]}-{rng.randrange(12)}"
        thing, _ = THINGS[rng.randrange(len(THINGS))]
        place = PLACES[rng.randrange(len(PLACES))]
        docs.append(
            (f"noise{j}.txt", f"Travellers to {place} rarely mention the {thing} trade; the weather of {ent} is mild.")
        )
    return docs, questions


async def bench_quality(tmp: Path) -> dict[str, Any]:
    state, drop = await open_state("sqlite", tmp, embedder="local", ingest_concurrency=2)
    try:
        project = await project_id(state)
        docs, questions = labelled_set()
        fids = [await add_file(state, project, n, t.encode()) for n, t in docs]
        async with state.db.session(write=True) as s:
            store = await new_store(s, project)
            await attach_files(s, project, store.id, [(f, None, None) for f in fids])
        assert state.ingester is not None
        await state.ingester.drain(within=3600)
        out: dict[str, Any] = {"documents": len(docs), "questions": len(questions)}
        original = (search_mod._vector_numpy, search_mod._keyword)

        async def nothing(*_a: Any, **_k: Any) -> list[list[int]]:
            return []

        for mode in ("hybrid", "vector", "keyword"):
            search_mod._vector_numpy, search_mod._keyword = original
            if mode == "vector":
                search_mod._keyword = nothing
            elif mode == "keyword":
                search_mod._vector_numpy = nothing
            hits5 = 0
            rr = 0.0
            for q, i in questions:
                hits = await search_stores(state, project, [store.id], [q], max_num_results=5)
                ranked = [h.file_id for h in hits]
                if fids[i] in ranked:
                    hits5 += 1
                    rr += 1 / (ranked.index(fids[i]) + 1)
            out[mode] = {"recall_at_5": hits5 / len(questions), "mrr": rr / len(questions)}
            print(f"quality {mode:7s}: recall@5 {hits5 / len(questions):.3f}  MRR {rr / len(questions):.3f}")
        search_mod._vector_numpy, search_mod._keyword = original
        return out
    finally:
        await close_state(state, drop)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    only = set(args.only.split(","))
    report: dict[str, Any] = {"machine": {"python": sys.version.split()[0]}}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "quality" in only:
            report["quality"] = await bench_quality(tmp)
        if "latency" in only:
            kinds: list[tuple[str, str]] = []
            for b in args.backends.split(","):
                if b == "sqlite":
                    kinds.append(("sqlite", "auto"))
                elif b == "postgres":
                    kinds += [("postgres", "pgvector"), ("postgres", "numpy")]
            report["latency"] = await bench_latency(tmp, kinds, args.chunks, args.reps)
        if "ingest" in only:
            report["ingest"] = await bench_ingest(tmp)
    return report


def main() -> int:
    p = argparse.ArgumentParser(description="Retrieval benchmark (ingestion, search latency, quality).")
    p.add_argument("--only", default="ingest,latency,quality")
    p.add_argument("--chunks", type=int, default=100_000)
    p.add_argument("--reps", type=int, default=200)
    p.add_argument("--backends", default="sqlite,postgres")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    report = asyncio.run(main_async(args))
    return write_report("retrieval", time.strftime("%Y%m%d-%H%M%S"), report, 0, "measurements")


if __name__ == "__main__":
    raise SystemExit(main())
