"""Threads: create (with messages), get, modify, delete, and list (assistd's addition)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from assistd.errors import InvalidRequestError
from assistd.ids import new_id
from assistd.messages.builder import build_message
from assistd.messages.protocol import file_refs
from assistd.messages.repository import MessageRepository
from assistd.models import Thread
from assistd.pagination import ListQuery, Page
from assistd.protocol import (
    METADATA_MAX_KEY,
    METADATA_MAX_PAIRS,
    METADATA_MAX_VALUE,
    tool_resources_to_object,
)
from assistd.references import check_id, check_tool_resources, not_found, or_404, require_files
from assistd.threads.protocol import CreateThreadRequest, ModifyThreadRequest
from assistd.threads.repository import ThreadRepository
from assistd.timeutil import now
from assistd.vector_stores.helpers import attach_to_thread_store, file_search_attachments, resolve_tool_resources


async def create_thread(session: AsyncSession, project_id: str, body: CreateThreadRequest) -> Thread:
    await check_tool_resources(session, project_id, body.tool_resources)
    refs = [r for i, m in enumerate(body.messages) for r in file_refs(m, prefix=f"messages[{i}].")]
    await require_files(session, project_id, refs)
    t = now()
    thread = Thread(
        id=new_id("thread"),
        project_id=project_id,
        created_at=t,
        tool_resources=await resolve_tool_resources(session, project_id, body.tool_resources),
        metadata_=body.metadata or {},
    )
    session.add(thread)
    await session.flush()  # the thread row first: messages reference it
    # Messages in request order; seq keeps that order even within one second.
    session.add_all([build_message(project_id, thread.id, m, t) for m in body.messages])
    await session.flush()
    await attach_to_thread_store(session, project_id, thread, file_search_attachments(body.messages))
    return thread


async def get_thread(session: AsyncSession, project_id: str, thread_id: str) -> Thread:
    check_id("thread", thread_id, "thread_id")
    return or_404(await ThreadRepository(session, project_id).get(thread_id), "thread", thread_id)


async def retrieve_thread(session: AsyncSession, project_id: str, thread_id: str) -> Any:
    """Read-only row for GET."""
    check_id("thread", thread_id, "thread_id")
    return or_404(await ThreadRepository(session, project_id).get_row(thread_id), "thread", thread_id)


_LOCK_THREAD = (
    select(Thread.seq)
    .where(Thread.id == bindparam("thread_id"), Thread.project_id == bindparam("project_id"))
    .with_for_update()
)


async def require_thread(session: AsyncSession, project_id: str, thread_id: str, *, lock: bool = False) -> None:
    """404 unless the thread exists in this project (an index probe, nothing loaded).

    ``lock``: on PostgreSQL the same probe locks the thread's row until the transaction ends, which
    serialises run and message creation per thread (SQLite's writers are serial already)."""
    check_id("thread", thread_id, "thread_id")
    if lock and session.bind is not None and session.bind.dialect.name == "postgresql":
        found = await session.scalar(_LOCK_THREAD, {"thread_id": thread_id, "project_id": project_id}) is not None
    else:
        found = await ThreadRepository(session, project_id).exists(thread_id)
    if not found:
        raise not_found("thread", thread_id)


async def modify_thread(session: AsyncSession, project_id: str, thread_id: str, body: ModifyThreadRequest) -> Thread:
    row = await get_thread(session, project_id, thread_id)
    given = body.model_fields_set
    if "tool_resources" in given:
        await check_tool_resources(session, project_id, body.tool_resources)
        row.tool_resources = tool_resources_to_object(body.tool_resources)
    if "metadata" in given:
        row.metadata_ = body.metadata or {}
    await session.flush()
    return row


async def delete_thread(session: AsyncSession, project_id: str, thread_id: str) -> list[str]:
    """Delete the thread and everything in it; the ids of its runs that had not ended."""
    check_id("thread", thread_id, "thread_id")
    repo = ThreadRepository(session, project_id)
    active = await repo.active_run_ids(thread_id)
    if not await repo.delete_by_id(thread_id):
        raise not_found("thread", thread_id)
    await MessageRepository(session, project_id, thread_id).delete_all()
    return active


async def list_threads(session: AsyncSession, project_id: str, query: ListQuery, metadata: dict[str, str]) -> Page[Any]:
    if len(metadata) > METADATA_MAX_PAIRS:
        raise InvalidRequestError(
            f"Invalid 'metadata': at most {METADATA_MAX_PAIRS} metadata filters are allowed.",
            param="metadata",
        )
    for k, v in metadata.items():
        if not k or len(k) > METADATA_MAX_KEY or len(v) > METADATA_MAX_VALUE:
            raise InvalidRequestError(
                f"Invalid 'metadata[{k[:80]}]': keys must be 1-{METADATA_MAX_KEY} characters and values at most "
                f"{METADATA_MAX_VALUE}.",
                param=f"metadata[{k[:80]}]",
                code="invalid_value",
            )
    return await ThreadRepository(session, project_id).list_matching(query, metadata)
