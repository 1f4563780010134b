"""Retrieval benchmark: ingestion throughput, search latency at 100,000 chunks, search quality.

Every part runs on each backend of ``--backends``: SQLite (numpy), PostgreSQL with pgvector HNSW,
and PostgreSQL with numpy (``ASSISTD_VECTOR_INDEX=numpy``). All use the LOCAL embedder (MiniLM), as
in production. See bench/README.md ("retrieval.py") for what each part does and the figures.

Usage::

    .venv/bin/python bench/retrieval.py [--only ingest,latency,quality,ann] [--chunks 100000] [--backends sqlite,postgres]

Targets (issue 4): search p50 <= 20 ms at 100k chunks (<= 10 ms with pgvector HNSW), the query's
embedding included; hybrid recall@5 >= the better of vector-only and keyword-only.
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


KINDS = {"sqlite": [("sqlite", "auto")], "postgres": [("postgres", "pgvector"), ("postgres", "numpy")]}


def label_of(kind: str, index: str) -> str:
    return "sqlite/numpy" if kind == "sqlite" else f"postgres/{index}"


def load_note() -> str:
    la = Path("/proc/loadavg").read_text().split()[:3]
    return f"load average {' '.join(la)} on {os_cpus()} cores"


def os_cpus() -> int:
    import os

    return os.cpu_count() or 0


async def bench_ingest(tmp: Path, kind: str, index: str) -> dict[str, Any]:
    state, drop = await open_state(kind, tmp, embedder="local", vector_index=index)
    label = label_of(kind, index)
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
            f"ingest {label} 200-page PDF: {secs:.1f} s, {200 / secs:.2f} pages/s, {chunks} chunks, "
            f"{chunks / secs:.2f} chunks/s  ({load_note()})"
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
        print(
            f"ingest {label} 1,000 text files: {secs:.1f} s, {1000 / secs:.2f} files/s, {chunks} chunks, "
            f"{chunks / secs:.2f} chunks/s  ({load_note()})"
        )
        return out
    finally:
        await close_state(state, drop)


# --- corpora ---------------------------------------------------------------------------------------


def reference_topics() -> dict[str, str]:
    """The Python Language Reference as shipped with the interpreter (``pydoc_data.topics``: the text
    ``help()`` shows; PSF licence): 79 topics, ~460 KB of real technical English."""
    import pydoc_data.topics

    return dict(sorted(pydoc_data.topics.topics.items()))


def reference_windows(words_per_window: int = 40) -> list[str]:
    """The reference topics cut into windows of ``words_per_window`` words (real prose for chunk texts)."""
    out: list[str] = []
    for body in reference_topics().values():
        w = body.split()
        out += [" ".join(w[i : i + words_per_window]) for i in range(0, len(w), words_per_window)]
    return [t for t in out if len(t) > 40]


_REAL: dict[str, np.ndarray] = {}


async def real_vectors(state: AppState) -> np.ndarray:
    """MiniLM embeddings of every reference window (computed once per benchmark run)."""
    if "v" not in _REAL:
        from assistd.retrieval.index import get_embedder

        t = time.perf_counter()
        texts = reference_windows()
        _REAL["v"] = await get_embedder(state).embed(texts)
        print(f"embedded {len(texts)} reference windows for the latency corpus in {time.perf_counter() - t:.0f} s")
    return _REAL["v"]


def corpus_vectors(real: np.ndarray, n: int, seed: int = 7) -> np.ndarray:
    """``n`` unit vectors shaped like real embeddings: each is a random mix of two real MiniLM vectors
    plus a little noise (MiniLM at ~12 texts/s on this machine cannot embed 100,000 chunks for a
    benchmark). They occupy the same cone of the space as real embeddings, unlike uniform random ones."""
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(real), n)
    j = rng.integers(0, len(real), n)
    u = rng.uniform(0.0, 1.0, (n, 1)).astype(np.float32)
    v = real[i] + u * real[j] + rng.standard_normal((n, real.shape[1])).astype(np.float32) * 0.03
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v.astype(np.float32)


def questions() -> list[tuple[str, set[str]]]:
    """The shipped questions (bench/data/python_reference_questions.json, written for this benchmark),
    each with the topics that answer it: every topic whose text contains one of the question's evidence
    sentences (whitespace-normalised), so the labels follow the interpreter's own documents."""
    import json
    import re

    norm = re.compile(r"\s+")
    topics = {k: norm.sub(" ", v) for k, v in reference_topics().items()}
    out = []
    for q, *evidence in json.loads((ROOT / "bench" / "data" / "python_reference_questions.json").read_text()):
        rel: set[str] = set()
        for e in evidence:
            ev = norm.sub(" ", e)
            found = {k for k, v in topics.items() if ev in v}
            if not found:
                raise RuntimeError(f"no reference topic contains the evidence {e!r} of {q!r}")
            rel |= found
        out.append((q, rel))
    return out


