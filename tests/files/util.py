"""Helpers shared by the files and uploads tests: raw multipart bodies and storage/DB probes."""

from __future__ import annotations

from sqlalchemy import func, select, update

from assistd.config import Settings
from assistd.models import File, Upload, UploadPart
from assistd.state import AppState
from assistd.timeutil import now

BOUNDARY = "assistd-test-boundary"


def multipart(
    *parts: tuple[str, bytes | None, bytes], boundary: str = BOUNDARY, close: bool = True
) -> tuple[bytes, dict[str, str]]:
    """A hand-built multipart body: ``(field name, raw filename bytes or None, data)`` per part.

    Raw bytes for the filename so that names an HTTP library would escape (NUL, ...) reach the
    server as a careless client would send them.
    """
    b = boundary.encode()
    out = bytearray()
    for name, filename, data in parts:
        out += b"--" + b + b"\r\n"
        out += b'Content-Disposition: form-data; name="' + name.encode() + b'"'
        if filename is not None:
            out += b'; filename="' + filename + b'"'
        out += b"\r\n"
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + data + b"\r\n"
    if close:
        out += b"--" + b + b"--\r\n"
    return bytes(out), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def stored_blobs(settings: Settings) -> set[str]:
    """Every entry of the blob directory, including ``.partial`` temporaries."""
    return {p.name for p in settings.files_dir.iterdir()}


async def file_rows(state: AppState, project_id: str) -> int:
    async with state.db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(File).where(File.project_id == project_id)) or 0)


async def part_rows(state: AppState, upload_id: str) -> int:
    async with state.db.session() as s:
        return int(
            await s.scalar(select(func.count()).select_from(UploadPart).where(UploadPart.upload_id == upload_id)) or 0
        )


async def expire_file(state: AppState, file_id: str) -> None:
    async with state.db.session(write=True) as s:
        await s.execute(update(File).where(File.id == file_id).values(expires_at=now() - 1))


async def expire_upload(state: AppState, upload_id: str) -> None:
    async with state.db.session(write=True) as s:
        await s.execute(update(Upload).where(Upload.id == upload_id).values(expires_at=now() - 1))


async def upload_status(state: AppState, upload_id: str) -> str:
    async with state.db.session() as s:
        return str(await s.scalar(select(Upload.status).where(Upload.id == upload_id)))
