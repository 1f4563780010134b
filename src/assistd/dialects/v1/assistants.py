"""v1 /assistants and /assistants/{id}/files, on the v2 assistants service."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from assistd.assistants import service
from assistd.assistants.protocol import CreateAssistantRequest as V2Create
from assistd.assistants.protocol import ModifyAssistantRequest as V2Modify
from assistd.assistants.protocol import to_object
from assistd.deps import ProjectDep, ReadSessionDep, WriteSessionDep
from assistd.dialects.v1 import render
from assistd.dialects.v1.common import page, v2_body
from assistd.dialects.v1.files import create_resources, derived_file_ids, set_file_ids
from assistd.dialects.v1.protocol import (
    MAX_ASSISTANT_FILES,
    CreateAssistantFileRequest,
    CreateAssistantRequest,
    ModifyAssistantRequest,
    dump,
    tools_v2,
)
from assistd.errors import InvalidRequestError, NotFoundError
from assistd.files.repository import FileRepository
from assistd.http import JSONResponse, json_response
from assistd.listing import ListQueryDep
from assistd.pagination import list_object
from assistd.references import check_id, require_files
from assistd.routing import api_router

router = api_router(tags=["Assistants v1"])


async def _rendered(session: AsyncSession, project: str, objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    file_ids = await derived_file_ids(session, project, [o["tool_resources"] for o in objs])
    return [render.assistant(o, f) for o, f in zip(objs, file_ids, strict=True)]


async def _one(session: AsyncSession, project: str, row: Any) -> JSONResponse:
    return json_response((await _rendered(session, project, [to_object(row)]))[0])


def _file_refs(file_ids: list[str]) -> list[tuple[str, str]]:
    return [(f"file_ids[{i}]", f) for i, f in enumerate(file_ids)]


@router.post("/assistants")
async def create_assistant(body: CreateAssistantRequest, session: WriteSessionDep, project: ProjectDep) -> JSONResponse:
    """Create an assistant (v1: ``file_ids``, the ``retrieval`` tool)."""
    data = dump(body)
    file_ids = list(dict.fromkeys(data.pop("file_ids", [])))
    await require_files(session, project, _file_refs(file_ids))
    data["tools"] = tools_v2(data.get("tools", []))
    data["tool_resources"] = create_resources(file_ids, data["tools"])
    row = await service.create_assistant(session, project, v2_body(V2Create, data))
    return await _one(session, project, row)


@router.get("/assistants")
async def list_assistants(query: ListQueryDep, session: ReadSessionDep, project: ProjectDep) -> JSONResponse:
    """Returns a list of assistants."""
    out = list_object(await service.list_assistants(session, project, query), to_object)
    out["data"] = await _rendered(session, project, out["data"])
    return json_response(out)


@router.get("/assistants/{assistant_id}")
async def get_assistant(assistant_id: str, session: ReadSessionDep, project: ProjectDep) -> JSONResponse:
    """Retrieves an assistant."""
    return await _one(session, project, await service.retrieve_assistant(session, project, assistant_id))


@router.post("/assistants/{assistant_id}")
async def modify_assistant(
    assistant_id: str, body: ModifyAssistantRequest, session: WriteSessionDep, project: ProjectDep
) -> JSONResponse:
    """Modifies an assistant; ``file_ids`` replaces its files."""
    data = dump(body)
    file_ids = data.pop("file_ids", None)
    if file_ids is not None:
        await require_files(session, project, _file_refs(file_ids))
    if data.get("tools") is not None:
        data["tools"] = tools_v2(data["tools"])
    row = await service.get_assistant(session, project, assistant_id)
    before = (await derived_file_ids(session, project, [row.tool_resources]))[0]
    row = await service.modify_assistant(session, project, assistant_id, v2_body(V2Modify, data))
    if file_ids is not None or "tools" in data:
        await set_file_ids(session, project, row, before if file_ids is None else file_ids)
    return await _one(session, project, row)


@router.delete("/assistants/{assistant_id}")
async def delete_assistant(assistant_id: str, session: WriteSessionDep, project: ProjectDep) -> JSONResponse:
    """Delete an assistant."""
    await service.delete_assistant(session, project, assistant_id)
    return json_response({"id": assistant_id, "object": "assistant.deleted", "deleted": True})


# --- assistant files ---------------------------------------------------------------------------


async def _files(session: AsyncSession, project: str, assistant_id: str) -> list[dict[str, Any]]:
    """The assistant's files as ``assistant.file`` objects, oldest File first."""
    row = await service.retrieve_assistant(session, project, assistant_id)
    (file_ids,) = await derived_file_ids(session, project, [row.tool_resources])
    created = await FileRepository(session, project).created_at_of(file_ids)
    files = [
        {"id": f, "object": "assistant.file", "created_at": created.get(f, row.created_at), "assistant_id": row.id}
        for f in file_ids
    ]
    return sorted(files, key=lambda o: o["created_at"])


def _find(files: list[dict[str, Any]], file_id: str) -> dict[str, Any]:
    check_id("file", file_id, "file_id")
    for f in files:
        if f["id"] == file_id:
            return f
    raise NotFoundError(f"No assistant file found with id '{file_id}'.")


@router.post("/assistants/{assistant_id}/files")
async def create_assistant_file(
    assistant_id: str, body: CreateAssistantFileRequest, session: WriteSessionDep, project: ProjectDep
) -> JSONResponse:
    """Attach a File to an assistant (v1)."""
    check_id("file", body.file_id, "file_id")
    await require_files(session, project, [("file_id", body.file_id)])
    row = await service.get_assistant(session, project, assistant_id)
    (file_ids,) = await derived_file_ids(session, project, [row.tool_resources])
    if body.file_id not in file_ids:
        if len(file_ids) >= MAX_ASSISTANT_FILES:
            raise InvalidRequestError(
                f"Assistant {assistant_id} already has the maximum of {MAX_ASSISTANT_FILES} files; "
                "remove one before adding another.",
                param="file_id",
                code="array_above_max_length",
            )
        await set_file_ids(session, project, row, [*file_ids, body.file_id])
    return json_response(_find(await _files(session, project, assistant_id), body.file_id))


@router.get("/assistants/{assistant_id}/files")
async def list_assistant_files(
    assistant_id: str, query: ListQueryDep, session: ReadSessionDep, project: ProjectDep
) -> JSONResponse:
    """Returns the assistant's files (v1)."""
    return json_response(page(await _files(session, project, assistant_id), query))


@router.get("/assistants/{assistant_id}/files/{file_id}")
async def get_assistant_file(
    assistant_id: str, file_id: str, session: ReadSessionDep, project: ProjectDep
) -> JSONResponse:
    """Retrieves an assistant file (v1)."""
    return json_response(_find(await _files(session, project, assistant_id), file_id))


@router.delete("/assistants/{assistant_id}/files/{file_id}")
async def delete_assistant_file(
    assistant_id: str, file_id: str, session: WriteSessionDep, project: ProjectDep
) -> JSONResponse:
    """Detach a File from an assistant; the File itself stays (v1)."""
    files = await _files(session, project, assistant_id)
    _find(files, file_id)
    row = await service.get_assistant(session, project, assistant_id)
    (file_ids,) = await derived_file_ids(session, project, [row.tool_resources])
    await set_file_ids(session, project, row, [f for f in file_ids if f != file_id])
    return json_response({"id": file_id, "object": "assistant.file.deleted", "deleted": True})
