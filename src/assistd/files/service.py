"""Files: upload (streamed), list, retrieve, delete, download; the expiry sweeper.

Uploads never hold a database transaction while the body streams: the blob is written first,
then one short write transaction inserts the row. Blobs are deleted only after the transaction
that removed their rows has committed, so a row never points at a missing blob.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from assistd.errors import InvalidRequestError, PayloadTooLargeError, invalid_value
from assistd.files.multipart import FormSpec, read_multipart
from assistd.files.protocol import FILE_PURPOSES, MAX_EXPIRES_SECONDS, MIN_EXPIRES_SECONDS, check_filename
from assistd.files.repository import FileRepository, delete_expired_files
from assistd.ids import new_id
from assistd.models import File
from assistd.pagination import ListQuery, Page
from assistd.references import check_id, not_found
from assistd.state import AppState
from assistd.timeutil import now
from assistd.uploads.repository import expire_pending_uploads
from assistd.vector_stores.repository import detach_everywhere

log = logging.getLogger("assistd.files")

ANCHOR = "expires_after[anchor]"
SECONDS = "expires_after[seconds]"
_FORM_FIELDS = frozenset({"purpose", ANCHOR, SECONDS})
_INT_RE = re.compile(r"^[+-]?[0-9]{1,19}$")
SWEEP_BATCH = 500


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.4g} {unit}"
    return f"{n} bytes"


def file_too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"File is too large: the maximum file size is {limit} bytes ({human_bytes(limit)}).",
        param="file",
        code="file_too_large",
    )


def _parse_seconds(value: str) -> int:
    if not _INT_RE.match(value.strip()):
        raise InvalidRequestError(
            f"Invalid type for '{SECONDS}': expected an integer, but got a string instead.",
            param=SECONDS,
            code="invalid_type",
        )
    seconds = int(value)
    if seconds < MIN_EXPIRES_SECONDS:
        raise InvalidRequestError(
            f"Invalid '{SECONDS}': integer below minimum value. Expected a value >= {MIN_EXPIRES_SECONDS}, "
            f"but got {seconds} instead.",
            param=SECONDS,
            code="integer_below_min_value",
        )
    if seconds > MAX_EXPIRES_SECONDS:
        raise InvalidRequestError(
            f"Invalid '{SECONDS}': integer above maximum value. Expected a value <= {MAX_EXPIRES_SECONDS}, "
            f"but got {seconds} instead.",
            param=SECONDS,
            code="integer_above_max_value",
        )
    return seconds


def _check_field(name: str, value: str) -> None:
    """Checked as each field arrives, so a bad value sent before the file stops the upload early."""
    if name == "purpose" and value not in FILE_PURPOSES:
        raise invalid_value("purpose", value, FILE_PURPOSES)
    if name == ANCHOR and value != "created_at":
        raise invalid_value(ANCHOR, value, ["created_at"])
    if name == SECONDS:
        _parse_seconds(value)


def _expires_after_seconds(fields: dict[str, str]) -> int | None:
    if ANCHOR not in fields and SECONDS not in fields:
        return None
    for name in (ANCHOR, SECONDS):
        if name not in fields:
            raise InvalidRequestError(
                f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
            )
    return _parse_seconds(fields[SECONDS])


def new_file(
    project_id: str, file_id: str, *, filename: str, purpose: str, size: int, created_at: int, expires_at: int | None
) -> File:
    return File(
        id=file_id,
        project_id=project_id,
        created_at=created_at,
        bytes=size,
        filename=filename,
        purpose=purpose,
        status="processed",
        status_details=None,
        expires_at=expires_at,
        storage_key=file_id,
    )


async def discard_blobs(state: AppState, keys: list[str]) -> None:
    """Delete blobs, even while the request is being cancelled; failures are only logged."""
    with anyio.CancelScope(shield=True):
        for key in keys:
            try:
                await state.blobs.delete(key)
            except OSError:
                log.exception("could not delete blob %s", key)


async def create_file(
    state: AppState, project_id: str, content_type: str | None, content_length: str | None, body: AsyncIterator[bytes]
) -> File:
    limit = state.settings.max_upload_bytes
    file_id = new_id("file")
    spec = FormSpec(
        file_field="file",
        text_fields=_FORM_FIELDS,
        max_file_bytes=limit,
        too_large=lambda: file_too_large(limit),
        check_filename=lambda name: check_filename(name, "file"),
        check_field=_check_field,
        hint=" Send the fields 'file' and 'purpose' as a form (curl: -F purpose=assistants -F file=@path).",
    )
    form = await read_multipart(
        content_type, content_length, body, spec, lambda: state.blobs.open_writer(file_id, limit)
    )
    try:
        if form.file is None:
            raise InvalidRequestError(
                "Missing required parameter: 'file'.", param="file", code="missing_required_parameter"
            )
        purpose = form.fields.get("purpose")
        if purpose is None:
            raise InvalidRequestError(
                "Missing required parameter: 'purpose'.", param="purpose", code="missing_required_parameter"
            )
        seconds = _expires_after_seconds(form.fields)
        assert form.file.filename is not None  # checked by check_filename
        created = now()
        row = new_file(
            project_id,
            file_id,
            filename=form.file.filename,
            purpose=purpose,
            size=form.file.size,
            created_at=created,
            expires_at=created + seconds if seconds is not None else None,
        )
        async with state.db.session(write=True) as session:
            FileRepository(session, project_id).add(row)
            await session.flush()
    except BaseException:
        await discard_blobs(state, [file_id])
        raise
    return row


async def list_files(session: AsyncSession, project_id: str, query: ListQuery, purpose: str | None) -> Page[File]:
    return await FileRepository(session, project_id).list_live(query, now(), purpose)


async def get_file(session: AsyncSession, project_id: str, file_id: str) -> File:
    check_id("file", file_id, "file_id")
    row = await FileRepository(session, project_id).get_live(file_id, now())
    if row is None:
        raise not_found("file", file_id)
    return row


async def delete_file(state: AppState, project_id: str, file_id: str) -> None:
    check_id("file", file_id, "file_id")
    async with state.db.session(write=True) as session:
        key = await FileRepository(session, project_id).delete_live(file_id, now())
        if key is not None:  # and from every vector store, in the same transaction
            await detach_everywhere(session, project_id, [file_id])
    if key is None:
        raise not_found("file", file_id)
    # The row is gone (committed); only now remove the bytes.
    await discard_blobs(state, [key])


@dataclass(slots=True)
class FileContent:
    file: File
    size: int
    chunks: AsyncIterator[bytes]


async def file_content(state: AppState, project_id: str, file_id: str) -> FileContent:
    """The file's bytes as a stream; no session is held while they are sent."""
    async with state.db.session() as session:
        row = await get_file(session, project_id, file_id)
    size = await state.blobs.size(row.storage_key)
    if size is None:  # deleted or swept since the look-up
        raise not_found("file", file_id)
    return FileContent(row, size, state.blobs.read(row.storage_key))


async def sweep_expired(state: AppState) -> None:
    """Delete expired files (rows, then blobs) and expire pending uploads past their deadline."""
    t = now()
    while True:
        async with state.db.session(write=True) as session:
            keys = await delete_expired_files(session, t, SWEEP_BATCH)
            await detach_everywhere(session, None, keys)  # blob keys are the file ids
        await discard_blobs(state, keys)
        if keys:
            log.info("deleted %d expired files", len(keys))
        if len(keys) < SWEEP_BATCH:
            break
    while True:
        async with state.db.session(write=True) as session:
            count, part_keys = await expire_pending_uploads(session, t, SWEEP_BATCH)
        await discard_blobs(state, part_keys)
        if count:
            log.info("expired %d uploads", count)
        if count < SWEEP_BATCH:
            break
