from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from assistd.db.base import Base, JSONType, ObjectMixin


class Thread(ObjectMixin, Base):
    __tablename__ = "threads"
    __table_args__ = (Index("ix_threads_project_seq", "project_id", "seq"),)

    tool_resources: Mapped[dict[str, Any]] = mapped_column(JSONType)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType)
    # the executor whose process holds the thread's code_interpreter kernel (executor/affinity.py)
    kernel_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Message(ObjectMixin, Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_thread_project_seq", "thread_id", "project_id", "seq"),
        Index("ix_messages_run_seq", "run_id", "seq"),
    )

    thread_id: Mapped[str] = mapped_column(String(64), ForeignKey("threads.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[list[Any]] = mapped_column(JSONType)
    attachments: Mapped[list[Any] | None] = mapped_column(JSONType, nullable=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType)
    status: Mapped[str] = mapped_column(String(16))
    incomplete_details: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    completed_at: Mapped[int | None] = mapped_column(BigInteger)
    incomplete_at: Mapped[int | None] = mapped_column(BigInteger)
    assistant_id: Mapped[str | None] = mapped_column(String(64))
    run_id: Mapped[str | None] = mapped_column(String(64))
