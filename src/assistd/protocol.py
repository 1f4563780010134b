"""Wire types shared by several resources, named as the spec's components."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError


class StrictModel(BaseModel):
    """Request bodies: unknown fields rejected (``additionalProperties: false``), no type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False)


def api_error(
    message: str, code: str | None = None, param: str | None = None, *, at: str | None = None
) -> PydanticCustomError:
    """A validation error whose message is already in the real API's words (see errors.py).

    ``at``: the error is about the validated field itself (``""``) or one of its keys (``"k"``):
    its ``param`` is then the field's path in the request (``thread.messages[0].metadata.k``), which
    also replaces ``{path}`` in ``message``.
    """
    return PydanticCustomError("openai", "{message}", {"message": message, "code": code, "param": param, "at": at})


# --- Free-form JSON (function parameters, JSON schemas) ---------------------------------------


def _check_json(value: dict[str, Any] | None) -> dict[str, Any] | None:
    # Stored and echoed back verbatim, so it must be representable in JSON as we write it:
    # Python's parser accepts integers of any size and NaN/Infinity, which we cannot return.
    if value is None:
        return None
    try:
        orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise api_error(f"Invalid JSON value: {exc}.", "invalid_value") from None
    return value


JSONObject = Annotated[dict[str, Any] | None, AfterValidator(_check_json)]


# --- Metadata ----------------------------------------------------------------------------------

METADATA_MAX_PAIRS = 16
METADATA_MAX_KEY = 64
METADATA_MAX_VALUE = 512


def _check_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if len(value) > METADATA_MAX_PAIRS:
        raise api_error(
            f"Invalid '{{path}}': too many properties. Expected an object with at most "
            f"{METADATA_MAX_PAIRS} properties, but got an object with {len(value)} properties instead.",
            "object_above_max_size",
            at="",
        )
    for k, v in value.items():
        if len(k) > METADATA_MAX_KEY:
            raise api_error(
                f"Invalid '{{path}}': key too long. Expected a key with maximum length "
                f"{METADATA_MAX_KEY}, but got a key with length {len(k)} instead.",
                "string_above_max_length",
                at="",
            )
        if len(v) > METADATA_MAX_VALUE:
            raise api_error(
                f"Invalid '{{path}}': string too long. Expected a string with maximum length "
                f"{METADATA_MAX_VALUE}, but got a string with length {len(v)} instead.",
                "string_above_max_length",
                at=k,
            )
    return value


Metadata = Annotated[dict[str, str] | None, AfterValidator(_check_metadata)]


# --- Tools -------------------------------------------------------------------------------------


class AssistantToolsCode(StrictModel):
    type: Literal["code_interpreter"]


class AssistantToolsFileSearchTypeOnly(StrictModel):
    type: Literal["file_search"]


class FileSearchRankingOptions(StrictModel):
    ranker: Literal["auto", "default_2024_08_21"] = "auto"
    score_threshold: float = Field(ge=0, le=1)


class FileSearchSettings(StrictModel):
    max_num_results: int | None = Field(default=None, ge=1, le=50)
    ranking_options: FileSearchRankingOptions | None = None


class AssistantToolsFileSearch(StrictModel):
    type: Literal["file_search"]
    file_search: FileSearchSettings | None = None


class FunctionObject(StrictModel):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]+$", min_length=1, max_length=64)
    description: str | None = None
    parameters: JSONObject = None
    strict: bool | None = None


class AssistantToolsFunction(StrictModel):
    type: Literal["function"]
    function: FunctionObject


AssistantTool = Annotated[
    AssistantToolsCode | AssistantToolsFileSearch | AssistantToolsFunction,
    Field(discriminator="type"),
]
AttachmentTool = Annotated[AssistantToolsCode | AssistantToolsFileSearchTypeOnly, Field(discriminator="type")]


