"""file_search in runs: the model's search reaches the run's vector stores, the step shows the
results, and citation markers in the answer become file_citation annotations (CONTRACT §7 D, §8)."""

from __future__ import annotations

from typing import Any

import httpx
import openai

from assistd.fakellm import FakeLLM
from tests.runs.test_runs_http import wait_status
from tests.runs.util import RUN_START, TEXT_RUN, names, sse

INCLUDE = "step_details.tool_calls[*].file_search.results[*].content"
FACTS = (
    "The Zorblax festival is held every spring in the town of Quillhaven. "
    "Visitors bring lanterns shaped like herons, and the festival ends with a boat parade."
)
OTHER = "Quarterly revenue grew by twelve percent, driven by the new subscription plans."


async def store_with_files(sdk: openai.AsyncOpenAI) -> tuple[str, dict[str, str]]:
    vs = await sdk.vector_stores.create(name="docs")
    ids = {}
    for name, text in (("festival.txt", FACTS), ("finance.txt", OTHER)):
        f = await sdk.vector_stores.files.upload_and_poll(
            vector_store_id=vs.id, file=(name, text.encode()), poll_interval_ms=20
        )
        assert f.status == "completed", f.last_error
        ids[name] = f.id
    return vs.id, ids


def answer_citing(marker: str) -> str:
    return f"The Zorblax festival is held in Quillhaven{marker}, with heron lanterns."


def check_citation(text: dict[str, Any], file_id: str) -> None:
    value, (ann,) = text["value"], text["annotations"]
    assert ann["type"] == "file_citation" and ann["file_citation"]["file_id"] == file_id
    assert value[ann["start_index"] : ann["end_index"]] == ann["text"] == "【0:0†festival.txt】"


async def test_polled_run_searches_and_cites(sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
    vs, files = await store_with_files(sdk)
    asst = await sdk.beta.assistants.create(
        model="fake-model",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_store_ids": [vs]}},
    )
    thread = await sdk.beta.threads.create(messages=[{"role": "user", "content": "Where is the Zorblax festival?"}])
    llm.set_turns(
        [
            {"tool_calls": [{"name": "file_search", "arguments": {"queries": ["Zorblax festival town"]}}]},
            {"text": answer_citing("【0:0†festival.txt】")},
        ]
    )
    run = await sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=asst.id, poll_interval_ms=20)
    assert run.status == "completed", run.last_error
    assert run.usage is not None and run.usage.total_tokens > 0

    # The model was offered the tool, and read the results with their markers.
    first, second = llm.chat_requests[-2].body, llm.chat_requests[-1].body
    assert any(t["function"]["name"] == "file_search" for t in first["tools"])
    tool_msg = second["messages"][-1]
    assert tool_msg["role"] == "tool" and "【0:0†festival.txt】" in tool_msg["content"]
    assert "heron" in tool_msg["content"]
    call = second["messages"][-2]["tool_calls"][0]
    assert call["id"] == tool_msg["tool_call_id"] and call["function"]["name"] == "file_search"

    steps = (await sdk.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")).data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    assert all(s.status == "completed" for s in steps)
    fs_call = steps[0].step_details.tool_calls[0]
    assert fs_call.type == "file_search" and fs_call.id.startswith("call_")
    results = fs_call.file_search.results
    assert results[0].file_id == files["festival.txt"] and results[0].file_name == "festival.txt"
    assert 0 < results[0].score <= 1 and all(r.content is None for r in results)
    assert fs_call.file_search.ranking_options.ranker == "auto"

    # include[] adds the text of each result
    with_content = await sdk.beta.threads.runs.steps.retrieve(
        thread_id=thread.id, run_id=run.id, step_id=steps[0].id, include=[INCLUDE]
    )
    assert "Quillhaven" in with_content.step_details.tool_calls[0].file_search.results[0].content[0].text

    msg = (await sdk.beta.threads.messages.list(thread_id=thread.id)).data[0]
    check_citation(msg.content[0].text.model_dump(), files["festival.txt"])


async def test_streamed_run_has_order_d_and_streams_the_annotation(
    client: httpx.AsyncClient, sdk: openai.AsyncOpenAI, llm: FakeLLM
) -> None:
    vs, files = await store_with_files(sdk)
    a = (
        await client.post(
            "/assistants",
            json={
                "model": "fake-model",
                "tools": [{"type": "file_search", "file_search": {"max_num_results": 1}}],
                "tool_resources": {"file_search": {"vector_store_ids": [vs]}},
            },
        )
    ).json()["id"]
    t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "Zorblax?"}]})).json()["id"]
    llm.set_turns(
        [
            {"tool_calls": [{"name": "file_search", "arguments": {"queries": ["Zorblax festival"]}}]},
            # one character per chunk: the marker arrives in pieces
            {"text": answer_citing("【0:0†festival.txt】"), "chunk_size": 1, "chunk_unit": "chars"},
        ]
    )
    events = await sse(client, f"/threads/{t}/runs", {"assistant_id": a}, params={"include[]": INCLUDE})
    assert names(events) == [
        *RUN_START,
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.run.step.delta*",
        "thread.run.step.completed",
        *TEXT_RUN,
    ]
    intro = next(d for n, d in events if n == "thread.run.step.delta")["delta"]["step_details"]["tool_calls"][0]
    assert intro["type"] == "file_search" and intro["file_search"] == {} and intro["id"].startswith("call_")
    done_step = next(d for n, d in events if n == "thread.run.step.completed")
    results = done_step["step_details"]["tool_calls"][0]["file_search"]["results"]
    assert len(results) == 1 and results[0]["file_id"] == files["festival.txt"]
    assert "Quillhaven" in results[0]["content"][0]["text"]  # include[] was given on create

    deltas = [d["delta"]["content"][0] for n, d in events if n == "thread.message.delta"]
    streamed = [a for part in deltas for a in part["text"].get("annotations", [])]
    assert len(streamed) == 1 and streamed[0]["index"] == 0
    value = "".join(part["text"]["value"] for part in deltas)
    assert value[streamed[0]["start_index"] : streamed[0]["end_index"]] == streamed[0]["text"]
    completed = next(d for n, d in events if n == "thread.message.completed")
    check_citation(completed["content"][0]["text"], files["festival.txt"])


