"""Wire shapes for /files (``OpenAIFile``, ``DeleteFileResponse``) and the checks on their inputs."""

from __future__ import annotations

import unicodedata
from typing import Any, Literal, get_args

from pydantic import Field

from assistd.errors import InvalidRequestError
from assistd.models import File
from assistd.protocol import StrictModel

FilePurpose = Literal["assistants", "batch", "fine-tune", "vision", "user_data", "evals"]
FILE_PURPOSES: tuple[str, ...] = get_args(FilePurpose)

MIN_EXPIRES_SECONDS = 3600
MAX_EXPIRES_SECONDS = 2_592_000
MAX_FILENAME_BYTES = 255


class FileExpirationAfter(StrictModel):
    """``expires_after`` in JSON bodies (uploads); the multipart form sends it as bracket fields."""

    anchor: Literal["created_at"]
    seconds: int = Field(ge=MIN_EXPIRES_SECONDS, le=MAX_EXPIRES_SECONDS)


def filename_problem(name: str) -> str | None:
    """Why ``name`` cannot be a file name, or None.

    The name is metadata only (blobs are stored under generated ids), but it is echoed to clients
    and ends up in ``Content-Disposition`` headers and on users' disks, so path separators,
    control characters and the dot names are refused.
    """
    if not name:
        return "the filename is empty"
    if len(name.encode("utf-8")) > MAX_FILENAME_BYTES:
        return f"the filename is longer than {MAX_FILENAME_BYTES} bytes"
    if "/" in name or "\\" in name:
        return "the filename must not contain '/' or '\\'"
    if any(unicodedata.category(c) == "Cc" for c in name):
        return "the filename must not contain control characters"
    if name in (".", ".."):
        return f"'{name}' is not a valid filename"
    return None


def check_filename(name: str | None, param: str) -> None:
    if name is None:
        raise InvalidRequestError(
            f"Invalid '{param}': the file part has no filename. Send it as a file "
            '(Content-Disposition: form-data; name="file"; filename="...").',
            param=param,
            code="invalid_value",
        )
    problem = filename_problem(name)
    if problem is not None:
        raise InvalidRequestError(f"Invalid '{param}': {problem}.", param=param, code="invalid_value")


def to_object(f: File) -> dict[str, Any]:
    """OpenAIFile. ``expires_at`` is a non-nullable integer in the spec: omitted when unset."""
    out: dict[str, Any] = {
        "id": f.id,
        "object": "file",
        "bytes": f.bytes,
        "created_at": f.created_at,
        "filename": f.filename,
        "purpose": f.purpose,
        "status": f.status,
    }
    if f.expires_at is not None:
        out["expires_at"] = f.expires_at
    if f.status_details is not None:
        out["status_details"] = f.status_details
    return out


def deleted_object(file_id: str) -> dict[str, Any]:
    """DeleteFileResponse: ``object`` is ``file`` here, unlike every other delete."""
    return {"id": file_id, "object": "file", "deleted": True}
