"""v1 ``file_ids`` on assistants, kept in their v2 tool resources (OpenAI's April 2024 mapping).

Writing (a v1 create/modify, or an assistant file added or removed), with ``F`` the v1 list:
- ``tool_resources.code_interpreter.file_ids`` holds ``F`` when the assistant has
  code_interpreter, or has no retrieval (so the files are never dropped);
- its file_search vector store holds ``F`` when it has retrieval (a store is made for it when it
  has none) or already has a store (kept in step, so both views agree).

Reading: ``file_ids`` is the union, in order, of the code_interpreter files and the files of the
assistant's vector store, so a v2 assistant reads through v1 with the files its resources name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from assistd.assistants.repository import AssistantRepository
from assistd.files.repository import FileRepository
from assistd.models import Assistant
from assistd.vector_stores.repository import store_file_ids
from assistd.vector_stores.service import attach_files, delete_vector_store_file, existing_store_ids, new_store


def _ci(resources: dict[str, Any] | None) -> list[str]:
    return list(((resources or {}).get("code_interpreter") or {}).get("file_ids") or [])


def _stores(resources: dict[str, Any] | None) -> list[str]:
    return list(((resources or {}).get("file_search") or {}).get("vector_store_ids") or [])


async def derived_file_ids(
    session: AsyncSession, project_id: str, resources: Sequence[dict[str, Any] | None]
) -> list[list[str]]:
    """The v1 ``file_ids`` of each of several tool resources (one query for all their stores)."""
    by_store = await store_file_ids(session, project_id, [s for r in resources for s in _stores(r)])
    return [list(dict.fromkeys(_ci(r) + [f for s in _stores(r) for f in by_store.get(s, [])])) for r in resources]


async def assistant_file_ids(
    session: AsyncSession, project_id: str, assistant_ids: Sequence[str]
) -> dict[str, list[str]]:
    """``{assistant_id: file_ids}`` (runs carry their assistant's); a deleted assistant has none."""
    found = await AssistantRepository(session, project_id).tool_resources_of(assistant_ids)
    ids = list(found)
    return dict(zip(ids, await derived_file_ids(session, project_id, [found[i] for i in ids]), strict=True))


def create_resources(file_ids: list[str], tools: list[dict[str, Any]]) -> dict[str, Any] | None:
    """``tool_resources`` (create form, with the store helper) for a new v1 assistant's files."""
    if not file_ids:
        return None
    kinds = {t["type"] for t in tools}
    out: dict[str, Any] = {}
    if "code_interpreter" in kinds or "file_search" not in kinds:
        out["code_interpreter"] = {"file_ids": file_ids}
    if "file_search" in kinds:
        out["file_search"] = {"vector_stores": [{"file_ids": file_ids}]}
    return out


async def set_file_ids(session: AsyncSession, project_id: str, row: Assistant, file_ids: list[str]) -> None:
    """Make the assistant's resources hold exactly ``file_ids`` (see the module docstring)."""
    live = await FileRepository(session, project_id).created_at_of(file_ids)  # (callers checked theirs)
    file_ids = [f for f in dict.fromkeys(file_ids) if f in live]
    kinds = {t["type"] for t in row.tools}
    resources = dict(row.tool_resources or {})
    if "code_interpreter" in kinds or "file_search" not in kinds:
        resources["code_interpreter"] = {"file_ids": file_ids}
    elif "code_interpreter" in resources:
        resources["code_interpreter"] = {"file_ids": []}
    stores = _stores(resources)
    live_stores = await existing_store_ids(session, project_id, stores[:1]) if stores else set()
    if stores and stores[0] in live_stores:
        await _sync_store(session, project_id, stores[0], file_ids)
    elif "file_search" in kinds and file_ids:
        store = await new_store(session, project_id, file_ids=file_ids)
        resources["file_search"] = {"vector_store_ids": [store.id]}
    row.tool_resources = resources
    await session.flush()


async def _sync_store(session: AsyncSession, project_id: str, store_id: str, file_ids: list[str]) -> None:
    current = (await store_file_ids(session, project_id, [store_id])).get(store_id, [])
    missing = [f for f in file_ids if f not in current]
    if missing:
        await attach_files(session, project_id, store_id, [(f, None, None) for f in missing])
    for f in current:
        if f not in file_ids:
            await delete_vector_store_file(session, project_id, store_id, f)
