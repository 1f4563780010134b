from __future__ import annotations

from typing import Any

from sqlalchemy import Float, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from assistd.db.base import Base, JSONType, ObjectMixin


class Assistant(ObjectMixin, Base):
    __tablename__ = "assistants"
    __table_args__ = (Index("ix_assistants_project_seq", "project_id", "seq"),)

    name: Mapped[str | None] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(String(512))
    model: Mapped[str] = mapped_column(Text)
    instructions: Mapped[str | None] = mapped_column(Text)
    tools: Mapped[list[Any]] = mapped_column(JSONType)
    tool_resources: Mapped[dict[str, Any]] = mapped_column(JSONType)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType)
    temperature: Mapped[float | None] = mapped_column(Float)
    top_p: Mapped[float | None] = mapped_column(Float)
    response_format: Mapped[Any] = mapped_column(JSONType, nullable=True)
    reasoning_effort: Mapped[str | None] = mapped_column(String(16))
