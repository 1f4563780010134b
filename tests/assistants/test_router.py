"""/v1/assistants over HTTP: shapes, defaults, limits, errors, pagination, tenancy."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import assert_error

FN_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


async def make(client: httpx.AsyncClient, **body: object) -> dict:
    r = await client.post("/assistants", json={"model": "gpt-4o", **body})
    assert r.status_code == 200, r.text
    return r.json()


class TestCreateAssistant:
    async def test_minimal_gets_the_real_defaults(self, client: httpx.AsyncClient) -> None:
        a = await make(client)
        assert a["id"].startswith("asst_") and len(a["id"]) == 29
        assert a["object"] == "assistant"
        assert a["model"] == "gpt-4o"
        assert (a["name"], a["description"], a["instructions"]) == (None, None, None)
        assert a["tools"] == [] and a["tool_resources"] == {} and a["metadata"] == {}
        assert (a["temperature"], a["top_p"], a["response_format"]) == (1.0, 1.0, "auto")
        assert "reasoning_effort" not in a

    async def test_full_body_round_trips(self, client: httpx.AsyncClient) -> None:
        a = await make(
            client,
            name="Tutor",
            description="d",
            instructions="Be brief.",
            tools=[
                {"type": "code_interpreter"},
                {"type": "file_search", "file_search": {"max_num_results": 7}},
                FN_TOOL,
            ],
            metadata={"team": "x"},
            temperature=0.2,
            top_p=0.5,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True},
            },
            reasoning_effort="low",
        )
        assert a["tools"][0] == {"type": "code_interpreter"}
        assert a["tools"][1] == {
            "type": "file_search",
            "file_search": {"max_num_results": 7, "ranking_options": {"ranker": "auto", "score_threshold": 0.0}},
        }
        assert a["tools"][2]["function"]["name"] == "get_weather"
        assert a["tools"][2]["function"]["strict"] is False
        assert a["response_format"]["json_schema"]["schema"] == {"type": "object"}
        assert (a["temperature"], a["top_p"], a["metadata"]) == (0.2, 0.5, {"team": "x"})
        got = (await client.get(f"/assistants/{a['id']}")).json()
        assert got == a

    @pytest.mark.parametrize(
        ("body", "param", "code"),
        [
            ({}, "model", "missing_required_parameter"),
            ({"model": 5}, "model", "invalid_type"),
            ({"model": "m", "colour": "red"}, "colour", "unknown_parameter"),
            ({"model": "m", "name": "x" * 257}, "name", "string_above_max_length"),
            ({"model": "m", "description": "x" * 513}, "description", "string_above_max_length"),
            ({"model": "m", "instructions": "x" * 256_001}, "instructions", "string_above_max_length"),
            ({"model": "m", "temperature": 2.5}, "temperature", "decimal_above_max_value"),
            ({"model": "m", "top_p": -1}, "top_p", "decimal_below_min_value"),
            ({"model": "m", "tools": [{"type": "code_interpreter"}] * 129}, "tools", "array_above_max_length"),
            ({"model": "m", "tools": [{"type": "browser"}]}, "tools[0].type", "invalid_value"),
            (
                {"model": "m", "tools": [{"type": "function", "function": {"name": "bad name"}}]},
                "tools[0].function.name",
                "invalid_value",
            ),
            ({"model": "m", "tools": [{"type": "function"}]}, "tools[0].function", "missing_required_parameter"),
            ({"model": "m", "tools": [{"type": "code_interpreter", "x": 1}]}, "tools[0].x", "unknown_parameter"),
            ({"model": "m", "reasoning_effort": "huge"}, "reasoning_effort", "invalid_value"),
            ({"model": "m", "response_format": "json"}, "response_format", None),
            (
                {"model": "m", "tool_resources": {"code_interpreter": {"file_ids": ["file-x"] * 21}}},
                "tool_resources.code_interpreter.file_ids",
                "array_above_max_length",
            ),
            (
                {"model": "m", "tool_resources": {"file_search": {"vector_store_ids": ["vs_a", "vs_b"]}}},
                "tool_resources.file_search.vector_store_ids",
                "array_above_max_length",
            ),
            (
                {"model": "m", "tool_resources": {"code_interpreter": {"file_ids": ["file-nope"]}}},
                "tool_resources.code_interpreter.file_ids[0]",
                "invalid_value",
            ),
            ({"model": "m", "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "object_above_max_size"),
            ({"model": "m", "metadata": {"k" * 65: "v"}}, "metadata", "string_above_max_length"),
            ({"model": "m", "metadata": {"k": "v" * 513}}, "metadata.k", "string_above_max_length"),
            ({"model": "m", "metadata": {"k": 1}}, "metadata.k", "invalid_type"),
        ],
    )
    async def test_bad_input_is_a_400_naming_the_param(self, client: httpx.AsyncClient, body, param, code) -> None:
        r = await client.post("/assistants", json=body)
        assert_error(r, 400, param=param, code=code)
        listed = (await client.get("/assistants")).json()
        assert listed["data"] == []  # nothing stored

    async def test_exact_wording_of_common_errors(self, client: httpx.AsyncClient) -> None:
        r = await client.post("/assistants", json={"model": "m", "role": "user"})
        assert_error(r, 400, param="role", message="Unknown parameter: 'role'.")
        r = await client.post("/assistants", json={})
        assert_error(r, 400, param="model", message="Missing required parameter: 'model'.")
        r = await client.post("/assistants", json={"model": "m", "reasoning_effort": ""})
        assert_error(
            r,
            400,
            param="reasoning_effort",
            message="Invalid value: ''. Supported values are: 'none', 'minimal', 'low', 'medium', 'high', 'xhigh', and 'max'.",
        )

    async def test_metadata_at_the_limits_is_accepted(self, client: httpx.AsyncClient) -> None:
        md = {f"{i:02d}" + "k" * 62: "v" * 512 for i in range(16)}
        a = await make(client, metadata=md)
        assert a["metadata"] == md

    async def test_malformed_json(self, client: httpx.AsyncClient) -> None:
        r = await client.post("/assistants", content=b'{"model": "m",', headers={"content-type": "application/json"})
        err = assert_error(r, 400, param=None)
        assert "could not parse the JSON body" in err["message"]

    async def test_json_that_is_not_an_object(self, client: httpx.AsyncClient) -> None:
        r = await client.post("/assistants", json=["model"])
        assert_error(r, 400, param=None, code="invalid_type")


class TestGetAssistant:
    async def test_missing_is_404_in_the_real_wording(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/assistants/asst_doesnotexist")
        assert_error(r, 404, message="No assistant found with id 'asst_doesnotexist'.")

    async def test_wrong_prefix_is_400(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/assistants/thread_abc")
        assert_error(
            r,
            400,
            param="assistant_id",
            message="Invalid 'assistant_id': 'thread_abc'. Expected an ID that begins with 'asst'.",
        )

    async def test_another_projects_assistant_is_a_404(
        self, client: httpx.AsyncClient, other_client: httpx.AsyncClient
    ) -> None:
        a = await make(client)
        r = await other_client.get(f"/assistants/{a['id']}")
        missing = await other_client.get("/assistants/asst_000000000000000000000000")
        assert r.status_code == missing.status_code == 404
        assert r.json()["error"]["message"] == f"No assistant found with id '{a['id']}'."
        for call in (
            other_client.post(f"/assistants/{a['id']}", json={"name": "stolen"}),
            other_client.delete(f"/assistants/{a['id']}"),
        ):
            assert (await call).status_code == 404
        assert (await client.get(f"/assistants/{a['id']}")).json()["name"] is None


class TestModifyAssistant:
    async def test_partial_update_keeps_other_fields(self, client: httpx.AsyncClient) -> None:
        a = await make(client, name="n", instructions="i", tools=[FN_TOOL], metadata={"a": "1"})
        r = await client.post(f"/assistants/{a['id']}", json={"name": "n2", "metadata": {"b": "2"}})
        m = r.json()
        assert m["name"] == "n2" and m["instructions"] == "i" and m["tools"] == a["tools"]
        assert m["metadata"] == {"b": "2"}
        assert m["created_at"] == a["created_at"]

    async def test_null_clears_a_nullable_field(self, client: httpx.AsyncClient) -> None:
        a = await make(client, name="n", description="d")
        m = (await client.post(f"/assistants/{a['id']}", json={"name": None, "tools": []})).json()
        assert m["name"] is None and m["description"] == "d" and m["tools"] == []

    async def test_bad_update_changes_nothing(self, client: httpx.AsyncClient) -> None:
        a = await make(client, name="n")
        r = await client.post(f"/assistants/{a['id']}", json={"name": "x", "temperature": 9})
        assert_error(r, 400, param="temperature")
        assert (await client.get(f"/assistants/{a['id']}")).json() == a

    async def test_vector_stores_helper_is_not_accepted_on_modify(self, client: httpx.AsyncClient) -> None:
        a = await make(client)
        r = await client.post(
            f"/assistants/{a['id']}", json={"tool_resources": {"file_search": {"vector_stores": [{"file_ids": []}]}}}
        )
        assert_error(r, 400, param="tool_resources.file_search.vector_stores", code="unknown_parameter")


class TestDeleteAssistant:
    async def test_delete_then_404(self, client: httpx.AsyncClient) -> None:
        a = await make(client)
        r = await client.delete(f"/assistants/{a['id']}")
        assert r.json() == {"id": a["id"], "object": "assistant.deleted", "deleted": True}
        assert (await client.get(f"/assistants/{a['id']}")).status_code == 404
        assert (await client.delete(f"/assistants/{a['id']}")).status_code == 404


class TestListAssistants:
    async def test_pagination_both_directions(self, client: httpx.AsyncClient) -> None:
        ids = [(await make(client, name=str(i)))["id"] for i in range(7)]
        page = (await client.get("/assistants", params={"limit": 3})).json()
        assert [x["id"] for x in page["data"]] == ids[::-1][:3]
        assert page["has_more"] is True
        assert (page["first_id"], page["last_id"]) == (ids[6], ids[4])
        page2 = (await client.get("/assistants", params={"limit": 3, "after": page["last_id"]})).json()
        assert [x["id"] for x in page2["data"]] == ids[::-1][3:6]
        page3 = (await client.get("/assistants", params={"limit": 3, "after": page2["last_id"]})).json()
        assert [x["id"] for x in page3["data"]] == [ids[0]] and page3["has_more"] is False
        asc = (await client.get("/assistants", params={"order": "asc", "limit": 100})).json()
        assert [x["id"] for x in asc["data"]] == ids
        back = (await client.get("/assistants", params={"limit": 2, "before": ids[2]})).json()
        assert [x["id"] for x in back["data"]] == [ids[4], ids[3]] and back["has_more"] is True
        back_asc = (await client.get("/assistants", params={"order": "asc", "limit": 2, "before": ids[3]})).json()
        assert [x["id"] for x in back_asc["data"]] == [ids[1], ids[2]]
        between = (await client.get("/assistants", params={"after": ids[5], "before": ids[1]})).json()
        assert [x["id"] for x in between["data"]] == [ids[4], ids[3], ids[2]]

    async def test_empty_list(self, client: httpx.AsyncClient) -> None:
        page = (await client.get("/assistants")).json()
        assert page == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}

    @pytest.mark.parametrize(
        ("params", "param", "code"),
        [
            ({"limit": 0}, "limit", "integer_below_min_value"),
            ({"limit": 101}, "limit", "integer_above_max_value"),
            ({"limit": "ten"}, "limit", "invalid_type"),
            ({"order": "sideways"}, "order", "invalid_value"),
            ({"after": "asst_unknown"}, "after", "invalid_value"),
            ({"before": "asst_unknown"}, "before", "invalid_value"),
        ],
    )
    async def test_bad_list_params(self, client: httpx.AsyncClient, params, param, code) -> None:
        assert_error(await client.get("/assistants", params=params), 400, param=param, code=code)

    async def test_cursor_from_another_project_is_unknown(
        self, client: httpx.AsyncClient, other_client: httpx.AsyncClient
    ) -> None:
        a = await make(client)
        assert_error(await other_client.get("/assistants", params={"after": a["id"]}), 400, param="after")
