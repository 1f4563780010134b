"""v1 runs and run steps (and createThreadAndRun), on the v2 runs endpoints.

Creating a run, submitting tool outputs and cancelling go through the v2 handlers themselves
(execution start, event streams, poll hints), and their JSON or event stream is re-rendered.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from assistd.deps import ProjectDep, ReadSessionDep, StateDep, WriteSessionDep
from assistd.dialects.v1 import render
from assistd.dialects.v1.common import rerender, restream, v2_body
from assistd.dialects.v1.files import assistant_file_ids
from assistd.dialects.v1.protocol import (
    CreateRunRequest,
    CreateThreadAndRunRequest,
    ModifyRequest,
    message_file_refs,
    run_v2,
)
from assistd.http import JSONResponse, json_response
from assistd.listing import ListQueryDep
from assistd.pagination import list_object
from assistd.references import require_files
from assistd.routing import api_router
from assistd.runs import router as v2
from assistd.runs import service
from assistd.runs.protocol import CreateRunRequest as V2CreateRun
from assistd.runs.protocol import CreateThreadAndRunRequest as V2CreateThreadAndRun
from assistd.runs.protocol import ModifyRunRequest, SubmitToolOutputsRunRequest, step_to_object, to_object

router = api_router(tags=["Assistants v1"])


async def _runs(session: AsyncSession, project: str, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    files = await assistant_file_ids(session, project, [r["assistant_id"] for r in runs])
    return [render.run(r, files.get(r["assistant_id"], [])) for r in runs]


async def _v1(session: AsyncSession, project: str, assistant_id: str, resp: Response) -> Response:
    """A v2 run response (JSON or event stream) in v1 shape."""
    files = (await assistant_file_ids(session, project, [assistant_id])).get(assistant_id, [])
    if isinstance(resp, JSONResponse):
        return rerender(resp, lambda r: render.run(r, files))
    quotes: render.Quotes = {}
    return restream(resp, lambda name, data: render.event(name, data, files, quotes))


@router.post("/threads/runs")
async def create_thread_and_run(
    body: CreateThreadAndRunRequest, session: WriteSessionDep, project: ProjectDep, state: StateDep
) -> Response:
    """Create a thread and run it (v1 bodies and shapes)."""
    if body.thread is not None:
        await require_files(session, project, message_file_refs(body.thread.messages, "thread.messages"))
    v2_req = v2_body(V2CreateThreadAndRun, run_v2(body))
    return await _v1(
        session, project, body.assistant_id, await v2.create_thread_and_run(v2_req, session, project, state)
    )


@router.post("/threads/{thread_id}/runs")
async def create_run(
    thread_id: str, body: CreateRunRequest, session: WriteSessionDep, project: ProjectDep, state: StateDep
) -> Response:
    """Create a run; with ``stream: true`` its v1 event stream."""
    await require_files(session, project, message_file_refs(body.additional_messages or [], "additional_messages"))
    v2_req = v2_body(V2CreateRun, run_v2(body))
    resp = await v2.create_run(thread_id, v2_req, session, project, state, None)
    return await _v1(session, project, body.assistant_id, resp)


@router.get("/threads/{thread_id}/runs")
async def list_runs(thread_id: str, query: ListQueryDep, session: ReadSessionDep, project: ProjectDep) -> JSONResponse:
    """Returns a list of runs belonging to a thread."""
    out = list_object(await service.list_runs(session, project, thread_id, query), to_object)
    out["data"] = await _runs(session, project, out["data"])
    return json_response(out)


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(thread_id: str, run_id: str, session: ReadSessionDep, project: ProjectDep) -> Response:
    """Retrieves a run (with ``openai-poll-after-ms`` while it is active)."""
    resp = await v2.get_run(thread_id, run_id, session, project)
    files = await assistant_file_ids(session, project, [_assistant_of(resp)])
    return rerender(resp, lambda r: render.run(r, files.get(r["assistant_id"], [])))


def _assistant_of(resp: Response) -> str:
    return str(orjson.loads(bytes(resp.body))["assistant_id"])


@router.post("/threads/{thread_id}/runs/{run_id}")
async def modify_run(
    thread_id: str, run_id: str, body: ModifyRequest, session: WriteSessionDep, project: ProjectDep
) -> JSONResponse:
    """Modifies a run (metadata)."""
    row = await service.modify_run(session, project, thread_id, run_id, v2_body(ModifyRunRequest, body.model_dump()))
    return json_response((await _runs(session, project, [to_object(row)]))[0])


@router.post("/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel_run(
    thread_id: str, run_id: str, session: WriteSessionDep, project: ProjectDep, state: StateDep
) -> Response:
    """Cancels a run."""
    resp = await v2.cancel_run(thread_id, run_id, session, project, state)
    return await _v1(session, project, _assistant_of(resp), resp)


@router.post("/threads/{thread_id}/runs/{run_id}/submit_tool_outputs")
async def submit_tool_outputs(
    thread_id: str,
    run_id: str,
    body: SubmitToolOutputsRunRequest,
    session: WriteSessionDep,
    project: ProjectDep,
    state: StateDep,
) -> Response:
    """Submit the outputs of every pending tool call (the body is the same in v1)."""
    run = await service.retrieve_run(session, project, thread_id, run_id)
    resp = await v2.submit_tool_outputs(thread_id, run_id, body, session, project, state)
    return await _v1(session, project, run.assistant_id, resp)


@router.get("/threads/{thread_id}/runs/{run_id}/steps")
async def list_run_steps(
    thread_id: str, run_id: str, query: ListQueryDep, session: ReadSessionDep, project: ProjectDep
) -> JSONResponse:
    """Returns a list of run steps (v1: ``retrieval`` tool calls)."""
    page = await service.list_steps(session, project, thread_id, run_id, query)
    return json_response(list_object(page, lambda row: render.step(step_to_object(row))))


@router.get("/threads/{thread_id}/runs/{run_id}/steps/{step_id}")
async def get_run_step(
    thread_id: str, run_id: str, step_id: str, session: ReadSessionDep, project: ProjectDep
) -> JSONResponse:
    """Retrieves a run step."""
    step = await service.retrieve_step(session, project, thread_id, run_id, step_id)
    return json_response(render.step(step_to_object(step)))
