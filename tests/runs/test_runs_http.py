"""Runs over HTTP with the scripted upstream: event orders, objects, rules, faults."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from assistd.fakellm import FakeLLM
from tests.conftest import assert_error
from tests.runs.util import RUN_START, TEXT_RUN, names, sse, text_of

WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


async def setup(client: httpx.AsyncClient, **assistant: Any) -> tuple[str, str]:
    a = (
        await client.post("/assistants", json={"model": "fake-model", "instructions": "Be brief.", **assistant})
    ).json()
    t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "Hello there"}]})).json()
    return a["id"], t["id"]


async def wait_status(client: httpx.AsyncClient, thread_id: str, run_id: str, *statuses: str) -> dict[str, Any]:
    for _ in range(2000):
        run = (await client.get(f"/threads/{thread_id}/runs/{run_id}")).json()
        if run["status"] in statuses:
            return run
        await asyncio.sleep(0.005)
    raise AssertionError(f"run stayed {run['status']}")


class TestTextRun:
    async def test_stream_event_order_is_exactly_contract_a(self, client: httpx.AsyncClient, llm: FakeLLM) -> None:
        llm.set_turns([{"text": "Hi! How can I help you today?", "chunk_size": 5}])
        a, t = await setup(client)
        events = await sse(client, f"/threads/{t}/runs", {"assistant_id": a})
        assert names(events) == RUN_START + TEXT_RUN
        assert text_of(events) == "Hi! How can I help you today?"
        created, queued, in_progress = (d for _, d in events[:3])
        assert created["status"] == queued["status"] == "queued" and created["usage"] is None
        assert created["expires_at"] == created["created_at"] + 600
        assert in_progress["status"] == "in_progress" and in_progress["started_at"] is not None
        step_created = events[3][1]
        message_created = events[5][1]
        assert step_created["step_details"]["message_creation"]["message_id"] == message_created["id"]
        assert message_created["content"] == [] and message_created["status"] == "in_progress"
        assert message_created["run_id"] == created["id"] and message_created["assistant_id"] == a
        deltas = [d for n, d in events if n == "thread.message.delta"]
        assert deltas[0]["delta"]["content"][0]["text"]["annotations"] == []
        assert all("annotations" not in d["delta"]["content"][0]["text"] for d in deltas[1:])
        completed = dict(events)["thread.run.completed"]
        assert completed["status"] == "completed" and completed["completed_at"] is not None
        assert completed["expires_at"] is None  # CONTRACT §7 A.11: an ended run no longer expires
        assert (
            completed["usage"]["total_tokens"]
            == completed["usage"]["prompt_tokens"] + completed["usage"]["completion_tokens"]
            > 0
        )
        assert dict(events)["thread.run.step.completed"]["usage"] is not None
        # What the model saw: the assistant's instructions, then the thread.
        sent = llm.chat_requests[-1].body
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
        assert sent["messages"][-1] == {"role": "user", "content": "Hello there"}

    async def test_polling_flow_and_objects(self, client: httpx.AsyncClient, llm: FakeLLM) -> None:
        llm.set_turns([{"text": "Polled answer."}])
        a, t = await setup(client)
        r = await client.post(f"/threads/{t}/runs", json={"assistant_id": a, "metadata": {"k": "v"}, "stream": False})
        run = r.json()
        assert run["status"] == "queued" and run["metadata"] == {"k": "v"} and run["instructions"] == "Be brief."
        assert run["tool_choice"] == "auto" and run["parallel_tool_calls"] is True
        assert run["truncation_strategy"] == {"type": "auto", "last_messages": None}
        done = await wait_status(client, t, run["id"], "completed")
        assert done["usage"]["completion_tokens"] > 0
        msgs = (await client.get(f"/threads/{t}/messages")).json()["data"]
        assert msgs[0]["role"] == "assistant" and msgs[0]["content"][0]["text"]["value"] == "Polled answer."
        assert msgs[0]["status"] == "completed" and msgs[0]["run_id"] == run["id"]
        only = (await client.get(f"/threads/{t}/messages", params={"run_id": run["id"]})).json()["data"]
        assert [m["id"] for m in only] == [msgs[0]["id"]]
        steps = (await client.get(f"/threads/{t}/runs/{run['id']}/steps")).json()["data"]
        assert [s["type"] for s in steps] == ["message_creation"] and steps[0]["status"] == "completed"
        step = (await client.get(f"/threads/{t}/runs/{run['id']}/steps/{steps[0]['id']}")).json()
        assert step == steps[0]
        listed = (await client.get(f"/threads/{t}/runs")).json()["data"]
        assert [x["id"] for x in listed] == [run["id"]]
        modified = (await client.post(f"/threads/{t}/runs/{run['id']}", json={"metadata": {"k": "w"}})).json()
        assert modified["metadata"] == {"k": "w"} and modified["status"] == "completed"

    async def test_poll_hint_header_while_active(self, client: httpx.AsyncClient, llm: FakeLLM) -> None:
        llm.set_turns([{"text": "slow", "ttft_ms": 300}])
        a, t = await setup(client)
        run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
        r = await client.get(f"/threads/{t}/runs/{run['id']}")
        assert r.headers["openai-poll-after-ms"] in {"100", "250"}  # young (a second boundary may pass)
        done = await wait_status(client, t, run["id"], "completed")
        r = await client.get(f"/threads/{t}/runs/{done['id']}")
        assert "openai-poll-after-ms" not in r.headers

    def test_poll_hint_grows_with_the_runs_age(self) -> None:
        from assistd.runs.router import poll_after_ms

        assert [poll_after_ms(1000, 1000 + age) for age in (0, 1, 2, 3, 4, 60)] == [
            "100",
            "250",
            "500",
            "750",
            "1000",
            "1000",
        ]

    async def test_overrides_and_additional_messages(self, client: httpx.AsyncClient, llm: FakeLLM) -> None:
        a, t = await setup(client)
        body = {
            "assistant_id": a,
            "model": "other-model",
            "instructions": "Override.",
            "additional_instructions": "Also this.",
            "additional_messages": [{"role": "user", "content": "Extra question"}],
            "temperature": 0.3,
            "top_p": 0.9,
            "response_format": {"type": "json_object"},
            "truncation_strategy": {"type": "last_messages", "last_messages": 1},
        }
        events = await sse(client, f"/threads/{t}/runs", body)
        run = events[0][1]
        assert run["model"] == "other-model" and run["instructions"] == "Override.\n\nAlso this."
        sent = llm.chat_requests[-1].body
        assert sent["model"] == "other-model" and sent["temperature"] == 0.3 and sent["top_p"] == 0.9
        assert sent["response_format"] == {"type": "json_object"}
        # last_messages: 1 keeps only the newest thread message (the additional one).
        assert sent["messages"] == [
            {"role": "system", "content": "Override.\n\nAlso this."},
            {"role": "user", "content": "Extra question"},
        ]
        msgs = (await client.get(f"/threads/{t}/messages", params={"order": "asc"})).json()["data"]
        assert [m["content"][0]["text"]["value"] for m in msgs][:2] == ["Hello there", "Extra question"]


class TestFunctionCalling:
    async def test_parallel_calls_then_submit_stream_is_contract_b(
        self, client: httpx.AsyncClient, llm: FakeLLM
    ) -> None:
        llm.set_turns(
            [
                {
                    "tool_calls": [
                        {"name": "get_weather", "arguments": {"city": "Paris"}},
                        {"name": "get_weather", "arguments": {"city": "Oslo"}},
                    ]
                },
                {"match": {"has_tool_results": True}, "text": "Paris is sunny, Oslo is rainy."},
            ]
        )
        a, t = await setup(client, tools=[WEATHER])
        events = await sse(client, f"/threads/{t}/runs", {"assistant_id": a})
        assert names(events) == [
            *RUN_START,
            "thread.run.step.created",
            "thread.run.step.in_progress",
            "thread.run.step.delta*",
            "thread.run.requires_action",
            "done",
        ]
        deltas = [d["delta"]["step_details"]["tool_calls"][0] for n, d in events if n == "thread.run.step.delta"]
        intros = [d for d in deltas if "id" in d]
        assert [d["index"] for d in intros] == [0, 1] and len({d["id"] for d in intros}) == 2
        assert all(d["function"]["name"] == "get_weather" and d["function"]["output"] is None for d in intros)
        assert all("name" not in d["function"] for d in deltas if "id" not in d)  # names sent once per index
        run = events[-2][1]
        calls = run["required_action"]["submit_tool_outputs"]["tool_calls"]
        assert [c["id"] for c in calls] == [d["id"] for d in intros] and all(c["id"].startswith("call_") for c in calls)
        args = {c["id"]: c["function"]["arguments"] for c in calls}
        streamed = {d["id"]: "" for d in intros}
        index_to_id = {d["index"]: d["id"] for d in intros}
        for d in deltas:
            streamed[index_to_id[d["index"]]] += d["function"].get("arguments", "")
        assert streamed == args and sorted(args.values()) == ['{"city":"Oslo"}', '{"city":"Paris"}']
        steps = (await client.get(f"/threads/{t}/runs/{run['id']}/steps")).json()["data"]
        assert steps[0]["status"] == "in_progress" and steps[0]["type"] == "tool_calls"
        outputs = [{"tool_call_id": c["id"], "output": f"weather for {c['id']}"} for c in calls]
        resumed = await sse(client, f"/threads/{t}/runs/{run['id']}/submit_tool_outputs", {"tool_outputs": outputs})
        assert names(resumed) == [
            "thread.run.step.completed",
            "thread.run.queued",
            "thread.run.in_progress",
            *TEXT_RUN,
        ]
        tool_step = resumed[0][1]
        assert [c["function"]["output"] for c in tool_step["step_details"]["tool_calls"]] == [
            o["output"] for o in outputs
        ]
        assert text_of(resumed) == "Paris is sunny, Oslo is rainy."
        sent = llm.chat_requests[-1].body["messages"]
        assert sent[-3]["tool_calls"][0]["id"] == calls[0]["id"]
        assert [m["tool_call_id"] for m in sent[-2:]] == [calls[0]["id"], calls[1]["id"]]

    async def test_submit_rules(self, client: httpx.AsyncClient, llm: FakeLLM) -> None:
        llm.set_turns(
            [
                {
                    "tool_calls": [
                        {"name": "get_weather", "arguments": {"city": "Rome"}},
                        {"name": "get_weather", "arguments": {"city": "Oslo"}},
                    ]
                }
            ]
        )
        a, t = await setup(client, tools=[WEATHER])
        run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
        run = await wait_status(client, t, run["id"], "requires_action")
        ids = [c["id"] for c in run["required_action"]["submit_tool_outputs"]["tool_calls"]]
        path = f"/threads/{t}/runs/{run['id']}/submit_tool_outputs"
        assert_error(
            await client.post(path, json={"tool_outputs": [{"tool_call_id": ids[0], "output": "x"}]}),
            400,
            param="tool_outputs",
            contains="missing",
        )
        assert_error(
            await client.post(
                path,
                json={
                    "tool_outputs": [
                        {"tool_call_id": "call_unknown", "output": "x"},
                        {"tool_call_id": ids[0], "output": "y"},
                    ]
                },
            ),
            400,
            param="tool_outputs",
            contains="unknown tool_call_id",
        )
        assert_error(
            await client.post(path, json={"tool_outputs": [{"tool_call_id": ids[0]}]}),
            400,
            param="tool_outputs[0].output",
        )
        # While waiting for outputs the thread is busy.
        assert_error(
            await client.post(f"/threads/{t}/messages", json={"role": "user", "content": "x"}),
            400,
            message=f"Can't add messages to {t} while a run {run['id']} is active.",
        )
        ok = await client.post(path, json={"tool_outputs": [{"tool_call_id": i, "output": "ok"} for i in ids]})
        assert ok.json()["status"] == "queued"
        done = await wait_status(client, t, run["id"], "completed")
        assert_error(
            await client.post(path, json={"tool_outputs": []}),
            400,
            message='Runs in status "completed" do not accept tool outputs.',
        )
        assert done["required_action"] is None


class TestCreateThreadAndRun:
    async def test_stream_starts_with_thread_created(self, client: httpx.AsyncClient, llm: FakeLLM) -> None:
        llm.set_turns([{"text": "Fresh thread."}])
        a = (await client.post("/assistants", json={"model": "fake-model"})).json()["id"]
        events = await sse(
            client,
            "/threads/runs",
            {"assistant_id": a, "thread": {"messages": [{"role": "user", "content": "hi"}], "metadata": {"m": "1"}}},
        )
        assert names(events) == ["thread.created", *RUN_START, *TEXT_RUN]
        thread = events[0][1]
        assert thread["metadata"] == {"m": "1"} and events[1][1]["thread_id"] == thread["id"]

    async def test_unknown_fields_of_create_run_are_refused(self, client: httpx.AsyncClient) -> None:
        a = (await client.post("/assistants", json={"model": "m"})).json()["id"]
        for field in ("additional_messages", "additional_instructions", "reasoning_effort"):
            r = await client.post("/threads/runs", json={"assistant_id": a, field: None})
            assert_error(r, 400, param=field, code="unknown_parameter")


class TestSeveralAssistants:
    async def test_turns_on_one_thread(self, client: httpx.AsyncClient, llm: FakeLLM) -> None:
        llm.set_turns([{"text": "I am Alpha."}, {"text": "I am Beta, and Alpha spoke before me."}])
        alpha = (
            await client.post("/assistants", json={"model": "fake-model", "instructions": "You are Alpha."})
        ).json()["id"]
        beta = (await client.post("/assistants", json={"model": "fake-model", "instructions": "You are Beta."})).json()[
            "id"
        ]
        t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "Who are you?"}]})).json()[
            "id"
        ]
        await sse(client, f"/threads/{t}/runs", {"assistant_id": alpha})
        await client.post(f"/threads/{t}/messages", json={"role": "user", "content": "And you?"})
        await sse(client, f"/threads/{t}/runs", {"assistant_id": beta})
        sent = llm.chat_requests[-1].body["messages"]
        assert sent == [
            {"role": "system", "content": "You are Beta."},
            {"role": "user", "content": "Who are you?"},
            {"role": "assistant", "content": "I am Alpha."},
            {"role": "user", "content": "And you?"},
        ]
        msgs = (await client.get(f"/threads/{t}/messages")).json()["data"]
        assert [m["assistant_id"] for m in msgs] == [beta, None, alpha, None]


class TestCancel:
    async def test_cancel_in_progress_stops_the_upstream(self, client: httpx.AsyncClient, llm: FakeLLM) -> None:
        llm.set_turns([{"text": "word " * 400, "tokens_per_second": 40}])
        a, t = await setup(client)
        run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
        for _ in range(1000):
            msgs = (await client.get(f"/threads/{t}/messages", params={"run_id": run["id"]})).json()["data"]
            if msgs and llm.active_responses:
                break
            await asyncio.sleep(0.005)
        r = await client.post(f"/threads/{t}/runs/{run['id']}/cancel")
        assert r.json()["status"] == "cancelling"
        done = await wait_status(client, t, run["id"], "cancelled")
        assert done["cancelled_at"] is not None and done["expires_at"] is None
        assert done["usage"] is not None
        msg = (await client.get(f"/threads/{t}/messages", params={"run_id": run["id"]})).json()["data"][0]
        assert msg["status"] == "incomplete" and msg["incomplete_details"] == {"reason": "run_cancelled"}
        step = (await client.get(f"/threads/{t}/runs/{run['id']}/steps")).json()["data"][0]
        assert step["status"] == "cancelled"
        for _ in range(200):
            if not llm.active_responses:
                break
            await asyncio.sleep(0.01)
        assert llm.active_responses == 0
        assert_error(
            await client.post(f"/threads/{t}/runs/{run['id']}/cancel"),
            400,
            message="Cannot cancel run with status 'cancelled'.",
        )

    async def test_cancel_requires_action(self, client: httpx.AsyncClient, llm: FakeLLM) -> None:
        llm.set_turns([{"tool_calls": [{"name": "get_weather", "arguments": {}}]}])
        a, t = await setup(client, tools=[WEATHER])
        run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
        await wait_status(client, t, run["id"], "requires_action")
        assert (await client.post(f"/threads/{t}/runs/{run['id']}/cancel")).json()["status"] == "cancelling"
        done = await wait_status(client, t, run["id"], "cancelled")
        assert done["required_action"] is None  # nothing is required of a cancelled run
        assert done["usage"] is not None
        steps = (await client.get(f"/threads/{t}/runs/{run['id']}/steps")).json()["data"]
        assert steps[0]["status"] == "cancelled"
        # The thread is free again.
        assert (await client.post(f"/threads/{t}/messages", json={"role": "user", "content": "x"})).status_code == 200


class TestRules:
    async def test_one_active_run_per_thread(self, client: httpx.AsyncClient, llm: FakeLLM) -> None:
        llm.set_turns([{"text": "slow", "ttft_ms": 400}])
        a, t = await setup(client)
        first = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
        r = await client.post(f"/threads/{t}/runs", json={"assistant_id": a})
        assert_error(r, 400, message=f"Thread {t} already has an active run {first['id']}.")
        assert_error(
            await client.post(f"/threads/{t}/messages", json={"role": "user", "content": "x"}),
            400,
            message=f"Can't add messages to {t} while a run {first['id']} is active.",
        )
        await wait_status(client, t, first["id"], "completed")

    async def test_concurrent_creates_start_one_run(self, client: httpx.AsyncClient, llm: FakeLLM) -> None:
        """Twenty create-run requests at once on one thread: exactly one run starts, every other
        request gets the one-active-run 400 naming it (on PostgreSQL the thread's row lock orders them)."""
        llm.set_turns([{"text": "slow", "ttft_ms": 400}])
        a, t = await setup(client)
        replies = await asyncio.gather(
            *(client.post(f"/threads/{t}/runs", json={"assistant_id": a}) for _ in range(20))
        )
        started = [r.json()["id"] for r in replies if r.status_code == 200]
        assert len(started) == 1, [r.text for r in replies]
        for r in replies:
            if r.status_code != 200:
                assert_error(r, 400, message=f"Thread {t} already has an active run {started[0]}.")
        runs = (await client.get(f"/threads/{t}/runs")).json()["data"]
        assert [x["id"] for x in runs] == started
        await wait_status(client, t, started[0], "completed")

    @pytest.mark.parametrize(
        ("extra", "param", "code"),
        [
            ({"max_prompt_tokens": 255}, "max_prompt_tokens", "integer_below_min_value"),
            ({"max_completion_tokens": 100}, "max_completion_tokens", "integer_below_min_value"),
            # beyond what a run stores (a 64-bit overflow was a 500 on SQLite, 32-bit on PostgreSQL)
            ({"max_completion_tokens": 2**63}, "max_completion_tokens", "integer_above_max_value"),
            ({"max_prompt_tokens": 2**31}, "max_prompt_tokens", "integer_above_max_value"),
            (
                {"truncation_strategy": {"type": "last_messages", "last_messages": 0}},
                "truncation_strategy.last_messages",
                "integer_below_min_value",
            ),
            ({"tools": [{"type": "code_interpreter"}] * 21}, "tools", "array_above_max_length"),
            (
                {"tool_choice": {"type": "function", "function": {"name": "nope"}}},
                "tool_choice.function.name",
                "invalid_value",
            ),
            ({"stream": "yes"}, "stream", "invalid_type"),
            ({"instructions": 5}, "instructions", "invalid_type"),
            ({"metadata": {"k": "v" * 513}}, "metadata.k", "string_above_max_length"),
            (
                {"additional_messages": [{"role": "user", "content": "x", "metadata": {"note": "v" * 513}}]},
                "additional_messages[0].metadata.note",
                "string_above_max_length",
            ),
        ],
    )
    async def test_bad_input(self, client: httpx.AsyncClient, extra: dict[str, Any], param: str, code: str) -> None:
        a, t = await setup(client)
        assert_error(
            await client.post(f"/threads/{t}/runs", json={"assistant_id": a, **extra}), 400, param=param, code=code
        )
        assert (await client.get(f"/threads/{t}/runs")).json()["data"] == []

    async def test_create_thread_and_run_errors_name_the_whole_path(self, client: httpx.AsyncClient) -> None:
        a, _ = await setup(client)
        assert_error(
            await client.post(
                "/threads/runs", json={"assistant_id": a, "stream": True, "max_completion_tokens": 2**63}
            ),
            400,
            param="max_completion_tokens",
            code="integer_above_max_value",
            message="Invalid 'max_completion_tokens': integer above maximum value. Expected a value <= 2147483647, "
            "but got 9223372036854775808 instead.",
        )
        message = {"role": "user", "content": "x", "metadata": {"k": "v" * 513}}
        assert_error(
            await client.post("/threads/runs", json={"assistant_id": a, "thread": {"messages": [message]}}),
            400,
            param="thread.messages[0].metadata.k",
            code="string_above_max_length",
            message="Invalid 'thread.messages[0].metadata.k': string too long. Expected a string with maximum "
            "length 512, but got a string with length 513 instead.",
        )

    async def test_unknown_assistant_thread_and_run(self, client: httpx.AsyncClient) -> None:
        a, t = await setup(client)
        assert_error(
            await client.post(f"/threads/{t}/runs", json={"assistant_id": "asst_nope"}),
            404,
            message="No assistant found with id 'asst_nope'.",
        )
        assert_error(
            await client.post("/threads/thread_nope/runs", json={"assistant_id": a}),
            404,
            message="No thread found with id 'thread_nope'.",
        )
        assert_error(await client.get(f"/threads/{t}/runs/run_nope"), 404, message="No run found with id 'run_nope'.")
        assert_error(
            await client.post(f"/threads/{t}/runs", json={"assistant_id": "thread_x"}), 400, param="assistant_id"
        )
        assert_error(
            await client.get(f"/threads/{t}/runs/run_x/steps", params={"include[]": "bad"}), 400, param="include[0]"
        )

    async def test_other_projects_runs_are_404(
        self, client: httpx.AsyncClient, other_client: httpx.AsyncClient, llm: FakeLLM
    ) -> None:
        a, t = await setup(client)
        run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
        await wait_status(client, t, run["id"], "completed")
        for call in (
            other_client.get(f"/threads/{t}/runs/{run['id']}"),
            other_client.get(f"/threads/{t}/runs"),
            other_client.post(f"/threads/{t}/runs/{run['id']}/cancel"),
            other_client.get(f"/threads/{t}/runs/{run['id']}/steps"),
        ):
            assert (await call).status_code == 404


class TestTokenCaps:
    async def test_max_completion_tokens_makes_the_run_incomplete(
        self, client: httpx.AsyncClient, llm: FakeLLM
    ) -> None:
        llm.set_turns([{"text": "word " * 600, "honour_max_tokens": True}])
        a, t = await setup(client)
        events = await sse(client, f"/threads/{t}/runs", {"assistant_id": a, "max_completion_tokens": 256})
        assert names(events)[-3:] == ["thread.run.step.completed", "thread.run.incomplete", "done"]
        assert "thread.message.incomplete" in names(events)
        run = events[-2][1]
        assert run["incomplete_details"] == {"reason": "max_completion_tokens"} and run["usage"] is not None
        assert llm.chat_requests[-1].body["max_completion_tokens"] == 256
        msg = dict(events)["thread.message.incomplete"]
        assert msg["incomplete_details"] == {"reason": "max_tokens"}

    async def test_max_prompt_tokens_too_small_for_the_prompt(self, client: httpx.AsyncClient, llm: FakeLLM) -> None:
        a = (await client.post("/assistants", json={"model": "fake-model", "instructions": "word " * 400})).json()["id"]
        t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "hi"}]})).json()["id"]
        events = await sse(client, f"/threads/{t}/runs", {"assistant_id": a, "max_prompt_tokens": 256})
        assert names(events) == [*RUN_START, "thread.run.incomplete", "done"]
        assert events[-2][1]["incomplete_details"] == {"reason": "max_prompt_tokens"}
        assert llm.chat_requests == []

    async def test_max_prompt_tokens_holds_across_the_runs_model_calls(
        self, client: httpx.AsyncClient, llm: FakeLLM
    ) -> None:
        # the first call fits, but reports using 290 of the 300: what is left cannot hold the next prompt
        call = {"name": "get_weather", "arguments": {"city": "Oslo"}}
        llm.set_turns([{"tool_calls": [call], "usage": {"prompt_tokens": 290, "completion_tokens": 5}}, "Rainy."])
        a, t = await setup(client, tools=[WEATHER])
        run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a, "max_prompt_tokens": 300})).json()
        run = await wait_status(client, t, run["id"], "requires_action")
        (c,) = run["required_action"]["submit_tool_outputs"]["tool_calls"]
        outputs = {"tool_outputs": [{"tool_call_id": c["id"], "output": "rain"}]}
        assert (
            await client.post(f"/threads/{t}/runs/{run['id']}/submit_tool_outputs", json=outputs)
        ).status_code == 200
        done = await wait_status(client, t, run["id"], "incomplete", "completed")
        assert done["status"] == "incomplete" and done["incomplete_details"] == {"reason": "max_prompt_tokens"}
        assert len(llm.chat_requests) == 1 and done["usage"]["prompt_tokens"] == 290


