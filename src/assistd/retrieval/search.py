"""Hybrid search over vector stores: vector top-k + keyword top-k, fused by reciprocal rank.

For each query string there are two ranked candidate lists: the nearest chunks by cosine
similarity (numpy or pgvector HNSW, see index.py) and the best keyword matches (SQLite FTS5 bm25,
or BM25 from PostgreSQL's ``tsv`` column, see ``_keyword_pg``). Keyword queries are built from the query's
words only (each one quoted, OR-ed), so no FTS syntax from the user ever reaches the engine.
Attribute ``filters`` are SQL conditions in both candidate queries (and in the numpy path, a mask
from the same SQL).

**Scores (0..1).** ``rrf = Σ 1/(60 + rank)`` over every list a chunk appears in, normalised by the
best possible value (rank 1 in every list), so ``rrf_norm`` is 1.0 only for a chunk that tops
every list. With ``ranker: none`` the score is ``rrf_norm``. Otherwise (``auto`` /
``default-2024-11-15``) the top candidates are re-ranked by
``score = 0.5·rrf_norm + 0.5·(0.7·max(cos, 0) + 0.3·coverage)``, where ``cos`` is the chunk's best
cosine similarity to any query and ``coverage`` the share of the query's distinct words found in
the chunk. Both parts are absolute (not relative to the other results), so ``score_threshold``
removes weak matches rather than a fixed share of the results.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import orjson
from sqlalchemy import bindparam, select, text

from assistd.models import VectorStore, VectorStoreFile
from assistd.retrieval.filters import compile_filter
from assistd.retrieval.index import (
    EXACT_MAX_ROWS,
    StoreMatrix,
    backend,
    ensure_hnsw,
    get_embedder,
    matrix_cache,
    vec_literal,
)

if TYPE_CHECKING:
    from assistd.retrieval.embeddings import Embedder
    from assistd.state import AppState

T = TypeVar("T")
RRF_K = 60
MAX_TERMS = 32
_WORD = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "from",
        "has",
        "have",
        "he",
        "her",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "our",
        "she",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
        "do",
        "does",
        "did",
        "not",
        "no",
        "can",
        "could",
        "should",
        "would",
        "about",
    ]
)


@dataclass(frozen=True, slots=True)
class SearchHit:
    vector_store_id: str
    file_id: str
    filename: str
    score: float
    attributes: dict[str, Any] | None
    text: str
    chunk_index: int


@dataclass(frozen=True, slots=True)
class StoreRef:
    id: str
    index_version: int
    status: str
    last_active_at: int


def query_terms(q: str) -> list[str]:
    """Distinct lower-cased words of ``q`` without stop words (all words if only stop words)."""
    words = [w.lower() for w in _WORD.findall(q)]
    kept = [w for w in words if w not in STOPWORDS] or words
    return list(dict.fromkeys(kept))[:MAX_TERMS]


def fts5_query(q: str) -> str | None:
    """An FTS5 MATCH expression: each word quoted (no operators, columns or prefixes), OR-ed."""
    terms = query_terms(q)
    if not terms:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def tsquery_text(q: str) -> str | None:
    """A ``to_tsquery`` expression of plain words (``\\w`` only, so no tsquery syntax) OR-ed."""
    terms = [t for t in query_terms(q) if t.isalnum()]
    return " | ".join(terms) if terms else None


async def search_stores(
    state: AppState,
    project_id: str,
    vector_store_ids: list[str],
    queries: list[str],
    *,
    max_num_results: int = 10,
    filters: Any | None = None,
    ranking_options: dict[str, Any] | None = None,
    check: Callable[[list[StoreRef]], None] | None = None,
) -> list[SearchHit]:
    """The best chunks of the given stores (of ``project_id``) for ``queries``, best first.

    ``filters`` is a ComparisonFilter/CompoundFilter model (vector_stores.protocol) or None;
    ``ranking_options`` ``{"ranker": none|auto|default-2024-11-15, "score_threshold": 0..1}``.
    Expired stores are searched like others: callers decide whether that is allowed, with ``check``,
    which gets the project's stores among ``vector_store_ids`` (before anything is searched) and may
    raise.

    The queries are embedded (in a thread) while the database answers the keyword side.
    """
    queries = [q for q in queries if q.strip()]
    if not queries or not vector_store_ids:
        return []
    ranker = (ranking_options or {}).get("ranker") or "auto"
    threshold = float((ranking_options or {}).get("score_threshold") or 0.0)
    emb = get_embedder(state)
    embedding = asyncio.ensure_future(_embed_queries(emb, queries))
    k = max(max_num_results * 3, 30)
    rows: dict[int, dict[str, Any]] = {}
    # The keyword side (and its chunks' rows) runs while the stores are read and the query is
    # embedded and then searched by vector: the two sides meet only here. With ``filters`` it needs
    # the files they allow, so it starts once they are known.
    keyword: asyncio.Future[list[list[int]]] | None = None
    if filters is None:
        keyword = asyncio.ensure_future(_keyword(state, project_id, vector_store_ids, queries, k, None, rows))
    try:
        stores, allowed = await _stores(state, project_id, vector_store_ids, filters)
        if check is not None:
            check(stores)
        if not stores or allowed == set():
            return []
        if keyword is None:
            keyword = asyncio.ensure_future(
                _keyword(state, project_id, [st.id for st in stores], queries, k, allowed, rows)
            )
        qv = await embedding
        dim = int(qv.shape[1])
        b = await backend(state)
        if b.kind == "pgvector":
            await ensure_hnsw(state, b, dim)
            vec_lists = await _vector_pg(state, stores, qv, emb.name, dim, k, allowed, rows)
        else:
            vec_lists = await _vector_numpy(state, stores, qv, emb.name, dim, k, allowed, rows)
        lists = vec_lists + await keyword
    finally:
        for task in (embedding, keyword):
            if task is None:
                continue
            if not task.done():
                task.cancel()
            elif not task.cancelled():
                task.exception()  # retrieved: a failure behind another one (a 404) is not logged at exit

    fused: dict[int, float] = {}
    for ranked in lists:
        for rank, seq in enumerate(ranked):
            fused[seq] = fused.get(seq, 0.0) + 1.0 / (RRF_K + rank + 1)
    if not fused:
        return []
    best = len(lists) / (RRF_K + 1)
    pool = [
        seq
        for seq in sorted(fused, key=lambda sq: -fused[sq])[: max(max_num_results * 3, max_num_results)]
        if seq in rows
    ]
    cosines = _best_cosines([rows[seq] for seq in pool], qv, dim) if ranker != "none" else None
    terms = [set(query_terms(q)) for q in queries]
    every_term = set().union(*terms)
    hits: list[SearchHit] = []
    for i, seq in enumerate(pool):
        r = rows[seq]
        rrf = min(fused[seq] / best, 1.0)
        if cosines is None:
            score = rrf
        else:
            lowered = r["text"].lower()
            words = {w for w in every_term if _has_word(lowered, w)}
            coverage = max((len(t & words) / len(t) for t in terms if t), default=0.0)
            score = 0.5 * rrf + 0.5 * (0.7 * max(float(cosines[i]), 0.0) + 0.3 * coverage)
        score = float(min(max(score, 0.0), 1.0))
        if score < threshold:
            continue
        hits.append(
            SearchHit(r["vector_store_id"], r["file_id"], r["filename"], score, r["attributes"], r["text"], r["idx"])
        )
    hits.sort(key=lambda h: -h.score)
    return hits[:max_num_results]


def _has_word(text: str, word: str) -> bool:
    """Whether ``word`` (a run of word characters) is one of ``_WORD``'s words of ``text``: an
    occurrence with no word character on either side. What ``word in set(_WORD.findall(text))``
    answers, with ``str.find`` in C instead of a string per word of the text (an 800-token chunk
    has ~600): 20x faster on the fusion's 30 rows."""
    n, end, start = len(word), len(text), 0
    while (i := text.find(word, start)) >= 0:
        j = i + n
        before = text[i - 1] if i else " "
        after = text[j] if j < end else " "
        if not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_"):
            return True
        start = i + 1
    return False


