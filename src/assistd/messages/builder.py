"""Message rows built from requests (shared by createMessage, createThread and, later, runs)."""

from __future__ import annotations

from assistd.ids import new_id
from assistd.messages.protocol import CreateMessageRequest, content_to_object
from assistd.models import Message


def build_message(project_id: str, thread_id: str, req: CreateMessageRequest, created_at: int) -> Message:
    """A user-supplied message row (status completed: it needs no generation)."""
    return Message(
        id=new_id("message"),
        project_id=project_id,
        created_at=created_at,
        thread_id=thread_id,
        role=req.role,
        content=content_to_object(req.content),
        attachments=[
            {"file_id": a.file_id, "tools": [{"type": t.type} for t in a.tools]} for a in req.attachments or []
        ],
        metadata_=req.metadata or {},
        status="completed",
        incomplete_details=None,
        completed_at=created_at,
        incomplete_at=None,
        assistant_id=None,
        run_id=None,
    )