async def test_search_without_stores_tells_the_model(client: httpx.AsyncClient, llm: FakeLLM) -> None:
    a = (await client.post("/assistants", json={"model": "fake-model", "tools": [{"type": "file_search"}]})).json()
    t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "hi"}]})).json()["id"]
    llm.set_turns(
        [
            {"tool_calls": [{"name": "file_search", "arguments": {"queries": ["anything"]}}]},
            {"text": "I found nothing.【0:3†nowhere.txt】"},
        ]
    )
    run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a["id"]})).json()
    done = await wait_status(client, t, run["id"], "completed", "failed")
    assert done["status"] == "completed"
    assert "No files are available" in llm.chat_requests[-1].body["messages"][-1]["content"]
    msg = (await client.get(f"/threads/{t}/messages")).json()["data"][0]
    assert msg["content"][0]["text"]["annotations"] == []  # a marker naming no result is left alone


async def test_tool_choice_file_search_forces_the_function(client: httpx.AsyncClient, llm: FakeLLM) -> None:
    a = (await client.post("/assistants", json={"model": "fake-model", "tools": [{"type": "file_search"}]})).json()
    t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "hi"}]})).json()["id"]
    llm.set_turns([{"text": "ok"}])
    body = {"assistant_id": a["id"], "tool_choice": {"type": "file_search"}}
    run = (await client.post(f"/threads/{t}/runs", json=body)).json()
    await wait_status(client, t, run["id"], "completed")
    assert llm.chat_requests[-1].body["tool_choice"] == {"type": "function", "function": {"name": "file_search"}}


async def test_file_search_and_a_function_in_one_turn(
    client: httpx.AsyncClient, sdk: openai.AsyncOpenAI, llm: FakeLLM
) -> None:
    vs, _ = await store_with_files(sdk)
    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    a = (
        await client.post(
            "/assistants",
            json={
                "model": "fake-model",
                "tools": [{"type": "file_search"}, weather],
                "tool_resources": {"file_search": {"vector_store_ids": [vs]}},
            },
        )
    ).json()["id"]
    t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "hi"}]})).json()["id"]
    llm.set_turns(
        [
            {
                "tool_calls": [
                    {"name": "file_search", "arguments": {"queries": ["revenue"]}},
                    {"name": "get_weather", "arguments": {"city": "Oslo"}},
                ]
            },
            {"text": "Revenue grew【0:0†finance.txt】 and it is sunny."},
        ]
    )
    run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
    waiting = await wait_status(client, t, run["id"], "requires_action")
    (pending,) = waiting["required_action"]["submit_tool_outputs"]["tool_calls"]  # the function only
    assert pending["function"]["name"] == "get_weather"
    step = (await client.get(f"/threads/{t}/runs/{run['id']}/steps")).json()["data"][0]
    assert step["status"] == "in_progress"
    assert [c["type"] for c in step["step_details"]["tool_calls"]] == ["file_search", "function"]
    assert step["step_details"]["tool_calls"][0]["file_search"]["results"]  # searched already
    r = await client.post(
        f"/threads/{t}/runs/{run['id']}/submit_tool_outputs",
        json={"tool_outputs": [{"tool_call_id": pending["id"], "output": "sunny"}]},
    )
    assert r.status_code == 200, r.text
    done = await wait_status(client, t, run["id"], "completed")
    assert done["status"] == "completed"
    sent = llm.chat_requests[-1].body["messages"]
    tool_msgs = [m for m in sent if m["role"] == "tool"]
    assert len(tool_msgs) == 2 and tool_msgs[1]["content"] == "sunny" and "revenue" in tool_msgs[0]["content"]
    msg = (await client.get(f"/threads/{t}/messages")).json()["data"][0]
    (ann,) = msg["content"][0]["text"]["annotations"]
    assert ann["text"] == "【0:0†finance.txt】"


