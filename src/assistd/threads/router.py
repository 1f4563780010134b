"""HTTP for /v1/threads."""

from __future__ import annotations

from fastapi import Body, Request

from assistd.db.core import on_commit
from assistd.deps import ProjectDep, ReadSessionDep, StateDep, WriteSessionDep
from assistd.http import JSONResponse, json_response
from assistd.listing import ListQueryDep
from assistd.pagination import list_object
from assistd.routing import api_router
from assistd.runs.sse import ERROR, run_gone
from assistd.threads import service
from assistd.threads.protocol import CreateThreadRequest, ModifyThreadRequest, to_object

router = api_router(tags=["Assistants"])


@router.post("/threads", operation_id="createThread")
async def create_thread(
    session: WriteSessionDep,
    project: ProjectDep,
    body: CreateThreadRequest | None = Body(default=None),
) -> JSONResponse:
    """Create a thread, optionally with initial messages and tool resources."""
    return json_response(to_object(await service.create_thread(session, project, body or CreateThreadRequest())))


@router.get("/threads", operation_id="listThreads")
async def list_threads(
    request: Request, query: ListQueryDep, session: ReadSessionDep, project: ProjectDep
) -> JSONResponse:
    """List threads (not in OpenAI's API). Filter with ``metadata[key]=value`` (all must match)."""
    metadata = {
        k[len("metadata[") : -1]: v
        for k, v in request.query_params.multi_items()
        if k.startswith("metadata[") and k.endswith("]")
    }
    return json_response(list_object(await service.list_threads(session, project, query, metadata), to_object))


@router.get("/threads/{thread_id}", operation_id="getThread")
async def get_thread(thread_id: str, session: ReadSessionDep, project: ProjectDep) -> JSONResponse:
    """Retrieves a thread."""
    return json_response(to_object(await service.retrieve_thread(session, project, thread_id)))


@router.post("/threads/{thread_id}", operation_id="modifyThread")
async def modify_thread(
    thread_id: str,
    body: ModifyThreadRequest,
    session: WriteSessionDep,
    project: ProjectDep,
) -> JSONResponse:
    """Modifies a thread."""
    return json_response(to_object(await service.modify_thread(session, project, thread_id, body)))


@router.delete("/threads/{thread_id}", operation_id="deleteThread")
async def delete_thread(thread_id: str, session: WriteSessionDep, project: ProjectDep, state: StateDep) -> JSONResponse:
    """Delete a thread and its messages (and stop its code interpreter kernel, if this process has one)."""
    active = await service.delete_thread(session, project, thread_id)
    if active:

        def end_streams() -> None:  # now (an `error` event), not when their watchdog next looks
            for run_id in active:
                state.bus.announce(run_id, ERROR, run_gone(run_id))

        on_commit(session, end_streams)
    if state.sandbox is not None:
        sandbox = state.sandbox
        on_commit(session, lambda: state.spawn(sandbox.close_session(thread_id)))
    return json_response({"id": thread_id, "object": "thread.deleted", "deleted": True})