def _best_cosines(found: list[dict[str, Any]], qv: np.ndarray, dim: int) -> np.ndarray:
    """Each row's best cosine similarity to any of the queries (0 for rows of another embedder's
    size), in one matrix product."""
    out = np.zeros(len(found), dtype=np.float32)
    for i, r in enumerate(found):
        if r.get("cos") is not None:  # from the HNSW search of the only query
            out[i] = r["cos"]
    same = [i for i, r in enumerate(found) if r.get("cos") is None and r["dim"] == dim and r["embedding"] is not None]
    if same:
        matrix = np.frombuffer(b"".join(found[i]["embedding"] for i in same), dtype=np.float32).reshape(len(same), dim)
        out[same] = (matrix @ qv.T).max(axis=1)
    return out


QUERY_CACHE_SIZE = 1024
_query_cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()


async def _embed_queries(emb: Embedder, queries: list[str]) -> np.ndarray:
    """The queries' vectors; the last ``QUERY_CACHE_SIZE`` query vectors are remembered (per process),
    since the same question is often asked again (retries, the same file_search in several runs)."""
    keys = [(emb.name, q) for q in queries]
    missing = [q for key, q in zip(keys, queries, strict=True) if key not in _query_cache]
    if missing:
        embed = getattr(emb, "embed_queries", emb.embed)  # the local embedder has a faster path for queries
        fresh = await embed(list(dict.fromkeys(missing)))
        for q, v in zip(dict.fromkeys(missing), fresh, strict=True):
            _query_cache[(emb.name, q)] = v
            while len(_query_cache) > QUERY_CACHE_SIZE:
                _query_cache.popitem(last=False)
    out = []
    for key in keys:
        _query_cache.move_to_end(key)
        out.append(_query_cache[key])
    return np.stack(out).astype(np.float32, copy=False)


