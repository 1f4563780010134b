"""Messages: create, list (with ``run_id``), get, modify, delete."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from assistd.errors import InvalidRequestError
from assistd.messages.builder import build_message
from assistd.messages.protocol import (
    CreateMessageRequest,
    ModifyMessageRequest,
    file_refs,
)
from assistd.messages.repository import MessageRepository
from assistd.models import Message
from assistd.pagination import ListQuery, Page
from assistd.references import check_id, not_found, require_files
from assistd.runs.repository import RunRepository
from assistd.threads.service import get_thread, require_thread
from assistd.timeutil import now
from assistd.vector_stores.helpers import attach_to_thread_store, file_search_attachments


async def create_message(session: AsyncSession, project_id: str, thread_id: str, body: CreateMessageRequest) -> Message:
    # PostgreSQL: the thread's row lock orders this against run creation (no message slips in
    # beside a starting run) and against other messages (created_at follows list order).
    await require_thread(session, project_id, thread_id, lock=True)
    active = await RunRepository(session, project_id, thread_id).active()
    if active is not None:
        raise InvalidRequestError(f"Can't add messages to {thread_id} while a run {active} is active.")
    await require_files(session, project_id, file_refs(body))
    row = build_message(project_id, thread_id, body, now())
    session.add(row)
    await session.flush()
    attached = file_search_attachments([body])
    if attached:  # the thread's vector store gets them (made if the thread has none)
        thread = await get_thread(session, project_id, thread_id)
        await attach_to_thread_store(session, project_id, thread, attached)
    return row


async def list_messages(
    session: AsyncSession,
    project_id: str,
    thread_id: str,
    query: ListQuery,
    run_id: str | None,
) -> Page[Any]:
    check_id("thread", thread_id, "thread_id")
    repo = MessageRepository(session, project_id, thread_id)
    # Messages carry their thread's project, so a non-empty page proves the thread is the
    # caller's; only an empty page needs the thread looked up (for its 404).
    eq = {"run_id": run_id} if run_id else None
    return await repo.list(query, eq=eq, on_empty=lambda: require_thread(session, project_id, thread_id))


async def get_message(session: AsyncSession, project_id: str, thread_id: str, message_id: str) -> Message:
    check_id("thread", thread_id, "thread_id")
    check_id("message", message_id, "message_id")
    row = await MessageRepository(session, project_id, thread_id).get(message_id)
    if row is None:
        # Distinguish a missing thread from a missing message, as the real API did.
        await require_thread(session, project_id, thread_id)
        raise not_found("message", message_id)
    return row


async def retrieve_message(session: AsyncSession, project_id: str, thread_id: str, message_id: str) -> Any:
    """Read-only row for GET."""
    check_id("thread", thread_id, "thread_id")
    check_id("message", message_id, "message_id")
    row = await MessageRepository(session, project_id, thread_id).get_row(message_id)
    if row is None:
        await require_thread(session, project_id, thread_id)
        raise not_found("message", message_id)
    return row


async def modify_message(
    session: AsyncSession,
    project_id: str,
    thread_id: str,
    message_id: str,
    body: ModifyMessageRequest,
) -> Message:
    row = await get_message(session, project_id, thread_id, message_id)
    if "metadata" in body.model_fields_set:
        row.metadata_ = body.metadata or {}
    await session.flush()
    return row


async def delete_message(session: AsyncSession, project_id: str, thread_id: str, message_id: str) -> None:
    check_id("thread", thread_id, "thread_id")
    check_id("message", message_id, "message_id")
    if not await MessageRepository(session, project_id, thread_id).delete_by_id(message_id):
        await require_thread(session, project_id, thread_id)
        raise not_found("message", message_id)