# --- latency ---------------------------------------------------------------------------------------


async def fill_store(state: AppState, project: str, n: int, dim: int = 384) -> str:
    """A completed store of ``n`` chunks over 100 files (attributes ``{"n": 0..99}``), inserted directly:
    real reference prose as texts (keyword index), ``corpus_vectors`` as embeddings."""
    fids = [await add_file(state, project, f"doc{i}.txt", b"x") for i in range(100)]
    async with state.db.session(write=True) as s:
        store = await new_store(s, project)
    async with state.db.session(write=True) as s:
        from assistd.models import VectorStoreFile

        for i, fid in enumerate(fids):
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
                    attributes={"n": i},
                )
            )
    b = await backend(state)
    from assistd.retrieval.index import get_embedder

    emb_name = get_embedder(state).name
    await ensure_hnsw(state, b, dim)
    vectors = corpus_vectors(await real_vectors(state), n)
    texts = reference_windows(60)
    batch = 5000
    for start in range(0, n, batch):
        m = min(batch, n - start)
        vecs = vectors[start : start + m]
        rows = [
            {
                "vector_store_id": store.id,
                "file_id": fids[(start + i) % len(fids)],
                "idx": start + i,
                "text": texts[(start + i) % len(texts)],
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
    if state.db.is_sqlite:
        async with state.db.session(write=True) as s:
            from sqlalchemy import text

            await s.execute(text("ANALYZE"))
    else:
        # What autovacuum does within a minute of a bulk insert (its insert threshold): without it
        # every row read still checks its inserting transaction (no hint bits, no visibility map),
        # which doubles the keyword side's heap reads.
        import asyncpg

        conn = await asyncpg.connect(state.settings.resolved_database_url.replace("+asyncpg", ""))
        try:
            await conn.execute("VACUUM ANALYZE chunks")
        finally:
            await conn.close()
    return store.id


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q))


async def bench_latency(tmp: Path, kind: str, index: str, n: int, reps: int, http: bool) -> dict[str, Any]:
    from assistd.retrieval.index import get_embedder
    from assistd.vector_stores.protocol import ComparisonFilter

    qs = [q for q, _ in questions()]
    # Every measured query is new (a number appended), so the query-vector cache never answers:
    # the figures include embedding the query with MiniLM.
    label = label_of(kind, index)
    fresh = iter(f"{qs[i % len(qs)]} {label} {i}" for i in range(10**9))
    search_mod._query_cache.clear()
    state, drop = await open_state(kind, tmp, embedder="local", vector_index=index)
    db_url = state.settings.database_url
    try:
        project = await project_id(state)
        t0 = time.perf_counter()
        sid = await fill_store(state, project, n)
        fill = time.perf_counter() - t0
        for _ in range(5):  # warm-up: loads the matrix / index pages and the model
            await search_stores(state, project, [sid], [next(fresh)], max_num_results=10)
        emb = get_embedder(state)
        res: dict[str, Any] = {"chunks": n, "fill_seconds": fill, "load_before": load_note()}
        lat: list[float] = []
        flt_lat: list[float] = []
        idx_lat: list[float] = []
        emb_lat: list[float] = []
        flt = ComparisonFilter(type="lt", key="n", value=50)
        cpu = 0.0
        for _ in range(reps):
            q = next(fresh)
            c = time.process_time()
            t = time.perf_counter()
            await search_stores(state, project, [sid], [q], max_num_results=10)
            lat.append((time.perf_counter() - t) * 1000)
            cpu += time.process_time() - c
            q = next(fresh)
            t = time.perf_counter()
            await search_stores(state, project, [sid], [q], max_num_results=10, filters=flt)
            flt_lat.append((time.perf_counter() - t) * 1000)
            q = next(fresh)
            t = time.perf_counter()
            await search_mod._embed_queries(emb, [q])  # the query embedding alone (then cached) ...
            emb_lat.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            await search_stores(state, project, [sid], [q], max_num_results=10)  # ... and the rest
            idx_lat.append((time.perf_counter() - t) * 1000)
        res |= {
            "p50_ms": statistics.median(lat),
            "p99_ms": pct(lat, 99),
            "filtered_p50_ms": statistics.median(flt_lat),
            "filtered_p99_ms": pct(flt_lat, 99),
            "index_only_p50_ms": statistics.median(idx_lat),
            "index_only_p99_ms": pct(idx_lat, 99),
            "embed_query_p50_ms": statistics.median(emb_lat),
            "cpu_ms_per_search": cpu * 1000 / reps,
        }
        print(
            f"search {label} @ {n} chunks, search_stores: p50 {res['p50_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms; "
            f"filtered p50 {res['filtered_p50_ms']:.1f} ms; without the embedding p50 {res['index_only_p50_ms']:.1f} ms; "
            f"the embedding alone p50 {res['embed_query_p50_ms']:.1f} ms; CPU {res['cpu_ms_per_search']:.1f} ms/search  "
            f"({load_note()})"
        )
    finally:
        await state.stop()
    try:
        if http:
            res |= await bench_http(tmp, db_url, index, sid, fresh, reps)
            print(
                f"search {label} @ {n} chunks, POST /v1/vector_stores/{{id}}/search: p50 {res['http_p50_ms']:.1f} ms, "
                f"p99 {res['http_p99_ms']:.1f} ms; server CPU {res['http_server_cpu_ms_per_search']:.1f} ms/search  ({load_note()})"
            )
    finally:
        if drop:
            await _drop_pg_database(PG_DEFAULT, drop)
    return res


