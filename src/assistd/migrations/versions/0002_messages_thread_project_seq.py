"""messages: index (thread_id, project_id, seq), the exact shape of the list query

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

The list filters on thread and project and orders by seq. With (thread_id, seq) alone
PostgreSQL may prefer walking the primary key backwards with a filter when one thread holds most
rows, which degrades badly for large threads interleaved with newer messages of other threads.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_thread_project_seq", ["thread_id", "project_id", "seq"], unique=False)
        batch_op.drop_index("ix_messages_thread_seq")


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_thread_seq", ["thread_id", "seq"], unique=False)
        batch_op.drop_index("ix_messages_thread_project_seq")
