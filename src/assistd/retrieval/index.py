"""The vector side of the index: where vectors live and how they are searched.

- **numpy** (SQLite, or PostgreSQL without pgvector, or ``ASSISTD_VECTOR_INDEX=numpy``): every
  chunk's float32 embedding is a blob; a store's matrix is loaded once into memory and kept,
  keyed by the store's ``index_version`` (bumped in the same transaction as any change of its
  chunks), so any process sees a change on its next search. Search is one matrix-vector product.
- **pgvector** (PostgreSQL with the extension): chunks also carry ``embedding_vec``; each
  embedding dimension gets a partial HNSW index (cosine), made the first time that dimension is
  seen. With pgvector >= 0.7 the index is over ``embedding_vec::halfvec(dim)``: half the size of a
  float32 one (112 MB instead of 195 MB at 100,000 MiniLM chunks, so it stays in a default
  128 MB ``shared_buffers``), the same neighbours to within float16 rounding, and up to 4,000
  dimensions (``vector`` stops at 2,000, below text-embedding-3-large's 3,072). Older pgvector
  gets ``vector(dim)``. Filtered queries use pgvector's iterative scans.

Only vectors of the same embedder (name and dimension) are ever compared.
"""

from __future__ import annotations

import asyncio
import functools
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
    """The process's embedder, built once from the settings (and the BLAS thread count set)."""
    emb = state.__dict__.get("_embedder")
    if emb is None:
        from assistd.retrieval.embeddings import make_embedder

        limit_blas_threads(getattr(state.settings, "blas_threads", 1))
        emb = make_embedder(state.settings)
        state.__dict__["_embedder"] = emb
    return emb


_blas_limited = False


def limit_blas_threads(n: int | None) -> None:
    """Cap numpy's BLAS (OpenBLAS) threads for the whole process, once (``0``/None: leave it).

    OpenBLAS's worker threads spin while they wait: when the cores are busy with anything else (the
    database, the event loop, other processes) a small product on 2 threads can take 30x longer than
    on one. One query through MiniLM, or one matrix-vector product, gains nothing from more.
    """
    global _blas_limited
    if _blas_limited or not n:
        return
    _blas_limited = True
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n, user_api="blas")
    except Exception:  # threadpoolctl missing or an unknown BLAS: keep the library's default
        log.warning("could not limit BLAS threads to %d", n, exc_info=True)


def embedder_key(emb: Any, dim: int) -> str:
    return f"{emb.name}"[:120] if emb.name else f"embedder-{dim}"


# --- backend ---------------------------------------------------------------------------------------


HALFVEC_MAX_DIM = 4000  # pgvector's limits for an HNSW index
VECTOR_MAX_DIM = 2000


@dataclass
class Backend:
    kind: str  # "numpy" | "pgvector"
    hnsw_dims: set[int]
    lock: asyncio.Lock
    half: bool = False  # pgvector has ``halfvec`` (0.7+): HNSW indexes are over float16 copies

    def vec_type(self, dim: int) -> str:
        """The type the HNSW index of ``dim`` is over, which searches must cast to, to use it."""
        d = int(dim)
        return f"halfvec({d})" if self.half and d <= HALFVEC_MAX_DIM else f"vector({d})"


async def backend(state: AppState) -> Backend:
    """numpy or pgvector, decided once per process (setting ``vector_index``: auto|numpy|pgvector)."""
    b = state.__dict__.get("_vector_backend")
    if b is not None:
        return b  # type: ignore[no-any-return]
    wanted = getattr(state.settings, "vector_index", "auto")
    kind = "numpy"
    half = False
    if not state.db.is_sqlite and wanted != "numpy":
        async with state.db.session() as s:
            row = (
                await s.execute(
                    text(
                        "SELECT to_regtype('halfvec') IS NOT NULL FROM information_schema.columns "
                        "WHERE table_name = 'chunks' AND column_name = 'embedding_vec' "
                        "AND table_schema = current_schema()"
                    )
                )
            ).first()
        if row is not None:
            kind, half = "pgvector", bool(row[0])
        elif wanted == "pgvector":
            log.error("ASSISTD_VECTOR_INDEX=pgvector but the vector extension is not installed: using numpy")
    b = Backend(kind, set(), asyncio.Lock(), half)
    state.__dict__["_vector_backend"] = b
    log.info("vector index: %s%s", kind, " (halfvec HNSW)" if half else "")
    return b


