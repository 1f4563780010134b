"""Wire models for /assistants, named as the spec's components."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from assistd.models import Assistant
from assistd.protocol import (
    AssistantTool,
    CreateToolResources,
    Metadata,
    ReasoningEffort,
    ResponseFormat,
    StrictModel,
    ToolResources,
)

MAX_TOOLS = 128


class CreateAssistantRequest(StrictModel):
    model: str = Field(min_length=1, max_length=256)
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    instructions: str | None = Field(default=None, max_length=256_000)
    reasoning_effort: ReasoningEffort | None = None
    tools: list[AssistantTool] = Field(default_factory=list, max_length=MAX_TOOLS)
    tool_resources: CreateToolResources | None = None
    metadata: Metadata = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    response_format: ResponseFormat | None = None


class ModifyAssistantRequest(StrictModel):
    model: str | None = Field(default=None, min_length=1, max_length=256)
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    instructions: str | None = Field(default=None, max_length=256_000)
    reasoning_effort: ReasoningEffort | None = None
    tools: list[AssistantTool] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_resources: ToolResources | None = None
    metadata: Metadata = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    response_format: ResponseFormat | None = None


def to_object(a: Assistant) -> dict[str, Any]:
    """AssistantObject."""
    return {
        "id": a.id,
        "object": "assistant",
        "created_at": a.created_at,
        "name": a.name,
        "description": a.description,
        "model": a.model,
        "instructions": a.instructions,
        "tools": a.tools,
        "tool_resources": a.tool_resources,
        "metadata": a.metadata_,
        "temperature": a.temperature,
        "top_p": a.top_p,
        "response_format": a.response_format if a.response_format is not None else "auto",
    }