async def bench_http(tmp: Path, db_url: str, index: str, sid: str, fresh: Any, reps: int) -> dict[str, Any]:
    """The same search through a real ``assistd serve`` process on the same database (one client,
    sequential requests, keep-alive)."""
    import httpx
    from bench.crud import assistd_server, free_port

    data = tmp / f"srv-{uuid.uuid4().hex[:6]}"
    data.mkdir()
    srv = assistd_server(free_port(), data, db_url)
    assert srv.env is not None
    srv.env.update(ASSISTD_EMBEDDER="local", ASSISTD_VECTOR_INDEX=index)
    srv.start()
    try:
        await srv.wait_ready()
        async with httpx.AsyncClient(base_url=srv.base_url, timeout=120) as c:
            url = f"/v1/vector_stores/{sid}/search"
            for _ in range(5):
                r = await c.post(url, json={"query": next(fresh), "max_num_results": 10})
                r.raise_for_status()
            lat = []
            cpu0 = srv.cpu_seconds()
            for _ in range(reps):
                body = {"query": next(fresh), "max_num_results": 10}
                t = time.perf_counter()
                r = await c.post(url, json=body)
                lat.append((time.perf_counter() - t) * 1000)
                r.raise_for_status()
                assert len(r.json()["data"]) == 10
            cpu = (srv.cpu_seconds() - cpu0) * 1000 / reps
        return {
            "http_p50_ms": statistics.median(lat),
            "http_p99_ms": pct(lat, 99),
            "http_server_cpu_ms_per_search": cpu,
        }
    finally:
        srv.stop()


# --- approximate search recall -----------------------------------------------------------------------


async def bench_ann(tmp: Path, n: int) -> dict[str, Any]:
    """Recall of the numpy index's approximate search (binary codes, then exact scores of the
    candidates) against the exact search, on ``n`` vectors: the benchmark's corpus (real-shaped) and
    uniform random vectors (the worst case: no structure at all); queries are the labelled questions
    embedded by MiniLM."""
    from assistd.retrieval.index import EXACT_MAX_ROWS, build_matrix, get_embedder

    state, drop = await open_state("sqlite", tmp, embedder="local")
    try:
        qv = await get_embedder(state).embed([q for q, _ in questions()])
        real = await real_vectors(state)
    finally:
        await close_state(state, drop)
    out: dict[str, Any] = {"vectors": n, "queries": len(qv)}
    rng = np.random.default_rng(3)
    uniform = rng.standard_normal((n, 384)).astype(np.float32)
    uniform /= np.linalg.norm(uniform, axis=1, keepdims=True)
    assert n > EXACT_MAX_ROWS
    for name, mat in (("corpus", corpus_vectors(real, n)), ("uniform_random", uniform)):
        m = build_matrix(1, np.arange(n), ["f"] * n, mat)
        rec: dict[int, list[float]] = {10: [], 30: []}
        times = []
        for q in qv:
            exact = np.argsort(-(mat @ q))
            t = time.perf_counter()
            got, _ = m.top(q, 30)
            times.append((time.perf_counter() - t) * 1000)
            for k in rec:
                rec[k].append(len(set(got[:k].tolist()) & set(exact[:k].tolist())) / k)
        out[name] = {f"recall_at_{k}": float(np.mean(v)) for k, v in rec.items()} | {"p50_ms": statistics.median(times)}
        print(
            f"approximate numpy search, {name} ({n} vectors): recall@10 {out[name]['recall_at_10']:.3f}, "
            f"recall@30 {out[name]['recall_at_30']:.3f} vs exact, p50 {out[name]['p50_ms']:.1f} ms"
        )
    return out


