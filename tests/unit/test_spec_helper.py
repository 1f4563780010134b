"""Both references of the wire format (tests/spec) accept valid bodies and reject invalid ones.

Every test runs against each reference: the OpenAPI spec (where its file is, as in CI) and the
``openai`` package's types made strict (always, as in a fresh clone without the spec).
"""

from __future__ import annotations

import copy
import time

import pytest

from tests import spec
from tests.spec.common import Reference
from tests.spec.openapi import OpenAPISpec
from tests.spec.sdk import SDKTypes

NOW = 1_732_000_000

NO_SPEC = f"the OpenAPI spec is not at {spec.SPEC_PATH} (CI has it beside the clone; ASSISTD_SPEC names another)"


@pytest.fixture(scope="module")
def openapi() -> OpenAPISpec:
    if not spec.SPEC_PATH.is_file():
        pytest.skip(NO_SPEC)
    return OpenAPISpec(spec.SPEC_PATH)


@pytest.fixture(scope="module", params=["openapi", "sdk"])
def reference(request: pytest.FixtureRequest) -> Reference:
    if request.param == "openapi":
        return request.getfixturevalue("openapi")
    return SDKTypes()


def assistant() -> dict:
    return {
        "id": "asst_abc123",
        "object": "assistant",
        "created_at": NOW,
        "name": None,
        "description": None,
        "model": "gpt-4o",
        "instructions": None,
        "tools": [],
        "tool_resources": {},
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "response_format": "auto",
    }


def run() -> dict:
    return {
        "id": "run_abc123",
        "object": "thread.run",
        "created_at": NOW,
        "thread_id": "thread_abc123",
        "assistant_id": "asst_abc123",
        "status": "queued",
        "required_action": None,
        "last_error": None,
        "expires_at": None,
        "started_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "incomplete_details": None,
        "model": "gpt-4o",
        "instructions": "You are helpful.",
        "tools": [],
        "metadata": {},
        "usage": None,
        "temperature": None,
        "top_p": None,
        "max_prompt_tokens": None,
        "max_completion_tokens": None,
        "truncation_strategy": None,
        "tool_choice": None,
        "parallel_tool_calls": True,
        "response_format": None,
    }


def openai_file() -> dict:
    return {
        "id": "file-abc123",
        "object": "file",
        "bytes": 120,
        "created_at": NOW,
        "expires_at": NOW + 3600,
        "filename": "notes.txt",
        "purpose": "assistants",
        "status": "processed",
    }


def upload(file: dict | None) -> dict:
    return {
        "id": "upload_abc123",
        "object": "upload",
        "bytes": 120,
        "created_at": NOW,
        "expires_at": NOW + 3600,
        "filename": "notes.txt",
        "purpose": "assistants",
        "status": "completed" if file else "pending",
        "file": file,
    }


