"""HTTP for /v1/vector_stores: parse, call the service, render.

The ``OpenAI-Beta`` header is accepted here but not required (vector stores went GA).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query

from assistd.deps import ProjectDep, ReadSessionDep, StateDep, WriteSessionDep
from assistd.http import JSONResponse, json_response
from assistd.listing import ListQueryDep
from assistd.pagination import list_object
from assistd.routing import api_router
from assistd.vector_stores import search as search_service
from assistd.vector_stores import service
from assistd.vector_stores.protocol import (
    CreateVectorStoreFileBatchRequest,
    CreateVectorStoreFileRequest,
    CreateVectorStoreRequest,
    UpdateVectorStoreFileAttributesRequest,
    UpdateVectorStoreRequest,
    VectorStoreSearchRequest,
    batch_to_object,
    file_to_object,
    to_object,
)

router = api_router(tags=["Vector stores"])

POLL_AFTER_MS = "200"  # steer the SDKs' poll helpers (Python defaults to 1 s, Node to 5 s)
StatusFilter = Annotated[Literal["in_progress", "completed", "failed", "cancelled"] | None, Query()]


def _store(v: service.StoreView) -> dict[str, object]:
    return to_object(v.row, v.counts, v.usage_bytes)


@router.post("/vector_stores", operation_id="createVectorStore")
async def create_vector_store(
    body: CreateVectorStoreRequest, session: WriteSessionDep, project: ProjectDep
) -> JSONResponse:
    """Create a vector store; ``file_ids`` are ingested in the background."""
    return json_response(_store(await service.create_vector_store(session, project, body)))


@router.get("/vector_stores", operation_id="listVectorStores")
async def list_vector_stores(query: ListQueryDep, session: ReadSessionDep, project: ProjectDep) -> JSONResponse:
    """Returns a list of vector stores."""
    page, counts = await service.list_vector_stores(session, project, query)
    return json_response(list_object(page, lambda r: to_object(r, *counts[r.id])))


@router.get("/vector_stores/{vector_store_id}", operation_id="getVectorStore")
async def get_vector_store(vector_store_id: str, session: ReadSessionDep, project: ProjectDep) -> JSONResponse:
    """Retrieves a vector store."""
    return json_response(_store(await service.retrieve_vector_store(session, project, vector_store_id)))


@router.post("/vector_stores/{vector_store_id}", operation_id="modifyVectorStore")
async def modify_vector_store(
    vector_store_id: str, body: UpdateVectorStoreRequest, session: WriteSessionDep, project: ProjectDep
) -> JSONResponse:
    """Modifies a vector store (name, expires_after, metadata)."""
    return json_response(_store(await service.modify_vector_store(session, project, vector_store_id, body)))


@router.delete("/vector_stores/{vector_store_id}", operation_id="deleteVectorStore")
async def delete_vector_store(vector_store_id: str, session: WriteSessionDep, project: ProjectDep) -> JSONResponse:
    """Delete a vector store and its index (the Files are kept)."""
    await service.delete_vector_store(session, project, vector_store_id)
    return json_response({"id": vector_store_id, "object": "vector_store.deleted", "deleted": True})


# --- files -------------------------------------------------------------------------------------


@router.post("/vector_stores/{vector_store_id}/files", operation_id="createVectorStoreFile")
async def create_vector_store_file(
    vector_store_id: str, body: CreateVectorStoreFileRequest, session: WriteSessionDep, project: ProjectDep
) -> JSONResponse:
    """Attach a File to a vector store; it is ingested in the background (poll until not ``in_progress``)."""
    row = await service.create_vector_store_file(session, project, vector_store_id, body)
    return json_response(file_to_object(row))


@router.get("/vector_stores/{vector_store_id}/files", operation_id="listVectorStoreFiles")
async def list_vector_store_files(
    vector_store_id: str,
    query: ListQueryDep,
    session: ReadSessionDep,
    project: ProjectDep,
    filter: StatusFilter = None,
) -> JSONResponse:
    """Returns a list of vector store files, optionally only those with status ``filter``."""
    page = await service.list_vector_store_files(session, project, vector_store_id, query, filter)
    return json_response(list_object(page, file_to_object))


@router.get("/vector_stores/{vector_store_id}/files/{file_id}", operation_id="getVectorStoreFile")
async def get_vector_store_file(
    vector_store_id: str, file_id: str, session: ReadSessionDep, project: ProjectDep
) -> JSONResponse:
    """Retrieves a vector store file (``openai-poll-after-ms`` steers polling while in progress)."""
    row = await service.get_vector_store_file(session, project, vector_store_id, file_id)
    headers = {"openai-poll-after-ms": POLL_AFTER_MS} if row.status == "in_progress" else None
    return json_response(file_to_object(row), headers=headers)


@router.post("/vector_stores/{vector_store_id}/files/{file_id}", operation_id="updateVectorStoreFileAttributes")
async def update_vector_store_file_attributes(
    vector_store_id: str,
    file_id: str,
    body: UpdateVectorStoreFileAttributesRequest,
    session: WriteSessionDep,
    project: ProjectDep,
) -> JSONResponse:
    """Replace a vector store file's attributes."""
    row = await service.update_vector_store_file_attributes(session, project, vector_store_id, file_id, body.attributes)
    return json_response(file_to_object(row))


