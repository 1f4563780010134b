"""Wire models for runs and run steps, named as the spec's components."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from assistd.messages.protocol import CreateMessageRequest
from assistd.models import Run, RunStep
from assistd.protocol import (
    AssistantTool,
    CreateToolResources,
    Metadata,
    ReasoningEffort,
    ResponseFormat,
    StrictModel,
)
from assistd.threads.protocol import CreateThreadRequest

MAX_RUN_TOOLS = 20
INCLUDE_FILE_SEARCH_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


class TruncationObject(StrictModel):
    type: Literal["auto", "last_messages"]
    last_messages: int | None = Field(default=None, ge=1)


class NamedFunction(StrictModel):
    name: str


class AssistantsNamedToolChoice(StrictModel):
    type: Literal["function", "code_interpreter", "file_search"]
    function: NamedFunction | None = None


ToolChoice = Literal["none", "auto", "required"] | AssistantsNamedToolChoice


INT32_MAX = 2**31 - 1


class _RunSettings(StrictModel):
    """Fields createRun and createThreadAndRun share."""

    assistant_id: str
    model: str | None = Field(default=None, min_length=1, max_length=256)
    instructions: str | None = Field(default=None, max_length=256_000)
    tools: Annotated[list[AssistantTool], Field(max_length=MAX_RUN_TOOLS)] | None = None
    metadata: Metadata = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stream: bool | None = None
    # the spec sets no maximum; a run stores them as 32-bit integers (more than any context window)
    max_prompt_tokens: int | None = Field(default=None, ge=256, le=INT32_MAX)
    max_completion_tokens: int | None = Field(default=None, ge=256, le=INT32_MAX)
    truncation_strategy: TruncationObject | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool = True
    response_format: ResponseFormat | None = None


class CreateRunRequest(_RunSettings):
    reasoning_effort: ReasoningEffort | None = None
    additional_instructions: str | None = Field(default=None, max_length=256_000)
    additional_messages: list[CreateMessageRequest] | None = None


class CreateThreadAndRunRequest(_RunSettings):
    thread: CreateThreadRequest | None = None
    tool_resources: CreateToolResources | None = None


class ToolOutput(StrictModel):
    tool_call_id: str
    output: str


class SubmitToolOutputsRunRequest(StrictModel):
    tool_outputs: list[ToolOutput]
    stream: bool | None = None


class ModifyRunRequest(StrictModel):
    metadata: Metadata = None


def usage_object(u: dict[str, Any] | None) -> dict[str, int] | None:
    if u is None:
        return None
    p, c = int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0))
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def to_object(r: Run) -> dict[str, Any]:
    """RunObject."""
    return {
        "id": r.id,
        "object": "thread.run",
        "created_at": r.created_at,
        "thread_id": r.thread_id,
        "assistant_id": r.assistant_id,
        "status": r.status,
        "required_action": r.required_action,
        "last_error": r.last_error,
        "expires_at": r.expires_at,
        "started_at": r.started_at,
        "cancelled_at": r.cancelled_at,
        "failed_at": r.failed_at,
        "completed_at": r.completed_at,
        "incomplete_details": r.incomplete_details,
        "model": r.model,
        "instructions": r.instructions,
        "tools": r.tools,
        "metadata": r.metadata_,
        "usage": usage_object(r.usage)
        if r.status in ("completed", "incomplete", "failed", "cancelled", "expired")
        else None,
        "temperature": r.temperature,
        "top_p": r.top_p,
        "max_prompt_tokens": r.max_prompt_tokens,
        "max_completion_tokens": r.max_completion_tokens,
        "truncation_strategy": r.truncation_strategy,
        "tool_choice": r.tool_choice,
        "parallel_tool_calls": r.parallel_tool_calls,
        "response_format": r.response_format,
    }


def step_details_object(details: dict[str, Any], include_content: bool) -> dict[str, Any]:
    """``step_details`` as clients see them: built-in calls lose the executor's private ``_model``
    record, and file_search results their ``content`` unless ``include[]`` asked for it."""
    if details.get("type") != "tool_calls" or not any(c["type"] != "function" for c in details["tool_calls"]):
        return details
    calls = []
    for c in details["tool_calls"]:
        if c["type"] == "function":
            calls.append(c)
            continue
        c = {k: v for k, v in c.items() if k != "_model"}
        fs = c.get("file_search")
        if fs is not None and not include_content and fs.get("results"):
            c["file_search"] = {
                **fs,
                "results": [{k: v for k, v in r.items() if k != "content"} for r in fs["results"]],
            }
        calls.append(c)
    return {"type": "tool_calls", "tool_calls": calls}


def step_to_object(s: RunStep, include_content: bool = False) -> dict[str, Any]:
    """RunStepObject."""
    return {
        "id": s.id,
        "object": "thread.run.step",
        "created_at": s.created_at,
        "assistant_id": s.assistant_id,
        "thread_id": s.thread_id,
        "run_id": s.run_id,
        "type": s.type,
        "status": s.status,
        "step_details": step_details_object(s.step_details, include_content),
        "last_error": s.last_error,
        "expired_at": s.expired_at,
        "cancelled_at": s.cancelled_at,
        "failed_at": s.failed_at,
        "completed_at": s.completed_at,
        "metadata": s.metadata_,
        "usage": usage_object(s.usage) if s.status != "in_progress" else None,
    }
