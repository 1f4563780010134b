from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from assistd.db.base import Base, ObjectMixin


class File(ObjectMixin, Base):
    """An uploaded file. ``storage_key`` is the blob's generated name; ``filename`` is metadata only."""

    __tablename__ = "files"
    __table_args__ = (
        Index("ix_files_project_seq", "project_id", "seq"),
        Index("ix_files_project_purpose_seq", "project_id", "purpose", "seq"),
        Index("ix_files_expires_at", "expires_at"),
    )

    bytes: Mapped[int] = mapped_column(BigInteger)
    filename: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    status_details: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(128))


class Upload(ObjectMixin, Base):
    __tablename__ = "uploads"
    __table_args__ = (Index("ix_uploads_status_expires_at", "status", "expires_at"),)

    filename: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger)
    mime_type: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16))
    expires_at: Mapped[int] = mapped_column(BigInteger)
    file_expires_at: Mapped[int | None] = mapped_column(BigInteger)
    file_id: Mapped[str | None] = mapped_column(String(64))


class UploadPart(ObjectMixin, Base):
    __tablename__ = "upload_parts"

    upload_id: Mapped[str] = mapped_column(String(64), ForeignKey("uploads.id", ondelete="CASCADE"), index=True)
    bytes: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(128))
