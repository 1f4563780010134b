"""Attach a file and ask about it at once: the run's first file_search waits for the files of its
stores still being ingested (up to file_search_wait_seconds, 60 s), as OpenAI's did; past that it
searches what is ready and tells the model what was not.

The ingester is stopped while the run starts, so the file is certainly still in progress when the
model searches; it is started again while the run waits."""

from __future__ import annotations

import asyncio

import openai
import pytest

from assistd.fakellm import FakeLLM
from tests.runs.test_file_search_runs import FACTS, answer_citing, check_citation

QUESTION = "Where is the Zorblax festival held?"


@pytest.fixture
async def paused_ingester(state):
    await state.ingester.stop()
    try:
        yield state.ingester
    finally:
        state.ingester.start()
        await state.ingester.drain()


async def attach_and_ask(
    sdk: openai.AsyncOpenAI, llm: FakeLLM, answer: str = answer_citing("【0:0†festival.txt】")
) -> tuple[str, str, str]:
    """A message with a file attached for file_search, and a run asked at once: (thread, run, file)."""
    f = await sdk.files.create(file=("festival.txt", FACTS.encode()), purpose="assistants")
    asst = await sdk.beta.assistants.create(model="fake-model", tools=[{"type": "file_search"}])
    thread = await sdk.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": QUESTION,
                "attachments": [{"file_id": f.id, "tools": [{"type": "file_search"}]}],
            }
        ]
    )
    llm.set_turns(
        [
            {"tool_calls": [{"name": "file_search", "arguments": {"queries": ["Zorblax festival"]}}]},
            {"text": answer},
        ]
    )
    run = await sdk.beta.threads.runs.create(thread_id=thread.id, assistant_id=asst.id)
    return thread.id, run.id, f.id


async def test_first_search_waits_for_the_attached_file(sdk: openai.AsyncOpenAI, llm: FakeLLM, paused_ingester) -> None:
    thread_id, run_id, file_id = await attach_and_ask(sdk, llm)
    # The run is searching (its file_search step open) while the file is still in progress.
    for _ in range(400):
        steps = (await sdk.beta.threads.runs.steps.list(thread_id=thread_id, run_id=run_id)).data
        if steps and steps[0].type == "tool_calls":
            break
        await asyncio.sleep(0.01)
    assert steps[0].status == "in_progress"
    thread = await sdk.beta.threads.retrieve(thread_id)
    [vs_id] = thread.tool_resources.file_search.vector_store_ids
    vf = await sdk.vector_stores.files.retrieve(vector_store_id=vs_id, file_id=file_id)
    assert vf.status == "in_progress"
    await asyncio.sleep(0.3)  # the run keeps waiting rather than answering "No results found"
    assert (await sdk.beta.threads.runs.retrieve(thread_id=thread_id, run_id=run_id)).status == "in_progress"

    paused_ingester.start()
    run = await sdk.beta.threads.runs.poll(thread_id=thread_id, run_id=run_id, poll_interval_ms=20)
    assert run.status == "completed", run.last_error
    tool_msg = llm.chat_requests[-1].body["messages"][-1]
    assert (
        tool_msg["role"] == "tool"
        and "【0:0†festival.txt】" in tool_msg["content"]
        and "Quillhaven" in tool_msg["content"]
    )
    assert "still being processed" not in tool_msg["content"]
    msg = (await sdk.beta.threads.messages.list(thread_id=thread_id)).data[0]
    check_citation(msg.content[0].text.model_dump(), file_id)


async def test_after_the_wait_it_searches_what_is_ready(
    sdk: openai.AsyncOpenAI, llm: FakeLLM, state, paused_ingester
) -> None:
    settings = state.settings
    state.settings = settings.model_copy(update={"file_search_wait_seconds": 0.3})
    try:
        thread_id, run_id, _ = await attach_and_ask(sdk, llm, "The file is still being processed; ask again soon.")
        run = await sdk.beta.threads.runs.poll(thread_id=thread_id, run_id=run_id, poll_interval_ms=20)
    finally:
        state.settings = settings
    assert run.status == "completed", run.last_error
    tool_msg = llm.chat_requests[-1].body["messages"][-1]
    assert tool_msg["content"] == (
        "No results found for Zorblax festival.\n\n"
        "(1 file(s) were still being processed and could not be searched yet.)"
    )