def hnsw_index_name(dim: int, half: bool = True) -> str:
    return f"ix_chunks_hvec_{dim}" if half else f"ix_chunks_vec_{dim}"


def hnsw_index_sql(b: Backend, dim: int) -> str | None:
    """``CREATE INDEX`` for the partial HNSW index of ``dim`` (None: too many dimensions for one)."""
    d = int(dim)
    vtype = b.vec_type(d)
    half = vtype.startswith("halfvec")
    if d > (HALFVEC_MAX_DIM if half else VECTOR_MAX_DIM):
        return None
    ops = "halfvec_cosine_ops" if half else "vector_cosine_ops"
    return (
        f"CREATE INDEX IF NOT EXISTS {hnsw_index_name(d, half)} ON chunks USING hnsw "
        f"((embedding_vec::{vtype}) {ops}) WHERE dim = {d}"
    )


async def ensure_hnsw(state: AppState, b: Backend, dim: int) -> None:
    """The partial HNSW index for ``dim`` (made once; harmless if another process races us).
    Dimensions past pgvector's index limit are searched exactly (a scan of the store's chunks)."""
    if b.kind != "pgvector" or dim in b.hnsw_dims:
        return
    async with b.lock:
        if dim in b.hnsw_dims:
            return
        sql = hnsw_index_sql(b, dim)
        if sql is None:
            log.warning("embeddings of %d dimensions are past pgvector's HNSW limit: searched exactly", dim)
        else:
            try:
                async with state.db.session(write=True) as s:
                    await s.execute(text(sql))
            except Exception:  # another process created it concurrently
                log.debug("HNSW index for dim %d: concurrent creation", dim, exc_info=True)
        b.hnsw_dims.add(dim)


def vec_literal(v: np.ndarray) -> str:
    """pgvector's text form of ``v`` (7 significant digits), formatted by one ``%`` in C."""
    values = v.tolist()
    return _vec_format(len(values)) % tuple(values)


@functools.cache
def _vec_format(dim: int) -> str:
    return "[" + ",".join(["%.7g"] * dim) + "]"


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

EXACT_MAX_ROWS = 20_000  # up to this many vectors per store: exact search (one matrix-vector product)
ANN_CANDIDATES = 1_000  # above it: this many (or 20·k) candidates by binary codes, then exact re-scoring

_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _sign_bits(x: np.ndarray, words: int) -> np.ndarray:
    """Rows of ``x`` (n, dim) as packed sign bits, ``words`` uint64 per row (zero padded)."""
    packed = np.packbits(x > 0, axis=-1)
    pad = words * 8 - packed.shape[-1]
    if pad:
        packed = np.pad(packed, [(0, 0)] * (packed.ndim - 1) + [(0, pad)])
    return np.ascontiguousarray(packed).view(np.uint64)


def _hamming(bits_t: np.ndarray, q: np.ndarray) -> np.ndarray:
    """uint16 Hamming distances between ``q`` (words,) and every column of ``bits_t`` (words, n):
    one contiguous pass per 64-bit word (10x faster than reducing rows of an (n, words) array)."""
    if not hasattr(np, "bitwise_count"):  # numpy < 2.0  # pragma: no cover
        x = np.bitwise_xor(bits_t, q[:, None])
        counts: np.ndarray = _POPCOUNT8[x.T.copy().view(np.uint8)].sum(axis=1, dtype=np.uint16)
        return counts
    acc: np.ndarray = np.bitwise_count(np.bitwise_xor(bits_t[0], q[0])).astype(np.uint16)
    for w in range(1, bits_t.shape[0]):
        acc += np.bitwise_count(np.bitwise_xor(bits_t[w], q[w]))
    return acc


