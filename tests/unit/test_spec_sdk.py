"""The fallback reference: without the spec file, responses are checked against the ``openai``
package's types, strictly, and the suite picks it by itself.

The cross-checks against the spec run where the spec is (CI); the rest runs everywhere.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistd.fakellm import FakeLLM
from tests import spec
from tests.runs.util import sse
from tests.spec import crosscheck, sdk
from tests.spec.openapi import OpenAPISpec
from tests.spec.sdk import SDKTypes

REPO = Path(__file__).resolve().parents[2]
NO_SPEC = f"the OpenAPI spec is not at {spec.SPEC_PATH} (CI has it beside the clone; ASSISTD_SPEC names another)"


@pytest.fixture(scope="module")
def fallback(tmp_path_factory: pytest.TempPathFactory) -> SDKTypes:
    """The reference the suite gets when the spec file is absent."""
    reference = spec.select(tmp_path_factory.mktemp("no-spec") / "assistants-v2.yaml")
    assert isinstance(reference, SDKTypes)
    return reference


@pytest.fixture(scope="module")
def openapi() -> OpenAPISpec:
    if not spec.SPEC_PATH.is_file():
        pytest.skip(NO_SPEC)
    return OpenAPISpec(spec.SPEC_PATH)


def rejects(reference: SDKTypes, what: str, body: Any, match: str, *, status: int = 200, method: str = "POST") -> None:
    with pytest.raises(AssertionError, match=match):
        reference.validate_response(method, what, status, body)


# --------------------------------------------------------------------------- #
# Selection
# --------------------------------------------------------------------------- #


def test_select_uses_the_spec_file_when_it_exists_and_the_sdk_types_otherwise(tmp_path: Path) -> None:
    present = tmp_path / "assistants-v2.yaml"
    present.write_text("openapi: 3.0.0\n")
    assert isinstance(spec.select(present), OpenAPISpec)
    assert isinstance(spec.select(tmp_path / "missing.yaml"), SDKTypes)
    assert isinstance(spec.select(tmp_path), SDKTypes)  # a directory is not the spec


def test_the_suite_falls_back_when_ASSISTD_SPEC_names_a_missing_file() -> None:
    env = {**os.environ, "ASSISTD_SPEC": "/nonexistent/assistants-v2.yaml"}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "tests/unit/test_sandbox_names.py"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert (
        f"responses validated against the openai {sdk.OPENAI_VERSION} package's response types (strict)" in out.stdout
    )


def test_the_suite_uses_the_spec_where_it_is(openapi: OpenAPISpec) -> None:
    assert isinstance(spec.REFERENCE, OpenAPISpec) and spec.REFERENCE.path == spec.SPEC_PATH


# --------------------------------------------------------------------------- #
# Real responses: accepted as they are, rejected once broken
# --------------------------------------------------------------------------- #


async def test_a_real_assistant_passes_and_each_kind_of_breakage_fails(
    client: httpx.AsyncClient, fallback: SDKTypes
) -> None:
    r = await client.post(
        "/assistants",
        json={
            "model": "gpt-4o",
            "name": "Helper",
            "tools": [
                {"type": "file_search"},
                {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
            ],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
            "metadata": {"k": "v"},
        },
    )
    assert r.status_code == 200, r.text
    real = r.json()
    fallback.validate_response("POST", "/v1/assistants", 200, real)
    fallback.validate_response("GET", f"/v1/assistants/{real['id']}", 200, real)

    body = copy.deepcopy(real)
    del body["description"]  # nullable, not optional: null when unset
    rejects(fallback, "/assistants", body, r"AssistantObject.*'description' is a required property")
    body = {**real, "nmae": "Helper"}
    rejects(fallback, "/assistants", body, r"'nmae' was unexpected")
    body = {**real, "created_at": str(real["created_at"])}
    rejects(fallback, "/assistants", body, r"\$\.created_at")
    body = {**real, "object": "assistants"}
    rejects(fallback, "/assistants", body, r"\$\.object: 'assistant' was expected, got 'assistants'")
    body = {**real, "metadata": {"k": 1}}
    rejects(fallback, "/assistants", body, r"\$\.metadata")
    body = copy.deepcopy(real)
    body["tools"][0]["type"] = "retrieval"  # the v1 name
    rejects(fallback, "/assistants", body, r"\$\.tools\[0\]")
    body = copy.deepcopy(real)
    body["tools"][1]["function"]["argumentz"] = {}
    rejects(fallback, "/assistants", body, r"\$\.tools\[1\]")


async def test_real_pages_errors_and_deletions(client: httpx.AsyncClient, fallback: SDKTypes) -> None:
    a = (await client.post("/assistants", json={"model": "gpt-4o"})).json()
    page = (await client.get("/assistants", params={"limit": 1})).json()
    fallback.validate_response("GET", "/assistants", 200, page)
    rejects(fallback, "/assistants", {k: v for k, v in page.items() if k != "first_id"}, "first_id", method="GET")
    rejects(fallback, "/assistants", {**page, "has_more": "no"}, r"\$\.has_more", method="GET")
    rejects(fallback, "/assistants", {**page, "data": [{**a, "model": None}]}, r"\$\.data\[0\]", method="GET")

    missing = await client.get("/assistants/asst_missing")
    assert missing.status_code == 404
    fallback.validate_response("GET", "/assistants/{assistant_id}", 404, missing.json())
    broken = copy.deepcopy(missing.json())
    del broken["error"]["param"]
    rejects(fallback, "/assistants/{id}", broken, r"'param' is a required property", status=404, method="GET")
    rejects(fallback, "/assistants/{id}", {"detail": "Not Found"}, "ErrorResponse", status=404, method="GET")

    deleted = (await client.delete(f"/assistants/{a['id']}")).json()
    fallback.validate_response("DELETE", f"/assistants/{a['id']}", 200, deleted)
    rejects(fallback, "/assistants/{id}", {**deleted, "deleted": "true"}, r"\$\.deleted", method="DELETE")


async def test_a_real_file_and_vector_store_pass(client: httpx.AsyncClient, fallback: SDKTypes) -> None:
    f = await client.post(
        "/files",
        files={"file": ("notes.txt", b"Pluto is a dwarf planet.", "text/plain")},
        data={"purpose": "assistants"},
    )
    assert f.status_code == 200, f.text
    fallback.validate_response("POST", "/files", 200, f.json())
    rejects(fallback, "/files", {k: v for k, v in f.json().items() if k != "bytes"}, "'bytes' is a required property")
    vs = await client.post("/vector_stores", json={"name": "kb", "file_ids": [f.json()["id"]]})
    assert vs.status_code == 200, vs.text
    fallback.validate_response("POST", "/vector_stores", 200, vs.json())
    rejects(fallback, "/vector_stores", {**vs.json(), "file_counts": {}}, r"\$\.file_counts")
    files = await client.get(f"/vector_stores/{vs.json()['id']}/files")
    fallback.validate_response("GET", f"/vector_stores/{vs.json()['id']}/files", 200, files.json())


async def test_a_real_stream_passes_and_broken_events_fail(
    client: httpx.AsyncClient, llm: FakeLLM, fallback: SDKTypes
) -> None:
    llm.set_turns([{"text": "Hi! How can I help you today?", "chunk_size": 5}])
    a = (await client.post("/assistants", json={"model": "fake-model"})).json()
    events = await sse(
        client, "/threads/runs", {"assistant_id": a["id"], "thread": {"messages": [{"role": "user", "content": "Hi"}]}}
    )
    seen = {name for name, _ in events}
    assert {"thread.created", "thread.run.created", "thread.message.delta", "thread.run.step.completed", "done"} <= seen
    for name, data in events:
        fallback.validate_event(name, data)

    data = dict(events)
    delta = copy.deepcopy(data["thread.message.delta"])
    del delta["delta"]["content"][0]["index"]
    with pytest.raises(AssertionError, match=r"thread\.message\.delta.*'index' is a required property"):
        fallback.validate_event("thread.message.delta", delta)
    delta = copy.deepcopy(data["thread.message.delta"])
    delta["delta"]["content"][0]["text"]["valeu"] = "x"
    with pytest.raises(AssertionError, match=r"thread\.message\.delta"):
        fallback.validate_event("thread.message.delta", delta)
    with pytest.raises(AssertionError, match=r"thread\.run\.created.*\$\.status"):
        fallback.validate_event("thread.run.created", {**data["thread.run.created"], "status": "running"})
    with pytest.raises(AssertionError, match=r"thread\.run\.step\.completed"):
        fallback.validate_event("thread.run.step.completed", data["thread.run.completed"])  # a run is not a step
    with pytest.raises(AssertionError, match="done"):
        fallback.validate_event("done", "DONE")


# --------------------------------------------------------------------------- #
# Strictness details
# --------------------------------------------------------------------------- #


def test_a_delta_carries_only_what_changed_but_no_unknown_key(fallback: SDKTypes) -> None:
    sparse = {
        "id": "msg_1",
        "object": "thread.message.delta",
        "delta": {"content": [{"index": 0, "type": "text", "text": {"value": " more"}}]},
    }
    fallback.validate_event("thread.message.delta", sparse)
    fallback.validate("MessageDeltaObject", sparse)
    with pytest.raises(AssertionError, match="'role' was unexpected"):
        fallback.validate_event("thread.message.delta", {**sparse, "role": "assistant"})  # role belongs in delta
    # Outside deltas the same SDK defaults are required: a message has all its fields.
    with pytest.raises(AssertionError, match="required property"):
        fallback.validate("MessageObject", {"id": "msg_1", "object": "thread.message"})


def test_spec_optional_fields_may_be_absent_and_nothing_else(fallback: SDKTypes) -> None:
    file = {
        "id": "file-abc",
        "object": "file",
        "bytes": 1,
        "created_at": 1,
        "filename": "a.txt",
        "purpose": "assistants",
        "status": "processed",
    }
    fallback.validate("OpenAIFile", file)  # expires_at, status_details: optional in the spec
    del file["status"]
    with pytest.raises(AssertionError, match="'status' is a required property"):
        fallback.validate("OpenAIFile", file)


def test_unknown_operations_and_statuses_fail(fallback: SDKTypes) -> None:
    with pytest.raises(AssertionError, match="no 201 response"):
        fallback.validate_response("POST", "/assistants", 201, {})
    with pytest.raises(AssertionError, match="no operation DELETE"):
        fallback.validate_response("DELETE", "/threads/runs", 200, {})
    with pytest.raises(AssertionError, match="no path"):
        fallback.validate_response("GET", "/models", 200, {})


# --------------------------------------------------------------------------- #
# The SDK reference against the spec (CI)
# --------------------------------------------------------------------------- #


def test_the_optional_table_is_exactly_what_the_spec_does_not_require(openapi: OpenAPISpec) -> None:
    assert crosscheck.optional_fields(openapi.raw) == sdk.OPTIONAL
    assert crosscheck.spec_only_fields(openapi.raw) == set(), "fields the strict SDK reference would reject"


def test_paths_and_events_are_the_specs(openapi: OpenAPISpec) -> None:
    documented: dict[str, dict[str, str | None]] = {}
    for template, operations in openapi.raw["paths"].items():
        for method, operation in operations.items():
            media = operation["responses"]["200"]["content"]
            ref = media.get("application/json", {}).get("schema", {}).get("$ref")
            documented.setdefault(template, {})[method] = ref.rsplit("/", 1)[-1] if ref else None
    assert documented == sdk.PATHS
    assert SDKTypes().event_names() == openapi.event_names()
