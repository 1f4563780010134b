"""Bad input never produces a 500: every field of every JSON body, replaced by hostile values."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

HOSTILE: list[Any] = [
    None,
    0,
    -1,
    10**20,
    1.5,
    float("-0.0"),
    True,
    "",
    "x" * 5000,
    "\u0000",
    "😀",
    [],
    [None],
    {},
    {"a": {"b": []}},
    [{}] * 3,
]

BODIES: dict[str, dict[str, Any]] = {
    "assistant": {
        "model": "m",
        "name": "n",
        "description": "d",
        "instructions": "i",
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_resources": {"code_interpreter": {"file_ids": []}, "file_search": {"vector_store_ids": []}},
        "metadata": {"k": "v"},
        "temperature": 1,
        "top_p": 1,
        "response_format": {"type": "json_object"},
        "reasoning_effort": "low",
    },
    "thread": {
        "messages": [{"role": "user", "content": "x", "metadata": {}}],
        "metadata": {"k": "v"},
        "tool_resources": {},
    },
    "message": {"role": "user", "content": [{"type": "text", "text": "x"}], "attachments": [], "metadata": {}},
}


def mutations(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Each leaf and each container of ``body`` replaced by each hostile value."""
    out: list[dict[str, Any]] = []

    def paths(node: Any, prefix: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        found = [prefix] if prefix else []
        if isinstance(node, dict):
            for k, v in node.items():
                found += paths(v, (*prefix, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                found += paths(v, (*prefix, i))
        return found

    for path in paths(body, ()):
        for value in HOSTILE:
            b = copy.deepcopy(body)
            cur = b
            for key in path[:-1]:
                cur = cur[key]
            cur[path[-1]] = value
            out.append(b)
    return out


def ok_or_400(r: httpx.Response) -> None:
    assert r.status_code in (200, 400), (r.status_code, r.request.content[:300], r.text[:500])
    if r.status_code == 400:
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}


class TestNoServerErrors:
    async def test_assistant_create_and_modify(self, client: httpx.AsyncClient) -> None:
        a = (await client.post("/assistants", json=BODIES["assistant"])).json()
        for body in mutations(BODIES["assistant"]):
            ok_or_400(await client.post("/assistants", json=body))
            body.pop("model", None)
            ok_or_400(await client.post(f"/assistants/{a['id']}", json=body))

    async def test_thread_and_message_create(self, client: httpx.AsyncClient) -> None:
        t = (await client.post("/threads", json={})).json()
        for body in mutations(BODIES["thread"]):
            ok_or_400(await client.post("/threads", json=body))
        for body in mutations(BODIES["message"]):
            ok_or_400(await client.post(f"/threads/{t['id']}/messages", json=body))

    @pytest.mark.parametrize(
        "raw",
        [
            b"",
            b"null",
            b"[]",
            b"1",
            b'"s"',
            b"{",
            b"\xff\xfe",
            b'{"model": "m"}' * 2,
            b'{"model":"m","metadata":{"a":"\\ud800"}}',
        ],
    )
    async def test_raw_bodies(self, client: httpx.AsyncClient, raw: bytes) -> None:
        for path in ("/assistants", "/threads"):
            r = await client.post(path, content=raw, headers={"content-type": "application/json"})
            ok_or_400(r)

    @pytest.mark.parametrize(
        "ident", ["asst_" + "a" * 5000, "asst_%00", "asst_😀", "asst_'; drop table assistants;--", "asst_%2F..%2F"]
    )
    async def test_weird_ids(self, client: httpx.AsyncClient, ident: str) -> None:
        for r in (await client.get(f"/assistants/{ident}"), await client.get("/assistants", params={"after": ident})):
            assert r.status_code in (400, 404), r.text

    async def test_nul_is_refused_with_its_param(self, client: httpx.AsyncClient) -> None:
        from tests.conftest import assert_error

        r = await client.post("/assistants", json={"model": "m", "metadata": {"k": "a\u0000b"}})
        assert_error(r, 400, param="metadata.k", code="invalid_value")
        r = await client.get("/assistants", params={"after": "asst_\u0000"})
        assert_error(r, 400, param=None)
        assert (await client.get("/assistants")).json()["data"] == []
