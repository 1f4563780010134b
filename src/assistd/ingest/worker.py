"""The ingester: claims queued vector-store files and indexes them, never inside a request.

- **Queue**: ``vector_store_files`` rows with status ``in_progress``. A claim is a conditional
  UPDATE writing the lease (owner, expiry) and bumping ``attempt``, inside ``BEGIN IMMEDIATE`` on
  SQLite or after ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL. A row whose lease expired
  (its worker died) is claimable again; after ``max_attempts`` it fails with ``server_error``.
- **Steps**: blob → ``parse_file`` (subprocess, time and memory limits) → ``chunk_text`` (the
  file's chunking strategy) → embed in batches → one transaction inserting the chunks, their
  keyword index and the parsed text, and moving the row to ``completed`` *only if* it is still
  ``in_progress`` under our lease (a cancel or a detach in the meantime wins: the work is
  dropped). No transaction is held across parsing or embedding.
- **Errors**: ``ParseError`` → ``failed`` with its code (``unsupported_file``/``invalid_file``);
  ``EmbedderError`` (no model weights, embeddings endpoint down) → ``server_error`` with its message,
  which names the fix; anything else → ``server_error``. A bad file never stops the loop.
- **Heartbeat**: leases of running jobs are extended every ``lease/3``; a job whose row was
  cancelled or detached is stopped.
- **Wake-ups**: in-process after commits (ingest.wake_local), ``NOTIFY assistd_ingest`` on
  PostgreSQL, and a slow poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import delete, or_, select, update

from assistd import ingest, metrics
from assistd.ids import random_token
from assistd.models import Chunk, File, VectorStore, VectorStoreFile, VectorStoreFileText
from assistd.retrieval.embeddings import EmbedderError
from assistd.retrieval.index import backend, ensure_hnsw, get_embedder, insert_chunks
from assistd.retrieval.parsing import PAGE_BREAK

if TYPE_CHECKING:
    from assistd.state import AppState

log = logging.getLogger("assistd.ingest")

EMBED_BATCH = 256
C = VectorStoreFile.__table__.c


class JobGone(Exception):
    """The row was cancelled, detached or re-leased while we worked on it."""


class Ingester:
    def __init__(
        self,
        state: AppState,
        *,
        concurrency: int = 2,
        lease_seconds: float = 120.0,
        poll_seconds: float = 2.0,
        max_attempts: int = 3,
    ) -> None:
        self.state = state
        self.owner = "ingest_" + random_token(12)
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.max_attempts = max_attempts
        self._wake = asyncio.Event()
        self._running: dict[tuple[int, str, str], asyncio.Task[None]] = {}  # (seq, store, file)
        self._loops: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        ingest.add_waker(self.wake)
        self._loops = [
            asyncio.create_task(self._claim_loop(), name="assistd-ingest-claim"),
            asyncio.create_task(self._heartbeat_loop(), name="assistd-ingest-heartbeat"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        ingest.remove_waker(self.wake)
        for t in self._loops:
            t.cancel()
        running = list(self._running.values())
        for t in running:
            t.cancel()
        for t in [*self._loops, *running]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        # Hand unfinished jobs back at once instead of waiting for their leases to lapse.
        if running:
            with contextlib.suppress(Exception):
                async with self.state.db.session(write=True) as s:
                    await s.execute(
                        update(VectorStoreFile)
                        .where(C.lease_owner == self.owner, C.status == "in_progress")
                        .values(lease_owner=None, lease_expires_at=None)
                        .execution_options(synchronize_session=False)
                    )

    def wake(self) -> None:
        self._wake.set()

    @property
    def active(self) -> int:
        """Files this ingester is working on now."""
        return len(self._running)

    async def drain(self, within: float = 60.0) -> None:
        """Tests and benchmarks: wait until no file is queued or being ingested."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            async with self.state.db.session() as s:
                pending = await s.scalar(select(C.seq).where(C.status == "in_progress").limit(1))
            if pending is None and not self._running:
                return
            self.wake()
            await asyncio.sleep(0.02)
        raise TimeoutError("files still being ingested")

    # --- claiming ------------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while not self._stopping:
            try:
                while len(self._running) < self.concurrency:
                    job = await self._claim()
                    if job is None:
                        break
                    self._start(job)
            except Exception:
                log.exception("ingest claim failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_seconds)
            self._wake.clear()

    def _claimable(self, wall: float) -> Any:
        return (C.status == "in_progress") & or_(C.lease_expires_at.is_(None), C.lease_expires_at < wall)

    async def _claim(self) -> dict[str, Any] | None:
        db, wall = self.state.db, time.time()
        async with db.session() as s:  # a plain read first: no write lock when idle
            if await s.scalar(select(C.seq).where(self._claimable(wall)).limit(1)) is None:
                return None
        async with db.session(write=True) as s:
            stmt = select(C.seq).where(self._claimable(wall)).order_by(C.seq).limit(1)
            if not db.is_sqlite:
                stmt = stmt.with_for_update(skip_locked=True)
            seq = await s.scalar(stmt)
            if seq is None:
                return None
            row = (
                await s.execute(
                    update(VectorStoreFile)
                    .where(C.seq == seq, self._claimable(wall))
                    .values(lease_owner=self.owner, lease_expires_at=wall + self.lease_seconds, attempt=C.attempt + 1)
                    .returning(C.seq, C.vector_store_id, C.id, C.project_id, C.chunking_strategy, C.attempt)
                    .execution_options(synchronize_session=False)
                )
            ).first()
        return dict(row._mapping) if row is not None else None

    def _start(self, job: dict[str, Any]) -> None:
        key = (job["seq"], job["vector_store_id"], job["id"])
        task = asyncio.create_task(self._run(job), name=f"ingest-{job['id']}")
        self._running[key] = task

        def _done(_t: asyncio.Task[None]) -> None:
            self._running.pop(key, None)
            self.wake()

        task.add_done_callback(_done)

    # --- one file -------------------------------------------------------------------------------

    async def _run(self, job: dict[str, Any]) -> None:
        from assistd.retrieval.parsing import ParseError

        started, outcome = time.perf_counter(), "server_error"
        try:
            if job["attempt"] > self.max_attempts:
                await self._fail(job, "server_error", "Ingestion was interrupted too many times.")
                return
            await self._ingest(job)
            outcome = "completed"
        except JobGone:
            outcome = "dropped"
            log.info("ingest %s/%s: cancelled or detached meanwhile", job["vector_store_id"], job["id"])
        except ParseError as exc:
            outcome = self._failure_code(exc.code)
            await self._fail(job, exc.code, exc.message)
        except EmbedderError as exc:  # e.g. the local model's weights missing: the message says what to do
            log.warning("ingest %s/%s failed: %s", job["vector_store_id"], job["id"], exc.message)
            await self._fail(job, "server_error", exc.message)
        except asyncio.CancelledError:
            outcome = ""  # shutdown or a lost lease: another ingester finishes it
            raise
        except Exception:
            log.exception("ingest %s/%s failed", job["vector_store_id"], job["id"])
            await self._fail(job, "server_error", "The file could not be processed because of a server error.")
        finally:
            if outcome:
                metrics.ingest_done(outcome, time.perf_counter() - started)

    async def _ingest(self, job: dict[str, Any]) -> None:
        from assistd.retrieval.chunking import chunk_text
        from assistd.retrieval.parsing import ParseError, parse_file

        state = self.state
        async with state.db.session() as s:
            f = (
                await s.execute(
                    select(File.storage_key, File.filename).where(
                        File.id == job["id"], File.project_id == job["project_id"]
                    )
                )
            ).first()
        if f is None:
            raise ParseError("invalid_file", "The file no longer exists.")
        path = state.blobs.path(f.storage_key)
        parsing = time.perf_counter()
        doc = await parse_file(
            path,
            f.filename,
            timeout=state.settings.parse_timeout_seconds,
            memory_mb=state.settings.parse_memory_mb,
        )
        metrics.ingest_phase("parse", time.perf_counter() - parsing)
        static = (job["chunking_strategy"] or {}).get("static") or {}
        max_tokens = int(static.get("max_chunk_size_tokens", 800))
        overlap = int(static.get("chunk_overlap_tokens", 400))
        chunks = await asyncio.to_thread(chunk_text, doc.text, max_tokens, overlap)
        if not chunks:
            raise ParseError("invalid_file", "No text could be extracted from the file.")
        await self._renew(job)
        emb = get_embedder(state)
        embedding = time.perf_counter()
        parts: list[np.ndarray] = []
        for i in range(0, len(chunks), EMBED_BATCH):
            parts.append(await emb.embed([c.text for c in chunks[i : i + EMBED_BATCH]]))
            await self._renew(job)
        metrics.ingest_phase("embed", time.perf_counter() - embedding)
        vectors = np.ascontiguousarray(np.vstack(parts), dtype=np.float32)
        dim = int(vectors.shape[1])
        b = await backend(state)
        await ensure_hnsw(state, b, dim)
        sid, fid = job["vector_store_id"], job["id"]
        rows = [
            {
                "vector_store_id": sid,
                "file_id": fid,
                "idx": c.index,
                "text": c.text.replace("\f", "\n"),  # a page break inside a chunk reads as a line break
                "start_offset": c.start,
                "end_offset": c.end,
                "tokens": c.tokens,
                "embedder": emb.name,
                "dim": dim,
                "embedding": vectors[i].tobytes(),
            }
            for i, c in enumerate(chunks)
        ]
        usage = sum(len(c.text.encode()) for c in chunks) + vectors.nbytes
        # the content endpoint's pages: what each page says, without the break between them
        pages = doc.text.split(PAGE_BREAK) if doc.pages else [doc.text]
        async with state.db.session(write=True) as s:
            done = await s.execute(
                update(VectorStoreFile)
                .where(*self._held(job))
                .values(status="completed", usage_bytes=usage, last_error=None, lease_owner=None, lease_expires_at=None)
                .execution_options(synchronize_session=False)
            )
            if not done.rowcount:  # type: ignore[attr-defined]
                raise JobGone
            ch, tx = Chunk.__table__.c, VectorStoreFileText.__table__.c
            await s.execute(delete(Chunk).where(ch.vector_store_id == sid, ch.file_id == fid))
            await s.execute(delete(VectorStoreFileText).where(tx.vector_store_id == sid, tx.file_id == fid))
            await insert_chunks(s, b, rows, vectors)
            s.add(VectorStoreFileText(vector_store_id=sid, file_id=fid, pages=pages))
            await s.execute(
                update(VectorStore)
                .where(VectorStore.id == sid)
                .values(index_version=VectorStore.index_version + 1)
                .execution_options(synchronize_session=False)
            )
        log.info("ingested %s into %s: %d chunks", fid, sid, len(chunks))

    def _held(self, job: dict[str, Any]) -> list[Any]:
        """The job's row while this ingester holds it. By its file and store too, not only its
        ``seq``: SQLite gives a deleted row's seq to the next row inserted, so a file detached while
        it was parsed must not end (or renew) the file that took its place."""
        return [
            C.seq == job["seq"],
            C.id == job["id"],
            C.vector_store_id == job["vector_store_id"],
            C.status == "in_progress",
            C.lease_owner == self.owner,
        ]

    async def _renew(self, job: dict[str, Any]) -> None:
        async with self.state.db.session(write=True) as s:
            r = await s.execute(
                update(VectorStoreFile)
                .where(*self._held(job))
                .values(lease_expires_at=time.time() + self.lease_seconds)
                .execution_options(synchronize_session=False)
            )
            if not r.rowcount:  # type: ignore[attr-defined]
                raise JobGone

    @staticmethod
    def _failure_code(code: str) -> str:
        return code if code in ("unsupported_file", "invalid_file", "server_error") else "server_error"

    async def _fail(self, job: dict[str, Any], code: str, message: str) -> None:
        code = self._failure_code(code)
        with contextlib.suppress(Exception):
            async with self.state.db.session(write=True) as s:
                await s.execute(
                    update(VectorStoreFile)
                    .where(*self._held(job))
                    .values(
                        status="failed",
                        last_error={"code": code, "message": message},
                        lease_owner=None,
                        lease_expires_at=None,
                    )
                    .execution_options(synchronize_session=False)
                )

    # --- heartbeat ------------------------------------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.lease_seconds / 3)
            if not self._running:
                continue
            try:
                keys = list(self._running)
                async with self.state.db.session(write=True) as s:
                    rows = await s.execute(
                        update(VectorStoreFile)
                        .where(C.seq.in_([k[0] for k in keys]), C.lease_owner == self.owner, C.status == "in_progress")
                        .values(lease_expires_at=time.time() + self.lease_seconds)
                        .returning(C.seq, C.vector_store_id, C.id)
                        .execution_options(synchronize_session=False)
                    )
                    alive = {tuple(r) for r in rows}
                for key in keys:
                    if key not in alive and key in self._running:
                        self._running[key].cancel()
            except Exception:
                log.exception("ingest heartbeat failed")
