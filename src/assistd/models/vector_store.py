"""Vector stores, their files (also the ingestion queue), file batches and chunks.

Counts, ``usage_bytes`` and the ``in_progress``/``completed`` statuses of stores and batches are
not stored: they are aggregated from ``vector_store_files`` when read, so they always add up
whatever ran concurrently. Only the ``expired`` status (a policy decision) and a batch's
``cancelled`` are stored.

The keyword index and the pgvector column are not ORM objects: they exist only on one dialect
(SQLite FTS5 ``chunks_fts`` with its shadow tables; PostgreSQL's generated ``chunks.tsv`` with its
GIN index, and, when the extension is installed, ``chunks.embedding_vec`` with per-dimension HNSW
indexes made at start-up). ``include_object`` hides them from autogenerate's comparison.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Float, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from assistd.db.base import Base, JSONType, ObjectMixin, SeqType


class VectorStore(ObjectMixin, Base):
    __tablename__ = "vector_stores"
    __table_args__ = (
        Index("ix_vector_stores_project_seq", "project_id", "seq"),
        Index("ix_vector_stores_status_expires_at", "status", "expires_at"),
    )

    name: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    # "active" or "expired"; in_progress/completed are derived from the files.
    status: Mapped[str] = mapped_column(String(16))
    expires_after: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    last_active_at: Mapped[int] = mapped_column(BigInteger)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType)
    # Bumped whenever the store's chunks change: keys the in-memory vector matrices.
    index_version: Mapped[int] = mapped_column(BigInteger, default=0)


class VectorStoreFile(Base):
    """A File attached to a store, and the ingestion job for it (status ``in_progress`` + lease).

    ``id`` is the File id (unique per store); ``seq`` orders lists and serves as cursor.
    """

    __tablename__ = "vector_store_files"
    __table_args__ = (
        UniqueConstraint("vector_store_id", "id"),
        Index("ix_vector_store_files_store_status_seq", "vector_store_id", "status", "seq"),
        Index("ix_vector_store_files_batch_seq", "batch_id", "seq"),
        Index("ix_vector_store_files_status_lease", "status", "lease_expires_at"),
        Index("ix_vector_store_files_id", "id"),
    )

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    vector_store_id: Mapped[str] = mapped_column(String(64))
    id: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    last_error: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    usage_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    chunking_strategy: Mapped[dict[str, Any]] = mapped_column(JSONType)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    batch_id: Mapped[str | None] = mapped_column(String(64))
    # the job
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[float | None] = mapped_column(Float)
    attempt: Mapped[int] = mapped_column(Integer, default=0)


class VectorStoreFileText(Base):
    """The parsed text of a vector-store file, by page (GET …/files/{id}/content)."""

    __tablename__ = "vector_store_file_texts"
    __table_args__ = (UniqueConstraint("vector_store_id", "file_id"),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    vector_store_id: Mapped[str] = mapped_column(String(64))
    file_id: Mapped[str] = mapped_column(String(64))
    pages: Mapped[list[Any]] = mapped_column(JSONType)


class VectorStoreFileBatch(ObjectMixin, Base):
    __tablename__ = "vector_store_file_batches"
    __table_args__ = (Index("ix_vector_store_file_batches_store", "vector_store_id"),)

    vector_store_id: Mapped[str] = mapped_column(String(64))
    # "active" or "cancelled"; the rest is derived from its files
    status: Mapped[str] = mapped_column(String(16))


class Chunk(Base):
    """One indexed chunk of a vector-store file: text, character offsets and its embedding."""

    __tablename__ = "chunks"
    __table_args__ = (Index("ix_chunks_store_file_idx", "vector_store_id", "file_id", "idx"),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    vector_store_id: Mapped[str] = mapped_column(String(64))
    file_id: Mapped[str] = mapped_column(String(64))
    idx: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    start_offset: Mapped[int] = mapped_column(Integer)
    end_offset: Mapped[int] = mapped_column(Integer)
    tokens: Mapped[int] = mapped_column(Integer)
    embedder: Mapped[str] = mapped_column(String(128))
    dim: Mapped[int] = mapped_column(Integer)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32, L2-normalised


class PgVector(UserDefinedType[Any]):
    """pgvector's ``vector`` type, known to reflection (else every inspection warns)."""

    cache_ok = True

    def get_col_spec(self, **_kw: Any) -> str:
        return "vector"


ischema_names.setdefault("vector", PgVector)

# Objects that exist on one dialect only (see the module docstring).
UNMANAGED_TABLE_PREFIX = "chunks_fts"
UNMANAGED_COLUMNS = frozenset({("chunks", "tsv"), ("chunks", "embedding_vec")})
UNMANAGED_INDEX_PREFIXES = ("ix_chunks_tsv", "ix_chunks_vec_", "ix_chunks_hvec_")


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic ``include_object``: leave the dialect-only retrieval objects out of comparisons."""
    if not reflected or compare_to is not None or name is None:
        return True
    if type_ == "table" and name.startswith(UNMANAGED_TABLE_PREFIX):
        return False
    if type_ == "column" and (getattr(obj.table, "name", None), name) in UNMANAGED_COLUMNS:
        return False
    return not (type_ == "index" and name.startswith(UNMANAGED_INDEX_PREFIXES))