def tool_to_object(
    tool: AssistantToolsCode | AssistantToolsFileSearch | AssistantToolsFunction,
) -> dict[str, Any]:
    """The tool as the API returns it, defaults filled in as the real service did."""
    if isinstance(tool, AssistantToolsFunction):
        fn: dict[str, Any] = {"name": tool.function.name}
        if tool.function.description is not None:
            fn["description"] = tool.function.description
        if tool.function.parameters is not None:
            fn["parameters"] = tool.function.parameters
        fn["strict"] = bool(tool.function.strict)
        return {"type": "function", "function": fn}
    if isinstance(tool, AssistantToolsFileSearch):
        fs: dict[str, Any] = {}
        settings = tool.file_search or FileSearchSettings()
        if settings.max_num_results is not None:
            fs["max_num_results"] = settings.max_num_results
        ro = settings.ranking_options
        fs["ranking_options"] = {
            "ranker": ro.ranker if ro else "auto",
            "score_threshold": ro.score_threshold if ro else 0.0,
        }
        return {"type": "file_search", "file_search": fs}
    return {"type": "code_interpreter"}


# --- Tool resources ----------------------------------------------------------------------------

MAX_CODE_INTERPRETER_FILES = 20


class CodeInterpreterResources(StrictModel):
    file_ids: list[str] = Field(default_factory=list, max_length=MAX_CODE_INTERPRETER_FILES)


class AutoChunkingStrategy(StrictModel):
    type: Literal["auto"]


class StaticChunkingConfig(StrictModel):
    max_chunk_size_tokens: int = Field(ge=100, le=4096)
    chunk_overlap_tokens: int = Field(ge=0)

    @field_validator("chunk_overlap_tokens")
    @classmethod
    def _at_most_half(cls, v: int, info: ValidationInfo) -> int:
        size = info.data.get("max_chunk_size_tokens")
        if size is not None and v * 2 > size:
            raise ValueError(
                f"chunk_overlap_tokens must not exceed half of max_chunk_size_tokens ({size // 2}), but got {v} instead"
            )
        return v


class StaticChunkingStrategy(StrictModel):
    type: Literal["static"]
    static: StaticChunkingConfig


ChunkingStrategy = Annotated[AutoChunkingStrategy | StaticChunkingStrategy, Field(discriminator="type")]


class VectorStoreHelper(StrictModel):
    file_ids: list[str] = Field(default_factory=list, max_length=10000)
    chunking_strategy: ChunkingStrategy | None = None
    metadata: Metadata = None


class FileSearchResources(StrictModel):
    vector_store_ids: list[str] | None = Field(default=None, max_length=1)


class FileSearchCreateResources(FileSearchResources):
    vector_stores: list[VectorStoreHelper] | None = Field(default=None, max_length=1)


class ToolResources(StrictModel):
    """``tool_resources`` on modify calls (no ``vector_stores`` helper)."""

    code_interpreter: CodeInterpreterResources | None = None
    file_search: FileSearchResources | None = None


class CreateToolResources(StrictModel):
    """``tool_resources`` on create calls, with the ``vector_stores`` helper."""

    code_interpreter: CodeInterpreterResources | None = None
    file_search: FileSearchCreateResources | None = None


def tool_resources_to_object(
    res: ToolResources | CreateToolResources | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if res is None:
        return out
    if res.code_interpreter is not None:
        out["code_interpreter"] = {"file_ids": list(res.code_interpreter.file_ids)}
    if res.file_search is not None and res.file_search.vector_store_ids is not None:
        out["file_search"] = {"vector_store_ids": list(res.file_search.vector_store_ids)}
    return out


# --- Response format ---------------------------------------------------------------------------


class ResponseFormatText(StrictModel):
    type: Literal["text"]


class ResponseFormatJsonObject(StrictModel):
    type: Literal["json_object"]


class JsonSchemaFormat(StrictModel):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]+$", min_length=1, max_length=64)
    description: str | None = None
    schema_: JSONObject = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormatJsonSchema(StrictModel):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormat = (
    Literal["auto"]
    | Annotated[
        ResponseFormatText | ResponseFormatJsonObject | ResponseFormatJsonSchema,
        Field(discriminator="type"),
    ]
)


def response_format_to_object(rf: Any) -> Any:
    if rf is None:
        return "auto"
    if isinstance(rf, str):
        return rf
    return rf.model_dump(by_alias=True, exclude_none=True)


ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]

_URL_RE = re.compile(r"^(https?://|data:)", re.IGNORECASE)


def is_supported_image_url(url: str) -> bool:
    return bool(_URL_RE.match(url))
