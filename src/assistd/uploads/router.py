"""HTTP for /v1/uploads: parse, call the service, render.

Not under the ``OpenAI-Beta`` requirement (the SDKs do not send it on /uploads).
"""

from __future__ import annotations

from fastapi import Request

from assistd.deps import ProjectDep, StateDep, WriteSessionDep
from assistd.http import JSONResponse, json_response
from assistd.routing import api_router
from assistd.timeutil import now
from assistd.uploads import service
from assistd.uploads.protocol import CompleteUploadRequest, CreateUploadRequest, part_to_object, to_object

router = api_router(tags=["Uploads"])


@router.post("/uploads", operation_id="createUpload")
async def create_upload(
    body: CreateUploadRequest, session: WriteSessionDep, state: StateDep, project: ProjectDep
) -> JSONResponse:
    """Creates an Upload that accepts Parts for one hour; complete it to get a File."""
    row = await service.create_upload(session, state.settings, project, body)
    return json_response(to_object(row, now()))


@router.post("/uploads/{upload_id}/parts", operation_id="addUploadPart")
async def add_upload_part(upload_id: str, request: Request, state: StateDep, project: ProjectDep) -> JSONResponse:
    """Adds a Part (multipart/form-data field ``data``) to a pending Upload.

    ``StateDep`` rather than ``WriteSessionDep``: the body streams to disk first and no
    transaction may be open meanwhile (on SQLite a write session holds the only writer lock).
    """
    part = await service.add_upload_part(
        state,
        project,
        upload_id,
        request.headers.get("content-type"),
        request.headers.get("content-length"),
        request.stream(),
    )
    return json_response(part_to_object(part))


@router.post("/uploads/{upload_id}/complete", operation_id="completeUpload")
async def complete_upload(
    upload_id: str, body: CompleteUploadRequest, state: StateDep, project: ProjectDep
) -> JSONResponse:
    """Assembles the listed Parts, in order, into a File.

    ``StateDep``: the parts are concatenated outside any transaction, then one short write
    transaction creates the File.
    """
    upload, file, t = await service.complete_upload(state, project, upload_id, body)
    return json_response(to_object(upload, t, file))


@router.post("/uploads/{upload_id}/cancel", operation_id="cancelUpload")
async def cancel_upload(upload_id: str, state: StateDep, project: ProjectDep) -> JSONResponse:
    """Cancels a pending Upload; its Parts are discarded.

    ``StateDep``: the parts' blobs are removed only after the cancellation has committed.
    """
    upload, t = await service.cancel_upload(state, project, upload_id)
    return json_response(to_object(upload, t))
