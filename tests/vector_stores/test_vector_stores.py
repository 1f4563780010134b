"""Vector stores end to end: endpoints, background ingestion (awaited by polling), search, filters."""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from tests.conftest import assert_error

DOCS = {
    "tides.txt": "The tides are caused by the gravitational pull of the moon and the sun on the oceans.",
    "bread.md": "# Baking\n\nSourdough bread needs a starter culture, flour, water and salt, and a long rise.",
    "rust.py": "def borrow_checker():\n    # Rust's borrow checker enforces ownership and lifetimes at compile time\n    return 42\n",
}


async def upload(client: httpx.AsyncClient, name: str, content: str | bytes) -> str:
    data = content.encode() if isinstance(content, str) else content
    r = await client.post("/files", data={"purpose": "assistants"}, files={"file": (name, data)})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


async def poll_file(client: httpx.AsyncClient, vs: str, fid: str, within: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        r = await client.get(f"/vector_stores/{vs}/files/{fid}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["status"] != "in_progress":
            assert "openai-poll-after-ms" not in r.headers
            return body
        assert r.headers["openai-poll-after-ms"]
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.02)


async def poll_store(client: httpx.AsyncClient, vs: str, within: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        body: dict[str, Any] = (await client.get(f"/vector_stores/{vs}")).json()
        if body["status"] != "in_progress":
            return body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.02)


async def store_with_docs(
    client: httpx.AsyncClient, attrs: dict[str, dict[str, Any]] | None = None
) -> tuple[str, dict[str, str]]:
    ids = {name: await upload(client, name, text) for name, text in DOCS.items()}
    vs = (await client.post("/vector_stores", json={"name": "docs"})).json()["id"]
    files = [{"file_id": fid, "attributes": (attrs or {}).get(name)} for name, fid in ids.items()]
    r = await client.post(f"/vector_stores/{vs}/file_batches", json={"files": files})
    assert r.status_code == 200, r.text
    await poll_store(client, vs)
    return vs, ids


async def store_of_notes(client: httpx.AsyncClient, state: Any, word: str, tag: str, notes: int) -> tuple[str, int]:
    """A store of one file of ``notes`` short notes, each with ``word`` and 8 words of its own
    (``{tag}{i}x{j}``), in 100-token chunks (so every chunk has ``word``); the store and its chunk count."""
    from sqlalchemy import text

    body = " ".join(f"{word} note {i}: " + " ".join(f"{tag}{i}x{j}" for j in range(8)) for i in range(notes))
    fid = await upload(client, f"{word}.txt", body)
    static = {"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0}}
    vs = (await client.post("/vector_stores", json={"file_ids": [fid], "chunking_strategy": static})).json()["id"]
    await poll_store(client, vs)
    async with state.db.session() as s:
        count = (await s.execute(text("SELECT count(*) FROM chunks WHERE vector_store_id = :v"), {"v": vs})).scalar()
    return vs, int(count or 0)


class TestStores:
    async def test_create_with_files_counts_and_usage(self, client: httpx.AsyncClient) -> None:
        fids = [await upload(client, n, t) for n, t in DOCS.items()]
        r = await client.post(
            "/vector_stores",
            json={
                "name": "kb",
                "file_ids": fids,
                "metadata": {"team": "x"},
                "expires_after": {"anchor": "last_active_at", "days": 2},
                "chunking_strategy": {
                    "type": "static",
                    "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 50},
                },
            },
        )
        assert r.status_code == 200, r.text
        vs = r.json()
        assert vs["id"].startswith("vs_") and vs["object"] == "vector_store"
        assert vs["file_counts"]["total"] == 3
        assert vs["expires_at"] == vs["last_active_at"] + 2 * 86400
        done = await poll_store(client, vs["id"])
        assert done["status"] == "completed"
        assert done["file_counts"] == {"in_progress": 0, "completed": 3, "failed": 0, "cancelled": 0, "total": 3}
        assert done["usage_bytes"] > 0
        f = (await client.get(f"/vector_stores/{vs['id']}/files/{fids[0]}")).json()
        assert f["chunking_strategy"] == {
            "type": "static",
            "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 50},
        }
        assert f["usage_bytes"] > 0

    async def test_list_modify_delete(self, client: httpx.AsyncClient, other_client: httpx.AsyncClient) -> None:
        ids = [(await client.post("/vector_stores", json={"name": f"s{i}"})).json()["id"] for i in range(3)]
        page = (await client.get("/vector_stores", params={"limit": 2})).json()
        assert [v["id"] for v in page["data"]] == ids[::-1][:2] and page["has_more"]
        nxt = (await client.get("/vector_stores", params={"limit": 2, "after": page["last_id"]})).json()
        assert [v["id"] for v in nxt["data"]] == [ids[0]]
        r = await client.post(
            f"/vector_stores/{ids[0]}", json={"name": "renamed", "metadata": {"a": "b"}, "expires_after": None}
        )
        assert r.json()["name"] == "renamed" and r.json()["metadata"] == {"a": "b"}
        assert_error(
            await other_client.get(f"/vector_stores/{ids[0]}"),
            404,
            message=f"No vector store found with id '{ids[0]}'.",
        )
        assert_error(await other_client.delete(f"/vector_stores/{ids[0]}"), 404)
        d = await client.delete(f"/vector_stores/{ids[0]}")
        assert d.json() == {"id": ids[0], "object": "vector_store.deleted", "deleted": True}
        assert_error(await client.get(f"/vector_stores/{ids[0]}"), 404)

    async def test_beta_header_not_required(self, app: Any, project: tuple[str, str]) -> None:
        from tests.conftest import asgi_client

        async with asgi_client(app, project[0], beta=False) as c:
            assert (await c.post("/vector_stores", json={})).status_code == 200

    async def test_bad_input(self, client: httpx.AsyncClient) -> None:
        assert_error(await client.get("/vector_stores/asst_1"), 400, param="vector_store_id", code="invalid_value")
        assert_error(await client.post("/vector_stores", json={"file_ids": ["file-nope"]}), 400, param="file_ids[0]")
        assert_error(
            await client.post("/vector_stores", json={"bogus": 1}), 400, param="bogus", code="unknown_parameter"
        )
        assert_error(
            await client.post("/vector_stores", json={"expires_after": {"anchor": "last_active_at", "days": 366}}),
            400,
            param="expires_after.days",
            code="integer_above_max_value",
        )
        assert_error(
            await client.post("/vector_stores", json={"metadata": {f"k{i}": "v" for i in range(17)}}),
            400,
            param="metadata",
            code="object_above_max_size",
        )
        fid = await upload(client, "a.txt", "hello world")
        for static, param, code in [
            (
                {"max_chunk_size_tokens": 99, "chunk_overlap_tokens": 0},
                "max_chunk_size_tokens",
                "integer_below_min_value",
            ),
            (
                {"max_chunk_size_tokens": 4097, "chunk_overlap_tokens": 0},
                "max_chunk_size_tokens",
                "integer_above_max_value",
            ),
            ({"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 101}, "chunk_overlap_tokens", "invalid_value"),
        ]:
            r = await client.post(
                "/vector_stores", json={"file_ids": [fid], "chunking_strategy": {"type": "static", "static": static}}
            )
            assert_error(r, 400, param=f"chunking_strategy.static.{param}", code=code)


class TestFiles:
    async def test_attach_poll_update_content_detach(
        self, client: httpx.AsyncClient, other_client: httpx.AsyncClient
    ) -> None:
        vs = (await client.post("/vector_stores", json={})).json()["id"]
        fid = await upload(client, "tides.txt", DOCS["tides.txt"])
        r = await client.post(
            f"/vector_stores/{vs}/files", json={"file_id": fid, "attributes": {"year": 2024, "ok": True}}
        )
        assert r.status_code == 200, r.text
        assert r.json()["id"] == fid and r.json()["status"] == "in_progress"
        f = await poll_file(client, vs, fid)
        assert f["status"] == "completed" and f["last_error"] is None
        assert f["chunking_strategy"]["static"] == {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}
        u = await client.post(f"/vector_stores/{vs}/files/{fid}", json={"attributes": {"year": 2025}})
        assert u.json()["attributes"] == {"year": 2025}
        c = (await client.get(f"/vector_stores/{vs}/files/{fid}/content")).json()
        assert c["object"] == "vector_store.file_content.page"
        assert "gravitational pull" in "".join(p["text"] for p in c["data"])
        listing = (await client.get(f"/vector_stores/{vs}/files", params={"filter": "completed"})).json()
        assert [x["id"] for x in listing["data"]] == [fid]
        assert (await client.get(f"/vector_stores/{vs}/files", params={"filter": "failed"})).json()["data"] == []
        assert_error(await other_client.get(f"/vector_stores/{vs}/files/{fid}"), 404)
        d = await client.delete(f"/vector_stores/{vs}/files/{fid}")
        assert d.json() == {"id": fid, "object": "vector_store.file.deleted", "deleted": True}
        assert (await client.get(f"/files/{fid}")).status_code == 200  # the File is kept
        store = (await client.get(f"/vector_stores/{vs}")).json()
        assert store["file_counts"]["total"] == 0 and store["usage_bytes"] == 0
        hits = (await client.post(f"/vector_stores/{vs}/search", json={"query": "moon tides"})).json()
        assert hits["data"] == []

    async def test_attributes_limits(self, client: httpx.AsyncClient) -> None:
        vs = (await client.post("/vector_stores", json={})).json()["id"]
        fid = await upload(client, "a.txt", "hello world")
        assert_error(
            await client.post(
                f"/vector_stores/{vs}/files", json={"file_id": fid, "attributes": {f"k{i}": 1 for i in range(17)}}
            ),
            400,
            param="attributes",
            code="object_above_max_size",
        )
        assert_error(
            await client.post(f"/vector_stores/{vs}/files", json={"file_id": fid, "attributes": {"k" * 65: 1}}),
            400,
            param="attributes",
            code="string_above_max_length",
        )
        assert_error(
            await client.post(f"/vector_stores/{vs}/files", json={"file_id": fid, "attributes": {"k": "v" * 513}}),
            400,
            param="attributes.k",
            code="string_above_max_length",
        )
        err = assert_error(
            await client.post(f"/vector_stores/{vs}/files", json={"file_id": fid, "attributes": {"k": {"x": 1}}}),
            400,
            param="attributes.k",
        )
        assert err["code"] == "invalid_type"
        assert_error(
            await client.post(
                f"/vector_stores/{vs}/file_batches", json={"files": [{"file_id": fid, "attributes": {"k": "v" * 513}}]}
            ),
            400,
            param="files[0].attributes.k",
            code="string_above_max_length",
            message="Invalid 'files[0].attributes.k': string too long. Expected a string with maximum length 512, "
            "but got a string with length 513 instead.",
        )
        assert_error(await client.post(f"/vector_stores/{vs}/files", json={"file_id": "vs_x"}), 400, param="file_id")
        assert_error(await client.post("/vector_stores/vs_nope/files", json={"file_id": fid}), 404)

    async def test_pdf_pages_read_as_pages_without_page_break_characters(self, client: httpx.AsyncClient) -> None:
        from tests.retrieval.docgen import make_pdf

        vs = (await client.post("/vector_stores", json={})).json()["id"]
        pdf = make_pdf([["First page about apples"], ["Second page about oranges"]])
        fid = await upload(client, "fruit.pdf", pdf)
        await client.post(f"/vector_stores/{vs}/files", json={"file_id": fid})
        assert (await poll_file(client, vs, fid))["status"] == "completed"
        c = (await client.get(f"/vector_stores/{vs}/files/{fid}/content")).json()
        assert [p["text"] for p in c["data"]] == ["First page about apples", "Second page about oranges"]
        hits = (await client.post(f"/vector_stores/{vs}/search", json={"query": "apples oranges"})).json()["data"]
        text = hits[0]["content"][0]["text"]
        assert "apples" in text and "oranges" in text and "\f" not in text

    async def test_failed_files(self, client: httpx.AsyncClient) -> None:
        vs = (await client.post("/vector_stores", json={})).json()["id"]
        bad = {
            "empty.txt": b"",
            "program.exe": b"MZ\x90\x00\x03\x00binary",
            "broken.pdf": b"%PDF-1.4 this is not really a pdf",
        }
        ids = {n: await upload(client, n, d) for n, d in bad.items()}
        r = await client.post(f"/vector_stores/{vs}/file_batches", json={"file_ids": list(ids.values())})
        assert r.status_code == 200
        results = {n: await poll_file(client, vs, fid) for n, fid in ids.items()}
        for body in results.values():
            assert body["status"] == "failed"
            assert body["last_error"]["code"] in ("unsupported_file", "invalid_file")
        assert results["program.exe"]["last_error"]["code"] == "unsupported_file"
        assert results["empty.txt"]["last_error"]["code"] == "invalid_file"
        store = await poll_store(client, vs)
        assert store["file_counts"]["failed"] == 3 and store["status"] == "completed"
        batch = (await client.get(f"/vector_stores/{vs}/file_batches/{r.json()['id']}")).json()
        assert batch["status"] == "failed" and batch["file_counts"]["failed"] == 3

    async def test_deleting_the_file_detaches_it_everywhere(self, client: httpx.AsyncClient) -> None:
        fid = await upload(client, "tides.txt", DOCS["tides.txt"])
        stores = [(await client.post("/vector_stores", json={"file_ids": [fid]})).json()["id"] for _ in range(2)]
        for vs in stores:
            await poll_store(client, vs)
        assert (await client.delete(f"/files/{fid}")).status_code == 200
        for vs in stores:
            body = (await client.get(f"/vector_stores/{vs}")).json()
            assert body["file_counts"]["total"] == 0 and body["usage_bytes"] == 0
            assert_error(await client.get(f"/vector_stores/{vs}/files/{fid}"), 404)
            assert (await client.post(f"/vector_stores/{vs}/search", json={"query": "tides moon"})).json()["data"] == []


class TestBatches:
    async def test_xor_and_listing(self, client: httpx.AsyncClient) -> None:
        vs = (await client.post("/vector_stores", json={})).json()["id"]
        fid = await upload(client, "a.txt", "alpha beta gamma")
        assert_error(
            await client.post(
                f"/vector_stores/{vs}/file_batches", json={"file_ids": [fid], "files": [{"file_id": fid}]}
            ),
            400,
            param="files",
        )
        assert_error(await client.post(f"/vector_stores/{vs}/file_batches", json={}), 400, param="file_ids")
        assert_error(
            await client.post(f"/vector_stores/{vs}/file_batches", json={"file_ids": []}),
            400,
            param="file_ids",
            code="empty_array",
        )
        r = await client.post(f"/vector_stores/{vs}/file_batches", json={"file_ids": [fid], "attributes": {"k": "v"}})
        b = r.json()
        assert b["id"].startswith("vsfb_") and b["object"] == "vector_store.files_batch"
        assert b["file_counts"]["total"] == 1
        await poll_store(client, vs)
        files = (
            await client.get(f"/vector_stores/{vs}/file_batches/{b['id']}/files", params={"filter": "completed"})
        ).json()
        assert [f["id"] for f in files["data"]] == [fid] and files["data"][0]["attributes"] == {"k": "v"}
        got = await client.get(f"/vector_stores/{vs}/file_batches/{b['id']}")
        assert got.json()["status"] == "completed" and "openai-poll-after-ms" not in got.headers
        assert_error(await client.post(f"/vector_stores/{vs}/file_batches/{b['id']}/cancel"), 400)
        assert_error(await client.get(f"/vector_stores/{vs}/file_batches/vsfb_nope"), 404)
        assert_error(await client.get(f"/vector_stores/{vs}/file_batches/vs_nope"), 400, param="batch_id")

    async def test_cancel(self, client: httpx.AsyncClient, state: Any) -> None:
        vs = (await client.post("/vector_stores", json={})).json()["id"]
        fids = [await upload(client, f"f{i}.txt", f"document number {i} " * 50) for i in range(20)]
        b = (await client.post(f"/vector_stores/{vs}/file_batches", json={"file_ids": fids})).json()
        c = (await client.post(f"/vector_stores/{vs}/file_batches/{b['id']}/cancel")).json()
        counts = c["file_counts"]
        assert sum(counts[k] for k in ("in_progress", "completed", "failed", "cancelled")) == counts["total"] == 20
        assert c["status"] == "cancelled" and counts["in_progress"] == 0
        await state.ingester.drain()
        after = (await client.get(f"/vector_stores/{vs}/file_batches/{b['id']}")).json()
        assert after["status"] == "cancelled"
        assert after["file_counts"]["cancelled"] + after["file_counts"]["completed"] == 20
        listed = (
            await client.get(
                f"/vector_stores/{vs}/file_batches/{b['id']}/files", params={"filter": "cancelled", "limit": 100}
            )
        ).json()
        assert len(listed["data"]) == after["file_counts"]["cancelled"]


class TestSearch:
    async def test_ranking_and_shape(self, client: httpx.AsyncClient) -> None:
        vs, ids = await store_with_docs(client)
        before = (await client.get(f"/vector_stores/{vs}")).json()["last_active_at"]
        r = await client.post(
            f"/vector_stores/{vs}/search", json={"query": "what causes ocean tides?", "max_num_results": 2}
        )
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["object"] == "vector_store.search_results.page"
        assert page["search_query"] == ["what causes ocean tides?"]
        assert 1 <= len(page["data"]) <= 2
        top = page["data"][0]
        assert top["file_id"] == ids["tides.txt"] and top["filename"] == "tides.txt"
        assert 0 < top["score"] <= 1 and "moon" in top["content"][0]["text"]
        assert (await client.get(f"/vector_stores/{vs}")).json()["last_active_at"] >= before
        multi = (
            await client.post(f"/vector_stores/{vs}/search", json={"query": ["sourdough starter", "borrow checker"]})
        ).json()
        assert {d["file_id"] for d in multi["data"][:2]} == {ids["bread.md"], ids["rust.py"]}
        none = (
            await client.post(
                f"/vector_stores/{vs}/search", json={"query": "tides", "ranking_options": {"ranker": "none"}}
            )
        ).json()
        assert none["data"][0]["file_id"] == ids["tides.txt"]
        high = (
            await client.post(
                f"/vector_stores/{vs}/search",
                json={"query": "tides", "ranking_options": {"score_threshold": 0.99}, "rewrite_query": True},
            )
        ).json()
        assert all(d["score"] >= 0.99 for d in high["data"])

    async def test_fts_syntax_is_neutralised(self, client: httpx.AsyncClient) -> None:
        vs, _ = await store_with_docs(client)
        for q in ['"unbalanced', "NEAR(a b", "col:tides AND OR NOT", "*", "tides^2 -moon", "()"]:
            r = await client.post(f"/vector_stores/{vs}/search", json={"query": q})
            assert r.status_code == 200, (q, r.text)

    async def test_keyword_side_checks_the_project_itself(
        self, client: httpx.AsyncClient, state: Any, project: tuple[str, str]
    ) -> None:
        """The keyword statements start before the stores are read, so they must check the project."""
        from assistd.retrieval import search
        from tests.conftest import new_project_key

        vs, ids = await store_with_docs(client)
        _, stranger = await new_project_key(state)
        rows: dict[int, dict[str, Any]] = {}
        assert await search._keyword(state, stranger, [vs], ["tides moon"], 30, None, rows) in ([], [[]])
        assert rows == {}
        assert await search.search_stores(state, stranger, [vs], ["tides moon"]) == []
        (ranked,) = await search._keyword(state, project[1], [vs], ["tides moon"], 30, None, rows)
        assert rows[ranked[0]]["file_id"] == ids["tides.txt"]

    async def test_keyword_side_counts_how_often_a_word_occurs(
        self, client: httpx.AsyncClient, state: Any, project: tuple[str, str]
    ) -> None:
        """BM25's term frequency: of two chunks of the same length with the query's word, the one
        that repeats it ranks first, although it was indexed second."""
        from assistd.retrieval import search

        once = await upload(client, "once.txt", "Harbour notes: the tides were measured near the old pier today.")
        thrice = await upload(client, "thrice.txt", "Harbour notes: tides, tides and more tides near the old pier.")
        vs = (await client.post("/vector_stores", json={"file_ids": [once]})).json()["id"]
        await poll_store(client, vs)
        r = await client.post(f"/vector_stores/{vs}/files", json={"file_id": thrice})
        assert r.status_code == 200, r.text
        await poll_file(client, vs, thrice)
        rows: dict[int, dict[str, Any]] = {}
        (ranked,) = await search._keyword(state, project[1], [vs], ["tides"], 30, None, rows)
        assert [rows[seq]["file_id"] for seq in ranked] == [thrice, once]

    async def test_keyword_side_remembers_its_counts_when_nothing_matches(
        self, client: httpx.AsyncClient, state: Any, project: tuple[str, str]
    ) -> None:
        """PostgreSQL counts a new word's documents in the keyword statement and remembers the count;
        a question none of whose words occur must not make the next search count them again."""
        from assistd.retrieval import search

        if state.db.is_sqlite:
            pytest.skip("the document-frequency cache is PostgreSQL's")
        vs, ids = await store_with_docs(client)
        db = state.settings.resolved_database_url
        words = ["zanzibarquux", "glorptastic"]
        rows: dict[int, dict[str, Any]] = {}
        assert await search._keyword(state, project[1], [vs], [" ".join(words)], 30, None, rows) == [[]]
        assert rows == {}
        for w in words:
            (lexeme,) = search._pg_lexeme_cache[(db, w)]
            assert search._pg_df_cache[(db, lexeme)][1] == 0
        # and a question that does match still finds its chunk, with the remembered words in it
        (ranked,) = await search._keyword(state, project[1], [vs], [f"tides {words[0]}"], 30, None, rows)
        assert rows[ranked[0]]["file_id"] == ids["tides.txt"]

    async def test_keyword_side_reads_only_what_it_ranks_for_one_word(
        self, client: httpx.AsyncClient, state: Any, project: tuple[str, str]
    ) -> None:
        """PostgreSQL: with one lexeme kept (a one-word question, or one of common words only) the
        pre-selection has nothing to rank by, so the statement reads as many matches as it keeps for
        BM25 (4 x k), not up to the scan limit (3,000)."""
        import json

        from sqlalchemy import text

        from assistd.retrieval import search

        if state.db.is_sqlite:
            pytest.skip("PostgreSQL's keyword statement")
        vs, chunks = await store_of_notes(client, state, "harbour", "tide", 60)
        k = 2
        assert chunks > 4 * k + 2  # every chunk has the word: more matches than BM25 ranks

        async def heap_rows_read() -> tuple[int, list[int]]:
            sql, args = search._pg_keyword_statement(["harbour"], {}, chunks, 60.0, [vs], project[1], k, None)
            async with state.db.session() as s:
                raw = (await (await s.connection()).get_raw_connection()).driver_connection
                plan = await raw.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, *args)
                plan = json.loads(plan) if isinstance(plan, str) else plan
                found = [r["seq"] for r in await raw.fetch(sql, *args)]
            nodes, scans = [plan[0]["Plan"]], []
            while nodes:
                node = nodes.pop()
                nodes += node.get("Plans", [])
                if node.get("Alias") == "m":  # the matches read, before the pre-selection
                    scans.append(node["Actual Rows"])
            (read,) = scans
            return read, found

        read, found = await heap_rows_read()
        assert read == 4 * k
        assert len(found) == k
        # A two-word question ranks its matches by the words they have: it still reads them all.
        sql, args = search._pg_keyword_statement(["harbour", "tide3x1"], {}, chunks, 60.0, [vs], project[1], k, None)
        async with state.db.session() as s:
            raw = (await (await s.connection()).get_raw_connection()).driver_connection
            (hit,) = [r["seq"] for r in await raw.fetch(sql, *args)][:1]
            tide = (await s.execute(text("SELECT text FROM chunks WHERE seq = :s"), {"s": hit})).scalar()
        assert "tide3x1" in tide

    async def test_keyword_side_does_not_count_words_the_statistics_know_are_common(
        self, client: httpx.AsyncClient, state: Any, project: tuple[str, str]
    ) -> None:
        """PostgreSQL: the keyword statement counts the chunks of a word new to the process (up to a
        cap: reading that many rows), unless ANALYZE's statistics already put the word well over the
        cap; then it takes the cap as the count without reading a row, and ranks the same."""
        import json

        from sqlalchemy import text

        from assistd.retrieval import search

        if state.db.is_sqlite:
            pytest.skip("PostgreSQL's keyword statement")
        vs, chunks = await store_of_notes(client, state, "quayside", "ebb", 150)
        async with state.db.session(write=True) as s:
            await s.execute(text("ANALYZE chunks"))
        cap = chunks // 2  # every chunk of the store has "quayside"
        async with state.db.session() as s:
            raw = (await (await s.connection()).get_raw_connection()).driver_connection
            corpus = await search._pg_read_corpus(raw, common_from=search.COMMON_MARGIN * cap)
            common = corpus.common_for(["quayside", "ebb7x3"])
            assert common == ["quaysid"]  # the word's lexeme; the rare word is not there

            async def run(common: list[str]) -> tuple[int, list[int], list[list[Any]]]:
                """Rows read to count words, the chunks found, and the counts the statement returns."""
                sql, args = search._pg_keyword_statement(
                    ["quayside", "ebb7x3"], {}, corpus.n, corpus.avgdl, [vs], project[1], 3, None, common
                )
                args[3], args[5] = cap, cap - 1  # the count cap and the postings budget
                plan = await raw.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, *args)
                plan = json.loads(plan) if isinstance(plan, str) else plan
                nodes, counted = [plan[0]["Plan"]], 0
                while nodes:
                    node = nodes.pop()
                    nodes += node.get("Plans", [])
                    conds = " ".join(str(node.get(key, "")) for key in ("Filter", "Recheck Cond", "Index Cond"))
                    if "quote_literal" in conds and node.get("Relation Name", "chunks") == "chunks":
                        counted += node["Actual Rows"] * node["Actual Loops"]
                found = await raw.fetch(sql, *args)
                counts = found[0]["counts"]
                return counted, [r["seq"] for r in found], json.loads(counts) if isinstance(counts, str) else counts

            read_counting, found_counting, counts_counting = await run([])
            read_known, found_known, counts_known = await run(common)
        assert read_counting >= cap  # the common word counted, up to the cap
        assert read_known < cap  # only the rare word counted
        assert sorted(counts_known) == sorted(counts_counting) == [["ebb7x3", 1], ["quaysid", cap]]
        assert found_known == found_counting != []  # the same chunk (the common word is left out: over the budget)

    async def test_search_without_the_fast_reader(
        self, client: httpx.AsyncClient, state: Any, project: tuple[str, str]
    ) -> None:
        """ASSISTD_FAST_READS=false: PostgreSQL's search statements run on a session's connection."""
        from assistd.retrieval import search

        vs, ids = await store_with_docs(client)
        fast = await search.search_stores(state, project[1], [vs], ["tides moon"], max_num_results=3)
        reader, state.db.fast = state.db.fast, None
        try:
            slow = await search.search_stores(state, project[1], [vs], ["tides moon"], max_num_results=3)
        finally:
            state.db.fast = reader
        assert slow[0].file_id == ids["tides.txt"]
        assert [(h.file_id, round(h.score, 6)) for h in slow] == [(h.file_id, round(h.score, 6)) for h in fast]

    async def test_pgvector_searches_through_the_halfvec_index(
        self, client: httpx.AsyncClient, state: Any, project: tuple[str, str]
    ) -> None:
        """With pgvector, the store's dimension gets a float16 HNSW index, the search statement
        uses it, and the cosines it returns are still those of the float32 vectors."""
        from sqlalchemy import text

        from assistd.retrieval import search
        from assistd.retrieval.index import backend, get_embedder

        b = await backend(state)
        if b.kind != "pgvector":
            pytest.skip("needs PostgreSQL with pgvector")
        vs, ids = await store_with_docs(client)
        hits = await search.search_stores(state, project[1], [vs], ["moon gravity"], max_num_results=3)
        assert hits[0].file_id == ids["tides.txt"]
        # a transaction, for SET LOCAL (read sessions are not one); without it, once ANALYZE has
        # seen that the table is small, the planner rightly prefers a sequential scan
        async with state.db.session(write=True) as s:
            dim = (await s.execute(text("SELECT dim FROM chunks WHERE vector_store_id = :v"), {"v": vs})).scalar()
            names = set(
                (await s.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'chunks'"))).scalars()
            )
            assert f"ix_chunks_hvec_{dim}" in names and f"ix_chunks_vec_{dim}" not in names
            await s.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(
                (
                    await s.execute(
                        text(
                            f"EXPLAIN SELECT seq FROM chunks WHERE dim = {dim} ORDER BY "
                            f"embedding_vec::{b.vec_type(dim)} <=> CAST(:q AS {b.vec_type(dim)}) LIMIT 5"
                        ),
                        {"q": "[" + ",".join(["0.5"] * int(dim)) + "]"},
                    )
                ).scalars()
            )
        assert f"ix_chunks_hvec_{dim}" in plan
        emb = get_embedder(state)
        qv = await search._embed_queries(emb, ["moon gravity"])
        stores, _ = await search._stores(state, project[1], [vs], None)
        rows: dict[int, dict[str, Any]] = {}
        (ranked,) = await search._vector_pg(state, stores, qv, emb.name, int(dim), 10, None, rows)
        async with state.db.session() as s:
            stored = dict(
                (await s.execute(text("SELECT seq, embedding FROM chunks WHERE vector_store_id = :v"), {"v": vs})).all()
            )
        exact = {seq: float(np.frombuffer(blob, dtype=np.float32) @ qv[0]) for seq, blob in stored.items()}
        assert sorted(ranked) == sorted(exact)  # a handful of chunks: the index returns them all
        for seq in ranked:
            assert abs(rows[seq]["cos"] - exact[seq]) < 1e-5
        assert ranked[0] == max(exact, key=exact.__getitem__)

    async def test_bad_search_input(self, client: httpx.AsyncClient, other_client: httpx.AsyncClient) -> None:
        vs = (await client.post("/vector_stores", json={})).json()["id"]
        assert_error(await client.post(f"/vector_stores/{vs}/search", json={}), 400, param="query")
        assert_error(
            await client.post(f"/vector_stores/{vs}/search", json={"query": "x", "max_num_results": 51}),
            400,
            param="max_num_results",
        )
        assert_error(
            await client.post(f"/vector_stores/{vs}/search", json={"query": "x", "max_num_results": 0}),
            400,
            param="max_num_results",
        )
        assert_error(
            await client.post(
                f"/vector_stores/{vs}/search", json={"query": "x", "ranking_options": {"ranker": "fast"}}
            ),
            400,
            param="ranking_options.ranker",
        )
        assert_error(
            await client.post(
                f"/vector_stores/{vs}/search", json={"query": "x", "filters": {"type": "in", "key": "a", "value": 1}}
            ),
            400,
            param="filters.value",
        )
        assert_error(
            await client.post(
                f"/vector_stores/{vs}/search", json={"query": "x", "filters": {"type": "xor", "filters": []}}
            ),
            400,
            param="filters.type",
        )
        assert_error(await other_client.post(f"/vector_stores/{vs}/search", json={"query": "x"}), 404)

    @pytest.mark.parametrize(
        ("flt", "expected"),
        [
            ({"type": "eq", "key": "lang", "value": "en"}, {"tides.txt", "bread.md"}),
            ({"type": "ne", "key": "lang", "value": "en"}, {"rust.py"}),
            ({"type": "gt", "key": "year", "value": 2020}, {"bread.md", "rust.py"}),
            ({"type": "gte", "key": "year", "value": 2021}, {"bread.md", "rust.py"}),
            ({"type": "lt", "key": "year", "value": 2021}, {"tides.txt"}),
            ({"type": "lte", "key": "year", "value": 2021.0}, {"tides.txt", "bread.md"}),
            ({"type": "in", "key": "lang", "value": ["fr", "code"]}, {"rust.py"}),
            ({"type": "nin", "key": "lang", "value": ["en"]}, {"rust.py"}),
            ({"type": "eq", "key": "public", "value": True}, {"tides.txt"}),
            ({"type": "eq", "key": "year", "value": "2021"}, set()),
            # beyond 64 bits (SQLite binds no such integer): compared as numbers all the same
            ({"type": "lt", "key": "year", "value": 2**64}, {"tides.txt", "bread.md", "rust.py"}),
            ({"type": "in", "key": "year", "value": [2**63, 2019]}, {"tides.txt"}),
            (
                {
                    "type": "and",
                    "filters": [
                        {"type": "eq", "key": "lang", "value": "en"},
                        {"type": "gt", "key": "year", "value": 2020},
                    ],
                },
                {"bread.md"},
            ),
            (
                {
                    "type": "or",
                    "filters": [
                        {"type": "eq", "key": "public", "value": True},
                        {
                            "type": "and",
                            "filters": [
                                {"type": "eq", "key": "lang", "value": "code"},
                                {"type": "lte", "key": "year", "value": 2030},
                            ],
                        },
                    ],
                },
                {"tides.txt", "rust.py"},
            ),
        ],
    )
    async def test_filters(self, client: httpx.AsyncClient, flt: dict[str, Any], expected: set[str]) -> None:
        attrs = {
            "tides.txt": {"lang": "en", "year": 2019, "public": True},
            "bread.md": {"lang": "en", "year": 2021, "public": False},
            "rust.py": {"lang": "code", "year": 2024},
        }
        vs, ids = await store_with_docs(client, attrs)
        names = {v: k for k, v in ids.items()}
        r = await client.post(
            f"/vector_stores/{vs}/search",
            json={"query": "tides bread borrow checker", "filters": flt, "max_num_results": 50},
        )
        assert r.status_code == 200, r.text
        assert {names[d["file_id"]] for d in r.json()["data"]} == expected


class TestExpiry:
    async def test_sweep_marks_expired(self, client: httpx.AsyncClient, state: Any) -> None:
        from sqlalchemy import update

        from assistd.models import VectorStore
        from assistd.vector_stores.sweep import sweep_vector_stores

        vs = (
            await client.post("/vector_stores", json={"expires_after": {"anchor": "last_active_at", "days": 1}})
        ).json()
        keep = (await client.post("/vector_stores", json={})).json()
        async with state.db.session(write=True) as s:  # a day and a bit of inactivity
            await s.execute(
                update(VectorStore).where(VectorStore.id == vs["id"]).values(expires_at=int(time.time()) - 1)
            )
        assert await sweep_vector_stores(state) >= 1
        assert (await client.get(f"/vector_stores/{vs['id']}")).json()["status"] == "expired"
        assert (await client.get(f"/vector_stores/{keep['id']}")).json()["status"] == "completed"
        assert_error(await client.post(f"/vector_stores/{vs['id']}/search", json={"query": "x"}), 400)


class TestHelpers:
    async def test_assistant_helper_store(self, client: httpx.AsyncClient) -> None:
        fid = await upload(client, "tides.txt", DOCS["tides.txt"])
        r = await client.post(
            "/assistants",
            json={
                "model": "m",
                "tools": [{"type": "file_search"}],
                "tool_resources": {"file_search": {"vector_stores": [{"file_ids": [fid], "metadata": {"k": "v"}}]}},
            },
        )
        assert r.status_code == 200, r.text
        (vs,) = r.json()["tool_resources"]["file_search"]["vector_store_ids"]
        store = await poll_store(client, vs)
        assert store["metadata"] == {"k": "v"} and store["file_counts"]["completed"] == 1

    async def test_tool_resources_checks(self, client: httpx.AsyncClient, other_client: httpx.AsyncClient) -> None:
        theirs = (await other_client.post("/vector_stores", json={})).json()["id"]
        ours = (await client.post("/vector_stores", json={})).json()["id"]
        assert_error(
            await client.post(
                "/assistants", json={"model": "m", "tool_resources": {"file_search": {"vector_store_ids": [theirs]}}}
            ),
            400,
            param="tool_resources.file_search.vector_store_ids[0]",
        )
        assert_error(
            await client.post("/threads", json={"tool_resources": {"file_search": {"vector_store_ids": ["asst_x"]}}}),
            400,
            param="tool_resources.file_search.vector_store_ids[0]",
        )
        assert_error(
            await client.post("/threads", json={"tool_resources": {"file_search": {"vector_store_ids": [ours, ours]}}}),
            400,
            param="tool_resources.file_search.vector_store_ids",
            code="array_above_max_length",
        )
        assert_error(
            await client.post(
                "/threads",
                json={
                    "tool_resources": {"file_search": {"vector_store_ids": [ours], "vector_stores": [{"file_ids": []}]}}
                },
            ),
            400,
            param="tool_resources.file_search",
        )
        ok = await client.post("/threads", json={"tool_resources": {"file_search": {"vector_store_ids": [ours]}}})
        assert ok.json()["tool_resources"]["file_search"]["vector_store_ids"] == [ours]

    async def test_thread_helper_and_attachments(self, client: httpx.AsyncClient) -> None:
        f1 = await upload(client, "tides.txt", DOCS["tides.txt"])
        f2 = await upload(client, "bread.md", DOCS["bread.md"])
        t = (
            await client.post(
                "/threads",
                json={
                    "messages": [
                        {
                            "role": "user",
                            "content": "see file",
                            "attachments": [{"file_id": f1, "tools": [{"type": "file_search"}]}],
                        }
                    ]
                },
            )
        ).json()
        (vs,) = t["tool_resources"]["file_search"]["vector_store_ids"]
        store = (await client.get(f"/vector_stores/{vs}")).json()
        assert store["expires_after"] == {"anchor": "last_active_at", "days": 7}
        assert store["expires_at"] == store["last_active_at"] + 7 * 86400
        m = await client.post(
            f"/threads/{t['id']}/messages",
            json={
                "role": "user",
                "content": "more",
                "attachments": [{"file_id": f2, "tools": [{"type": "file_search"}]}],
            },
        )
        assert m.status_code == 200, m.text
        store = await poll_store(client, vs)
        assert store["file_counts"]["completed"] == 2
        # a thread without any store gets one from its first file_search attachment
        t2 = (await client.post("/threads", json={})).json()
        await client.post(
            f"/threads/{t2['id']}/messages",
            json={
                "role": "user",
                "content": "x",
                "attachments": [{"file_id": f1, "tools": [{"type": "code_interpreter"}]}],
            },
        )
        assert (await client.get(f"/threads/{t2['id']}")).json()["tool_resources"] == {}
        await client.post(
            f"/threads/{t2['id']}/messages",
            json={"role": "user", "content": "x", "attachments": [{"file_id": f1, "tools": [{"type": "file_search"}]}]},
        )
        assert (await client.get(f"/threads/{t2['id']}")).json()["tool_resources"]["file_search"]["vector_store_ids"]


class TestSDK:
    async def test_sdk_helpers(self, sdk: openai.AsyncOpenAI) -> None:
        vs = await sdk.vector_stores.create(name="sdk")
        f = await sdk.vector_stores.files.upload_and_poll(
            vector_store_id=vs.id, file=("tides.txt", io.BytesIO(DOCS["tides.txt"].encode())), poll_interval_ms=20
        )
        assert f.status == "completed"
        batch = await sdk.vector_stores.file_batches.upload_and_poll(
            vector_store_id=vs.id,
            files=[
                ("bread.md", io.BytesIO(DOCS["bread.md"].encode())),
                ("rust.py", io.BytesIO(DOCS["rust.py"].encode())),
            ],
            poll_interval_ms=20,
        )
        assert batch.status == "completed" and batch.file_counts.completed == 2
        extra = await sdk.files.create(
            file=("x.txt", io.BytesIO(b"zebra crossings and pedestrians")), purpose="assistants"
        )
        b2 = await sdk.vector_stores.file_batches.create_and_poll(
            vector_store_id=vs.id, file_ids=[extra.id], poll_interval_ms=20
        )
        assert b2.file_counts.completed == 1
        f2 = await sdk.vector_stores.files.create_and_poll(vector_store_id=vs.id, file_id=extra.id, poll_interval_ms=20)
        assert f2.status == "completed"
        page = await sdk.vector_stores.search(vector_store_id=vs.id, query="zebra pedestrians", max_num_results=3)
        assert page.data[0].file_id == extra.id and page.data[0].filename == "x.txt"
        files = [x async for x in sdk.vector_stores.files.list(vector_store_id=vs.id, limit=2)]
        assert len(files) == 4
        content = [c async for c in sdk.vector_stores.files.content(file_id=f.id, vector_store_id=vs.id)]
        assert "moon" in content[0].text
        await sdk.vector_stores.files.delete(file_id=f.id, vector_store_id=vs.id)
        assert (await sdk.vector_stores.retrieve(vs.id)).file_counts.total == 3
        assert (await sdk.vector_stores.delete(vs.id)).deleted
