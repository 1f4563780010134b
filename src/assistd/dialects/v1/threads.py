"""v1 /threads, /threads/{id}/messages and message files, on the v2 services."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Query

from assistd.deps import ProjectDep, ReadSessionDep, WriteSessionDep
from assistd.dialects.v1 import render
from assistd.dialects.v1.common import page, v2_body
from assistd.dialects.v1.protocol import (
    CreateMessageRequest,
    CreateThreadRequest,
    ModifyRequest,
    dump,
    message_file_refs,
    message_v2,
    thread_v2,
)
from assistd.errors import NotFoundError
from assistd.http import JSONResponse, json_response
from assistd.listing import ListQueryDep
from assistd.messages import service as messages
from assistd.messages.protocol import CreateMessageRequest as V2Message
from assistd.messages.protocol import ModifyMessageRequest, to_object
from assistd.pagination import list_object
from assistd.references import check_id, require_files
from assistd.routing import api_router
from assistd.threads import service as threads
from assistd.threads.protocol import CreateThreadRequest as V2Thread
from assistd.threads.protocol import ModifyThreadRequest
from assistd.threads.protocol import to_object as thread_object

router = api_router(tags=["Assistants v1"])


def message_object(row: Any) -> dict[str, Any]:
    """A stored message as a v2 object with its citations' quotes, which v1 shows."""
    return to_object(row, quotes=True)


@router.post("/threads")
async def create_thread(
    session: WriteSessionDep, project: ProjectDep, body: CreateThreadRequest | None = Body(default=None)
) -> JSONResponse:
    """Create a thread, with initial messages (v1: ``file_ids`` on each)."""
    body = body or CreateThreadRequest()
    await require_files(session, project, message_file_refs(body.messages, "messages"))
    row = await threads.create_thread(session, project, v2_body(V2Thread, thread_v2(dump(body))))
    return json_response(render.thread(thread_object(row)))


@router.get("/threads/{thread_id}")
async def get_thread(thread_id: str, session: ReadSessionDep, project: ProjectDep) -> JSONResponse:
    """Retrieves a thread."""
    return json_response(render.thread(thread_object(await threads.retrieve_thread(session, project, thread_id))))


@router.post("/threads/{thread_id}")
async def modify_thread(
    thread_id: str, body: ModifyRequest, session: WriteSessionDep, project: ProjectDep
) -> JSONResponse:
    """Modifies a thread (metadata)."""
    row = await threads.modify_thread(session, project, thread_id, v2_body(ModifyThreadRequest, dump(body)))
    return json_response(render.thread(thread_object(row)))


@router.delete("/threads/{thread_id}")
async def delete_thread(thread_id: str, session: WriteSessionDep, project: ProjectDep) -> JSONResponse:
    """Delete a thread (and its messages)."""
    await threads.delete_thread(session, project, thread_id)
    return json_response({"id": thread_id, "object": "thread.deleted", "deleted": True})


@router.post("/threads/{thread_id}/messages")
async def create_message(
    thread_id: str, body: CreateMessageRequest, session: WriteSessionDep, project: ProjectDep
) -> JSONResponse:
    """Create a message (v1: ``file_ids``, for retrieval and code_interpreter)."""
    await require_files(session, project, [(f"file_ids[{i}]", f) for i, f in enumerate(body.file_ids)])
    row = await messages.create_message(session, project, thread_id, v2_body(V2Message, message_v2(dump(body))))
    return json_response(render.message(message_object(row)))


@router.get("/threads/{thread_id}/messages")
async def list_messages(
    thread_id: str,
    query: ListQueryDep,
    session: ReadSessionDep,
    project: ProjectDep,
    run_id: Annotated[str | None, Query()] = None,
) -> JSONResponse:
    """Returns a list of messages for a given thread."""
    out = list_object(await messages.list_messages(session, project, thread_id, query, run_id or None), message_object)
    out["data"] = [render.message(m) for m in out["data"]]
    return json_response(out)


@router.get("/threads/{thread_id}/messages/{message_id}")
async def get_message(thread_id: str, message_id: str, session: ReadSessionDep, project: ProjectDep) -> JSONResponse:
    """Retrieve a message."""
    row = await messages.retrieve_message(session, project, thread_id, message_id)
    return json_response(render.message(message_object(row)))


@router.post("/threads/{thread_id}/messages/{message_id}")
async def modify_message(
    thread_id: str, message_id: str, body: ModifyRequest, session: WriteSessionDep, project: ProjectDep
) -> JSONResponse:
    """Modifies a message (metadata)."""
    row = await messages.modify_message(
        session, project, thread_id, message_id, v2_body(ModifyMessageRequest, dump(body))
    )
    return json_response(render.message(message_object(row)))


# --- message files -----------------------------------------------------------------------------


async def _message_files(session: Any, project: str, thread_id: str, message_id: str) -> list[dict[str, Any]]:
    m = message_object(await messages.retrieve_message(session, project, thread_id, message_id))
    return [
        {"id": f, "object": "thread.message.file", "created_at": m["created_at"], "message_id": m["id"]}
        for f in render.message_file_ids(m)
    ]


@router.get("/threads/{thread_id}/messages/{message_id}/files")
async def list_message_files(
    thread_id: str, message_id: str, query: ListQueryDep, session: ReadSessionDep, project: ProjectDep
) -> JSONResponse:
    """Returns the files of a message (v1)."""
    return json_response(page(await _message_files(session, project, thread_id, message_id), query))


@router.get("/threads/{thread_id}/messages/{message_id}/files/{file_id}")
async def get_message_file(
    thread_id: str, message_id: str, file_id: str, session: ReadSessionDep, project: ProjectDep
) -> JSONResponse:
    """Retrieves a message file (v1)."""
    check_id("file", file_id, "file_id")
    for f in await _message_files(session, project, thread_id, message_id):
        if f["id"] == file_id:
            return json_response(f)
    raise NotFoundError(f"No message file found with id '{file_id}'.")
