"""POST /vector_stores/{id}/search: validate, search (retrieval/search.py), mark the store active."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistd.retrieval.search import SearchHit, search_stores
from assistd.vector_stores import service
from assistd.vector_stores.protocol import VectorStoreSearchRequest

if TYPE_CHECKING:
    from assistd.state import AppState


async def search_vector_store(
    state: AppState, project_id: str, store_id: str, body: VectorStoreSearchRequest
) -> tuple[list[str], list[SearchHit]]:
    """The query strings as searched (``rewrite_query`` is accepted; queries are used as given), and the hits."""
    async with state.db.session() as s:
        queries, stale = await service.check_search(s, project_id, store_id, body)
    hits = await search_stores(
        state,
        project_id,
        [store_id],
        queries,
        max_num_results=body.max_num_results,
        filters=body.filters,
        ranking_options=body.ranking_options.model_dump() if body.ranking_options else None,
    )
    if stale:
        async with state.db.session(write=True) as s:
            await service.touch(s, project_id, [store_id])
    return queries, hits
