"""Wire models for /uploads, named as the spec's components."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from assistd.files.protocol import FileExpirationAfter, filename_problem
from assistd.files.protocol import to_object as file_to_object
from assistd.models import File, Upload, UploadPart
from assistd.protocol import StrictModel, api_error

UploadPurpose = Literal["assistants", "batch", "fine-tune", "vision"]
UploadStatus = Literal["pending", "completed", "cancelled", "expired"]

UPLOAD_TTL_SECONDS = 3600
_MD5_RE = re.compile(r"^[0-9a-fA-F]{32}$")


def _check_filename(value: str) -> str:
    problem = filename_problem(value)
    if problem is not None:
        raise api_error(f"Invalid 'filename': {problem}.", "invalid_value", "filename")
    return value


def _check_md5(value: str | None) -> str | None:
    if value is not None and not _MD5_RE.match(value):
        raise api_error(
            "Invalid 'md5': expected the MD5 digest of the file as 32 hexadecimal characters.", "invalid_value", "md5"
        )
    return value


class CreateUploadRequest(StrictModel):
    filename: Annotated[str, AfterValidator(_check_filename)]
    purpose: UploadPurpose
    # The upper bound is a setting (max_upload_total_bytes), checked by the service.
    bytes: int = Field(ge=1)
    mime_type: str = Field(min_length=1, max_length=256)
    expires_after: FileExpirationAfter | None = None


class CompleteUploadRequest(StrictModel):
    part_ids: list[str] = Field(min_length=1)
    md5: Annotated[str | None, AfterValidator(_check_md5)] = None


def status_at(u: Upload, t: int) -> UploadStatus:
    """A pending upload past ``expires_at`` is expired, whether or not the sweeper has run."""
    if u.status == "pending" and u.expires_at <= t:
        return "expired"
    status: UploadStatus = u.status  # type: ignore[assignment]
    return status


def to_object(u: Upload, t: int, file: File | None = None) -> dict[str, Any]:
    """Upload; ``file`` is the File once completed, else null."""
    return {
        "id": u.id,
        "object": "upload",
        "bytes": u.bytes,
        "created_at": u.created_at,
        "filename": u.filename,
        "purpose": u.purpose,
        "status": status_at(u, t),
        "expires_at": u.expires_at,
        "file": file_to_object(file) if file is not None else None,
    }


def part_to_object(p: UploadPart) -> dict[str, Any]:
    """UploadPart."""
    return {"id": p.id, "object": "upload.part", "created_at": p.created_at, "upload_id": p.upload_id}