async def test_additional_message_attachment_joins_the_threads_store(
    client: httpx.AsyncClient, sdk: openai.AsyncOpenAI, llm: FakeLLM
) -> None:
    f = await sdk.files.create(file=("festival.txt", FACTS.encode()), purpose="assistants")
    a = (await client.post("/assistants", json={"model": "fake-model", "tools": [{"type": "file_search"}]})).json()
    t = (await client.post("/threads", json={})).json()["id"]
    llm.set_turns(
        [
            {"tool_calls": [{"name": "file_search", "arguments": {"queries": ["Zorblax"]}}]},
            {"text": answer_citing("【0:0†festival.txt】")},
        ]
    )
    extra = {
        "role": "user",
        "content": "Where?",
        "attachments": [{"file_id": f.id, "tools": [{"type": "file_search"}]}],
    }
    run = (
        await client.post(f"/threads/{t}/runs", json={"assistant_id": a["id"], "additional_messages": [extra]})
    ).json()
    await wait_status(client, t, run["id"], "completed")
    thread = (await client.get(f"/threads/{t}")).json()
    (vs,) = thread["tool_resources"]["file_search"]["vector_store_ids"]
    store = (await client.get(f"/vector_stores/{vs}")).json()
    assert store["expires_after"] == {"anchor": "last_active_at", "days": 7}
    msg = (await client.get(f"/threads/{t}/messages")).json()["data"][0]
    # the file may still be ingesting when the model searched; the store exists either way
    assert msg["content"][0]["text"]["value"].startswith("The Zorblax festival")


async def test_score_threshold_is_honoured(client: httpx.AsyncClient, sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
    vs, _ = await store_with_files(sdk)
    scores = {}
    for threshold in (0.0, 0.999):
        tool = {
            "type": "file_search",
            "file_search": {"ranking_options": {"ranker": "auto", "score_threshold": threshold}},
        }
        a = (
            await client.post(
                "/assistants",
                json={
                    "model": "fake-model",
                    "tools": [tool],
                    "tool_resources": {"file_search": {"vector_store_ids": [vs]}},
                },
            )
        ).json()["id"]
        t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "q"}]})).json()["id"]
        llm.set_turns(
            [{"tool_calls": [{"name": "file_search", "arguments": {"queries": ["Zorblax festival"]}}]}, {"text": "ok"}]
        )
        run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
        await wait_status(client, t, run["id"], "completed")
        step = (await client.get(f"/threads/{t}/runs/{run['id']}/steps", params={"order": "asc"})).json()["data"][0]
        fs = step["step_details"]["tool_calls"][0]["file_search"]
        assert fs["ranking_options"]["score_threshold"] == threshold
        scores[threshold] = [r["score"] for r in fs["results"]]
    assert scores[0.0] and all(s < 0.999 for s in scores[0.0])  # nothing this close: the threshold removes all
    assert scores[0.999] == []


async def test_sdk_stream_helper_gets_the_citation(sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
    vs, files = await store_with_files(sdk)
    asst = await sdk.beta.assistants.create(
        model="fake-model", tools=[{"type": "file_search"}], tool_resources={"file_search": {"vector_store_ids": [vs]}}
    )
    thread = await sdk.beta.threads.create(messages=[{"role": "user", "content": "Where?"}])
    llm.set_turns(
        [
            {"tool_calls": [{"name": "file_search", "arguments": {"queries": ["Zorblax festival"]}}]},
            {"text": answer_citing("【0:0†festival.txt】"), "chunk_size": 2, "chunk_unit": "chars"},
        ]
    )
    tool_types: list[str] = []

    class Handler(openai.AsyncAssistantEventHandler):
        async def on_tool_call_created(self, tool_call: Any) -> None:
            tool_types.append(tool_call.type)

    async with sdk.beta.threads.runs.stream(thread_id=thread.id, assistant_id=asst.id, event_handler=Handler()) as s:
        await s.until_done()
        (msg,) = await s.get_final_messages()
    assert tool_types == ["file_search"]
    check_citation(msg.content[0].text.model_dump(), files["festival.txt"])
