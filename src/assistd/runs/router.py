"""HTTP for runs and run steps (and createThreadAndRun, POST /v1/threads/runs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Query
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from assistd.db.core import on_commit
from assistd.deps import ProjectDep, ReadSessionDep, StateDep, WriteSessionDep
from assistd.executor.transitions import ACTIVE, TERMINAL
from assistd.http import JSONResponse, json_response
from assistd.listing import ListQueryDep
from assistd.messages.protocol import to_object as message_object
from assistd.models import Message, Run
from assistd.pagination import list_object
from assistd.routing import api_router
from assistd.runs import service
from assistd.runs.protocol import (
    CreateRunRequest,
    CreateThreadAndRunRequest,
    ModifyRunRequest,
    SubmitToolOutputsRunRequest,
    step_to_object,
    to_object,
)
from assistd.runs.sse import ERROR, event_stream, run_gone
from assistd.state import AppState
from assistd.threads.protocol import to_object as thread_object
from assistd.timeutil import now

router = api_router(tags=["Assistants"])
RESTING = TERMINAL | {"requires_action"}

IncludeDep = Annotated[list[str] | None, Query(alias="include[]")]


def poll_after_ms(created_at: int, t: int | None = None) -> str:
    """``openai-poll-after-ms`` for an active run: 100 ms while it is young (a short answer is seen
    at once), then a quarter of its age, up to the Python SDK's own 1 s: a long or queued run is
    not polled ten times a second by every client (the SDKs default to 1 s, Node to 5 s)."""
    age = (now() if t is None else t) - created_at
    return str(min(1000, max(100, age * 250)))


async def _stream(
    state: AppState, run_id: str, first: list[tuple[str, dict[str, Any]]], *, new_run: bool = False
) -> Response:
    subscription = state.bus.subscribe(run_id)
    sub = subscription.__enter__()
    if not new_run:  # a resumed run has events already: relay only those that come after now
        await state.bus.attach(sub, run_id)

    async def resting() -> tuple[str, dict[str, Any]] | None:
        async with state.db.session() as s:
            run = await s.scalar(select(Run).where(Run.id == run_id))
        if run is None:  # its thread was deleted: nothing more will come
            return ERROR, run_gone(run_id)
        if run.status not in RESTING:
            return None
        # Events lost with a worker killed as the run ended: its messages as they ended come first
        # (clients that accumulate deltas take a message's final text from them).
        async with state.db.session() as s:
            ended = await s.scalars(
                select(Message).where(Message.run_id == run_id, Message.status != "in_progress").order_by(Message.seq)
            )
            for m in ended:
                sub.put(f"thread.message.{m.status}", message_object(m))
        return f"thread.run.{run.status}", to_object(run)

    for name, data in first:
        sub.put(name, data)
    return event_stream(subscription, sub, keepalive_seconds=state.settings.sse_keepalive_seconds, resting=resting)


def _start(session: AsyncSession, state: AppState) -> tuple[dict[str, Any] | None, Callable[[Run], None]]:
    """How a new run gets executed: inserted already claimed by this process's executor when it has
    a free slot (started the moment the transaction commits: no claim transaction, no wake-up
    round), queued for any executor otherwise. Answers (claim columns or None, call with the run)."""
    ex = state.executor
    if ex is None or not ex.reserve():
        return None, lambda _run: on_commit(session, state.run_queued)
    released = [False]

    def release() -> None:
        if not released[0]:
            released[0] = True
            ex.release()

    # A failed request rolls back (and never commits): give the slot back.
    event.listen(session.sync_session, "after_soft_rollback", lambda _s, _t: release(), once=True)

    def started(run: Run) -> None:
        if run.status == "queued":  # not taken here after all (executor/affinity.py): any executor
            release()
            on_commit(session, state.run_queued)
            return

        def adopt() -> None:
            if not released[0]:
                released[0] = True
                ex.adopt(run)

        on_commit(session, adopt)

    return ex.lease(), started


def _as_created(run: Run) -> dict[str, Any]:
    """The run as created: ``queued`` (a run adopted at once is in_progress a moment later)."""
    obj = to_object(run)
    if obj["status"] == "in_progress":
        obj["status"], obj["started_at"] = "queued", None
    return obj


@router.post("/threads/runs", operation_id="createThreadAndRun")
async def create_thread_and_run(
    body: CreateThreadAndRunRequest, session: WriteSessionDep, project: ProjectDep, state: StateDep
) -> Response:
    """Create a thread and run it in one request."""
    claim, started = _start(session, state)
    thread, run = await service.create_thread_and_run(session, project, body, claim)
    started(run)
    obj = _as_created(run)
    if not body.stream:
        return json_response(obj)
    return await _stream(
        state,
        run.id,
        [("thread.created", thread_object(thread)), ("thread.run.created", obj), ("thread.run.queued", obj)],
        new_run=True,
    )


@router.post("/threads/{thread_id}/runs", operation_id="createRun")
async def create_run(
    thread_id: str,
    body: CreateRunRequest,
    session: WriteSessionDep,
    project: ProjectDep,
    state: StateDep,
    include: IncludeDep = None,
) -> Response:
    """Create a run; with ``stream: true`` the answer is the run's event stream."""
    claim, started = _start(session, state)
    run = await service.create_run(session, project, thread_id, body, include or [], claim)
    started(run)
    obj = _as_created(run)
    if not body.stream:
        return json_response(obj)
    return await _stream(state, run.id, [("thread.run.created", obj), ("thread.run.queued", obj)], new_run=True)


