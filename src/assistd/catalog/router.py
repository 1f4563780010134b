"""HTTP for /v1/models."""

from __future__ import annotations

from assistd.catalog import service
from assistd.deps import StateDep
from assistd.http import JSONResponse, json_response
from assistd.routing import api_router

router = api_router(tags=["Models"])


@router.get("/models", operation_id="listModels")
async def list_models(state: StateDep) -> JSONResponse:
    """Lists the models runs can use: those the configured upstreams list, and the routes' fixed names."""
    return json_response({"object": "list", "data": await service.list_models(state.llm)})


@router.get("/models/{model:path}", operation_id="retrieveModel")
async def retrieve_model(model: str, state: StateDep) -> JSONResponse:
    """Retrieves a model (ids may contain slashes, as Hugging Face and Ollama names do)."""
    return json_response(await service.retrieve_model(state.llm, model))
