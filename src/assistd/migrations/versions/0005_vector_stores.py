"""vector stores, vector store files (the ingestion queue), file batches, chunks and their indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 09:00:00.000000

Besides the ORM tables, each dialect gets its keyword index (not ORM objects; see
models/vector_store.py ``include_object``):

- SQLite: the FTS5 table ``chunks_fts`` over ``chunks.text`` (external content, kept in step by
  triggers), ranked with bm25;
- PostgreSQL: a generated ``chunks.tsv`` tsvector column with a GIN index, and, when the
  ``vector`` extension can be created, an ``embedding_vec vector`` column (HNSW indexes per
  embedding dimension are made at start-up, once the embedder's dimension is known).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _try_create_pgvector() -> bool:
    """``CREATE EXTENSION IF NOT EXISTS vector`` in a savepoint: False when unavailable."""
    bind = op.get_bind()
    available = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")).first()
    if available is None:
        return False
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS vector"))
    except sa.exc.DBAPIError:
        return False
    return True


def upgrade() -> None:
    op.create_table(
        "vector_stores",
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expires_after", JSON, nullable=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("last_active_at", sa.BigInteger(), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("index_version", sa.BigInteger(), nullable=False),
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_vector_stores")),
        sa.UniqueConstraint("id", name=op.f("uq_vector_stores_id")),
    )
    with op.batch_alter_table("vector_stores", schema=None) as batch_op:
        batch_op.create_index("ix_vector_stores_project_seq", ["project_id", "seq"], unique=False)
        batch_op.create_index("ix_vector_stores_status_expires_at", ["status", "expires_at"], unique=False)

    op.create_table(
        "vector_store_files",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("vector_store_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_error", JSON, nullable=True),
        sa.Column("usage_bytes", sa.BigInteger(), nullable=False),
        sa.Column("chunking_strategy", JSON, nullable=False),
        sa.Column("attributes", JSON, nullable=True),
        sa.Column("batch_id", sa.String(length=64), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", sa.Float(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_vector_store_files")),
        sa.UniqueConstraint("vector_store_id", "id", name=op.f("uq_vector_store_files_vector_store_id_id")),
    )
    with op.batch_alter_table("vector_store_files", schema=None) as batch_op:
        batch_op.create_index("ix_vector_store_files_batch_seq", ["batch_id", "seq"], unique=False)
        batch_op.create_index("ix_vector_store_files_id", ["id"], unique=False)
        batch_op.create_index("ix_vector_store_files_status_lease", ["status", "lease_expires_at"], unique=False)
        batch_op.create_index(
            "ix_vector_store_files_store_status_seq", ["vector_store_id", "status", "seq"], unique=False
        )

    op.create_table(
        "vector_store_file_texts",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("vector_store_id", sa.String(length=64), nullable=False),
        sa.Column("file_id", sa.String(length=64), nullable=False),
        sa.Column("pages", JSON, nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_vector_store_file_texts")),
        sa.UniqueConstraint(
            "vector_store_id", "file_id", name=op.f("uq_vector_store_file_texts_vector_store_id_file_id")
        ),
    )

    op.create_table(
        "vector_store_file_batches",
        sa.Column("vector_store_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_vector_store_file_batches")),
        sa.UniqueConstraint("id", name=op.f("uq_vector_store_file_batches_id")),
    )
    with op.batch_alter_table("vector_store_file_batches", schema=None) as batch_op:
        batch_op.create_index("ix_vector_store_file_batches_store", ["vector_store_id"], unique=False)

    op.create_table(
        "chunks",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("vector_store_id", sa.String(length=64), nullable=False),
        sa.Column("file_id", sa.String(length=64), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("start_offset", sa.Integer(), nullable=False),
        sa.Column("end_offset", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("embedder", sa.String(length=128), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_chunks")),
    )
    with op.batch_alter_table("chunks", schema=None) as batch_op:
        batch_op.create_index("ix_chunks_store_file_idx", ["vector_store_id", "file_id", "idx"], unique=False)

    if op.get_bind().dialect.name == "sqlite":
        # The tokenizer folds case and diacritics; porter stems English words (as ts 'english' does).
        op.execute(
            "CREATE VIRTUAL TABLE chunks_fts USING fts5("
            "text, content='chunks', content_rowid='seq', tokenize='porter unicode61 remove_diacritics 2')"
        )
        op.execute(
            "CREATE TRIGGER chunks_fts_ai AFTER INSERT ON chunks BEGIN "
            "INSERT INTO chunks_fts(rowid, text) VALUES (new.seq, new.text); END"
        )
        op.execute(
            "CREATE TRIGGER chunks_fts_ad AFTER DELETE ON chunks BEGIN "
            "INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.seq, old.text); END"
        )
    else:
        op.execute(
            "ALTER TABLE chunks ADD COLUMN tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED"
        )
        op.execute("CREATE INDEX ix_chunks_tsv ON chunks USING gin (tsv)")
        if _try_create_pgvector():
            op.execute("ALTER TABLE chunks ADD COLUMN embedding_vec vector")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS chunks_fts_ad")
        op.execute("DROP TRIGGER IF EXISTS chunks_fts_ai")
        op.execute("DROP TABLE IF EXISTS chunks_fts")
    with op.batch_alter_table("chunks", schema=None) as batch_op:
        batch_op.drop_index("ix_chunks_store_file_idx")
    op.drop_table("chunks")
    with op.batch_alter_table("vector_store_file_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_vector_store_file_batches_store")
    op.drop_table("vector_store_file_batches")
    op.drop_table("vector_store_file_texts")
    with op.batch_alter_table("vector_store_files", schema=None) as batch_op:
        batch_op.drop_index("ix_vector_store_files_store_status_seq")
        batch_op.drop_index("ix_vector_store_files_status_lease")
        batch_op.drop_index("ix_vector_store_files_id")
        batch_op.drop_index("ix_vector_store_files_batch_seq")
    op.drop_table("vector_store_files")
    with op.batch_alter_table("vector_stores", schema=None) as batch_op:
        batch_op.drop_index("ix_vector_stores_status_expires_at")
        batch_op.drop_index("ix_vector_stores_project_seq")
    op.drop_table("vector_stores")
