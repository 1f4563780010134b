"""Assistants: create, list, get, modify, delete."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from assistd.assistants.protocol import CreateAssistantRequest, ModifyAssistantRequest
from assistd.assistants.repository import AssistantRepository
from assistd.ids import new_id
from assistd.models import Assistant
from assistd.pagination import ListQuery, Page
from assistd.protocol import (
    response_format_to_object,
    tool_resources_to_object,
    tool_to_object,
)
from assistd.references import check_id, check_tool_resources, not_found, or_404
from assistd.timeutil import now
from assistd.vector_stores.helpers import resolve_tool_resources


async def create_assistant(session: AsyncSession, project_id: str, body: CreateAssistantRequest) -> Assistant:
    await check_tool_resources(session, project_id, body.tool_resources)
    row = Assistant(
        id=new_id("assistant"),
        project_id=project_id,
        created_at=now(),
        name=body.name,
        description=body.description,
        model=body.model,
        instructions=body.instructions,
        tools=[tool_to_object(t) for t in body.tools],
        tool_resources=await resolve_tool_resources(session, project_id, body.tool_resources),
        metadata_=body.metadata or {},
        temperature=body.temperature if body.temperature is not None else 1.0,
        top_p=body.top_p if body.top_p is not None else 1.0,
        response_format=response_format_to_object(body.response_format),
        reasoning_effort=body.reasoning_effort,
    )
    AssistantRepository(session, project_id).add(row)
    await session.flush()
    return row


async def get_assistant(session: AsyncSession, project_id: str, assistant_id: str) -> Assistant:
    check_id("assistant", assistant_id, "assistant_id")
    return or_404(await AssistantRepository(session, project_id).get(assistant_id), "assistant", assistant_id)


async def retrieve_assistant(session: AsyncSession, project_id: str, assistant_id: str) -> Any:
    """Read-only row for GET (lighter than the ORM entity)."""
    check_id("assistant", assistant_id, "assistant_id")
    return or_404(await AssistantRepository(session, project_id).get_row(assistant_id), "assistant", assistant_id)


async def list_assistants(session: AsyncSession, project_id: str, query: ListQuery) -> Page[Any]:
    return await AssistantRepository(session, project_id).list(query)


async def modify_assistant(
    session: AsyncSession,
    project_id: str,
    assistant_id: str,
    body: ModifyAssistantRequest,
) -> Assistant:
    row = await get_assistant(session, project_id, assistant_id)
    given = body.model_fields_set
    if "tool_resources" in given:
        await check_tool_resources(session, project_id, body.tool_resources)
        row.tool_resources = tool_resources_to_object(body.tool_resources)
    if "model" in given and body.model is not None:
        row.model = body.model
    for field in ("name", "description", "instructions", "reasoning_effort"):
        if field in given:
            setattr(row, field, getattr(body, field))
    if "tools" in given:
        row.tools = [tool_to_object(t) for t in body.tools or []]
    if "metadata" in given:
        row.metadata_ = body.metadata or {}
    if "temperature" in given:
        row.temperature = body.temperature if body.temperature is not None else 1.0
    if "top_p" in given:
        row.top_p = body.top_p if body.top_p is not None else 1.0
    if "response_format" in given:
        row.response_format = response_format_to_object(body.response_format)
    await session.flush()
    return row


async def delete_assistant(session: AsyncSession, project_id: str, assistant_id: str) -> None:
    check_id("assistant", assistant_id, "assistant_id")
    if not await AssistantRepository(session, project_id).delete_by_id(assistant_id):
        raise not_found("assistant", assistant_id)