def error_body() -> dict:
    return {
        "error": {
            "message": "No assistant found with id 'asst_x'.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }


# --------------------------------------------------------------------------- #
# Preprocessing
# --------------------------------------------------------------------------- #


def test_preprocessed_spec_has_no_30_keywords_left(openapi: OpenAPISpec) -> None:
    text = repr(openapi.spec["components"]) + repr(openapi.spec["paths"])
    assert "'nullable'" not in text
    assert "$recursiveRef" not in text
    assert "$recursiveAnchor" not in text
    # The raw document has them.
    assert "nullable" in repr(openapi.raw["components"]["schemas"]["Upload"])


def test_event_catalogue_has_25_events(reference: Reference) -> None:
    assert len(reference.event_names()) == 25
    assert {
        "thread.created",
        "thread.run.step.delta",
        "error",
        "done",
    } <= reference.event_names()


# --------------------------------------------------------------------------- #
# Components
# --------------------------------------------------------------------------- #


def test_assistant_with_nulls_passes(reference: Reference) -> None:
    reference.validate("AssistantObject", assistant())


def test_assistant_with_tools_and_json_schema_format_passes(reference: Reference) -> None:
    body = assistant()
    body["tools"] = [
        {"type": "code_interpreter"},
        {"type": "file_search", "file_search": {"max_num_results": 5}},
        {
            "type": "function",
            "function": {"name": "f", "parameters": {"type": "object"}},
        },
    ]
    body["tool_resources"] = {"code_interpreter": {"file_ids": ["file-1"]}}
    body["response_format"] = {
        "type": "json_schema",
        "json_schema": {"name": "x", "schema": {}},
    }
    reference.validate("AssistantObject", body)


def test_assistant_bad_name_type_fails(reference: Reference) -> None:
    body = assistant()
    body["name"] = 42
    with pytest.raises(AssertionError, match=r"AssistantObject.*\$\.name"):
        reference.validate("AssistantObject", body)


def test_assistant_bad_temperature_fails(openapi: OpenAPISpec) -> None:
    # Only the spec states bounds (the SDK's types have none).
    body = assistant()
    body["temperature"] = 3
    with pytest.raises(AssertionError, match="temperature"):
        openapi.validate("AssistantObject", body)
    body = run()
    body["max_prompt_tokens"] = 10  # minimum 256
    with pytest.raises(AssertionError, match="max_prompt_tokens"):
        openapi.validate("RunObject", body)


def test_run_with_nulls_passes(reference: Reference) -> None:
    reference.validate("RunObject", run())


def test_run_requires_action_completed_passes(reference: Reference) -> None:
    body = run()
    body.update(
        status="requires_action",
        started_at=NOW + 1,
        expires_at=NOW + 600,
        required_action={
            "type": "submit_tool_outputs",
            "submit_tool_outputs": {
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{}"},
                    }
                ]
            },
        },
        truncation_strategy={"type": "auto", "last_messages": None},
        tool_choice="auto",
        response_format="auto",
        temperature=1.0,
        top_p=1.0,
        max_prompt_tokens=1000,
        usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    )
    reference.validate("RunObject", body)
    body["tool_choice"] = {"type": "function", "function": {"name": "get_weather"}}
    reference.validate("RunObject", body)


def test_run_missing_model_fails(reference: Reference) -> None:
    body = run()
    del body["model"]
    with pytest.raises(AssertionError, match=r"RunObject.*'model' is a required property"):
        reference.validate("RunObject", body)


def test_run_missing_nullable_field_fails(reference: Reference) -> None:
    # nullable != optional: required fields must be present, with null.
    body = run()
    del body["required_action"]
    with pytest.raises(AssertionError, match="required_action"):
        reference.validate("RunObject", body)


def test_run_bad_object_fails(reference: Reference) -> None:
    body = run()
    body["object"] = "assistnt"
    with pytest.raises(AssertionError, match=r"\$\.object.*'assistnt'"):
        reference.validate("RunObject", body)


def test_assistant_bad_object_fails(reference: Reference) -> None:
    body = assistant()
    body["object"] = "assistnt"
    with pytest.raises(AssertionError, match=r"\$\.object"):
        reference.validate("AssistantObject", body)


def test_run_bad_status_and_bad_nested_types_fail(reference: Reference) -> None:
    body = run()
    body["status"] = "running"
    with pytest.raises(AssertionError, match="status"):
        reference.validate("RunObject", body)
    body = run()
    body["expires_at"] = "soon"
    with pytest.raises(AssertionError, match="expires_at"):
        reference.validate("RunObject", body)
    body = run()
    body["truncation_strategy"] = {"type": "sometimes"}
    with pytest.raises(AssertionError, match="truncation_strategy"):
        reference.validate("RunObject", body)
    body = run()
    body["max_prompt_tokens"] = "10"
    with pytest.raises(AssertionError, match="max_prompt_tokens"):
        reference.validate("RunObject", body)


def test_format_is_not_checked(reference: Reference) -> None:
    # `format: unixtime` is an annotation; any integer is accepted.
    body = run()
    body["created_at"] = -5
    reference.validate("RunObject", body)


def test_list_empty_page_with_null_ids_passes(reference: Reference) -> None:
    reference.validate(
        "ListAssistantsResponse",
        {
            "object": "list",
            "data": [],
            "first_id": None,
            "last_id": None,
            "has_more": False,
        },
    )


