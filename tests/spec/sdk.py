"""The SDK reference: validate JSON bodies against the pinned ``openai`` package's response types.

Used when the official spec file is absent (a fresh clone). The types are what the official
Python SDK parses responses into, but the SDK parses leniently (``extra="allow"``, no error on a
missing field), so each type is turned into a strict JSON schema first (pydantic's schema of the
type, rewritten by :class:`_StrictWire` and :func:`_switch_on_tags`) and validated with the same
``jsonschema`` validator as the spec:

* **no unknown keys**: every object the SDK models gets ``additionalProperties: false``, so a
  misspelled or invented field fails (fields the SDK types as maps, ``metadata`` or a JSON
  schema, still take any key);
* **every field present**: OpenAI's objects carry all their fields, ``null`` when unset
  (nullable is not optional), so every field the SDK declares is required, even those it
  defaults to ``None``, except
  - inside a stream delta (``thread.message.delta``, ``thread.run.step.delta``), which carries
    only what changed: there the SDK's own required set holds;
  - the fields in :data:`OPTIONAL`, exactly those the spec does not require;
* **types and literal values**: JSON types (an ``int`` field takes no string, a ``bool`` no
  ``1``), ``Literal`` values (``object``, ``status``, ``type``, ``role``, ...), ``null`` only
  where the SDK type is ``Optional``.

What the SDK types cannot say, this reference cannot check: numeric bounds the spec states
(``temperature`` <= 2, ``max_prompt_tokens`` >= 256), and that a field the spec leaves optional
is not ``null`` when present (the SDK types those ``Optional``).

Component names are the spec's (``AssistantObject``, ``RunObject``, ...), mapped in
:data:`COMPONENTS`, and paths in :data:`PATHS`. The list and page envelopes, which the SDK's page
classes model only in part (``data``, ``has_more``), are written out below from CONTRACT.md §1
(the list envelope; its ids are null on an empty page, §9) and the vector-store page objects.
"""

from __future__ import annotations

import typing
from importlib.metadata import version
from typing import Any, Literal

import pydantic
from jsonschema import Draft202012Validator
from openai.types import (
    FileDeleted,
    FileObject,
    Upload,
    VectorStore,
    VectorStoreDeleted,
    VectorStoreSearchResponse,
)
from openai.types.beta import (
    Assistant,
    AssistantDeleted,
    AssistantStreamEvent,
    Thread,
    ThreadDeleted,
)
from openai.types.beta.threads import Message, MessageDeleted, MessageDeltaEvent, Run
from openai.types.beta.threads.runs import RunStep, RunStepDeltaEvent
from openai.types.shared import ComparisonFilter, ErrorObject
from openai.types.uploads import UploadPart
from openai.types.vector_stores import (
    FileContentResponse,
    VectorStoreFile,
    VectorStoreFileBatch,
    VectorStoreFileDeleted,
)
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from tests.spec.common import Templates, check

OPENAI_VERSION = version("openai")


# --------------------------------------------------------------------------- #
# Envelopes the SDK does not model whole
# --------------------------------------------------------------------------- #


