"""Uploads: a File assembled from parts.

``pending -> completed | cancelled | expired``. Only a pending upload (before ``expires_at``)
accepts parts, completion or cancellation. Part bodies stream to blobs before any transaction is
opened, and completion concatenates the parts before its (short) write transaction; every write
transaction re-reads the upload under a row lock and re-checks that it is still pending, so a
concurrent cancel/complete/expiry wins cleanly and the loser's new blob is removed.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import anyio
import anyio.to_thread
from sqlalchemy.ext.asyncio import AsyncSession

from assistd.config import Settings
from assistd.errors import InvalidRequestError, PayloadTooLargeError, ServerError
from assistd.files.multipart import FormSpec, read_multipart
from assistd.files.repository import FileRepository
from assistd.files.service import discard_blobs, human_bytes, new_file
from assistd.ids import new_id
from assistd.models import File, Upload, UploadPart
from assistd.references import check_id, not_found
from assistd.state import AppState
from assistd.timeutil import now
from assistd.uploads.protocol import UPLOAD_TTL_SECONDS, CompleteUploadRequest, CreateUploadRequest, status_at
from assistd.uploads.repository import UploadPartRepository, UploadRepository


def require_pending(u: Upload, t: int) -> None:
    status = status_at(u, t)
    if status == "pending":
        return
    if status == "expired":
        raise InvalidRequestError(
            f"Upload {u.id} has expired: an upload must be completed within "
            f"{UPLOAD_TTL_SECONDS // 3600} hour of its creation."
        )
    raise InvalidRequestError(f"Upload {u.id} is already {status}.")


def part_too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"Upload part is too large: the maximum part size is {limit} bytes ({human_bytes(limit)}).",
        param="data",
        code="part_too_large",
    )


async def _get(session: AsyncSession, project_id: str, upload_id: str) -> Upload:
    row = await UploadRepository(session, project_id).get(upload_id)
    if row is None:
        raise not_found("upload", upload_id)
    return row


async def _get_locked(session: AsyncSession, project_id: str, upload_id: str) -> Upload:
    row = await UploadRepository(session, project_id).get_for_update(upload_id)
    if row is None:
        raise not_found("upload", upload_id)
    return row


async def create_upload(
    session: AsyncSession, settings: Settings, project_id: str, body: CreateUploadRequest
) -> Upload:
    limit = settings.max_upload_total_bytes
    if body.bytes > limit:
        raise InvalidRequestError(
            f"Invalid 'bytes': integer above maximum value. Expected a value <= {limit}, but got {body.bytes} instead.",
            param="bytes",
            code="integer_above_max_value",
        )
    t = now()
    row = Upload(
        id=new_id("upload"),
        project_id=project_id,
        created_at=t,
        filename=body.filename,
        purpose=body.purpose,
        bytes=body.bytes,
        mime_type=body.mime_type,
        status="pending",
        expires_at=t + UPLOAD_TTL_SECONDS,
        # Anchored at the upload's creation: the File inherits this absolute time.
        file_expires_at=t + body.expires_after.seconds if body.expires_after is not None else None,
        file_id=None,
    )
    UploadRepository(session, project_id).add(row)
    await session.flush()
    return row


async def add_upload_part(
    state: AppState,
    project_id: str,
    upload_id: str,
    content_type: str | None,
    content_length: str | None,
    body: AsyncIterator[bytes],
) -> UploadPart:
    check_id("upload", upload_id, "upload_id")
    # Refuse before reading the body if the upload cannot take parts (short read transaction).
    async with state.db.session() as session:
        require_pending(await _get(session, project_id, upload_id), now())

    limit = state.settings.max_upload_part_bytes
    part_id = new_id("part")
    spec = FormSpec(
        file_field="data",
        text_fields=frozenset(),
        max_file_bytes=limit,
        too_large=lambda: part_too_large(limit),
        hint=" Send the part's bytes as the form field 'data' (curl: -F data=@chunk).",
    )
    form = await read_multipart(
        content_type, content_length, body, spec, lambda: state.blobs.open_writer(part_id, limit)
    )
    try:
        if form.file is None:
            raise InvalidRequestError(
                "Missing required parameter: 'data'.", param="data", code="missing_required_parameter"
            )
        async with state.db.session(write=True) as session:
            upload = await _get_locked(session, project_id, upload_id)
            t = now()
            require_pending(upload, t)  # it may have been completed/cancelled/expired meanwhile
            part = UploadPart(
                id=part_id,
                project_id=project_id,
                created_at=t,
                upload_id=upload_id,
                bytes=form.file.size,
                storage_key=part_id,
            )
            UploadPartRepository(session, project_id).add(part)
            await session.flush()
    except BaseException:
        await discard_blobs(state, [part_id])
        raise
    return part


def _check_part_ids(part_ids: list[str]) -> None:
    seen: set[str] = set()
    for i, pid in enumerate(part_ids):
        param = f"part_ids[{i}]"
        check_id("part", pid, param)
        if pid in seen:
            raise InvalidRequestError(
                f"Invalid '{param}': part '{pid}' is listed more than once.", param=param, code="invalid_value"
            )
        seen.add(pid)


async def _assemble(state: AppState, key: str, sources: list[str], size: int, with_md5: bool) -> tuple[int, str | None]:
    """Concatenate part blobs into blob ``key`` in one pass, hashing on the way if asked."""
    digest = hashlib.md5(usedforsecurity=False) if with_md5 else None
    writer = state.blobs.open_writer(key, size)
    try:
        for src in sources:
            async for chunk in state.blobs.read(src, 1 << 20):
                if digest is not None:
                    # hashlib releases the GIL on large buffers: keep the event loop free.
                    await anyio.to_thread.run_sync(digest.update, chunk)
                await writer.write(chunk)
        await writer.commit()
    except BaseException:
        with anyio.CancelScope(shield=True):
            await writer.abort()
        raise
    return writer.size, digest.hexdigest() if digest is not None else None


async def complete_upload(
    state: AppState, project_id: str, upload_id: str, body: CompleteUploadRequest
) -> tuple[Upload, File, int]:
    check_id("upload", upload_id, "upload_id")
    _check_part_ids(body.part_ids)
    async with state.db.session() as session:
        upload = await _get(session, project_id, upload_id)
        require_pending(upload, now())
        parts = await UploadPartRepository(session, project_id).by_ids(upload_id, body.part_ids)
    for i, pid in enumerate(body.part_ids):
        if pid not in parts:
            raise InvalidRequestError(
                f"Invalid 'part_ids[{i}]': no part with id '{pid}' was added to upload {upload_id}.",
                param=f"part_ids[{i}]",
                code="invalid_value",
            )
    total = sum(parts[pid].bytes for pid in body.part_ids)
    if total != upload.bytes:
        raise InvalidRequestError(
            f"The parts add up to {total} bytes, but upload {upload_id} was created with bytes={upload.bytes}.",
            param="part_ids",
            code="invalid_value",
        )

    # No transaction is open while the parts are copied.
    file_id = new_id("file")
    try:
        try:
            size, md5 = await _assemble(
                state, file_id, [parts[pid].storage_key for pid in body.part_ids], total, body.md5 is not None
            )
        except FileNotFoundError:
            # A part vanished: the upload was cancelled or expired (and swept) meanwhile.
            async with state.db.session() as session:
                require_pending(await _get(session, project_id, upload_id), now())
            raise ServerError("The data of an upload part is missing.") from None
        if size != total:
            raise ServerError(f"The assembled file has {size} bytes instead of {total}.")
        if body.md5 is not None and md5 != body.md5.lower():
            raise InvalidRequestError(
                f"Invalid 'md5': the assembled file's MD5 is {md5}, but {body.md5.lower()} was given.",
                param="md5",
                code="invalid_value",
            )
        async with state.db.session(write=True) as session:
            upload = await _get_locked(session, project_id, upload_id)
            t = now()
            require_pending(upload, t)
            file = new_file(
                project_id,
                file_id,
                filename=upload.filename,
                purpose=upload.purpose,
                size=size,
                created_at=t,
                expires_at=upload.file_expires_at,
            )
            FileRepository(session, project_id).add(file)
            upload.status = "completed"
            upload.file_id = file_id
            part_keys = await UploadPartRepository(session, project_id).delete_for_upload(upload_id)
            await session.flush()
    except BaseException:
        await discard_blobs(state, [file_id])
        raise
    await discard_blobs(state, part_keys)
    return upload, file, t


async def cancel_upload(state: AppState, project_id: str, upload_id: str) -> tuple[Upload, int]:
    check_id("upload", upload_id, "upload_id")
    async with state.db.session(write=True) as session:
        upload = await _get_locked(session, project_id, upload_id)
        t = now()
        require_pending(upload, t)
        upload.status = "cancelled"
        part_keys = await UploadPartRepository(session, project_id).delete_for_upload(upload_id)
        await session.flush()
    await discard_blobs(state, part_keys)
    return upload, t