def test_list_with_items_passes_and_bad_item_fails(reference: Reference) -> None:
    page = {
        "object": "list",
        "data": [assistant()],
        "first_id": "asst_abc123",
        "last_id": "asst_abc123",
        "has_more": False,
    }
    reference.validate("ListAssistantsResponse", page)
    bad = copy.deepcopy(page)
    del bad["data"][0]["model"]
    with pytest.raises(AssertionError, match=r"\$\.data\[0\]"):
        reference.validate("ListAssistantsResponse", bad)
    bad = copy.deepcopy(page)
    del bad["first_id"]
    with pytest.raises(AssertionError, match="first_id"):
        reference.validate("ListAssistantsResponse", bad)


def test_all_list_responses_allow_null_ids(reference: Reference) -> None:
    for name in (
        "ListAssistantsResponse",
        "ListMessagesResponse",
        "ListRunsResponse",
        "ListRunStepsResponse",
        "ListFilesResponse",
        "ListVectorStoresResponse",
        "ListVectorStoreFilesResponse",
    ):
        reference.validate(
            name,
            {
                "object": "list",
                "data": [],
                "first_id": None,
                "last_id": None,
                "has_more": False,
            },
        )


def test_error_response(reference: Reference) -> None:
    reference.validate("ErrorResponse", error_body())
    body = error_body()
    del body["error"]["code"]
    with pytest.raises(AssertionError, match=r"ErrorResponse.*'code' is a required property"):
        reference.validate("ErrorResponse", body)


def test_upload_file_null_and_file_object_pass(reference: Reference) -> None:
    reference.validate("Upload", upload(None))
    reference.validate("Upload", upload(openai_file()))
    bad = upload(openai_file())
    bad["file"]["object"] = "upload"
    with pytest.raises(AssertionError, match=r"\$\.file"):
        reference.validate("Upload", bad)
    bad = upload(None)
    bad["file"] = "file-abc123"
    with pytest.raises(AssertionError, match=r"\$\.file"):
        reference.validate("Upload", bad)


def test_compound_filter_recursion(reference: Reference) -> None:
    nested = {
        "type": "and",
        "filters": [
            {"type": "eq", "key": "a", "value": "x"},
            {"type": "or", "filters": [{"type": "gt", "key": "n", "value": 3}]},
        ],
    }
    reference.validate("CompoundFilter", nested)
    nested["filters"][1]["filters"][0]["type"] = "bogus"
    with pytest.raises(AssertionError):
        reference.validate("CompoundFilter", nested)


def test_unknown_component_fails(reference: Reference) -> None:
    with pytest.raises(AssertionError, match="unknown component"):
        reference.validate("NoSuchThing", {})


# --------------------------------------------------------------------------- #
# Responses
# --------------------------------------------------------------------------- #


def test_validate_response_by_template_and_concrete_path(reference: Reference) -> None:
    reference.validate_response("POST", "/assistants", 200, assistant())
    reference.validate_response("get", "/threads/{thread_id}/runs/{run_id}", 200, run())
    reference.validate_response("GET", "/v1/threads/thread_abc/runs/run_abc", 200, run())
    reference.validate_response("POST", "/threads/runs", 200, run())  # literal beats {thread_id}
    reference.validate_response("POST", "/uploads/{upload_id}/complete", 200, upload(openai_file()))
    reference.validate_response(
        "GET",
        "/vector_stores/{vs}/files",  # other parameter names are fine
        200,
        {
            "object": "list",
            "data": [],
            "first_id": None,
            "last_id": None,
            "has_more": False,
        },
    )
    reference.validate_response(
        "DELETE",
        "/files/{file_id}",
        200,
        {"id": "file-abc", "object": "file", "deleted": True},
    )


def test_validate_response_names_the_component_on_failure(reference: Reference) -> None:
    body = run()
    del body["model"]
    with pytest.raises(AssertionError, match=r"POST /threads/\{thread_id\}/runs -> 200 \(RunObject\)"):
        reference.validate_response("POST", "/threads/{thread_id}/runs", 200, body)