class TestUpstreamFaults:
    @pytest.mark.parametrize(
        ("turns", "code", "text"),
        [
            (
                [{"fault": {"type": "http_error", "status": 429, "retry_after": 0}, "times": 5}],
                "rate_limit_exceeded",
                "429",
            ),
            ([{"fault": {"type": "http_error", "status": 500}, "times": 5}], "server_error", "500"),
            (
                [{"text": "a b c d e f", "chunk_size": 1, "fault": {"type": "drop", "after_chunks": 2}}],
                "server_error",
                "",
            ),
            (
                [{"text": "a b c d e f", "chunk_size": 1, "fault": {"type": "malformed_chunk", "after_chunks": 2}}],
                "server_error",
                "",
            ),
            (
                [{"text": "a b c d e f", "chunk_size": 1, "fault": {"type": "stall", "after_chunks": 2, "seconds": 5}}],
                "server_error",
                "",
            ),
        ],
    )
    async def test_fault_fails_the_run(
        self, client: httpx.AsyncClient, llm: FakeLLM, turns: list[dict[str, Any]], code: str, text: str
    ) -> None:
        llm.set_turns(turns)
        a = (await client.post("/assistants", json={"model": "fast-model"})).json()["id"]
        t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "hi"}]})).json()["id"]
        events = await sse(client, f"/threads/{t}/runs", {"assistant_id": a})
        assert names(events)[-2:] == ["thread.run.failed", "done"]
        run = events[-2][1]
        assert run["last_error"]["code"] == code and text in run["last_error"]["message"]
        assert run["failed_at"] is not None
        assert (await client.get(f"/threads/{t}/runs/{run['id']}")).json()["status"] == "failed"
        for m in (await client.get(f"/threads/{t}/messages", params={"run_id": run["id"]})).json()["data"]:
            assert m["status"] == "incomplete" and m["incomplete_details"] == {"reason": "run_failed"}
        assert run["usage"] is not None  # an ended run has usage, even if no call finished
        assert run["usage"]["total_tokens"] == run["usage"]["prompt_tokens"] + run["usage"]["completion_tokens"]
        for step in (await client.get(f"/threads/{t}/runs/{run['id']}/steps")).json()["data"]:
            assert step["status"] == "failed" and step["last_error"] == run["last_error"]  # each failed step says why
        failed_steps = [d for n, d in events if n == "thread.run.step.failed"]
        assert all(d["last_error"] == run["last_error"] for d in failed_steps)

    async def test_a_tool_call_cut_off_keeps_what_came_in_its_failed_step(
        self, client: httpx.AsyncClient, llm: FakeLLM
    ) -> None:
        turn = {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}], "arguments_chunk_size": 4}
        llm.set_turns([{**turn, "fault": {"type": "drop", "after_chunks": 3}, "times": 3}])
        a = (await client.post("/assistants", json={"model": "fast-model", "tools": [WEATHER]})).json()["id"]
        t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "hi"}]})).json()["id"]
        events = await sse(client, f"/threads/{t}/runs", {"assistant_id": a})
        assert names(events)[-3:] == ["thread.run.step.failed", "thread.run.failed", "done"]
        failed = events[-3][1]
        (call,) = failed["step_details"]["tool_calls"]
        assert call["id"].startswith("call_") and call["function"]["name"] == "get_weather"
        assert '{"city":"Paris"}'.startswith(call["function"]["arguments"])  # as far as it came
        step = (await client.get(f"/threads/{t}/runs/{failed['run_id']}/steps/{failed['id']}")).json()
        assert step["step_details"] == failed["step_details"] and step["usage"] is not None

    async def test_unreachable_upstream_fails_fast(self, client: httpx.AsyncClient) -> None:
        a = (await client.post("/assistants", json={"model": "unreachable-model"})).json()["id"]
        t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "hi"}]})).json()["id"]
        events = await asyncio.wait_for(sse(client, f"/threads/{t}/runs", {"assistant_id": a}), 10)
        run = events[-2][1]
        assert run["status"] == "failed" and run["last_error"]["code"] == "server_error"
        assert "127.0.0.1:9" in run["last_error"]["message"]