@router.delete("/vector_stores/{vector_store_id}/files/{file_id}", operation_id="deleteVectorStoreFile")
async def delete_vector_store_file(
    vector_store_id: str, file_id: str, session: WriteSessionDep, project: ProjectDep
) -> JSONResponse:
    """Detach a file from the vector store (the File itself is kept)."""
    await service.delete_vector_store_file(session, project, vector_store_id, file_id)
    return json_response({"id": file_id, "object": "vector_store.file.deleted", "deleted": True})


@router.get("/vector_stores/{vector_store_id}/files/{file_id}/content", operation_id="retrieveVectorStoreFileContent")
async def retrieve_vector_store_file_content(
    vector_store_id: str, file_id: str, session: ReadSessionDep, project: ProjectDep
) -> JSONResponse:
    """The parsed text of a vector store file, by page."""
    pages = await service.vector_store_file_content(session, project, vector_store_id, file_id)
    return json_response(
        {
            "object": "vector_store.file_content.page",
            "data": [{"type": "text", "text": p} for p in pages],
            "has_more": False,
            "next_page": None,
        }
    )


# --- batches -----------------------------------------------------------------------------------


@router.post("/vector_stores/{vector_store_id}/file_batches", operation_id="createVectorStoreFileBatch")
async def create_vector_store_file_batch(
    vector_store_id: str, body: CreateVectorStoreFileBatchRequest, session: WriteSessionDep, project: ProjectDep
) -> JSONResponse:
    """Attach many Files at once (``file_ids`` or per-file ``files``)."""
    batch, counts = await service.create_file_batch(session, project, vector_store_id, body)
    return json_response(batch_to_object(batch, counts))


@router.get("/vector_stores/{vector_store_id}/file_batches/{batch_id}", operation_id="getVectorStoreFileBatch")
async def get_vector_store_file_batch(
    vector_store_id: str, batch_id: str, session: ReadSessionDep, project: ProjectDep
) -> JSONResponse:
    """Retrieves a file batch (``openai-poll-after-ms`` steers polling while in progress)."""
    batch, counts = await service.get_file_batch(session, project, vector_store_id, batch_id)
    obj = batch_to_object(batch, counts)
    headers = {"openai-poll-after-ms": POLL_AFTER_MS} if obj["status"] == "in_progress" else None
    return json_response(obj, headers=headers)


@router.post(
    "/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel", operation_id="cancelVectorStoreFileBatch"
)
async def cancel_vector_store_file_batch(
    vector_store_id: str, batch_id: str, session: WriteSessionDep, project: ProjectDep
) -> JSONResponse:
    """Cancel a batch: its files still in progress become ``cancelled``."""
    batch, counts = await service.cancel_file_batch(session, project, vector_store_id, batch_id)
    return json_response(batch_to_object(batch, counts))


@router.get(
    "/vector_stores/{vector_store_id}/file_batches/{batch_id}/files", operation_id="listFilesInVectorStoreBatch"
)
async def list_files_in_vector_store_batch(
    vector_store_id: str,
    batch_id: str,
    query: ListQueryDep,
    session: ReadSessionDep,
    project: ProjectDep,
    filter: StatusFilter = None,
) -> JSONResponse:
    """Returns the files of a batch, optionally only those with status ``filter``."""
    page = await service.list_files_in_batch(session, project, vector_store_id, batch_id, query, filter)
    return json_response(list_object(page, file_to_object))


# --- search ------------------------------------------------------------------------------------


@router.post("/vector_stores/{vector_store_id}/search", operation_id="searchVectorStore")
async def search_vector_store(
    vector_store_id: str, body: VectorStoreSearchRequest, state: StateDep, project: ProjectDep
) -> JSONResponse:
    """Hybrid (vector + keyword) search of a vector store's chunks, with attribute filters."""
    queries, hits = await search_service.search_vector_store(state, project, vector_store_id, body)
    return json_response(
        {
            "object": "vector_store.search_results.page",
            "search_query": queries,
            "data": [
                {
                    "file_id": h.file_id,
                    "filename": h.filename,
                    "score": h.score,
                    "attributes": h.attributes,
                    "content": [{"type": "text", "text": h.text}],
                }
                for h in hits
            ],
            "has_more": False,
            "next_page": None,
        }
    )