class _Envelope(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class ErrorResponse(_Envelope):
    """``{"error": {...}}``: the SDK reads ``body["error"]`` into ``ErrorObject`` (``_client.py``)."""

    error: ErrorObject


def _list_of(item: type[pydantic.BaseModel], name: str) -> type[_Envelope]:
    """The list envelope of CONTRACT.md §1; ``first_id``/``last_id`` are null on an empty page."""
    return pydantic.create_model(
        name,
        __base__=_Envelope,
        object=(Literal["list"], ...),
        data=(list[item], ...),
        first_id=(str | None, ...),
        last_id=(str | None, ...),
        has_more=(bool, ...),
    )


class StrictCompoundFilter(_Envelope):
    """``CompoundFilter`` as the SDK documents it ("Items can be ``ComparisonFilter`` or
    ``CompoundFilter``"); its type annotation cannot recurse and says ``object``."""

    type: Literal["and", "or"]
    filters: list[ComparisonFilter | StrictCompoundFilter]


class VectorStoreFileContentResponse(_Envelope):
    object: Literal["vector_store.file_content.page"]
    data: list[FileContentResponse]
    has_more: bool
    next_page: str | None


class VectorStoreSearchResultsPage(_Envelope):
    object: Literal["vector_store.search_results.page"]
    search_query: list[str]
    data: list[VectorStoreSearchResponse]
    has_more: bool
    next_page: str | None


# The spec's component names -> the type each is checked against.
COMPONENTS: dict[str, Any] = {
    "AssistantObject": Assistant,
    "DeleteAssistantResponse": AssistantDeleted,
    "ListAssistantsResponse": _list_of(Assistant, "ListAssistantsResponse"),
    "ThreadObject": Thread,
    "DeleteThreadResponse": ThreadDeleted,
    "MessageObject": Message,
    "DeleteMessageResponse": MessageDeleted,
    "ListMessagesResponse": _list_of(Message, "ListMessagesResponse"),
    "MessageDeltaObject": MessageDeltaEvent,
    "RunObject": Run,
    "ListRunsResponse": _list_of(Run, "ListRunsResponse"),
    "RunStepObject": RunStep,
    "ListRunStepsResponse": _list_of(RunStep, "ListRunStepsResponse"),
    "RunStepDeltaObject": RunStepDeltaEvent,
    "OpenAIFile": FileObject,
    "DeleteFileResponse": FileDeleted,
    "ListFilesResponse": _list_of(FileObject, "ListFilesResponse"),
    "Upload": Upload,
    "UploadPart": UploadPart,
    "VectorStoreObject": VectorStore,
    "DeleteVectorStoreResponse": VectorStoreDeleted,
    "ListVectorStoresResponse": _list_of(VectorStore, "ListVectorStoresResponse"),
    "VectorStoreFileObject": VectorStoreFile,
    "DeleteVectorStoreFileResponse": VectorStoreFileDeleted,
    "ListVectorStoreFilesResponse": _list_of(VectorStoreFile, "ListVectorStoreFilesResponse"),
    "VectorStoreFileBatchObject": VectorStoreFileBatch,
    "VectorStoreFileContentResponse": VectorStoreFileContentResponse,
    "VectorStoreSearchResultsPage": VectorStoreSearchResultsPage,
    "Error": ErrorObject,
    "ErrorResponse": ErrorResponse,
    "CompoundFilter": StrictCompoundFilter,
    "ComparisonFilter": ComparisonFilter,
}

# Every operation's 200 body, as the spec's paths document them (CONTRACT.md §2).
# None: not JSON (the file's raw bytes).
PATHS: dict[str, dict[str, str | None]] = {
    "/assistants": {"get": "ListAssistantsResponse", "post": "AssistantObject"},
    "/assistants/{assistant_id}": {
        "get": "AssistantObject",
        "post": "AssistantObject",
        "delete": "DeleteAssistantResponse",
    },
    "/threads": {"post": "ThreadObject"},
    "/threads/runs": {"post": "RunObject"},
    "/threads/{thread_id}": {"get": "ThreadObject", "post": "ThreadObject", "delete": "DeleteThreadResponse"},
    "/threads/{thread_id}/messages": {"get": "ListMessagesResponse", "post": "MessageObject"},
    "/threads/{thread_id}/messages/{message_id}": {
        "get": "MessageObject",
        "post": "MessageObject",
        "delete": "DeleteMessageResponse",
    },
    "/threads/{thread_id}/runs": {"get": "ListRunsResponse", "post": "RunObject"},
    "/threads/{thread_id}/runs/{run_id}": {"get": "RunObject", "post": "RunObject"},
    "/threads/{thread_id}/runs/{run_id}/cancel": {"post": "RunObject"},
    "/threads/{thread_id}/runs/{run_id}/submit_tool_outputs": {"post": "RunObject"},
    "/threads/{thread_id}/runs/{run_id}/steps": {"get": "ListRunStepsResponse"},
    "/threads/{thread_id}/runs/{run_id}/steps/{step_id}": {"get": "RunStepObject"},
    "/files": {"get": "ListFilesResponse", "post": "OpenAIFile"},
    "/files/{file_id}": {"get": "OpenAIFile", "delete": "DeleteFileResponse"},
    "/files/{file_id}/content": {"get": None},
    "/uploads": {"post": "Upload"},
    "/uploads/{upload_id}/parts": {"post": "UploadPart"},
    "/uploads/{upload_id}/complete": {"post": "Upload"},
    "/uploads/{upload_id}/cancel": {"post": "Upload"},
    "/vector_stores": {"get": "ListVectorStoresResponse", "post": "VectorStoreObject"},
    "/vector_stores/{vector_store_id}": {
        "get": "VectorStoreObject",
        "post": "VectorStoreObject",
        "delete": "DeleteVectorStoreResponse",
    },
    "/vector_stores/{vector_store_id}/search": {"post": "VectorStoreSearchResultsPage"},
    "/vector_stores/{vector_store_id}/files": {
        "get": "ListVectorStoreFilesResponse",
        "post": "VectorStoreFileObject",
    },
    "/vector_stores/{vector_store_id}/files/{file_id}": {
        "get": "VectorStoreFileObject",
        "post": "VectorStoreFileObject",
        "delete": "DeleteVectorStoreFileResponse",
    },
    "/vector_stores/{vector_store_id}/files/{file_id}/content": {"get": "VectorStoreFileContentResponse"},
    "/vector_stores/{vector_store_id}/file_batches": {"post": "VectorStoreFileBatchObject"},
    "/vector_stores/{vector_store_id}/file_batches/{batch_id}": {"get": "VectorStoreFileBatchObject"},
    "/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel": {"post": "VectorStoreFileBatchObject"},
    "/vector_stores/{vector_store_id}/file_batches/{batch_id}/files": {"get": "ListVectorStoreFilesResponse"},
}


def _stream_events() -> dict[str, Any]:
    """event name -> the type of its ``data``, from the SDK's ``AssistantStreamEvent`` union,
    plus ``done`` (data ``[DONE]``, where the SDK's stream reader stops: ``_streaming.py``)."""
    out: dict[str, Any] = {"done": Literal["[DONE]"]}
    union = typing.get_args(AssistantStreamEvent)[0]  # Annotated[Union[...], PropertyInfo]
    for member in typing.get_args(union):
        (name,) = typing.get_args(member.model_fields["event"].annotation)
        out[name] = member.model_fields["data"].annotation
    return out


EVENTS = _stream_events()


# --------------------------------------------------------------------------- #
# Strictness
# --------------------------------------------------------------------------- #


def _models_in(tp: Any) -> set[type[pydantic.BaseModel]]:
    """Every pydantic model reachable from the type ``tp``."""
    found: set[type[pydantic.BaseModel]] = set()

    def walk(node: Any) -> None:
        if isinstance(node, type) and issubclass(node, pydantic.BaseModel):
            if node not in found:
                found.add(node)
                for field in node.model_fields.values():
                    walk(field.annotation)
            return
        for arg in typing.get_args(node):
            walk(arg)

    walk(tp)
    return found


# A delta carries only what changed: inside one, a field the SDK defaults may be absent.
SPARSE = frozenset(
    _models_in(MessageDeltaEvent.model_fields["delta"].annotation)
    | _models_in(RunStepDeltaEvent.model_fields["delta"].annotation)
)

# Fields the SDK declares that an object may leave out: exactly those the spec does not require
# (outside deltas). Derived from the spec with tests/spec/crosscheck.py; tests/unit/test_spec_sdk.py
# fails in CI (which has the spec) if the SDK or the spec changes and this table no longer matches.
OPTIONAL: dict[str, frozenset[str]] = {
    "openai.types.beta.assistant.Assistant": frozenset({"response_format", "temperature", "tool_resources", "top_p"}),
    "openai.types.beta.assistant.ToolResources": frozenset({"code_interpreter", "file_search"}),
    "openai.types.beta.assistant.ToolResourcesCodeInterpreter": frozenset({"file_ids"}),
    "openai.types.beta.assistant.ToolResourcesFileSearch": frozenset({"vector_store_ids"}),
    "openai.types.beta.assistant_tool_choice.AssistantToolChoice": frozenset({"function"}),
    "openai.types.beta.file_search_tool.FileSearch": frozenset({"max_num_results", "ranking_options"}),
    "openai.types.beta.file_search_tool.FileSearchRankingOptions": frozenset({"ranker"}),
    "openai.types.beta.file_search_tool.FileSearchTool": frozenset({"file_search"}),
    "openai.types.beta.thread.ToolResources": frozenset({"code_interpreter", "file_search"}),
    "openai.types.beta.thread.ToolResourcesCodeInterpreter": frozenset({"file_ids"}),
    "openai.types.beta.thread.ToolResourcesFileSearch": frozenset({"vector_store_ids"}),
    "openai.types.beta.threads.image_file.ImageFile": frozenset({"detail"}),
    "openai.types.beta.threads.image_url.ImageURL": frozenset({"detail"}),
    "openai.types.beta.threads.message.Attachment": frozenset({"file_id", "tools"}),
    "openai.types.beta.threads.run.IncompleteDetails": frozenset({"reason"}),
    "openai.types.beta.threads.run.Run": frozenset({"temperature", "top_p"}),
    "openai.types.beta.threads.run.TruncationStrategy": frozenset({"last_messages"}),
    "openai.types.beta.threads.runs.file_search_tool_call.FileSearch": frozenset({"ranking_options", "results"}),
    "openai.types.beta.threads.runs.file_search_tool_call.FileSearchResult": frozenset({"content"}),
    "openai.types.beta.threads.runs.file_search_tool_call.FileSearchResultContent": frozenset({"text", "type"}),
    "openai.types.file_object.FileObject": frozenset({"expires_at", "status_details"}),
    "openai.types.shared.error_object.ErrorObject": frozenset({"misalignment"}),
    "openai.types.shared.function_definition.FunctionDefinition": frozenset({"description", "parameters", "strict"}),
    "openai.types.shared.response_format_json_schema.JSONSchema": frozenset({"description", "schema", "strict"}),
    "openai.types.upload.Upload": frozenset({"file", "object"}),
    "openai.types.vector_store.VectorStore": frozenset({"expires_after", "expires_at"}),
    "openai.types.vector_stores.file_content_response.FileContentResponse": frozenset({"text", "type"}),
    "openai.types.vector_stores.vector_store_file.VectorStoreFile": frozenset({"attributes", "chunking_strategy"}),
}


class _StrictWire(GenerateJsonSchema):
    """pydantic's JSON schema of a type, with the SDK's leniency taken out (see the module doc)."""

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        json_schema = super().model_schema(schema)
        cls = schema["cls"]
        properties = json_schema.get("properties", {})
        json_schema["additionalProperties"] = False
        if cls not in SPARSE:
            optional = OPTIONAL.get(qualified(cls), frozenset())
            json_schema["required"] = [name for name in properties if name not in optional]
        return json_schema


def qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def strict_schema(tp: Any) -> dict[str, Any]:
    """The strict JSON schema of ``tp`` (a response type, envelope or ``Literal``)."""
    schema = pydantic.TypeAdapter(tp).json_schema(schema_generator=_StrictWire)
    _switch_on_tags(schema, schema.get("$defs", {}))
    return schema


def _switch_on_tags(node: Any, defs: dict[str, Any]) -> None:
    """Rewrite each ``anyOf`` of objects told apart by a ``type`` (or ``object``) literal into a
    switch on that tag, in place. The same bodies pass and fail, but a broken content block or
    tool call is reported inside its own variant ("$.delta.content[0]: 'index' is a required
    property") instead of as "not valid under any of the given schemas". The SDK tags these
    unions for its own parser (``PropertyInfo(discriminator=...)``), which pydantic does not see.
    """
    if isinstance(node, list):
        for item in node:
            _switch_on_tags(item, defs)
        return
    if not isinstance(node, dict):
        return
    for value in node.values():
        _switch_on_tags(value, defs)
    members = node.get("anyOf")
    if not isinstance(members, list) or len(members) < 2:
        return
    for key in ("type", "object"):
        tags = [_tags(member, key, defs) for member in members]
        flat = [tag for group in tags for tag in group]
        if all(tags) and len(flat) == len(set(flat)):
            del node["anyOf"]
            node["type"] = "object"
            node["required"] = [key]
            node["properties"] = {key: {"enum": flat}}
            node["allOf"] = [
                {"if": {"properties": {key: {"enum": group}}, "required": [key]}, "then": member}
                for group, member in zip(tags, members, strict=True)
            ]
            return


def _tags(member: dict[str, Any], key: str, defs: dict[str, Any]) -> list[str]:
    """The literal values an object schema allows for ``key`` ([] if it is not such an object)."""
    if "$ref" in member:
        member = defs.get(member["$ref"].rsplit("/", 1)[-1], {})
    prop = member.get("properties", {}).get(key, {})
    values = [prop["const"]] if "const" in prop else prop.get("enum", [])
    return values if values and all(isinstance(v, str) for v in values) else []


def type_name(tp: Any) -> str:
    if isinstance(tp, type):
        module = tp.__module__
        # openai.types.beta.threads.run.Run -> openai.types.beta.threads.Run (as the SDK exports it)
        return f"{module.rsplit('.', 1)[0] if module.startswith('openai.') else module}.{tp.__qualname__}"
    return repr(tp)


# --------------------------------------------------------------------------- #
# The reference
# --------------------------------------------------------------------------- #


class SDKTypes:
    """Validates against the installed ``openai`` package's response types, strictly."""

    def __init__(self) -> None:
        self.name = f"the openai {OPENAI_VERSION} package's response types (strict)"
        self._reference = f"openai {OPENAI_VERSION} types"
        self._validators: dict[str, Draft202012Validator] = {}
        self._templates = Templates(PATHS, self.name)

    def validator(self, key: str, tp: Any) -> Draft202012Validator:
        """The compiled validator of ``tp``, cached under ``key`` (compiled once)."""
        if key not in self._validators:
            self._validators[key] = Draft202012Validator(strict_schema(tp))
        return self._validators[key]

    def _check_component(self, component: str, instance: Any, what: str) -> None:
        if component not in COMPONENTS:
            raise AssertionError(f"unknown component schema {component!r} in {self.name}")
        tp = COMPONENTS[component]
        check(self.validator(component, tp), instance, f"{what} as {type_name(tp)}", self._reference)

    def validate(self, component: str, instance: Any) -> None:
        """Validate ``instance`` against the type mapped to the spec's ``component``."""
        self._check_component(component, instance, component)

    def validate_response(self, method: str, path_template: str, status: int, body: Any) -> None:
        """As the spec's: ``status >= 400`` is the error envelope; the file's raw bytes are skipped."""
        method = method.lower()
        template = self._templates.resolve(method, path_template)
        label = f"{method.upper()} {template} -> {status}"
        if status >= 400:
            self._check_component("ErrorResponse", body, f"{label} (ErrorResponse)")
            return
        operations = PATHS[template]
        if method not in operations:
            raise AssertionError(f"the spec has no operation {method.upper()} {template}")
        if status != 200:
            raise AssertionError(
                f"the spec documents no {status} response for {method.upper()} {template} (documented: ['200'])"
            )
        component = operations[method]
        if component is None:
            return
        self._check_component(component, body, f"{label} ({component})")

    def event_names(self) -> frozenset[str]:
        """Every SSE event name (the SDK's 24 and ``done``)."""
        return frozenset(EVENTS)

    def validate_event(self, event: str, data: Any, *, wrapped_error: bool | None = None) -> None:
        """Validate the parsed ``data`` of SSE event ``event`` (see tests/spec/__init__.py)."""
        if event not in EVENTS:
            raise AssertionError(f"unknown stream event {event!r}; the SDK defines {sorted(EVENTS)}")
        what = f"stream event {event!r}"
        if event == "error":
            if wrapped_error is None:
                wrapped_error = isinstance(data, dict) and set(data) == {"error"}
            if wrapped_error:
                self._check_component("ErrorResponse", data, what + " (wrapped)")
                return
        tp = EVENTS[event]
        check(self.validator(f"event:{event}", tp), data, f"{what} as {type_name(tp)}", self._reference)