async def _stores(
    state: AppState, project_id: str, vector_store_ids: list[str], filters: Any | None
) -> tuple[list[StoreRef], set[tuple[str, str]] | None]:
    """The project's stores among ``vector_store_ids``, and the (store, file) pairs ``filters`` allows."""
    dialect = "sqlite" if state.db.is_sqlite else "postgresql"
    if dialect == "postgresql" and filters is None:
        async with _pg_connection(state) as (conn, _):
            found = await conn.fetch(
                "SELECT id, index_version, status, last_active_at FROM vector_stores "
                "WHERE id = ANY($1::text[]) AND project_id = $2",
                list(vector_store_ids),
                project_id,
            )
        return [StoreRef(*r) for r in found], None
    async with state.db.session() as s:
        vt = VectorStore.__table__.c
        stores = [
            StoreRef(*r)
            for r in (
                await s.execute(
                    select(vt.id, vt.index_version, vt.status, vt.last_active_at).where(
                        vt.id.in_(vector_store_ids), vt.project_id == project_id
                    )
                )
            ).all()
        ]
        allowed: set[tuple[str, str]] | None = None
        if filters is not None and stores:
            f = VectorStoreFile.__table__.c
            rows = await s.execute(
                select(f.vector_store_id, f.id).where(
                    f.vector_store_id.in_([st.id for st in stores]),
                    f.status == "completed",
                    compile_filter(filters, f.attributes, dialect),
                )
            )
            allowed = {(r[0], r[1]) for r in rows}
    return stores, allowed


async def _vector_numpy(
    state: AppState,
    stores: list[StoreRef],
    qv: np.ndarray,
    embedder: str,
    dim: int,
    k: int,
    allowed: set[tuple[str, str]] | None,
    rows: dict[int, dict[str, Any]],
) -> list[list[int]]:
    """The nearest chunks per query (numpy); their rows are added to ``rows`` (on a SQLite file, by the
    same thread that searched, through its own read connection)."""
    cache = matrix_cache(state)
    path = _sqlite_path(state) if state.db.is_sqlite else None
    per_query: list[list[tuple[float, int]]] = [[] for _ in range(qv.shape[0])]
    for st in stores:
        m = await cache.get(state, st.id, st.index_version, embedder, dim)
        if not len(m.seqs):
            continue
        mask = None
        if allowed is not None:
            ok_files = np.fromiter(((st.id, f) in allowed for f in m.file_ids), dtype=bool, count=len(m.file_ids))
            if not ok_files.any():
                continue
            if not ok_files.all():
                mask = ok_files[m.file_codes]

        def run(m: StoreMatrix = m, mask: np.ndarray | None = mask) -> list[tuple[np.ndarray, np.ndarray]]:
            found = [m.top(q, k, mask) for q in qv]
            if path is not None and len(stores) == 1:
                missing = {seq for idx, _ in found for seq in m.seqs[idx].tolist()} - rows.keys()
                rows.update(_fetch_sync(_reader(path), sorted(missing)))
            return found

        # Big stores in a thread (several ms), small ones inline (a thread hop would cost more).
        found = await asyncio.to_thread(run) if len(m.seqs) > EXACT_MAX_ROWS // 2 else run()
        for qi, (idx, sims) in enumerate(found):
            per_query[qi] += zip(sims.tolist(), m.seqs[idx].tolist(), strict=True)
    if len(stores) == 1:
        out = [[seq for _, seq in lst] for lst in per_query]
    else:
        out = [[seq for _, seq in sorted(lst, key=lambda x: -x[0])[:k]] for lst in per_query]
    missing = {seq for ranked in out for seq in ranked} - rows.keys()
    if missing:
        rows.update(await _fetch(state, sorted(missing)))
    return out


def _allowed_sql(allowed: set[tuple[str, str]] | None) -> tuple[str, dict[str, Any]]:
    if allowed is None:
        return "", {}
    return " AND (vector_store_id || ':' || file_id) IN :allowed", {"allowed": [f"{s}:{f}" for s, f in allowed]}


async def _vector_pg(
    state: AppState,
    stores: list[StoreRef],
    qv: np.ndarray,
    embedder: str,
    dim: int,
    k: int,
    allowed: set[tuple[str, str]] | None,
    rows: dict[int, dict[str, Any]],
) -> list[list[int]]:
    """The nearest chunks per query by pgvector HNSW, with their rows (added to ``rows``) in the
    same statement: one round trip per query (the scan's settings are set on the connection, a
    round trip only when they change)."""
    d = int(dim)
    # The scan orders by the HNSW index's own expression (float16 on pgvector >= 0.7); the distance
    # returned is the float32 one, as the keyword side's and numpy's (pgvector reads each returned
    # row's vector for it either way).
    vtype = (await backend(state)).vec_type(d)
    extra = " AND (vector_store_id || ':' || file_id) = ANY($5::text[])" if allowed is not None else ""
    # With one query the rows carry their cosine instead of their embedding (1.5 kB each, read
    # from TOAST): all fusion needs. With several, fusion needs each row's best over all of them.
    vector = "c.embedding" if len(qv) > 1 else "NULL::bytea AS embedding, 1 - c.distance AS cos"
    sql = (
        f"SELECT {_ROW_COLUMNS.replace('c.embedding', vector)} FROM (SELECT seq, vector_store_id, file_id, idx, "
        f"text, dim, {'embedding, ' if len(qv) > 1 else ''}"
        f"embedding_vec::vector({d}) <=> CAST($1::text AS vector({d})) AS distance FROM chunks "
        f"WHERE dim = {d} AND embedder = $2 AND vector_store_id = ANY($3::text[]){extra} "
        f"ORDER BY embedding_vec::{vtype} <=> CAST($1::text AS {vtype}) LIMIT $4) c "
        f"{_ROW_JOINS} ORDER BY c.distance"
    )
    sids = [st.id for st in stores]
    params = [[f"{a}:{b}" for a, b in allowed]] if allowed is not None else []
    out: list[list[int]] = []
    async with _pg_connection(state) as (conn, ensure_settings):
        await ensure_settings(
            conn, {"hnsw.iterative_scan": "relaxed_order", "hnsw.ef_search": str(max(40, min(k * 2, 1000)))}
        )
        for v in qv:
            found = [_row(r) for r in await conn.fetch(sql, vec_literal(v), embedder, sids, k, *params)]
            rows.update((r["seq"], r) for r in found)
            out.append([r["seq"] for r in found])
    return out


