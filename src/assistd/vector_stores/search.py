"""POST /vector_stores/{id}/search: validate, search (retrieval/search.py), mark the store active."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistd.errors import InvalidRequestError, PartUnavailableError
from assistd.references import check_id, not_found
from assistd.retrieval.embeddings import EmbedderError
from assistd.retrieval.search import SearchHit, StoreRef, search_stores
from assistd.timeutil import now
from assistd.vector_stores import service
from assistd.vector_stores.protocol import VectorStoreSearchRequest

if TYPE_CHECKING:
    from assistd.state import AppState


async def search_vector_store(
    state: AppState, project_id: str, store_id: str, body: VectorStoreSearchRequest
) -> tuple[list[str], list[SearchHit]]:
    """The query strings as searched (``rewrite_query`` is accepted; queries are used as given), and the hits.

    The store is looked up by the search's own first query (a 404 for another project's or an
    unknown store, a 400 for an expired one), so that the query is embedded meanwhile. Without a
    working embedder, a 503 whose message names the missing part and its fix (PartUnavailableError).
    """
    check_id("vector_store", store_id, "vector_store_id")
    queries = service.check_search_body(body)
    found: list[StoreRef] = []

    def check(stores: list[StoreRef]) -> None:
        if not stores:
            raise not_found("vector_store", store_id)
        if stores[0].status == "expired":
            raise InvalidRequestError(f"Vector store {store_id} is expired and can no longer be searched.")
        found.extend(stores)

    try:
        hits = await search_stores(
            state,
            project_id,
            [store_id],
            queries,
            max_num_results=body.max_num_results,
            filters=body.filters,
            ranking_options=body.ranking_options.model_dump() if body.ranking_options else None,
            check=check,
        )
    except EmbedderError as exc:  # no model weights, or the embeddings endpoint is down: say so, no traceback
        raise PartUnavailableError(exc.message) from None
    if found and found[0].last_active_at < now():
        async with state.db.session(write=True) as s:
            await service.touch(s, project_id, [store_id])
    return queries, hits
