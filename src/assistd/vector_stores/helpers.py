"""Vector stores made on the caller's behalf.

- ``tool_resources.file_search.vector_stores`` on create assistant / create thread /
  createThreadAndRun: a store is created with the helper's ``file_ids``, ``chunking_strategy`` and
  ``metadata``, and its id becomes ``vector_store_ids``.
- A message attachment with the ``file_search`` tool adds its File to the thread's store,
  creating that store (expiring after 7 days of inactivity) when the thread has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from assistd.errors import InvalidRequestError
from assistd.models import Thread
from assistd.protocol import CreateToolResources, ToolResources, tool_resources_to_object
from assistd.references import check_id, require_files
from assistd.vector_stores.service import (
    HELPER_EXPIRES_AFTER,
    attach_files,
    existing_store_ids,
    new_store,
)


async def check_file_search_resources(
    session: AsyncSession, project_id: str, res: ToolResources | CreateToolResources | None, prefix: str
) -> None:
    """``vector_store_ids`` name this project's stores; the helper's files exist; not both given."""
    fs = res.file_search if res is not None else None
    if fs is None:
        return
    helper = getattr(fs, "vector_stores", None)
    if fs.vector_store_ids and helper:
        raise InvalidRequestError(
            f"Invalid '{prefix}.file_search': provide either 'vector_store_ids' or 'vector_stores', not both.",
            param=f"{prefix}.file_search",
            code="invalid_value",
        )
    ids = fs.vector_store_ids or []
    for i, vs in enumerate(ids):
        check_id("vector_store", vs, f"{prefix}.file_search.vector_store_ids[{i}]")
    if ids:
        found = await existing_store_ids(session, project_id, ids)
        for i, vs in enumerate(ids):
            if vs not in found:
                raise InvalidRequestError(
                    f"No vector store found with id '{vs}'.",
                    param=f"{prefix}.file_search.vector_store_ids[{i}]",
                    code="invalid_value",
                )
    for j, h in enumerate(helper or []):
        await require_files(
            session,
            project_id,
            [(f"{prefix}.file_search.vector_stores[{j}].file_ids[{i}]", fid) for i, fid in enumerate(h.file_ids)],
        )


async def resolve_tool_resources(
    session: AsyncSession, project_id: str, res: ToolResources | CreateToolResources | None
) -> dict[str, Any]:
    """The stored ``tool_resources``, after creating the store a ``vector_stores`` helper asks for."""
    out = tool_resources_to_object(res)
    helper = getattr(res.file_search, "vector_stores", None) if res is not None and res.file_search else None
    if helper:
        h = helper[0]
        store = await new_store(
            session,
            project_id,
            metadata=h.metadata,
            file_ids=h.file_ids,
            chunking_strategy=h.chunking_strategy,
        )
        out["file_search"] = {"vector_store_ids": [store.id]}
    return out


async def attach_to_thread_store(
    session: AsyncSession, project_id: str, thread: Thread, file_ids: Sequence[str]
) -> None:
    """Files attached to messages for ``file_search`` join the thread's store (made if missing)."""
    if not file_ids:
        return
    ids = list(dict.fromkeys(file_ids))
    current = ((thread.tool_resources or {}).get("file_search") or {}).get("vector_store_ids") or []
    live = await existing_store_ids(session, project_id, current) if current else set()
    if current and current[0] in live:
        await attach_files(session, project_id, current[0], [(fid, None, None) for fid in ids])
        return
    store = await new_store(session, project_id, expires_after=dict(HELPER_EXPIRES_AFTER), file_ids=ids)
    resources = dict(thread.tool_resources or {})
    resources["file_search"] = {"vector_store_ids": [store.id]}
    thread.tool_resources = resources
    await session.flush()


def file_search_attachments(messages: Sequence[Any]) -> list[str]:
    """File ids of attachments carrying the ``file_search`` tool, in order."""
    out: list[str] = []
    for m in messages:
        for a in getattr(m, "attachments", None) or []:
            if any(t.type == "file_search" for t in a.tools):
                out.append(a.file_id)
    return out
