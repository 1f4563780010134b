"""HTTP for /v1/files: parse, call the service, render.

Not under the ``OpenAI-Beta`` requirement (the SDKs do not send it on /files).
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import Query, Request
from starlette.responses import StreamingResponse

from assistd.deps import ProjectDep, ReadSessionDep, StateDep
from assistd.files import service
from assistd.files.protocol import deleted_object, to_object
from assistd.http import JSONResponse, json_response
from assistd.pagination import ListQuery, list_object
from assistd.routing import api_router

router = api_router(tags=["Files"])

MAX_LIST_LIMIT = 10_000


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact name as RFC 5987 ``filename*``."""
    fallback = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\;' else "_" for c in filename) or "file"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.post("/files", operation_id="createFile")
async def create_file(request: Request, state: StateDep, project: ProjectDep) -> JSONResponse:
    """Upload a file (multipart/form-data: ``file``, ``purpose``, optional ``expires_after[...]``).

    The body is streamed to disk while it is parsed, so neither the body nor the file is ever held
    in memory, and the size cap is enforced while reading. This route therefore takes ``StateDep``
    rather than ``WriteSessionDep``: no transaction may be open while the body streams (on SQLite
    a write session holds the database's only writer lock); the service opens a short one at the end.
    """
    row = await service.create_file(
        state, project, request.headers.get("content-type"), request.headers.get("content-length"), request.stream()
    )
    return json_response(to_object(row))


@router.get("/files", operation_id="listFiles")
async def list_files(
    session: ReadSessionDep,
    project: ProjectDep,
    purpose: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_LIMIT)] = MAX_LIST_LIMIT,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    after: Annotated[str | None, Query()] = None,
) -> JSONResponse:
    """Returns a list of files (newest first by default). There is no ``before`` cursor."""
    query = ListQuery(limit=limit, order=order, after=after or None)
    page = await service.list_files(session, project, query, purpose or None)
    return json_response(list_object(page, to_object))


@router.get("/files/{file_id}", operation_id="retrieveFile")
async def retrieve_file(file_id: str, session: ReadSessionDep, project: ProjectDep) -> JSONResponse:
    """Returns information about a specific file."""
    return json_response(to_object(await service.get_file(session, project, file_id)))


@router.delete("/files/{file_id}", operation_id="deleteFile")
async def delete_file(file_id: str, state: StateDep, project: ProjectDep) -> JSONResponse:
    """Delete a file.

    ``StateDep`` rather than ``WriteSessionDep``: the blob may only be removed after the row's
    deletion has committed, so the service owns the transaction.
    """
    await service.delete_file(state, project, file_id)
    return json_response(deleted_object(file_id))


@router.get("/files/{file_id}/content", operation_id="downloadFile")
async def download_file(file_id: str, state: StateDep, project: ProjectDep) -> StreamingResponse:
    """Returns the contents of the specified file (raw bytes, streamed)."""
    content = await service.file_content(state, project, file_id)
    return StreamingResponse(
        content.chunks,
        media_type="application/octet-stream",
        headers={
            "content-length": str(content.size),
            "content-disposition": content_disposition(content.file.filename),
        },
    )