# --- quality ---------------------------------------------------------------------------------------


async def bench_quality(tmp: Path, kind: str, index: str) -> dict[str, Any]:
    """Recall@5 and MRR over files: the 79 reference topics ingested (default chunking) and the
    labelled questions; hybrid against vector-only and keyword-only (the same search with the other
    candidate list left out)."""
    state, drop = await open_state(kind, tmp, embedder="local", vector_index=index)
    label = label_of(kind, index)
    try:
        project = await project_id(state)
        topics = reference_topics()
        files = {await add_file(state, project, f"{name}.txt", body.encode()): name for name, body in topics.items()}
        async with state.db.session(write=True) as s:
            store = await new_store(s, project)
            await attach_files(s, project, store.id, [(f, None, None) for f in files])
        assert state.ingester is not None
        await state.ingester.drain(within=3600)
        qset = questions()
        out: dict[str, Any] = {"documents": len(topics), "questions": len(qset)}
        b = await backend(state)
        vec_name = "_vector_pg" if b.kind == "pgvector" else "_vector_numpy"
        original = (getattr(search_mod, vec_name), search_mod._keyword)

        async def nothing(*_a: Any, **_k: Any) -> list[list[int]]:
            return []

        try:
            for mode in ("hybrid", "vector", "keyword"):
                setattr(search_mod, vec_name, nothing if mode == "keyword" else original[0])
                search_mod._keyword = nothing if mode == "vector" else original[1]  # type: ignore[assignment]
                hits5 = 0
                rr = 0.0
                for q, relevant in qset:
                    hits = await search_stores(state, project, [store.id], [q], max_num_results=5)
                    ranks = [r for r, h in enumerate(hits) if files.get(h.file_id) in relevant]
                    if ranks:
                        hits5 += 1
                        rr += 1 / (ranks[0] + 1)
                out[mode] = {"recall_at_5": hits5 / len(qset), "mrr": rr / len(qset)}
                print(f"quality {label} {mode:7s}: recall@5 {hits5 / len(qset):.3f}  MRR {rr / len(qset):.3f}")
        finally:
            setattr(search_mod, vec_name, original[0])
            search_mod._keyword = original[1]  # type: ignore[assignment]
        return out
    finally:
        await close_state(state, drop)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    only = set(args.only.split(","))
    kinds = [k for b in args.backends.split(",") for k in KINDS[b]]
    report: dict[str, Any] = {
        "machine": {"python": sys.version.split()[0], "cpus": os_cpus()},
        "load_start": load_note(),
    }
    print(load_note())
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "quality" in only:
            report["quality"] = {label_of(*k): await bench_quality(tmp, *k) for k in kinds}
        if "ann" in only:
            report["ann"] = await bench_ann(tmp, args.chunks)
        if "latency" in only:
            report["latency"] = {
                label_of(*k): await bench_latency(tmp, *k, args.chunks, args.reps, not args.no_http) for k in kinds
            }
        if "ingest" in only:
            report["ingest"] = {label_of(*k): await bench_ingest(tmp, *k) for k in kinds}
    report["load_end"] = load_note()
    print(load_note())
    return report


def main() -> int:
    p = argparse.ArgumentParser(description="Retrieval benchmark (ingestion, search latency, quality).")
    p.add_argument("--only", default="quality,ann,latency,ingest")
    p.add_argument("--chunks", type=int, default=100_000)
    p.add_argument("--reps", type=int, default=200, help="searches per measurement (default 200)")
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--no-http", action="store_true", help="skip the searches through assistd serve")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # the benchmark's servers have no code interpreter kernel and use none: not worth a line each
    logging.getLogger("assistd.sandbox").setLevel(logging.ERROR)
    report = asyncio.run(main_async(args))
    return write_report("retrieval", time.strftime("%Y%m%d-%H%M%S"), report, 0, "measurements")


if __name__ == "__main__":
    raise SystemExit(main())