@router.get("/threads/{thread_id}/runs", operation_id="listRuns")
async def list_runs(thread_id: str, query: ListQueryDep, session: ReadSessionDep, project: ProjectDep) -> JSONResponse:
    """Returns a list of runs belonging to a thread."""
    return json_response(list_object(await service.list_runs(session, project, thread_id, query), to_object))


@router.get("/threads/{thread_id}/runs/{run_id}", operation_id="getRun")
async def get_run(thread_id: str, run_id: str, session: ReadSessionDep, project: ProjectDep) -> JSONResponse:
    """Retrieves a run (``openai-poll-after-ms`` tells polling clients when to ask again)."""
    run = await service.retrieve_run(session, project, thread_id, run_id)
    headers = {"openai-poll-after-ms": poll_after_ms(run.created_at)} if run.status in ACTIVE else None
    return json_response(to_object(run), headers=headers)


@router.post("/threads/{thread_id}/runs/{run_id}", operation_id="modifyRun")
async def modify_run(
    thread_id: str, run_id: str, body: ModifyRunRequest, session: WriteSessionDep, project: ProjectDep
) -> JSONResponse:
    """Modifies a run (metadata only)."""
    return json_response(to_object(await service.modify_run(session, project, thread_id, run_id, body)))


@router.post("/threads/{thread_id}/runs/{run_id}/cancel", operation_id="cancelRun")
async def cancel_run(
    thread_id: str, run_id: str, session: WriteSessionDep, project: ProjectDep, state: StateDep
) -> JSONResponse:
    """Cancels a run: it answers ``cancelling`` and ends ``cancelled``."""
    run = await service.cancel_run(session, project, thread_id, run_id)
    # Streams get `thread.run.cancelling` from the executor that stops the run, before its endings
    # (in order with them, whichever process executes it).
    on_commit(session, lambda: state.cancel_requested(run.id))
    return json_response(to_object(run))


@router.post("/threads/{thread_id}/runs/{run_id}/submit_tool_outputs", operation_id="submitToolOuputsToRun")
async def submit_tool_outputs(
    thread_id: str,
    run_id: str,
    body: SubmitToolOutputsRunRequest,
    session: WriteSessionDep,
    project: ProjectDep,
    state: StateDep,
) -> Response:
    """Submit the outputs of every pending tool call; the run resumes."""
    run, step = await service.submit_tool_outputs(session, project, thread_id, run_id, body)
    on_commit(session, state.run_queued)
    obj = to_object(run)
    if not body.stream:
        return json_response(obj)
    return await _stream(
        state,
        run.id,
        [("thread.run.step.completed", step_to_object(step, bool(run.include))), ("thread.run.queued", obj)],
    )


@router.get("/threads/{thread_id}/runs/{run_id}/steps", operation_id="listRunSteps")
async def list_run_steps(
    thread_id: str,
    run_id: str,
    query: ListQueryDep,
    session: ReadSessionDep,
    project: ProjectDep,
    include: IncludeDep = None,
) -> JSONResponse:
    """Returns a list of run steps belonging to a run."""
    service.check_include(include or [])
    page = await service.list_steps(session, project, thread_id, run_id, query)
    content = bool(include)
    return json_response(list_object(page, lambda row: step_to_object(row, content)))


@router.get("/threads/{thread_id}/runs/{run_id}/steps/{step_id}", operation_id="getRunStep")
async def get_run_step(
    thread_id: str,
    run_id: str,
    step_id: str,
    session: ReadSessionDep,
    project: ProjectDep,
    include: IncludeDep = None,
) -> JSONResponse:
    """Retrieves a run step."""
    service.check_include(include or [])
    step = await service.retrieve_step(session, project, thread_id, run_id, step_id)
    return json_response(step_to_object(step, bool(include)))