@asynccontextmanager
async def _pg_connection(
    state: AppState,
) -> AsyncIterator[tuple[Any, Callable[[Any, dict[str, str]], Awaitable[None]]]]:
    """An asyncpg connection for the search's own statements, and how to set session settings on
    it: the fast reader's pool (db/fastread.py: no reset between users, settings kept), else the
    driver connection of a read session."""
    from assistd.db.fastread import PostgresFastReader, set_session_settings

    fast = state.db.fast
    if isinstance(fast, PostgresFastReader):
        async with fast.acquire() as conn:
            yield conn, fast.ensure_settings
        return
    async with state.db.session() as s:
        raw = await (await s.connection()).get_raw_connection()
        yield raw.driver_connection, set_session_settings


async def _keyword(
    state: AppState,
    project_id: str,
    store_ids: list[str],
    queries: list[str],
    k: int,
    allowed: set[tuple[str, str]] | None,
    rows: dict[int, dict[str, Any]],
) -> list[list[int]]:
    """The best keyword matches per query in the stores of ``project_id`` among ``store_ids`` (the
    statements check the project themselves, so this can start before the stores are read); their
    rows are added to ``rows``."""
    if not state.db.is_sqlite:
        return await _keyword_pg(state, project_id, store_ids, queries, k, allowed, rows)
    path = _sqlite_path(state)
    if path is not None:
        return await asyncio.to_thread(_keyword_sqlite_sync, path, project_id, store_ids, queries, k, allowed, rows)
    # an in-memory database: through the session, every word
    extra, params = _allowed_sql(allowed)
    extra = extra.replace("vector_store_id", "c.vector_store_id").replace("file_id", "c.file_id")
    out: list[list[int]] = []
    async with state.db.session() as s:
        for q in queries:
            expr = fts5_query(q)
            if expr is None:
                continue
            stmt = text(
                "SELECT c.seq FROM chunks_fts JOIN chunks c ON c.seq = chunks_fts.rowid "
                f"WHERE chunks_fts MATCH :q AND c.vector_store_id IN :sids AND {_IN_PROJECT_SQLITE}{extra} "
                "ORDER BY bm25(chunks_fts) LIMIT :k"
            ).bindparams(bindparam("sids", expanding=True))
            if allowed is not None:
                stmt = stmt.bindparams(bindparam("allowed", expanding=True))
            found = await s.execute(stmt, {"q": expr, "sids": store_ids, "pid": project_id, "k": k, **params})
            out.append([r[0] for r in found])
    rows.update(await _fetch(state, sorted({seq for ranked in out for seq in ranked} - rows.keys())))
    return out


_IN_PROJECT_SQLITE = "c.vector_store_id IN (SELECT id FROM vector_stores WHERE project_id = :pid)"


# --- PostgreSQL keyword search: IDF-weighted ----------------------------------------------------------


