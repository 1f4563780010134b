"""durable runs: resumes, executors, kernel affinity

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 09:30:00.000000

- ``runs.resumes``: how many times the run was taken up again after its worker stopped (bounded).
- ``executors``: one row per executing process (its lease renewed by its heartbeat), so that a
  process can tell a stopped one on its own machine at once, and claims can tell whether the
  worker holding a thread's code_interpreter kernel is alive.
- ``threads.kernel_owner``: the executor whose process holds the thread's kernel.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resumes", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kernel_owner", sa.String(length=64), nullable=True))
    op.create_table(
        "executors",
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("machine", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("process_start", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("owner", name=op.f("pk_executors")),
    )


def downgrade() -> None:
    op.drop_table("executors")
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.drop_column("kernel_owner")
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("resumes")
