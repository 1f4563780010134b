"""Wire models for messages, named as the spec's components."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from assistd.models import Message
from assistd.protocol import (
    AttachmentTool,
    Metadata,
    StrictModel,
    api_error,
    is_supported_image_url,
)

Detail = Literal["auto", "low", "high"]


class MessageRequestContentTextObject(StrictModel):
    type: Literal["text"]
    text: str = Field(min_length=1)


class ImageFile(StrictModel):
    file_id: str = Field(min_length=1)
    detail: Detail = "auto"


class MessageContentImageFileObject(StrictModel):
    type: Literal["image_file"]
    image_file: ImageFile


class ImageUrl(StrictModel):
    url: str = Field(min_length=1)
    detail: Detail = "auto"

    @field_validator("url")
    @classmethod
    def _http_or_data(cls, v: str) -> str:
        if not is_supported_image_url(v):
            raise api_error(
                f"Invalid image URL: '{v[:100]}'. Expected an http(s) URL or a base64 data URL.",
                "invalid_value",
            )
        return v


class MessageContentImageUrlObject(StrictModel):
    type: Literal["image_url"]
    image_url: ImageUrl


ContentPart = Annotated[
    MessageRequestContentTextObject | MessageContentImageFileObject | MessageContentImageUrlObject,
    Field(discriminator="type"),
]


class Attachment(StrictModel):
    file_id: str = Field(min_length=1)
    tools: list[AttachmentTool]


class CreateMessageRequest(StrictModel):
    role: Literal["user", "assistant"]
    content: Annotated[str, Field(min_length=1)] | Annotated[list[ContentPart], Field(min_length=1)]
    attachments: list[Attachment] | None = None
    metadata: Metadata = None


class ModifyMessageRequest(StrictModel):
    metadata: Metadata = None


def content_to_object(content: str | list[Any]) -> list[dict[str, Any]]:
    """Request content (string or parts) -> stored MessageObject content parts."""
    if isinstance(content, str):
        return [{"type": "text", "text": {"value": content, "annotations": []}}]
    out: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, MessageRequestContentTextObject):
            out.append({"type": "text", "text": {"value": part.text, "annotations": []}})
        elif isinstance(part, MessageContentImageFileObject):
            out.append({"type": "image_file", "image_file": part.image_file.model_dump()})
        else:
            out.append({"type": "image_url", "image_url": part.image_url.model_dump()})
    return out


def file_refs(req: CreateMessageRequest, prefix: str = "") -> list[tuple[str, str]]:
    """``(param, file_id)`` for every File the message names."""
    refs: list[tuple[str, str]] = []
    if isinstance(req.content, list):
        for i, part in enumerate(req.content):
            if isinstance(part, MessageContentImageFileObject):
                refs.append(
                    (
                        f"{prefix}content[{i}].image_file.file_id",
                        part.image_file.file_id,
                    )
                )
    for i, att in enumerate(req.attachments or []):
        refs.append((f"{prefix}attachments[{i}].file_id", att.file_id))
    return refs


def to_object(m: Message, *, quotes: bool = False) -> dict[str, Any]:
    """MessageObject. A stored ``file_citation`` keeps the cited passage as ``quote``, which v2's
    message object no longer has (only its delta schema lists it): it is left out unless
    ``quotes`` (the Assistants v1 dialect, whose citations show it)."""
    return {
        "id": m.id,
        "object": "thread.message",
        "created_at": m.created_at,
        "thread_id": m.thread_id,
        "status": m.status,
        "incomplete_details": m.incomplete_details,
        "completed_at": m.completed_at,
        "incomplete_at": m.incomplete_at,
        "role": m.role,
        "content": m.content if quotes else without_quotes(m.content),
        "assistant_id": m.assistant_id,
        "run_id": m.run_id,
        "attachments": m.attachments if m.attachments is not None else [],
        "metadata": m.metadata_,
    }


def without_quotes(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Message content with each ``file_citation`` as v2 shows it: its ``file_id`` alone."""
    if not any(part.get("type") == "text" and part["text"].get("annotations") for part in content):
        return content  # the common case: nothing to copy
    return [_part_without_quotes(part) for part in content]


def _part_without_quotes(part: dict[str, Any]) -> dict[str, Any]:
    if part.get("type") != "text" or not part["text"].get("annotations"):
        return part
    annotations = [
        {**a, "file_citation": {"file_id": a["file_citation"]["file_id"]}} if a.get("type") == "file_citation" else a
        for a in part["text"]["annotations"]
    ]
    return {**part, "text": {**part["text"], "annotations": annotations}}