async def _keyword_pg(
    state: AppState,
    project_id: str,
    store_ids: list[str],
    queries: list[str],
    k: int,
    allowed: set[tuple[str, str]] | None,
    rows: dict[int, dict[str, Any]],
) -> list[list[int]]:
    """Chunks matching any of the query's lexemes, ranked by BM25 (k1 1.2, b 0.75, as SQLite's
    FTS5): IDF ``ln(1 + (N - df + 0.5) / (df + 0.5))`` of each matched lexeme, term frequency from
    the tsvector's positions, length = lexemes in the chunk. ``ts_rank_cd`` ranks OR queries poorly:
    it has no notion of a word's rarity, so a chunk with "function" three times beats one with the
    only rare word of the question. The most common lexemes are left out above
    ``KEYWORD_POSTINGS_BUDGET_PG`` matches (every match is a heap row read and tested here, where
    FTS5 reads only its index). A candidate's term frequencies come from its query lexemes only
    (``setweight`` marks them, ``ts_filter`` keeps them, both in C): unnesting the whole tsvector
    of an 800-token chunk to find two or three lexemes cost more than the rest of the statement.

    One statement per query (see _PG_KEYWORD): the words' lexemes, the document frequencies this
    process has not counted lately, the rarest lexemes, both ranking steps and the chunks' rows
    (added to ``rows``), for the project's stores among ``store_ids``. It also returns what it
    learned (lexemes of new words, fresh counts), remembered here for DF_TTL_SECONDS
    (also when nothing matched: the statement then returns one row of NULLs carrying it)."""
    db = state.settings.resolved_database_url
    out: list[list[int]] = []
    async with _pg_connection(state) as (conn, _):
        corpus = await _pg_corpus(state, conn, db)
        for q in queries:
            words = [t for t in query_terms(q) if t.isalnum()]
            now = time.monotonic()
            known: dict[str, int] = {}
            new_words: list[str] = []
            for w in words:
                lexes = _pg_lexeme_cache.get((db, w))
                if lexes is None:
                    new_words.append(w)
                    continue
                for x in lexes:
                    hit = _pg_df_cache.get((db, x))
                    if hit is not None and now - hit[0] <= DF_TTL_SECONDS:
                        known[x] = hit[1]
            if not new_words and not any(_pg_lexeme_cache[(db, w)] for w in words):
                continue  # stop words only
            sql, args = _pg_keyword_statement(
                words, known, corpus.n, corpus.avgdl, store_ids, project_id, k, allowed, corpus.common_for(new_words)
            )
            found = await conn.fetch(sql, *args)
            # At least one row, with what the statement learned: a row of NULLs when nothing matched.
            _pg_learn(db, new_words, found[0]["pairs"], found[0]["counts"], now)
            hits = [_row(r) for r in found if r["seq"] is not None]
            rows.update((r["seq"], r) for r in hits)
            out.append([r["seq"] for r in hits])
    return out


def _pg_keyword_statement(
    words: list[str],
    known: dict[str, int],
    n: int,
    avgdl: float,
    store_ids: list[str],
    project_id: str,
    k: int,
    allowed: set[tuple[str, str]] | None,
    common: list[str] | None = None,
) -> tuple[str, list[Any]]:
    """The keyword statement for one question's ``words`` and its parameters (see _pg_keyword_sql);
    ``known``: document frequencies this process remembers, ``n`` and ``avgdl``: the corpus's size
    and mean length; ``common``: lexemes known to match more chunks than the count cap (not counted)."""
    slots = 1 << max(len(words) - 1, 0).bit_length()  # lexemes scored in step 1 (one per word)
    args: list[Any] = [
        words,
        list(known),
        list(known.values()),
        KEYWORD_POSTINGS_BUDGET_PG + 1,
        float(n),
        KEYWORD_POSTINGS_BUDGET_PG,
        list(store_ids),
        project_id,
        4 * k,
        max(avgdl, 1.0),
        k,
        KEYWORD_SCAN_LIMIT_PG,
        list(common or ()),
    ]
    if allowed is not None:
        args.append([f"{a}:{b}" for a, b in allowed])
    return _pg_keyword_sql(slots, allowed is not None), args


