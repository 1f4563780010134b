"""Checks on ids: path ids must carry their prefix; ids in bodies must name the caller's objects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from assistd.errors import InvalidRequestError, NotFoundError, invalid_id
from assistd.ids import PREFIXES
from assistd.models import File
from assistd.protocol import CreateToolResources, ToolResources
from assistd.timeutil import now

T = TypeVar("T")

_WORDS = {
    "assistant": "asst",
    "thread": "thread",
    "message": "msg",
    "run": "run",
    "step": "step",
    "file": "file",
    "vector_store": "vs",
    "file_batch": "vsfb",
    "upload": "upload",
    "part": "part",
}


def check_id(kind: str, value: str, param: str) -> None:
    """400 ``Invalid 'thread_id': 'x'. Expected an ID that begins with 'thread'.`` on a wrong prefix."""
    if not value.startswith(PREFIXES[kind]):
        raise invalid_id(param, value, _WORDS[kind])


def not_found(kind: str, object_id: str) -> NotFoundError:
    """404 in the real API's words."""
    if kind == "file":
        return NotFoundError(f"No such File object: {object_id}", param="id")
    if kind == "upload":
        return NotFoundError(f"No such Upload object: {object_id}", param="upload_id")
    return NotFoundError(f"No {kind.replace('_', ' ')} found with id '{object_id}'.")


def or_404(row: T | None, kind: str, object_id: str) -> T:
    """``row``, or the real API's 404 for ``kind``."""
    if row is None:
        raise not_found(kind, object_id)
    return row


async def require_files(session: AsyncSession, project_id: str, refs: Sequence[tuple[str, str]]) -> None:
    """Every ``(param, file_id)`` must name a live File of this project (one query for all)."""
    if not refs:
        return
    ids = {fid for _, fid in refs}
    t = now()
    found = set(
        await session.scalars(
            select(File.id).where(
                File.id.in_(ids),
                File.project_id == project_id,
                (File.expires_at.is_(None)) | (File.expires_at > t),
            )
        )
    )
    for param, fid in refs:
        if fid not in found:
            raise InvalidRequestError(f"No file found with id '{fid}'.", param=param, code="invalid_value")


async def check_tool_resources(
    session: AsyncSession,
    project_id: str,
    res: ToolResources | CreateToolResources | None,
    prefix: str = "tool_resources",
) -> None:
    if res is None:
        return
    if res.code_interpreter is not None:
        await require_files(
            session,
            project_id,
            [(f"{prefix}.code_interpreter.file_ids[{i}]", fid) for i, fid in enumerate(res.code_interpreter.file_ids)],
        )
    if res.file_search is not None:
        from assistd.vector_stores.helpers import check_file_search_resources  # (imports this module)

        await check_file_search_resources(session, project_id, res, prefix)
