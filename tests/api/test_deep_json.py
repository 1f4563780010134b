"""A JSON body nested deeper than 100 levels is a 400 naming the field, at every depth; up to the
limit, a deep value is stored and read back (no 500 formatting, storing or sending it)."""

from __future__ import annotations

import httpx
import pytest

from assistd.routing import MAX_JSON_DEPTH
from tests.conftest import assert_error


def nested(levels: int) -> str:
    """A JSON value with ``levels`` levels of objects."""
    return '{"a":' * levels + "1" + "}" * levels


def schema_body(levels: int) -> str:
    # {body {response_format {json_schema {schema <levels>}}}}: 3 levels around the schema
    return (
        '{"model": "m", "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": '
        + nested(levels)
        + "}}}"
    )


async def post(client: httpx.AsyncClient, path: str, body: str) -> httpx.Response:
    return await client.post(path, content=body, headers={"content-type": "application/json"})


async def test_just_under_the_limit_is_an_ordinary_validation_error(client: httpx.AsyncClient) -> None:
    r = await post(client, "/assistants", '{"model": "m", "response_format": ' + nested(MAX_JSON_DEPTH - 2) + "}")
    assert_error(
        r,
        400,
        param="response_format.type",
        code="missing_required_parameter",
        message="Missing required parameter: 'response_format.type'.",
    )


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH, 120, 253, 254, 300, 966, 1000, 1020, 1023, 1100, 20000])
async def test_response_format_at_every_depth(client: httpx.AsyncClient, levels: int) -> None:
    r = await post(client, "/assistants", '{"model": "m", "response_format": ' + nested(levels) + "}")
    if levels + 1 > 1024:  # orjson's own parser limit: the body is not JSON it can read
        assert_error(r, 400, contains="We could not parse the JSON body of your request.")
    else:
        assert_error(
            r,
            400,
            param="response_format",
            code="invalid_value",
            message=f"Invalid 'response_format': the value is nested too deeply (more than {MAX_JSON_DEPTH} "
            "levels of objects and arrays).",
        )


async def test_deepest_allowed_schema_is_stored_and_read_back(client: httpx.AsyncClient) -> None:
    levels = MAX_JSON_DEPTH - 3  # under the body itself, response_format and json_schema
    r = await post(client, "/assistants", schema_body(levels))
    assert r.status_code == 200, r.text
    got = (await client.get(f"/assistants/{r.json()['id']}")).json()
    schema = got["response_format"]["json_schema"]["schema"]
    for _ in range(levels - 1):
        schema = schema["a"]
    assert schema == {"a": 1}
    assert_error(await post(client, "/assistants", schema_body(levels + 1)), 400, param="response_format")


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/threads", '{"messages": [{"role": "user", "content": ' + "[" * 500 + "]" * 500 + "}]}", "messages"),
        ("/assistants", '{"model": "m", "metadata": {"k": ' + nested(999) + "}}", "metadata"),
        (
            "/assistants",
            '{"model": "m", "tools": [{"type": "function", "function": {"name": "f", "parameters": '
            + nested(260)
            + "}}]}",
            "tools",
        ),
        ("/assistants", "[" * 1000 + "]" * 1000, None),
    ],
)
async def test_other_fields_and_the_body_itself(client: httpx.AsyncClient, path: str, body: str, param: str) -> None:
    assert_error(await post(client, path, body), 400, param=param, code="invalid_value")