@functools.cache
def _pg_keyword_sql(slots: int, filtered: bool) -> str:
    """The keyword statement (see _keyword_pg). Parameters: $1 the query's words, $2/$3 lexemes and
    counts known here, $4 count cap, $5 N, $6 postings budget, $7 store ids, $8 project, $9 rows
    pre-selected by the sum of their lexemes' IDF, $10 mean length, $11 k, $12 matches read at
    most, $13 lexemes not to count (their count is the cap), $14 allowed files.

    With one lexeme kept (every word of the question is common) the pre-selection has nothing to
    rank by: every match scores that lexeme's IDF, and of equal rows a bounded sort keeps the first
    it reads. So only as many matches as it keeps ($9) are read, the same rows as when reading
    $12 of them (a question of common words only took ~8 ms at 100,000 chunks, now ~1 ms).

    A lexeme this process has no count for is counted up to the cap ($4), which reads that many
    rows when the lexeme is common: 3–10 ms at 100,000 chunks, for the first search of each process
    that meets the word and again every DF_TTL_SECONDS. The lexemes of $13 are not counted: ANALYZE's
    statistics put them well over the cap (see _PG_CORPUS), so their count is the cap, as counting
    would find."""
    presence = " + ".join(
        f"(CASE WHEN m.tsv @@ (SELECT tqs[{i}] FROM query) THEN (SELECT idfs[{i}] FROM query) ELSE 0 END)"
        for i in range(1, slots + 1)
    )
    extra = " AND (c.vector_store_id || ':' || c.file_id) = ANY($14::text[])" if filtered else ""
    return f"""
WITH pairs AS (
    SELECT w, l FROM unnest($1::text[]) w, unnest(tsvector_to_array(to_tsvector('english', w))) l WHERE l ~ '^\\w+$'
),
d AS (
    SELECT x.l, k.df IS NULL AS fresh, coalesce(k.df, CASE WHEN x.l = ANY($13::text[]) THEN $4::bigint END,
        (SELECT count(*) FROM (SELECT 1 FROM chunks WHERE tsv @@ CAST(quote_literal(x.l) AS tsquery) LIMIT $4) m)) AS df
    FROM (SELECT DISTINCT l FROM pairs) x LEFT JOIN unnest($2::text[], $3::int[]) AS k(l, df) ON k.l = x.l
),
kept AS (
    SELECT l, CAST(quote_literal(l) AS tsquery) AS tq, ln(1 + (greatest($5, df) - df + 0.5) / (df + 0.5)) AS idf
    FROM (SELECT l, df, sum(df) OVER (ORDER BY df, l) AS running, row_number() OVER (ORDER BY df, l) AS rn FROM d) r
    WHERE running <= $6 OR rn = 1
),
query AS (
    SELECT CAST(string_agg(quote_literal(l), ' | ') AS tsquery) AS q, array_agg(l ORDER BY l) AS lexes,
        array_agg(idf ORDER BY l) AS idfs, array_agg(tq ORDER BY l) AS tqs FROM kept
),
top AS (
    SELECT t.seq, (SELECT coalesce(sum(w.idf * cardinality(u.positions) * 2.2
            / (cardinality(u.positions) + 1.2 * (0.25 + 0.75 * length(t.tsv) / $10::float8))), 0)
        FROM unnest(ts_filter(setweight(t.tsv, 'A', (SELECT lexes FROM query)), '{{a}}')) u
        JOIN unnest((SELECT lexes FROM query), (SELECT idfs FROM query)) AS w(lex, idf)
        ON w.lex = u.lexeme) AS score
    FROM (SELECT m.seq, m.tsv FROM (SELECT c.seq, c.tsv FROM chunks c
        WHERE c.tsv @@ (SELECT q FROM query)
        AND c.vector_store_id IN (SELECT id FROM vector_stores WHERE id = ANY($7::text[]) AND project_id = $8){extra}
        LIMIT (SELECT CASE WHEN cardinality(lexes) = 1 THEN $9::bigint ELSE $12::bigint END FROM query)) m
        ORDER BY {presence} DESC LIMIT $9) t
    ORDER BY score DESC, t.seq LIMIT $11
)
SELECT hit.*,
    (SELECT json_agg(json_build_array(w, l)) FROM pairs) AS pairs,
    (SELECT json_agg(json_build_array(l, df)) FROM d WHERE fresh) AS counts
FROM (SELECT 1) AS always LEFT JOIN (
    SELECT {_ROW_COLUMNS}, top.score FROM top JOIN chunks c ON c.seq = top.seq {_ROW_JOINS}
) hit ON true
ORDER BY hit.score DESC, hit.seq
"""


def _pg_learn(db: str, new_words: list[str], pairs: Any, counts: Any, now: float) -> None:
    """Remember the lexemes of ``new_words`` and the counts a keyword statement made."""
    if isinstance(pairs, str):
        pairs = orjson.loads(pairs)
    if isinstance(counts, str):
        counts = orjson.loads(counts)
    if len(_pg_lexeme_cache) > 100_000 or len(_pg_df_cache) > 100_000:
        _pg_lexeme_cache.clear()
        _pg_df_cache.clear()
    lexemes: dict[str, list[str]] = {w: [] for w in new_words}
    for w, lex in pairs or ():
        if w in lexemes and lex not in lexemes[w]:
            lexemes[w].append(lex)
    for w, lexes in lexemes.items():
        _pg_lexeme_cache[(db, w)] = lexes
    for lex, df in counts or ():
        _pg_df_cache[(db, lex)] = (now, int(df))


_pg_lexeme_cache: dict[tuple[str, str], list[str]] = {}
_pg_df_cache: dict[tuple[str, str], tuple[float, int]] = {}
_pg_n_refresh: dict[str, asyncio.Task[None]] = {}


@dataclass(frozen=True)
class _Corpus:
    counted_at: float
    n: int  # chunks
    avgdl: float  # mean lexemes per chunk
    common: dict[str, list[str]]  # lexemes over the count cap, by their first three characters

    def common_for(self, words: list[str]) -> list[str]:
        """The common lexemes that may be the stems of ``words`` (those sharing their first three
        characters): the only ones a statement counting these words' lexemes needs."""
        return [lex for prefix in {w[:3] for w in words} for lex in self.common.get(prefix, ())]


_pg_n: dict[str, _Corpus] = {}  # database -> its figures

_PG_CORPUS = """
SELECT c.n, c.avgdl, (SELECT array_agg(u.l) FROM pg_stats s,
        unnest(CAST(CAST(s.most_common_elems AS text) AS text[]), s.most_common_elem_freqs) AS u(l, f)
    WHERE s.schemaname = current_schema() AND s.tablename = 'chunks' AND s.attname = 'tsv'
        AND u.l IS NOT NULL AND u.f * c.n >= $1) AS common
FROM (SELECT count(*) AS n, avg(length(tsv)) AS avgdl FROM chunks) c
"""
"""The number of chunks, their mean length in lexemes, and the lexemes ANALYZE's sample of
``chunks.tsv`` puts in at least ``$1`` chunks (``most_common_elems``: the ~1,000 most frequent
lexemes of the sample, with their frequencies)."""
COMMON_MARGIN = 1.5
"""A lexeme is taken as over the count cap when the statistics estimate it in this many times the
cap's chunks: the estimate comes from a sample (30,000 rows at the default statistics target),
whose error at that frequency is a few percent."""


