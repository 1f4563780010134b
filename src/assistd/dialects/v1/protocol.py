"""Assistants v1 request bodies (the last v1 spec, April 2024), and their v2 translations.

v1 differs from v2 in: ``file_ids`` (assistant ≤ 20, message ≤ 10) instead of
``tool_resources`` / ``attachments``; the ``retrieval`` tool instead of ``file_search``; message
content is a string; no ``parallel_tool_calls``, ``reasoning_effort`` or ``include[]``. Bodies
reject unknown fields, so a v2-only field under v1 is the real API's ``Unknown parameter``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from assistd.protocol import (
    AssistantToolsCode,
    JSONObject,
    Metadata,
    ResponseFormat,
    StrictModel,
)
from assistd.runs.protocol import INT32_MAX, NamedFunction, TruncationObject

MAX_ASSISTANT_FILES = 20
MAX_MESSAGE_FILES = 10

# A v1 file given to a message: both tools may use it, as v1 promised (retrieval searches the
# messages' files; code_interpreter sees them in /mnt/data).
MESSAGE_FILE_TOOLS = [{"type": "code_interpreter"}, {"type": "file_search"}]


class AssistantToolsRetrieval(StrictModel):
    type: Literal["retrieval"]


class FunctionObject(StrictModel):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]+$", min_length=1, max_length=64)
    description: str | None = None
    parameters: JSONObject = None


class AssistantToolsFunction(StrictModel):
    type: Literal["function"]
    function: FunctionObject


Tool = Annotated[
    AssistantToolsCode | AssistantToolsRetrieval | AssistantToolsFunction,
    Field(discriminator="type"),
]


class NamedToolChoice(StrictModel):
    type: Literal["function", "code_interpreter", "retrieval"]
    function: NamedFunction | None = None


ToolChoice = Literal["none", "auto"] | NamedToolChoice


class CreateAssistantRequest(StrictModel):
    model: str = Field(min_length=1, max_length=256)
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    instructions: str | None = Field(default=None, max_length=256_000)
    tools: list[Tool] = Field(default_factory=list, max_length=128)
    file_ids: list[str] = Field(default_factory=list, max_length=MAX_ASSISTANT_FILES)
    metadata: Metadata = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    response_format: ResponseFormat | None = None


class ModifyAssistantRequest(StrictModel):
    model: str | None = Field(default=None, min_length=1, max_length=256)
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    instructions: str | None = Field(default=None, max_length=256_000)
    tools: list[Tool] | None = Field(default=None, max_length=128)
    file_ids: list[str] | None = Field(default=None, max_length=MAX_ASSISTANT_FILES)
    metadata: Metadata = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    response_format: ResponseFormat | None = None


class CreateAssistantFileRequest(StrictModel):
    file_id: str = Field(min_length=1)


class CreateMessageRequest(StrictModel):
    role: Literal["user", "assistant"]
    content: str = Field(min_length=1, max_length=256_000)
    file_ids: list[str] = Field(default_factory=list, max_length=MAX_MESSAGE_FILES)
    metadata: Metadata = None


class ModifyRequest(StrictModel):
    """modifyThread, modifyMessage and modifyRun: metadata only in v1."""

    metadata: Metadata = None


class CreateThreadRequest(StrictModel):
    messages: list[CreateMessageRequest] = Field(default_factory=list, max_length=100)
    metadata: Metadata = None


class _RunSettings(StrictModel):
    assistant_id: str
    model: str | None = Field(default=None, min_length=1, max_length=256)
    instructions: str | None = Field(default=None, max_length=256_000)
    tools: Annotated[list[Tool], Field(max_length=20)] | None = None
    metadata: Metadata = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stream: bool | None = None
    max_prompt_tokens: int | None = Field(default=None, ge=256, le=INT32_MAX)
    max_completion_tokens: int | None = Field(default=None, ge=256, le=INT32_MAX)
    truncation_strategy: TruncationObject | None = None
    tool_choice: ToolChoice | None = None
    response_format: ResponseFormat | None = None


class CreateRunRequest(_RunSettings):
    additional_instructions: str | None = Field(default=None, max_length=256_000)
    additional_messages: list[CreateMessageRequest] | None = None


class CreateThreadAndRunRequest(_RunSettings):
    thread: CreateThreadRequest | None = None


# --- v1 -> v2 (on the dumped bodies: plain JSON dicts) ----------------------------------------------


def dump(body: StrictModel) -> dict[str, Any]:
    """The fields the client sent, as JSON values (aliases as on the wire)."""
    return body.model_dump(mode="json", by_alias=True, exclude_unset=True)


def tool_v2(tool: dict[str, Any]) -> dict[str, Any]:
    return {"type": "file_search"} if tool["type"] == "retrieval" else tool


def tools_v2(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [tool_v2(t) for t in tools]


def message_v2(m: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in m.items() if k != "file_ids"}
    if m.get("file_ids"):
        out["attachments"] = [{"file_id": f, "tools": MESSAGE_FILE_TOOLS} for f in dict.fromkeys(m["file_ids"])]
    return out


def thread_v2(t: dict[str, Any]) -> dict[str, Any]:
    return {**t, "messages": [message_v2(m) for m in t.get("messages") or []]} if "messages" in t else t


def run_v2(body: _RunSettings) -> dict[str, Any]:
    """The createRun / createThreadAndRun body in v2 terms."""
    data = dump(body)
    if data.get("tools") is not None:
        data["tools"] = tools_v2(data["tools"])
    choice = data.get("tool_choice")
    if isinstance(choice, dict) and choice["type"] == "retrieval":
        data["tool_choice"] = {**choice, "type": "file_search"}
    if data.get("additional_messages") is not None:
        data["additional_messages"] = [message_v2(m) for m in data["additional_messages"]]
    if data.get("thread") is not None:
        data["thread"] = thread_v2(data["thread"])
    return data


def message_file_refs(messages: list[CreateMessageRequest], prefix: str) -> list[tuple[str, str]]:
    """``(param, file_id)`` of every message file, named as in the v1 request."""
    return [(f"{prefix}[{j}].file_ids[{i}]", f) for j, m in enumerate(messages) for i, f in enumerate(m.file_ids)]