class TestStreamWatchdog:
    async def test_a_lost_terminal_event_still_ends_the_stream(self) -> None:
        from assistd.runs.events import Subscription
        from assistd.runs.sse import relay_events

        sub = Subscription()
        sub.put("thread.run.in_progress", {"id": "run_x", "status": "in_progress"})
        checks: list[str] = []

        async def resting() -> tuple[str, dict[str, Any]] | None:
            checks.append("checked")
            # in progress on the first look, finished (its events lost) on the second
            return None if len(checks) == 1 else ("thread.run.completed", {"id": "run_x", "status": "completed"})

        got = [e async for batch in relay_events(sub, resting=resting, watch_seconds=0.05) for e in batch]
        assert [name for name, _ in got] == ["thread.run.in_progress", "thread.run.completed", "done"]
        assert got[-1][1] == b"[DONE]" and len(checks) == 2

    async def test_a_run_deleted_with_its_thread_ends_the_stream_with_an_error(self) -> None:
        # e.g. streamed by another process than the one that deleted the thread (no event reached it)
        from assistd.runs.events import Subscription
        from assistd.runs.sse import ERROR, relay_events, run_gone

        sub = Subscription()
        sub.put("thread.run.in_progress", {"id": "run_x", "status": "in_progress"})

        async def resting() -> tuple[str, dict[str, Any]] | None:
            return ERROR, run_gone("run_x")

        got = [e async for batch in relay_events(sub, resting=resting, watch_seconds=0.05) for e in batch]
        assert [name for name, _ in got] == ["thread.run.in_progress", "error", "done"]
        assert b"run_x no longer exists" in got[1][1]