async def _pg_read_corpus(conn: Any, common_from: float | None = None) -> _Corpus:
    """The corpus's figures; ``common``: the lexemes estimated in at least ``common_from`` chunks
    (default: COMMON_MARGIN times the keyword statement's count cap)."""
    if common_from is None:
        common_from = COMMON_MARGIN * (KEYWORD_POSTINGS_BUDGET_PG + 1)
    row = await conn.fetchrow(_PG_CORPUS, common_from)
    common: dict[str, list[str]] = {}
    for lex in row["common"] or ():
        common.setdefault(lex[:3], []).append(lex)
    return _Corpus(time.monotonic(), int(row["n"]), float(row["avgdl"] or 1.0), common)


async def _pg_corpus(state: AppState, conn: Any, db: str) -> _Corpus:
    """The corpus's figures: read on first use, then again in the background (a full scan) when
    older than DF_TTL_SECONDS, the old figures serving meanwhile."""
    hit = _pg_n.get(db)
    if hit is None:
        hit = _pg_n[db] = await _pg_read_corpus(conn)
    elif time.monotonic() - hit.counted_at > DF_TTL_SECONDS and db not in _pg_n_refresh:
        task = asyncio.create_task(_pg_recount(state, db))
        _pg_n_refresh[db] = task
        task.add_done_callback(lambda _t: _pg_n_refresh.pop(db, None))
    return hit


async def _pg_recount(state: AppState, db: str) -> None:
    try:
        async with _pg_connection(state) as (conn, _):
            _pg_n[db] = await _pg_read_corpus(conn)
    except Exception:  # the old figures stay; the next search tries again
        _pg_n[db] = dataclasses.replace(_pg_n[db], counted_at=time.monotonic() - DF_TTL_SECONDS / 2)


def _rarest(terms: list[T], df: dict[T, int], budget: int) -> list[T]:
    """``terms`` without the most common ones once their matches exceed ``budget`` (rarest first,
    at least one kept), in their original order."""
    if sum(df.values()) <= budget:
        return terms
    kept: list[T] = []
    total = 0
    for t in sorted(terms, key=lambda x: df[x]):
        if kept and total + df[t] > budget:
            break
        kept.append(t)
        total += df[t]
    return [t for t in terms if t in kept]


# --- SQLite keyword search on a thread's own connection ----------------------------------------------

KEYWORD_POSTINGS_BUDGET = 4_000
"""FTS5 scores every chunk that matches any query word (bm25 reads each one's length), so a question
full of common words ("how", "function", "value") scores half of a big store. Above this many
matching postings, the most common words are left out of the MATCH (rarest first, at least one
word kept): they are the words whose bm25 weight (IDF) is lowest anyway. Stores whose words are all
rarer than that (document frequencies count every store of the database) are searched with
every word."""
KEYWORD_POSTINGS_BUDGET_PG = 1_500
"""The same on PostgreSQL, lower: there each match is a heap row read and tested (about 2 µs),
where FTS5 reads only its doclists."""
KEYWORD_SCAN_LIMIT_PG = 3_000
"""Matches read at most, for when even the rarest word of a question is common (document frequencies
are counted only up to the budget): the pre-selection by IDF then sees the first 3,000 of them."""
DF_TTL_SECONDS = 300.0

_local = threading.local()
_df_cache: dict[tuple[str, str], tuple[float, int]] = {}


def _sqlite_path(state: AppState) -> str | None:
    from sqlalchemy.engine import make_url

    db = make_url(state.settings.resolved_database_url).database
    if not db or db == ":memory:" or db.startswith("file:"):
        return None
    return db


def _reader(path: str) -> sqlite3.Connection:
    """This thread's read connection to ``path`` (with the temporary tables used to stem query words)."""
    conns: dict[str, sqlite3.Connection] = _local.__dict__.setdefault("conns", {})
    conn = conns.get(path)
    if conn is None:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=1000")
        conn.execute("CREATE VIRTUAL TABLE temp.q_words USING fts5(t, tokenize='porter unicode61 remove_diacritics 2')")
        conn.execute("CREATE VIRTUAL TABLE temp.q_terms USING fts5vocab(temp, q_words, instance)")
        conn.execute("CREATE VIRTUAL TABLE temp.chunks_terms USING fts5vocab(main, chunks_fts, row)")
        conns[path] = conn
    return conn


