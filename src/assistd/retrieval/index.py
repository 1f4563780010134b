"""The vector side of the index: where vectors live and how they are searched.

- **numpy** (SQLite, or PostgreSQL without pgvector, or ``ASSISTD_VECTOR_INDEX=numpy``): every
  chunk's float32 embedding is a blob; a store's matrix is loaded once into memory and kept,
  keyed by the store's ``index_version`` (bumped in the same transaction as any change of its
  chunks), so any process sees a change on its next search. Search is one matrix-vector product.
- **pgvector** (PostgreSQL with the extension): chunks also carry ``embedding_vec``; each
  embedding dimension gets a partial HNSW index over ``embedding_vec::vector(dim)`` (cosine),
  made the first time that dimension is seen. Filtered queries use pgvector's iterative scans.

Only vectors of the same embedder (name and dimension) are ever compared.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import insert, text

from assistd.models import Chunk

if TYPE_CHECKING:
    from assistd.retrieval.embeddings import Embedder
    from assistd.state import AppState

log = logging.getLogger("assistd.retrieval")

CACHE_MAX_CHUNKS = 2_000_000  # matrices kept in memory (all stores, this process)


def get_embedder(state: AppState) -> Embedder:
    """The process's embedder, built once from the settings."""
    emb = state.__dict__.get("_embedder")
    if emb is None:
        from assistd.retrieval.embeddings import make_embedder

        emb = make_embedder(state.settings)
        state.__dict__["_embedder"] = emb
    return emb  # type: ignore[no-any-return]


def embedder_key(emb: Any, dim: int) -> str:
    return f"{emb.name}"[:120] if emb.name else f"embedder-{dim}"


# --- backend ---------------------------------------------------------------------------------------


@dataclass
class Backend:
    kind: str  # "numpy" | "pgvector"
    hnsw_dims: set[int]
    lock: asyncio.Lock


async def backend(state: AppState) -> Backend:
    """numpy or pgvector, decided once per process (setting ``vector_index``: auto|numpy|pgvector)."""
    b = state.__dict__.get("_vector_backend")
    if b is not None:
        return b  # type: ignore[no-any-return]
    wanted = getattr(state.settings, "vector_index", "auto")
    kind = "numpy"
    if not state.db.is_sqlite and wanted != "numpy":
        async with state.db.session() as s:
            has_col = (
                await s.execute(
                    text(
                        "SELECT 1 FROM information_schema.columns WHERE table_name = 'chunks' "
                        "AND column_name = 'embedding_vec' AND table_schema = current_schema()"
                    )
                )
            ).first()
        if has_col is not None:
            kind = "pgvector"
        elif wanted == "pgvector":
            log.error("ASSISTD_VECTOR_INDEX=pgvector but the vector extension is not installed: using numpy")
    b = Backend(kind, set(), asyncio.Lock())
    state.__dict__["_vector_backend"] = b
    log.info("vector index: %s", kind)
    return b


def hnsw_index_name(dim: int) -> str:
    return f"ix_chunks_vec_{dim}"


async def ensure_hnsw(state: AppState, b: Backend, dim: int) -> None:
    """The partial HNSW index for ``dim`` (made once; harmless if another process races us)."""
    if b.kind != "pgvector" or dim in b.hnsw_dims:
        return
    async with b.lock:
        if dim in b.hnsw_dims:
            return
        try:
            async with state.db.session(write=True) as s:
                await s.execute(
                    text(
                        f"CREATE INDEX IF NOT EXISTS {hnsw_index_name(dim)} ON chunks USING hnsw "
                        f"((embedding_vec::vector({int(dim)})) vector_cosine_ops) WHERE dim = {int(dim)}"
                    )
                )
        except Exception:  # another process created it concurrently
            log.debug("HNSW index for dim %d: concurrent creation", dim, exc_info=True)
        b.hnsw_dims.add(dim)


def vec_literal(v: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.7g}" for x in v.tolist()) + "]"


async def insert_chunks(session: Any, b: Backend, rows: list[dict[str, Any]], vectors: np.ndarray) -> None:
    """Insert chunk rows (``embedding`` blobs already set), with ``embedding_vec`` on pgvector."""
    if not rows:
        return
    if b.kind != "pgvector":
        await session.execute(insert(Chunk), rows)
        return
    for r, v in zip(rows, vectors, strict=True):
        r["vec"] = vec_literal(v)
    await session.execute(
        text(
            "INSERT INTO chunks (vector_store_id, file_id, idx, text, start_offset, end_offset, tokens, "
            "embedder, dim, embedding, embedding_vec) VALUES (:vector_store_id, :file_id, :idx, :text, "
            ":start_offset, :end_offset, :tokens, :embedder, :dim, :embedding, CAST(:vec AS vector))"
        ),
        rows,
    )


# --- numpy matrices ---------------------------------------------------------------------------------


@dataclass
class StoreMatrix:
    version: int
    seqs: np.ndarray  # int64 (n,)
    file_ids: np.ndarray  # object (n,)
    matrix: np.ndarray  # float32 (n, dim)


class MatrixCache:
    """Per (store, embedder) matrices, LRU by total chunks."""

    def __init__(self, max_chunks: int = CACHE_MAX_CHUNKS) -> None:
        self.max_chunks = max_chunks
        self._items: OrderedDict[tuple[str, str, int], StoreMatrix] = OrderedDict()
        self._locks: dict[tuple[str, str, int], asyncio.Lock] = {}

    async def get(self, state: AppState, store_id: str, version: int, embedder: str, dim: int) -> StoreMatrix:
        key = (store_id, embedder, dim)
        hit = self._items.get(key)
        if hit is not None and hit.version == version:
            self._items.move_to_end(key)
            return hit
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._items.get(key)
            if hit is not None and hit.version == version:
                return hit
            m = await _load(state, store_id, version, embedder, dim)
            self._items[key] = m
            self._evict()
            return m

    def _evict(self) -> None:
        total = sum(len(m.seqs) for m in self._items.values())
        while total > self.max_chunks and len(self._items) > 1:
            _, m = self._items.popitem(last=False)
            total -= len(m.seqs)


async def _load(state: AppState, store_id: str, version: int, embedder: str, dim: int) -> StoreMatrix:
    async with state.db.session() as s:
        rows = (
            await s.execute(
                text(
                    "SELECT seq, file_id, embedding FROM chunks WHERE vector_store_id = :sid "
                    "AND embedder = :emb AND dim = :dim ORDER BY seq"
                ),
                {"sid": store_id, "emb": embedder, "dim": dim},
            )
        ).all()

    def _build() -> StoreMatrix:
        n = len(rows)
        seqs = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
        fids = np.array([r[1] for r in rows], dtype=object)
        if n:
            matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(n, dim)
        else:
            matrix = np.zeros((0, dim), dtype=np.float32)
        return StoreMatrix(version, seqs, fids, matrix)

    return await asyncio.to_thread(_build)


def matrix_cache(state: AppState) -> MatrixCache:
    c = state.__dict__.get("_matrix_cache")
    if c is None:
        c = MatrixCache()
        state.__dict__["_matrix_cache"] = c
    return c  # type: ignore[no-any-return]


def short_hash(s: str) -> str:
    return hashlib.sha1(s.encode()).hexdigest()[:8]
