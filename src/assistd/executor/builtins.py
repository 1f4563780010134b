"""Executing the built-in tools for a run: file_search over the run's vector stores, and
code_interpreter in the thread's sandboxed kernel (its images and files stored as Files).

Nothing here holds a database transaction while searching or running code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from assistd.executor.tools import Citation, marker
from assistd.ids import new_id
from assistd.models import Assistant, File, Thread, VectorStoreFile
from assistd.timeutil import now

if TYPE_CHECKING:
    from assistd.models import Run
    from assistd.state import AppState

log = logging.getLogger("assistd.executor")

MAX_LOG_CHARS = 20_000  # what the model is shown of one execution's output
RESULT_TOKENS_GUESS = 800  # a chunk's size by default: sizes the default result count to the context


@dataclass(slots=True)
class Resources:
    """What the run's built-in tools may reach: stores to search, files for the kernel."""

    vector_store_ids: list[str] = field(default_factory=list)
    code_file_ids: list[str] = field(default_factory=list)
    # files of the stores still being ingested when the run first searched (after waiting for them)
    unready_files: int | None = None


async def load_resources(state: AppState, run: Run, messages: list[Any]) -> Resources:
    """The assistant's and the thread's tool resources, plus files attached for code_interpreter
    to the thread's ``messages`` (the ones the context was built from), without repeats."""
    a, t = Assistant.__table__.c, Thread.__table__.c
    async with state.db.session(inline=True) as s:
        assistant = (
            await s.execute(select(a.tool_resources).where(a.id == run.assistant_id, a.project_id == run.project_id))
        ).scalar()
        thread = (
            await s.execute(select(t.tool_resources).where(t.id == run.thread_id, t.project_id == run.project_id))
        ).scalar()
    attached = [
        x["file_id"]
        for msg in messages
        for x in msg.attachments or []
        if any(tool.get("type") == "code_interpreter" for tool in x.get("tools", []))
    ]
    res = Resources()
    for tr in (assistant or {}, thread or {}):
        res.vector_store_ids += (tr.get("file_search") or {}).get("vector_store_ids") or []
        res.code_file_ids += (tr.get("code_interpreter") or {}).get("file_ids") or []
    res.vector_store_ids = list(dict.fromkeys(res.vector_store_ids))
    res.code_file_ids = list(dict.fromkeys(res.code_file_ids + attached))
    return res


# --- file_search ----------------------------------------------------------------------------------


