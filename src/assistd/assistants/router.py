"""HTTP for /v1/assistants: parse, call the service, render."""

from __future__ import annotations

from assistd.assistants import service
from assistd.assistants.protocol import (
    CreateAssistantRequest,
    ModifyAssistantRequest,
    to_object,
)
from assistd.deps import ProjectDep, ReadSessionDep, WriteSessionDep
from assistd.http import JSONResponse, json_response
from assistd.listing import ListQueryDep
from assistd.pagination import list_object
from assistd.routing import api_router

router = api_router(tags=["Assistants"])


@router.post("/assistants", operation_id="createAssistant")
async def create_assistant(body: CreateAssistantRequest, session: WriteSessionDep, project: ProjectDep) -> JSONResponse:
    """Create an assistant with a model and instructions."""
    return json_response(to_object(await service.create_assistant(session, project, body)))


@router.get("/assistants", operation_id="listAssistants")
async def list_assistants(query: ListQueryDep, session: ReadSessionDep, project: ProjectDep) -> JSONResponse:
    """Returns a list of assistants."""
    return json_response(list_object(await service.list_assistants(session, project, query), to_object))


@router.get("/assistants/{assistant_id}", operation_id="getAssistant")
async def get_assistant(assistant_id: str, session: ReadSessionDep, project: ProjectDep) -> JSONResponse:
    """Retrieves an assistant."""
    return json_response(to_object(await service.retrieve_assistant(session, project, assistant_id)))


@router.post("/assistants/{assistant_id}", operation_id="modifyAssistant")
async def modify_assistant(
    assistant_id: str,
    body: ModifyAssistantRequest,
    session: WriteSessionDep,
    project: ProjectDep,
) -> JSONResponse:
    """Modifies an assistant."""
    return json_response(to_object(await service.modify_assistant(session, project, assistant_id, body)))


@router.delete("/assistants/{assistant_id}", operation_id="deleteAssistant")
async def delete_assistant(assistant_id: str, session: WriteSessionDep, project: ProjectDep) -> JSONResponse:
    """Delete an assistant."""
    await service.delete_assistant(session, project, assistant_id)
    return json_response({"id": assistant_id, "object": "assistant.deleted", "deleted": True})