def test_validate_response_errors_use_error_response(reference: Reference) -> None:
    reference.validate_response("GET", "/assistants/{assistant_id}", 404, error_body())
    reference.validate_response("POST", "/threads/{thread_id}/runs", 400, error_body())
    reference.validate_response("GET", "/assistants", 429, error_body())
    with pytest.raises(AssertionError, match="ErrorResponse"):
        reference.validate_response("GET", "/assistants/{assistant_id}", 404, {"detail": "Not Found"})


def test_validate_response_file_content_is_skipped(reference: Reference) -> None:
    reference.validate_response("GET", "/files/{file_id}/content", 200, b"\x00raw bytes")


def test_validate_response_undocumented_fails(reference: Reference) -> None:
    with pytest.raises(AssertionError, match="no 201 response"):
        reference.validate_response("POST", "/assistants", 201, assistant())
    with pytest.raises(AssertionError, match="no operation PUT"):
        reference.validate_response("PUT", "/assistants", 200, assistant())
    with pytest.raises(AssertionError, match="no path"):
        reference.validate_response("GET", "/nothing/here", 200, {})


# --------------------------------------------------------------------------- #
# Stream events
# --------------------------------------------------------------------------- #


def test_event_run_created_passes_and_bad_run_fails(reference: Reference) -> None:
    reference.validate_event("thread.run.created", run())
    body = run()
    del body["model"]
    with pytest.raises(AssertionError, match=r"thread\.run\.created"):
        reference.validate_event("thread.run.created", body)
    with pytest.raises(AssertionError):
        reference.validate_event("thread.run.created", assistant())


def test_event_message_delta(reference: Reference) -> None:
    delta = {
        "id": "msg_abc123",
        "object": "thread.message.delta",
        "delta": {
            "role": "assistant",
            "content": [
                {
                    "index": 0,
                    "type": "text",
                    "text": {"value": "Hello", "annotations": []},
                }
            ],
        },
    }
    reference.validate_event("thread.message.delta", delta)
    reference.validate_event(
        "thread.message.delta",
        {
            "id": "msg_abc123",
            "object": "thread.message.delta",
            "delta": {"content": [{"index": 0, "type": "text", "text": {"value": " today"}}]},
        },
    )
    bad = copy.deepcopy(delta)
    del bad["delta"]["content"][0]["index"]
    with pytest.raises(AssertionError, match=r"thread\.message\.delta"):
        reference.validate_event("thread.message.delta", bad)


def test_event_step_delta_and_done_and_thread(reference: Reference) -> None:
    reference.validate_event(
        "thread.run.step.delta",
        {
            "id": "step_1",
            "object": "thread.run.step.delta",
            "delta": {
                "step_details": {
                    "type": "tool_calls",
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "", "output": None},
                        }
                    ],
                }
            },
        },
    )
    reference.validate_event("done", "[DONE]")
    with pytest.raises(AssertionError):
        reference.validate_event("done", "DONE")
    reference.validate_event(
        "thread.created",
        {
            "id": "thread_1",
            "object": "thread",
            "created_at": NOW,
            "tool_resources": {},
            "metadata": {},
        },
    )


def test_event_error_shapes(reference: Reference) -> None:
    bare = error_body()["error"]
    reference.validate_event("error", bare)  # spec shape
    reference.validate_event("error", error_body())  # CONTRACT §7 wrapped shape
    with pytest.raises(AssertionError):
        reference.validate_event("error", error_body(), wrapped_error=False)
    with pytest.raises(AssertionError):
        reference.validate_event("error", bare, wrapped_error=True)
    with pytest.raises(AssertionError):
        reference.validate_event("error", {"message": "x"})


def test_unknown_event_fails(reference: Reference) -> None:
    with pytest.raises(AssertionError, match="unknown stream event"):
        reference.validate_event("thread.run.exploded", run())


def test_validators_are_cached_and_fast(reference: Reference) -> None:
    reference.validate("RunObject", run())
    compiled = dict(reference._validators)  # type: ignore[attr-defined]
    body = run()
    start = time.perf_counter()
    for _ in range(500):
        reference.validate("RunObject", body)
    elapsed = time.perf_counter() - start
    assert reference._validators == compiled  # type: ignore[attr-defined]
    assert elapsed < 5, f"500 validations took {elapsed:.2f}s"
