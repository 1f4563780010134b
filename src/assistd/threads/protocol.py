"""Wire models for threads, named as the spec's components."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from assistd.messages.protocol import CreateMessageRequest
from assistd.models import Thread
from assistd.protocol import CreateToolResources, Metadata, StrictModel, ToolResources

MAX_INITIAL_MESSAGES = 100


class CreateThreadRequest(StrictModel):
    messages: list[CreateMessageRequest] = Field(default_factory=list, max_length=MAX_INITIAL_MESSAGES)
    tool_resources: CreateToolResources | None = None
    metadata: Metadata = None


class ModifyThreadRequest(StrictModel):
    tool_resources: ToolResources | None = None
    metadata: Metadata = None


def to_object(t: Thread) -> dict[str, Any]:
    """ThreadObject."""
    return {
        "id": t.id,
        "object": "thread",
        "created_at": t.created_at,
        "tool_resources": t.tool_resources,
        "metadata": t.metadata_,
    }
