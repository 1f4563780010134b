"""HTTP for /v1/threads/{thread_id}/messages."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from assistd.deps import ProjectDep, ReadSessionDep, WriteSessionDep
from assistd.http import JSONResponse, json_response
from assistd.listing import ListQueryDep
from assistd.messages import service
from assistd.messages.protocol import (
    CreateMessageRequest,
    ModifyMessageRequest,
    to_object,
)
from assistd.pagination import list_object
from assistd.routing import api_router

router = api_router(tags=["Assistants"])


@router.post("/threads/{thread_id}/messages", operation_id="createMessage")
async def create_message(
    thread_id: str,
    body: CreateMessageRequest,
    session: WriteSessionDep,
    project: ProjectDep,
) -> JSONResponse:
    """Create a message."""
    return json_response(to_object(await service.create_message(session, project, thread_id, body)))


@router.get("/threads/{thread_id}/messages", operation_id="listMessages")
async def list_messages(
    thread_id: str,
    query: ListQueryDep,
    session: ReadSessionDep,
    project: ProjectDep,
    run_id: Annotated[str | None, Query()] = None,
) -> JSONResponse:
    """Returns a list of messages for a given thread, newest first by default."""
    page = await service.list_messages(session, project, thread_id, query, run_id or None)
    return json_response(list_object(page, to_object))


@router.get("/threads/{thread_id}/messages/{message_id}", operation_id="getMessage")
async def get_message(thread_id: str, message_id: str, session: ReadSessionDep, project: ProjectDep) -> JSONResponse:
    """Retrieve a message."""
    return json_response(to_object(await service.retrieve_message(session, project, thread_id, message_id)))


@router.post("/threads/{thread_id}/messages/{message_id}", operation_id="modifyMessage")
async def modify_message(
    thread_id: str,
    message_id: str,
    body: ModifyMessageRequest,
    session: WriteSessionDep,
    project: ProjectDep,
) -> JSONResponse:
    """Modifies a message (metadata only)."""
    return json_response(to_object(await service.modify_message(session, project, thread_id, message_id, body)))


@router.delete("/threads/{thread_id}/messages/{message_id}", operation_id="deleteMessage")
async def delete_message(
    thread_id: str, message_id: str, session: WriteSessionDep, project: ProjectDep
) -> JSONResponse:
    """Deletes a message."""
    await service.delete_message(session, project, thread_id, message_id)
    return json_response({"id": message_id, "object": "thread.message.deleted", "deleted": True})
