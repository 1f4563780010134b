"""deleted cursors

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 23:20:00.000000

Where deleted objects stood in their lists (``models/cursor.py``): a page ``after`` an object
deleted since the previous page goes on from its place instead of failing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deleted_cursors",
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "id", name=op.f("pk_deleted_cursors")),
    )
    with op.batch_alter_table("deleted_cursors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deleted_cursors_deleted_at"), ["deleted_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deleted_cursors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deleted_cursors_deleted_at"))
    op.drop_table("deleted_cursors")
