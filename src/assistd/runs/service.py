"""Runs and run steps: create (and createThreadAndRun), list, get, modify, cancel, submit tool
outputs; the rules of CONTRACT §4/§5 (one active run per thread, allowed transitions)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from assistd.assistants.service import retrieve_assistant
from assistd.db.core import insert_rows
from assistd.errors import InvalidRequestError
from assistd.executor.affinity import held_elsewhere
from assistd.executor.transitions import transition
from assistd.ids import new_id
from assistd.messages.builder import build_message
from assistd.messages.protocol import file_refs
from assistd.models import Run, RunStep, Thread
from assistd.pagination import ListQuery, Page
from assistd.protocol import response_format_to_object, tool_to_object
from assistd.references import check_id, or_404, require_files
from assistd.runs.protocol import (
    INCLUDE_FILE_SEARCH_CONTENT,
    MAX_RUN_TOOLS,
    CreateRunRequest,
    CreateThreadAndRunRequest,
    ModifyRunRequest,
    SubmitToolOutputsRunRequest,
)
from assistd.runs.repository import RunRepository, RunStepRepository
from assistd.threads.protocol import CreateThreadRequest
from assistd.threads.service import create_thread, get_thread, require_thread
from assistd.timeutil import now
from assistd.vector_stores.helpers import attach_to_thread_store, file_search_attachments

RUN_EXPIRY_SECONDS = 600  # the requires_action deadline every spec example shows


def check_include(include: list[str]) -> list[str]:
    for i, value in enumerate(include):
        if value != INCLUDE_FILE_SEARCH_CONTENT:
            raise InvalidRequestError(
                f"Invalid value: '{value}'. Supported values are: '{INCLUDE_FILE_SEARCH_CONTENT}'.",
                param=f"include[{i}]",
                code="invalid_value",
            )
    return include


async def ensure_no_active_run(session: AsyncSession, project_id: str, thread_id: str) -> None:
    """After ``require_thread(..., lock=True)``: on PostgreSQL the thread's row lock is held, so no
    other run can start between this check and the insert."""
    active = await RunRepository(session, project_id, thread_id).active()
    if active is not None:
        raise InvalidRequestError(f"Thread {thread_id} already has an active run {active}.")


def _check_tool_choice(body: Any, tools: list[dict[str, Any]]) -> Any:
    choice = body.tool_choice
    if choice is None:
        return "auto"
    if isinstance(choice, str):
        return choice
    if choice.type == "function":
        if choice.function is None:
            raise InvalidRequestError(
                "Missing required parameter: 'tool_choice.function'.",
                param="tool_choice.function",
                code="missing_required_parameter",
            )
        names = {t["function"]["name"] for t in tools if t["type"] == "function"}
        if choice.function.name not in names:
            raise InvalidRequestError(
                f"Invalid 'tool_choice': the function '{choice.function.name}' is not among the run's tools.",
                param="tool_choice.function.name",
                code="invalid_value",
            )
        return {"type": "function", "function": {"name": choice.function.name}}
    if not any(t["type"] == choice.type for t in tools):
        raise InvalidRequestError(
            f"Invalid 'tool_choice': the tool '{choice.type}' is not among the run's tools.",
            param="tool_choice.type",
            code="invalid_value",
        )
    return {"type": choice.type}


def build_run(
    project_id: str,
    thread_id: str,
    assistant: Any,  # the Assistant row or entity
    body: CreateRunRequest | CreateThreadAndRunRequest,
    include: list[str],
) -> Run:
    t = now()
    instructions = body.instructions if body.instructions is not None else (assistant.instructions or "")
    extra = getattr(body, "additional_instructions", None)
    if extra:
        instructions = f"{instructions}\n\n{extra}" if instructions else extra
    tools = [tool_to_object(x) for x in body.tools] if body.tools is not None else list(assistant.tools)
    if len(tools) > MAX_RUN_TOOLS:
        raise InvalidRequestError(
            f"Invalid 'tools': array too long. A run can use at most {MAX_RUN_TOOLS} tools, but the assistant "
            f"has {len(tools)}; pass 'tools' to choose at most {MAX_RUN_TOOLS}.",
            param="tools",
            code="array_above_max_length",
        )
    ts = body.truncation_strategy
    return Run(
        id=new_id("run"),
        project_id=project_id,
        created_at=t,
        thread_id=thread_id,
        assistant_id=assistant.id,
        status="queued",
        required_action=None,
        last_error=None,
        incomplete_details=None,
        expires_at=t + RUN_EXPIRY_SECONDS,
        model=body.model or assistant.model,
        instructions=instructions,
        tools=tools,
        metadata_=body.metadata or {},
        usage=None,
        temperature=body.temperature if body.temperature is not None else assistant.temperature,
        top_p=body.top_p if body.top_p is not None else assistant.top_p,
        max_prompt_tokens=body.max_prompt_tokens,
        max_completion_tokens=body.max_completion_tokens,
        truncation_strategy={"type": ts.type, "last_messages": ts.last_messages}
        if ts
        else {"type": "auto", "last_messages": None},
        tool_choice=_check_tool_choice(body, tools),
        parallel_tool_calls=body.parallel_tool_calls,
        response_format=response_format_to_object(body.response_format)
        if body.response_format is not None
        else (assistant.response_format or "auto"),
        reasoning_effort=getattr(body, "reasoning_effort", None) or assistant.reasoning_effort,
        include=include,
        attempt=0,
        resumes=0,
    )


def claimed(run: Run, claim: dict[str, Any] | None) -> Run:
    """A new run row inserted already claimed (``in_progress``, the local executor's lease)."""
    if claim is not None:
        run.status, run.started_at = "in_progress", run.created_at
        for key, value in claim.items():
            setattr(run, key, value)
    return run


async def create_run(
    session: AsyncSession,
    project_id: str,
    thread_id: str,
    body: CreateRunRequest,
    include: list[str],
    claim: dict[str, Any] | None = None,
) -> Run:
    check_include(include)
    await require_thread(session, project_id, thread_id, lock=True)
    check_id("assistant", body.assistant_id, "assistant_id")
    assistant = await retrieve_assistant(session, project_id, body.assistant_id)
    await ensure_no_active_run(session, project_id, thread_id)
    extra = body.additional_messages or []
    refs = [r for i, m in enumerate(extra) for r in file_refs(m, prefix=f"additional_messages[{i}].")]
    await require_files(session, project_id, refs)
    if claim is not None and await held_elsewhere(session, thread_id, claim["lease_owner"]):
        claim = None  # the thread's kernel lives in another executor: the run waits for that one
    run = claimed(build_run(project_id, thread_id, assistant, body, include), claim)
    # additional_messages join the thread before the run starts.
    t = now()
    await insert_rows(session, *[build_message(project_id, thread_id, m, t) for m in extra], run)
    attached = file_search_attachments(extra)
    if attached:  # as for createMessage: the thread's vector store gets them
        thread = await get_thread(session, project_id, thread_id)
        await attach_to_thread_store(session, project_id, thread, attached)
    return run


async def create_thread_and_run(
    session: AsyncSession, project_id: str, body: CreateThreadAndRunRequest, claim: dict[str, Any] | None = None
) -> tuple[Thread, Run]:
    check_id("assistant", body.assistant_id, "assistant_id")
    assistant = await retrieve_assistant(session, project_id, body.assistant_id)
    thread_body = body.thread or CreateThreadRequest()
    if body.tool_resources is not None:
        thread_body = thread_body.model_copy(update={"tool_resources": body.tool_resources})
    thread = await create_thread(session, project_id, thread_body)
    run = claimed(build_run(project_id, thread.id, assistant, body, []), claim)
    await session.flush()  # the thread's rows first (the run references the thread)
    await insert_rows(session, run)
    return thread, run


async def get_run(session: AsyncSession, project_id: str, thread_id: str, run_id: str) -> Run:
    check_id("thread", thread_id, "thread_id")
    check_id("run", run_id, "run_id")
    row = await RunRepository(session, project_id, thread_id).get(run_id)
    if row is None:
        await require_thread(session, project_id, thread_id)
    return or_404(row, "run", run_id)


async def retrieve_run(session: AsyncSession, project_id: str, thread_id: str, run_id: str) -> Any:
    check_id("thread", thread_id, "thread_id")
    check_id("run", run_id, "run_id")
    row = await RunRepository(session, project_id, thread_id).get_row(run_id)
    if row is None:
        await require_thread(session, project_id, thread_id)
    return or_404(row, "run", run_id)


async def list_runs(session: AsyncSession, project_id: str, thread_id: str, query: ListQuery) -> Page[Any]:
    check_id("thread", thread_id, "thread_id")
    return await RunRepository(session, project_id, thread_id).list(
        query, on_empty=lambda: require_thread(session, project_id, thread_id)
    )


async def modify_run(
    session: AsyncSession, project_id: str, thread_id: str, run_id: str, body: ModifyRunRequest
) -> Run:
    run = await get_run(session, project_id, thread_id, run_id)
    if "metadata" in body.model_fields_set:
        run.metadata_ = body.metadata or {}
    await session.flush()
    return run


async def cancel_run(session: AsyncSession, project_id: str, thread_id: str, run_id: str) -> Run:
    """Ask for cancellation: the run answers ``cancelling``; the executor ends it ``cancelled``."""
    run = await get_run(session, project_id, thread_id, run_id)
    if not await transition(session, run.id, "cancelling", only_from={"queued", "in_progress", "requires_action"}):
        await session.refresh(run)
        raise InvalidRequestError(f"Cannot cancel run with status '{run.status}'.")
    await session.refresh(run)
    return run


async def submit_tool_outputs(
    session: AsyncSession, project_id: str, thread_id: str, run_id: str, body: SubmitToolOutputsRunRequest
) -> tuple[Run, RunStep]:
    """Outputs for every pending call, in one request; the run goes back to ``queued``."""
    run = await get_run(session, project_id, thread_id, run_id)
    if run.status != "requires_action" or not run.required_action:
        raise InvalidRequestError(f'Runs in status "{run.status}" do not accept tool outputs.')
    if run.expires_at is not None and run.expires_at <= now():
        raise InvalidRequestError(f"Run {run.id} has expired; tool outputs are no longer accepted.")
    expected = [c["id"] for c in run.required_action["submit_tool_outputs"]["tool_calls"]]
    given = [o.tool_call_id for o in body.tool_outputs]
    if len(set(given)) != len(given):
        raise InvalidRequestError("Each tool_call_id may be given only once.", param="tool_outputs")
    unknown = [g for g in given if g not in expected]
    if unknown:
        raise InvalidRequestError(
            f"Invalid 'tool_outputs': unknown tool_call_id {unknown[0]!r}; this run expects outputs for "
            f"{', '.join(expected)}.",
            param="tool_outputs",
        )
    missing = [e for e in expected if e not in given]
    if missing:
        raise InvalidRequestError(
            f"Expected tool outputs for call_ids {expected}, got {given}: missing {missing}. "
            "Submit every output in one request.",
            param="tool_outputs",
        )
    outputs = {o.tool_call_id: o.output for o in body.tool_outputs}
    steps = await RunStepRepository(session, project_id, run.id).all()
    step = next(s for s in reversed(steps) if s.type == "tool_calls" and s.status == "in_progress")
    details = dict(step.step_details)
    details["tool_calls"] = [
        {**c, "function": {**c["function"], "output": outputs.get(c["id"], c["function"].get("output"))}}
        if c["type"] == "function"
        else c
        for c in details["tool_calls"]
    ]
    t = now()
    step.step_details = details
    step.status = "completed"
    step.completed_at = t
    if not await transition(session, run.id, "queued", only_from={"requires_action"}, required_action=None):
        await session.refresh(run)
        raise InvalidRequestError(f'Runs in status "{run.status}" do not accept tool outputs.')
    await session.flush()
    await session.refresh(run)
    return run, step


async def list_steps(
    session: AsyncSession, project_id: str, thread_id: str, run_id: str, query: ListQuery
) -> Page[Any]:
    await get_run(session, project_id, thread_id, run_id)
    return await RunStepRepository(session, project_id, run_id).list(query)


async def retrieve_step(session: AsyncSession, project_id: str, thread_id: str, run_id: str, step_id: str) -> Any:
    check_id("step", step_id, "step_id")
    await get_run(session, project_id, thread_id, run_id)
    return or_404(await RunStepRepository(session, project_id, run_id).get_row(step_id), "run step", step_id)


async def expire_steps(session: AsyncSession, run_id: str, status: str, at_field: str, t: int) -> None:
    await session.execute(
        update(RunStep)
        .where(RunStep.run_id == run_id, RunStep.status == "in_progress")
        .values(status=status, **{at_field: t})
        .execution_options(synchronize_session=False)
    )