def search_settings(run: Run, context_window: int | None) -> tuple[int, dict[str, Any]]:
    """(max_num_results, ranking_options) from the run's file_search tool."""
    tool: dict[str, Any] = next((x for x in run.tools if x["type"] == "file_search"), {})
    fs = tool.get("file_search") or {}
    ranking = dict(fs.get("ranking_options") or {"ranker": "auto", "score_threshold": 0.0})
    limit = fs.get("max_num_results")
    if limit is None:
        # OpenAI: 20 for gpt-4* models, 5 for gpt-3.5; a small local model gets what fits half its window.
        limit = 5 if run.model.startswith("gpt-3.5") else 20
        if context_window:
            limit = max(1, min(limit, context_window // 2 // RESULT_TOKENS_GUESS))
    return int(limit), ranking


async def file_search(
    state: AppState, run: Run, res: Resources, call_index: int, queries: list[str], context_window: int | None
) -> tuple[dict[str, Any], str, dict[tuple[int, int], Citation]]:
    """Search; answers (the step's ``file_search`` object, what the model reads, citation map)."""
    from assistd.retrieval.search import search_stores

    limit, ranking = search_settings(run, context_window)
    if res.vector_store_ids and res.unready_files is None:
        res.unready_files = await wait_for_ingestion(state, run, res.vector_store_ids)
    hits = []
    if res.vector_store_ids and queries:
        hits = await search_stores(
            state,
            run.project_id,
            res.vector_store_ids,
            queries,
            max_num_results=limit,
            ranking_options={"ranker": ranking.get("ranker", "auto"), "score_threshold": ranking["score_threshold"]},
        )
    results = [
        {
            "file_id": h.file_id,
            "file_name": h.filename,
            "score": round(h.score, 6),
            "content": [{"type": "text", "text": h.text}],
        }
        for h in hits
    ]
    details = {
        "ranking_options": {"ranker": ranking.get("ranker", "auto"), "score_threshold": ranking["score_threshold"]},
        "results": results,
    }
    if not res.vector_store_ids:
        text = "No files are available to search."
    elif not hits:
        text = "No results found for " + "; ".join(queries) + "."
    else:
        text = "\n\n".join(f"{marker(call_index, n, h.filename)}\n{h.text}" for n, h in enumerate(hits))
    if res.unready_files:
        text += f"\n\n({res.unready_files} file(s) were still being processed and could not be searched yet.)"
    return details, text, {(call_index, n): Citation.of_result(r) for n, r in enumerate(results)}


async def wait_for_ingestion(state: AppState, run: Run, store_ids: list[str]) -> int:
    """Before a run's first search: wait (up to ``file_search_wait_seconds``, 60 s) until no file of
    its stores is still being ingested, as OpenAI did, so that a question about a file attached a
    moment ago finds it. Answers how many are still in progress after the wait (0: all ready)."""
    c = VectorStoreFile.__table__.c
    query = (
        select(func.count())
        .select_from(VectorStoreFile.__table__)
        .where(c.vector_store_id.in_(store_ids), c.project_id == run.project_id, c.status == "in_progress")
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + state.settings.file_search_wait_seconds
    delay = 0.05
    while True:
        async with state.db.session(inline=True) as s:
            pending = int(await s.scalar(query) or 0)
        remaining = deadline - loop.time()
        if not pending or remaining <= 0:
            break
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 1.5, 0.5)
    waited = loop.time() - started
    if pending:
        log.warning(
            "run %s: %d file(s) of its vector stores still in progress after %.0f s; searching what is ready",
            run.id,
            pending,
            waited,
        )
    elif waited >= 0.1:
        log.info("run %s: waited %.1f s for its vector stores' files to be ingested", run.id, waited)
    return pending


# --- code_interpreter -----------------------------------------------------------------------------


@dataclass(slots=True)
class CodeOutcome:
    outputs: list[dict[str, Any]]  # the step's outputs: logs, images
    model_text: str  # what the model reads back
    files: dict[str, str]  # sandbox path -> file id of every file the execution produced
    images: list[str]  # image file ids, in order (they become image_file content parts)


async def code_interpreter(state: AppState, run: Run, res: Resources, code: str) -> CodeOutcome:
    from assistd.sandbox import SandboxError

    sandbox = state.sandbox
    status = await sandbox.ensure_available() if sandbox is not None else None
    if sandbox is None or status is None or not status.available:
        reason = status.reason if status is not None else "the sandbox is not set up in this process"
        return CodeOutcome([], f"Error: the code interpreter is not available: {reason}", {}, [])
    from assistd.executor.affinity import bind

    await bind(state, run)  # this process holds the thread's kernel from now on
    staged = await _staged_files(state, run, res.code_file_ids)
    try:
        result = await sandbox.execute(run.thread_id, code, files=staged)
    except SandboxError as exc:
        log.warning("run %s: code interpreter unavailable: %s", run.id, exc)
        return CodeOutcome([], f"Error: the code interpreter could not run the code: {exc}", {}, [])
    try:
        images = [await _store_file(state, run, f"image-{i}.png", data) for i, data in enumerate(result.images)]
        files: dict[str, str] = {}
        for f in result.files:
            files[f.sandbox_path] = await _store_path(state, run, f.name, f.path)
    finally:
        result.cleanup()
    logs = result.logs
    outputs: list[dict[str, Any]] = []
    if logs:
        outputs.append({"type": "logs", "logs": logs})
    outputs += [{"type": "image", "image": {"file_id": fid}} for fid in images]
    text = logs if len(logs) <= MAX_LOG_CHARS else logs[: MAX_LOG_CHARS // 2] + "\n...\n" + logs[-MAX_LOG_CHARS // 2 :]
    notes = []
    if images:
        notes.append(f"[{len(images)} image(s) displayed to the user]")
    for path in files:
        notes.append(f"[file saved: {path} (link it as sandbox:{path})]")
    if not text and not notes:
        text = "[the code ran and printed nothing]"
    return CodeOutcome(outputs, "\n".join([text, *notes]).strip(), files, images)


async def _staged_files(state: AppState, run: Run, file_ids: list[str]) -> list[tuple[str, Any]]:
    if not file_ids:
        return []
    f = File.__table__.c
    async with state.db.session(inline=True) as s:
        rows = (
            await s.execute(
                select(f.id, f.filename, f.storage_key).where(f.id.in_(file_ids), f.project_id == run.project_id)
            )
        ).all()
    by_id = {r[0]: r for r in rows}
    return [(by_id[i][1], state.blobs.path(by_id[i][2])) for i in file_ids if i in by_id]


async def _store_file(state: AppState, run: Run, filename: str, data: bytes) -> str:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    return await _store(state, run, filename, chunks())


async def _store_path(state: AppState, run: Run, filename: str, path: Any) -> str:
    import anyio

    async def chunks() -> AsyncIterator[bytes]:
        async with await anyio.open_file(path, "rb") as fh:
            while block := await fh.read(1 << 16):
                yield block

    return await _store(state, run, filename, chunks())


async def _store(state: AppState, run: Run, filename: str, chunks: Any) -> str:
    """A File (purpose ``assistants_output``) of the project; the blob first, then its row."""
    from assistd.db.core import insert_rows
    from assistd.files.service import new_file

    file_id = new_id("file")
    size = await state.blobs.put(file_id, chunks, state.settings.max_upload_bytes)
    row = new_file(
        run.project_id,
        file_id,
        filename=filename,
        purpose="assistants_output",
        size=size,
        created_at=now(),
        expires_at=None,
    )
    async with state.db.session(write=True, inline=True) as s:
        await insert_rows(s, row)
    return file_id
