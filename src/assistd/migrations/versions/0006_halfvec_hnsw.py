"""HNSW indexes over halfvec

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 14:00:00.000000

With pgvector 0.7 or later the per-dimension HNSW indexes are over ``embedding_vec::halfvec(dim)``
(``ix_chunks_hvec_{dim}``): half the size, so the index of 100,000 MiniLM chunks fits a default
``shared_buffers``, and up to 4,000 dimensions. This rebuilds the float32 indexes that earlier
versions made (``ix_chunks_vec_{dim}``); new dimensions get theirs on first use
(retrieval/index.py ``ensure_hnsw``). Nothing changes on SQLite, without pgvector, or with an
older pgvector.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

HALFVEC_MAX_DIM = 4000


def _indexes(prefix: str) -> list[tuple[str, int]]:
    rows = op.get_bind().execute(
        sa.text(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'chunks' AND schemaname = current_schema() "
            "AND indexname LIKE :p"
        ),
        {"p": prefix + "%"},
    )
    out = []
    for (name,) in rows:
        m = re.fullmatch(re.escape(prefix) + r"(\d+)", name)
        if m:
            out.append((name, int(m.group(1))))
    return out


def _has_halfvec() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    return bool(bind.execute(sa.text("SELECT to_regtype('halfvec') IS NOT NULL")).scalar())


def upgrade() -> None:
    if not _has_halfvec():
        return
    for name, dim in _indexes("ix_chunks_vec_"):
        if dim > HALFVEC_MAX_DIM:
            continue
        op.execute(
            f"CREATE INDEX IF NOT EXISTS ix_chunks_hvec_{dim} ON chunks USING hnsw "
            f"((embedding_vec::halfvec({dim})) halfvec_cosine_ops) WHERE dim = {dim}"
        )
        op.execute(f"DROP INDEX IF EXISTS {name}")


def downgrade() -> None:
    if not _has_halfvec():
        return
    for name, dim in _indexes("ix_chunks_hvec_"):
        if dim <= 2000:
            op.execute(
                f"CREATE INDEX IF NOT EXISTS ix_chunks_vec_{dim} ON chunks USING hnsw "
                f"((embedding_vec::vector({dim})) vector_cosine_ops) WHERE dim = {dim}"
            )
        op.execute(f"DROP INDEX IF EXISTS {name}")