@dataclass
class StoreMatrix:
    """One store's vectors of one embedder, in memory.

    Up to ``EXACT_MAX_ROWS`` rows, a search is exact. Above, it is two-stage: every row's sign bits
    (after subtracting the store's mean vector, so that the bits split the data evenly) are compared
    with the query's by Hamming distance, which approximates the angle; the ``ANN_CANDIDATES``
    nearest by that measure are then scored exactly. This reads 48 bytes per row instead of 1,536
    (384 dimensions), and on embeddings with any structure the true top k are almost always among the
    candidates (``bench/retrieval.py`` measures the recall against the exact search).
    """

    version: int
    seqs: np.ndarray  # int64 (n,)
    file_ids: np.ndarray  # object (f,): the distinct files
    file_codes: np.ndarray  # int32 (n,): each row's index into file_ids
    matrix: np.ndarray  # float32 (n, dim), rows of norm 1
    mean: np.ndarray | None = None  # float32 (dim,) when bits is set
    bits: np.ndarray | None = None  # uint64 (words, n): sign bits of matrix - mean, one row per word

    @property
    def approximate(self) -> bool:
        return self.bits is not None

    def top(self, q: np.ndarray, k: int, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Row indices and cosine similarities of the ``k`` best rows for unit vector ``q``, best first
        (only rows where ``mask`` is true)."""
        n = len(self.seqs)
        rows: np.ndarray | None = None
        if mask is not None:
            allowed = np.flatnonzero(mask)
            if self.bits is None or len(allowed) <= max(ANN_CANDIDATES, 20 * k):
                rows = allowed  # few enough to score them all
        if rows is None and self.bits is not None:
            assert self.mean is not None
            dist = _hamming(self.bits, _sign_bits((q - self.mean)[None, :], self.bits.shape[0])[0])
            if mask is not None:
                dist[~mask] = np.iinfo(dist.dtype).max
            c = min(n, max(ANN_CANDIDATES, 20 * k))
            rows = np.argpartition(dist, c - 1)[:c] if c < n else np.arange(n)
            if mask is not None:
                rows = rows[mask[rows]]
        sims = (self.matrix if rows is None else self.matrix[rows]) @ q
        kk = min(k, len(sims))
        if kk == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        best = np.argpartition(-sims, kk - 1)[:kk] if kk < len(sims) else np.arange(len(sims))
        best = best[np.argsort(-sims[best], kind="stable")]
        idx = best if rows is None else rows[best]
        return idx, sims[best]


def build_matrix(version: int, seqs: np.ndarray, file_ids: list[str], matrix: np.ndarray) -> StoreMatrix:
    """A StoreMatrix (with binary codes when it has more than ``EXACT_MAX_ROWS`` rows)."""
    uniq, codes = np.unique(np.array(file_ids, dtype=object), return_inverse=True) if file_ids else ([], [])
    m = StoreMatrix(
        version,
        seqs,
        np.array(uniq, dtype=object),
        np.asarray(codes, dtype=np.int32).reshape(-1),
        matrix,
    )
    if len(seqs) > EXACT_MAX_ROWS:
        m.mean = matrix.mean(axis=0).astype(np.float32)
        words = (matrix.shape[1] + 63) // 64
        bits = np.empty((words, len(seqs)), dtype=np.uint64)
        for i in range(0, len(seqs), 16_384):  # in slices: no full-size float temporary
            bits[:, i : i + 16_384] = _sign_bits(matrix[i : i + 16_384] - m.mean, words).T
        m.bits = bits
    return m


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
        if n:
            matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(n, dim)
        else:
            matrix = np.zeros((0, dim), dtype=np.float32)
        return build_matrix(version, seqs, [r[1] for r in rows], matrix)

    return await asyncio.to_thread(_build)


def matrix_cache(state: AppState) -> MatrixCache:
    c = state.__dict__.get("_matrix_cache")
    if c is None:
        c = MatrixCache()
        state.__dict__["_matrix_cache"] = c
    return c


def short_hash(s: str) -> str:
    return hashlib.sha1(s.encode()).hexdigest()[:8]
