"""Wire models for /vector_stores, named as the spec's components."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from assistd.protocol import ChunkingStrategy, Metadata, StaticChunkingStrategy, StrictModel, api_error

MAX_CREATE_FILE_IDS = 500
MAX_BATCH_FILES = 2000
ATTRIBUTES_MAX_KEYS = 16
ATTRIBUTES_MAX_KEY = 64
ATTRIBUTES_MAX_STRING = 512
AUTO_CHUNKING: dict[str, Any] = {
    "type": "static",
    "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
}

VectorStoreFileStatus = Literal["in_progress", "completed", "failed", "cancelled"]


def _check_attributes(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if len(value) > ATTRIBUTES_MAX_KEYS:
        raise api_error(
            f"Invalid '{{path}}': too many properties. Expected an object with at most "
            f"{ATTRIBUTES_MAX_KEYS} properties, but got an object with {len(value)} properties instead.",
            "object_above_max_size",
            at="",
        )
    for k, v in value.items():
        if len(k) > ATTRIBUTES_MAX_KEY:
            raise api_error(
                f"Invalid '{{path}}': key too long. Expected a key with maximum length "
                f"{ATTRIBUTES_MAX_KEY}, but got a key with length {len(k)} instead.",
                "string_above_max_length",
                at="",
            )
        if isinstance(v, str) and len(v) > ATTRIBUTES_MAX_STRING:
            raise api_error(
                f"Invalid '{{path}}': string too long. Expected a string with maximum length "
                f"{ATTRIBUTES_MAX_STRING}, but got a string with length {len(v)} instead.",
                "string_above_max_length",
                at=k,
            )
        if not isinstance(v, str | bool | int | float):
            raise api_error(
                "Invalid type for '{path}': expected a string, number or boolean.",
                "invalid_type",
                at=k,
            )
    return value


Attributes = Annotated[dict[str, Any] | None, AfterValidator(_check_attributes)]


class VectorStoreExpirationAfter(StrictModel):
    anchor: Literal["last_active_at"]
    days: int = Field(ge=1, le=365)


class CreateVectorStoreRequest(StrictModel):
    file_ids: list[str] = Field(default_factory=list, max_length=MAX_CREATE_FILE_IDS)
    name: str | None = None
    description: str | None = None
    expires_after: VectorStoreExpirationAfter | None = None
    chunking_strategy: ChunkingStrategy | None = None
    metadata: Metadata = None


class UpdateVectorStoreRequest(StrictModel):
    name: str | None = None
    expires_after: VectorStoreExpirationAfter | None = None
    metadata: Metadata = None


class CreateVectorStoreFileRequest(StrictModel):
    file_id: str
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes = None


class UpdateVectorStoreFileAttributesRequest(StrictModel):
    attributes: Attributes


class CreateVectorStoreFileBatchRequest(StrictModel):
    file_ids: list[str] | None = Field(default=None, min_length=1, max_length=MAX_BATCH_FILES)
    files: list[CreateVectorStoreFileRequest] | None = Field(default=None, min_length=1, max_length=MAX_BATCH_FILES)
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes = None


# --- search ------------------------------------------------------------------------------------

Scalar = str | bool | int | float


class ComparisonFilter(StrictModel):
    type: Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"]
    key: str
    value: Scalar | list[str | int | float]


class CompoundFilter(StrictModel):
    type: Literal["and", "or"]
    filters: list[Annotated[ComparisonFilter | CompoundFilter, Field(discriminator="type")]]


Filter = Annotated[ComparisonFilter | CompoundFilter, Field(discriminator="type")]


class RankingOptions(StrictModel):
    ranker: Literal["none", "auto", "default-2024-11-15"] = "auto"
    score_threshold: float = Field(default=0.0, ge=0, le=1)


class VectorStoreSearchRequest(StrictModel):
    query: str | list[str]
    rewrite_query: bool = False
    max_num_results: int = Field(default=10, ge=1, le=50)
    filters: Filter | None = None
    ranking_options: RankingOptions | None = None


# --- objects -----------------------------------------------------------------------------------


def chunking_to_object(cs: Any) -> dict[str, Any]:
    """The stored (response) form: auto becomes static 800/400, as the real API reported it."""
    if isinstance(cs, StaticChunkingStrategy):
        return cs.model_dump()
    return dict(AUTO_CHUNKING)


def file_counts(counts: dict[str, int]) -> dict[str, int]:
    out = {k: counts.get(k, 0) for k in ("in_progress", "completed", "failed", "cancelled")}
    out["total"] = sum(out.values())
    return out


def store_status(stored: str, counts: dict[str, int]) -> str:
    if stored == "expired":
        return "expired"
    return "in_progress" if counts.get("in_progress", 0) else "completed"


def batch_status(stored: str, counts: dict[str, int]) -> str:
    if stored == "cancelled":
        return "cancelled"
    if counts.get("in_progress", 0):
        return "in_progress"
    total = sum(counts.values())
    if total and counts.get("failed", 0) == total:
        return "failed"
    return "completed"


def to_object(vs: Any, counts: dict[str, int], usage_bytes: int) -> dict[str, Any]:
    """VectorStoreObject."""
    out = {
        "id": vs.id,
        "object": "vector_store",
        "created_at": vs.created_at,
        "name": vs.name or "",
        "usage_bytes": usage_bytes,
        "file_counts": file_counts(counts),
        "status": store_status(vs.status, counts),
        "expires_after": vs.expires_after,
        "expires_at": vs.expires_at,
        "last_active_at": vs.last_active_at,
        "metadata": vs.metadata_,
    }
    if vs.expires_after is None:  # optional, not nullable: absent when there is no policy
        del out["expires_after"]
    return out


def file_to_object(f: Any) -> dict[str, Any]:
    """VectorStoreFileObject."""
    return {
        "id": f.id,
        "object": "vector_store.file",
        "usage_bytes": f.usage_bytes,
        "created_at": f.created_at,
        "vector_store_id": f.vector_store_id,
        "status": f.status,
        "last_error": f.last_error,
        "chunking_strategy": f.chunking_strategy,
        "attributes": f.attributes,
    }


def batch_to_object(b: Any, counts: dict[str, int]) -> dict[str, Any]:
    """VectorStoreFileBatchObject."""
    return {
        "id": b.id,
        "object": "vector_store.files_batch",
        "created_at": b.created_at,
        "vector_store_id": b.vector_store_id,
        "status": batch_status(b.status, counts),
        "file_counts": file_counts(counts),
    }