def _keep_rare(conn: sqlite3.Connection, path: str, words: list[str]) -> list[str]:
    """``words`` without the most common ones (see KEYWORD_POSTINGS_BUDGET)."""
    if len(words) <= 1:
        return words
    conn.execute("DELETE FROM temp.q_words")
    conn.executemany("INSERT INTO temp.q_words(rowid, t) VALUES (?, ?)", list(enumerate(words)))
    stem_of = {int(r[0]): r[1] for r in conn.execute("SELECT doc, term FROM temp.q_terms")}
    now = time.monotonic()
    df: dict[int, int] = {}
    for i in range(len(words)):
        stem = stem_of.get(i)
        if stem is None:
            continue
        hit = _df_cache.get((path, stem))
        if hit is None or now - hit[0] > DF_TTL_SECONDS:
            row = conn.execute("SELECT doc FROM temp.chunks_terms WHERE term = ?", (stem,)).fetchone()
            hit = (now, int(row[0]) if row else 0)
            _df_cache[(path, stem)] = hit
            if len(_df_cache) > 100_000:
                _df_cache.clear()
        df[i] = hit[1]
    return [words[i] for i in _rarest(list(range(len(words))), df, KEYWORD_POSTINGS_BUDGET)]


def _keyword_sqlite_sync(
    path: str,
    project_id: str,
    store_ids: list[str],
    queries: list[str],
    k: int,
    allowed: set[tuple[str, str]] | None,
    rows: dict[int, dict[str, Any]],
) -> list[list[int]]:
    conn = _reader(path)
    where = (
        f"c.vector_store_id IN ({','.join('?' * len(store_ids))}) "
        "AND c.vector_store_id IN (SELECT id FROM vector_stores WHERE project_id = ?)"
    )
    args: list[Any] = [*store_ids, project_id]
    if allowed is not None:
        where += f" AND (c.vector_store_id || ':' || c.file_id) IN ({','.join('?' * len(allowed))})"
        args += [f"{a}:{b}" for a, b in allowed]
    joined = (
        "SELECT c.seq FROM chunks_fts JOIN chunks c ON c.seq = chunks_fts.rowid "
        f"WHERE chunks_fts MATCH ? AND {where} ORDER BY bm25(chunks_fts) LIMIT ?"
    )
    out: list[list[int]] = []
    conn.execute("BEGIN")
    try:
        for q in queries:
            words = _keep_rare(conn, path, query_terms(q))
            if not words:
                continue
            expr = " OR ".join('"' + w.replace('"', '""') + '"' for w in words)
            # The best matches of the whole index first, then which of them are ours: looking up
            # every match's chunk row (to test its store) costs as much as the search itself.
            # When fewer than k of them are ours, the joined query answers.
            top = [r[0] for r in conn.execute(_FTS_TOP, [expr, 4 * k])]
            ours: set[int] = set()
            if top:
                check = f"SELECT c.seq FROM chunks c WHERE c.seq IN ({','.join('?' * len(top))}) AND {where}"
                ours = {r[0] for r in conn.execute(check, [*top, *args])}
            ranked = [seq for seq in top if seq in ours][:k]
            if len(ranked) < k and len(top) == 4 * k:
                ranked = [r[0] for r in conn.execute(joined, [expr, *args, k])]
            out.append(ranked)
        rows.update(_fetch_sync(conn, sorted({seq for ranked in out for seq in ranked} - rows.keys())))
    finally:
        conn.execute("COMMIT")
    return out


_FTS_TOP = "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts) LIMIT ?"


_ROW_COLUMNS = "c.seq, c.vector_store_id, c.file_id, c.idx, c.text, c.dim, c.embedding, f.filename, vf.attributes"
_ROW_JOINS = (
    "LEFT JOIN files f ON f.id = c.file_id "
    "LEFT JOIN vector_store_files vf ON vf.vector_store_id = c.vector_store_id AND vf.id = c.file_id"
)


def _row(r: Any) -> dict[str, Any]:
    d = dict(r)
    attrs = d["attributes"]
    if isinstance(attrs, str):
        attrs = orjson.loads(attrs)
    d["attributes"] = attrs
    d["filename"] = d["filename"] or ""
    d["seq"] = int(d["seq"])
    return d


async def _fetch(state: AppState, seqs: list[int]) -> dict[int, dict[str, Any]]:
    """Chunk rows (text, embedding, filename, attributes) by ``seq``."""
    if not seqs:
        return {}
    stmt = text(f"SELECT {_ROW_COLUMNS} FROM chunks c {_ROW_JOINS} WHERE c.seq IN :seqs").bindparams(
        bindparam("seqs", expanding=True)
    )
    async with state.db.session() as s:
        found = [_row(r) for r in (await s.execute(stmt, {"seqs": seqs})).mappings()]
    return {r["seq"]: r for r in found}


def _fetch_sync(conn: sqlite3.Connection, seqs: list[int]) -> dict[int, dict[str, Any]]:
    """:func:`_fetch` on a thread's own SQLite read connection."""
    if not seqs:
        return {}
    cur = conn.execute(
        f"SELECT {_ROW_COLUMNS} FROM chunks c {_ROW_JOINS} WHERE c.seq IN ({','.join('?' * len(seqs))})", seqs
    )
    names = [d[0] for d in cur.description]
    found = [_row(dict(zip(names, r, strict=True))) for r in cur]
    return {r["seq"]: r for r in found}


__all__ = ["SearchHit", "StoreRef", "search_stores"]
