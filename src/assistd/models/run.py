from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from assistd.db.base import Base, JSONType, ObjectMixin, SeqType


class Run(ObjectMixin, Base):
    """A run, and the job that executes it: the runs table is the queue.

    ``lease_owner``/``lease_expires_at`` belong to the executor that claimed the run; every
    status change is a conditional UPDATE from an allowed prior status (executor/transitions.py).
    """

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_thread_project_seq", "thread_id", "project_id", "seq"),
        Index("ix_runs_status_lease", "status", "lease_expires_at"),
    )

    thread_id: Mapped[str] = mapped_column(String(64), ForeignKey("threads.id", ondelete="CASCADE"))
    assistant_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    required_action: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    last_error: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    incomplete_details: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[int | None] = mapped_column(BigInteger)
    cancelled_at: Mapped[int | None] = mapped_column(BigInteger)
    failed_at: Mapped[int | None] = mapped_column(BigInteger)
    completed_at: Mapped[int | None] = mapped_column(BigInteger)
    model: Mapped[str] = mapped_column(Text)
    instructions: Mapped[str] = mapped_column(Text)
    tools: Mapped[list[Any]] = mapped_column(JSONType)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    temperature: Mapped[float | None] = mapped_column(Float)
    top_p: Mapped[float | None] = mapped_column(Float)
    max_prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    max_completion_tokens: Mapped[int | None] = mapped_column(Integer)
    truncation_strategy: Mapped[dict[str, Any]] = mapped_column(JSONType)
    tool_choice: Mapped[Any] = mapped_column(JSONType)
    parallel_tool_calls: Mapped[bool] = mapped_column(Boolean)
    response_format: Mapped[Any] = mapped_column(JSONType)
    reasoning_effort: Mapped[str | None] = mapped_column(String(16))
    include: Mapped[list[Any]] = mapped_column(JSONType)
    # the job
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[float | None] = mapped_column(Float)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    # times the run was taken up again after its worker stopped (executor/resume.py)
    resumes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class RunStep(ObjectMixin, Base):
    __tablename__ = "run_steps"
    __table_args__ = (Index("ix_run_steps_run_project_seq", "run_id", "project_id", "seq"),)

    run_id: Mapped[str] = mapped_column(String(64), ForeignKey("runs.id", ondelete="CASCADE"))
    thread_id: Mapped[str] = mapped_column(String(64))
    assistant_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    step_details: Mapped[dict[str, Any]] = mapped_column(JSONType)
    last_error: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    expired_at: Mapped[int | None] = mapped_column(BigInteger)
    cancelled_at: Mapped[int | None] = mapped_column(BigInteger)
    failed_at: Mapped[int | None] = mapped_column(BigInteger)
    completed_at: Mapped[int | None] = mapped_column(BigInteger)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)


class RunEvent(Base):
    """A run's stream events, for streams served by another process (PostgreSQL deployments).

    Written by the executor and announced with ``NOTIFY assistd_events, '<run_id>'``; a process
    relaying that run's stream reads the rows after the last one it sent. Pruned once old.
    """

    __tablename__ = "run_events"
    __table_args__ = (Index("ix_run_events_run_seq", "run_id", "seq"),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(64))
    data: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)


class ExecutorRecord(Base):
    """A process that executes runs (executor/liveness.py): its lease is renewed by its heartbeat;
    ``machine``, ``pid`` and ``process_start`` let a process on the same machine tell at once that
    it has stopped."""

    __tablename__ = "executors"

    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    machine: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    process_start: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    started_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
