"""Every run flow of the issue through the real `openai` SDK (3.x) and the scripted upstream."""

from __future__ import annotations

from typing import Any

import openai
from openai import AsyncAssistantEventHandler
from typing_extensions import override

from assistd.fakellm import FakeLLM

WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}
TOOL_TURNS = [
    {
        "tool_calls": [
            {"name": "get_weather", "arguments": {"city": "Paris"}},
            {"name": "get_weather", "arguments": {"city": "Oslo"}},
        ]
    },
    {"match": {"has_tool_results": True}, "text": "Sunny in Paris, rain in Oslo."},
]


class Recorder(AsyncAssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self.text = ""

    @override
    async def on_event(self, event: Any) -> None:
        self.events.append(event.event)

    @override
    async def on_text_delta(self, delta: Any, snapshot: Any) -> None:
        self.text += delta.value or ""


async def thread_with_question(sdk: openai.AsyncOpenAI, question: str = "What's the weather?") -> str:
    return (await sdk.beta.threads.create(messages=[{"role": "user", "content": question}])).id


class TestPolling:
    async def test_create_and_poll(self, sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
        llm.set_turns([{"text": "Hello from the fake model."}])
        a = await sdk.beta.assistants.create(model="fake-model", instructions="Be brief.")
        t = await thread_with_question(sdk)
        run = await sdk.beta.threads.runs.create_and_poll(thread_id=t, assistant_id=a.id)
        assert run.status == "completed" and run.usage is not None and run.usage.total_tokens > 0
        messages = await sdk.beta.threads.messages.list(thread_id=t)
        assert messages.data[0].role == "assistant"
        assert messages.data[0].content[0].text.value == "Hello from the fake model."
        steps = await sdk.beta.threads.runs.steps.list(run_id=run.id, thread_id=t)
        assert steps.data[0].step_details.type == "message_creation"

    async def test_function_calling_with_submit_and_poll(self, sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
        llm.set_turns(TOOL_TURNS)
        a = await sdk.beta.assistants.create(model="fake-model", tools=[WEATHER])
        t = await thread_with_question(sdk)
        run = await sdk.beta.threads.runs.create_and_poll(thread_id=t, assistant_id=a.id)
        assert run.status == "requires_action"
        calls = run.required_action.submit_tool_outputs.tool_calls
        assert len(calls) == 2 and calls[0].id != calls[1].id
        outputs = [{"tool_call_id": c.id, "output": f"forecast for {c.function.arguments}"} for c in calls]
        run = await sdk.beta.threads.runs.submit_tool_outputs_and_poll(run_id=run.id, thread_id=t, tool_outputs=outputs)
        assert run.status == "completed"
        reply = (await sdk.beta.threads.messages.list(thread_id=t)).data[0]
        assert reply.content[0].text.value == "Sunny in Paris, rain in Oslo."
        steps = (await sdk.beta.threads.runs.steps.list(run_id=run.id, thread_id=t, order="asc")).data
        assert [s.type for s in steps] == ["tool_calls", "message_creation"]
        assert [c.function.output for c in steps[0].step_details.tool_calls] == [o["output"] for o in outputs]

    async def test_create_and_run_poll(self, sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
        llm.set_turns([{"text": "One request, new thread."}])
        a = await sdk.beta.assistants.create(model="fake-model")
        run = await sdk.beta.threads.create_and_run_poll(
            assistant_id=a.id, thread={"messages": [{"role": "user", "content": "hi"}]}
        )
        assert run.status == "completed"
        reply = (await sdk.beta.threads.messages.list(thread_id=run.thread_id)).data[0]
        assert reply.content[0].text.value == "One request, new thread."

    async def test_cancel(self, sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
        llm.set_turns([{"text": "slow " * 200, "tokens_per_second": 50}])
        a = await sdk.beta.assistants.create(model="fake-model")
        t = await thread_with_question(sdk)
        run = await sdk.beta.threads.runs.create(thread_id=t, assistant_id=a.id)
        cancelling = await sdk.beta.threads.runs.cancel(run_id=run.id, thread_id=t)
        assert cancelling.status in ("cancelling", "cancelled")
        final = await sdk.beta.threads.runs.poll(run_id=run.id, thread_id=t)
        assert final.status == "cancelled"


class TestStreaming:
    async def test_runs_stream_with_event_handler(self, sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
        llm.set_turns([{"text": "Streaming works fine.", "chunk_size": 4}])
        a = await sdk.beta.assistants.create(model="fake-model")
        t = await thread_with_question(sdk)
        handler = Recorder()
        async with sdk.beta.threads.runs.stream(thread_id=t, assistant_id=a.id, event_handler=handler) as stream:
            await stream.until_done()
        assert handler.text == "Streaming works fine."
        assert handler.events[:3] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
        assert handler.events[-1] == "thread.run.completed"
        final = await handler.get_final_run()
        assert final.status == "completed"
        messages = await handler.get_final_messages()
        assert messages[0].content[0].text.value == "Streaming works fine."

    async def test_function_calling_with_submit_tool_outputs_stream(
        self, sdk: openai.AsyncOpenAI, llm: FakeLLM
    ) -> None:
        llm.set_turns(TOOL_TURNS)
        a = await sdk.beta.assistants.create(model="fake-model", tools=[WEATHER])
        t = await thread_with_question(sdk)
        first = Recorder()
        async with sdk.beta.threads.runs.stream(thread_id=t, assistant_id=a.id, event_handler=first) as stream:
            await stream.until_done()
        run = await first.get_final_run()
        assert run.status == "requires_action"
        # The SDK's accumulator rebuilt both calls from the deltas.
        snapshot = first.current_run_step_snapshot
        assert snapshot is not None and len(snapshot.step_details.tool_calls) == 2
        assert {c.function.arguments for c in snapshot.step_details.tool_calls} == {
            '{"city":"Paris"}',
            '{"city":"Oslo"}',
        }
        outputs = [{"tool_call_id": c.id, "output": "ok"} for c in run.required_action.submit_tool_outputs.tool_calls]
        second = Recorder()
        async with sdk.beta.threads.runs.submit_tool_outputs_stream(
            run_id=run.id, thread_id=t, tool_outputs=outputs, event_handler=second
        ) as stream:
            await stream.until_done()
        assert second.events[:3] == ["thread.run.step.completed", "thread.run.queued", "thread.run.in_progress"]
        assert second.text == "Sunny in Paris, rain in Oslo."
        assert (await second.get_final_run()).status == "completed"

    async def test_create_and_run_stream(self, sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
        llm.set_turns([{"text": "Thread and run, streamed."}])
        a = await sdk.beta.assistants.create(model="fake-model")
        handler = Recorder()
        async with sdk.beta.threads.create_and_run_stream(
            assistant_id=a.id, thread={"messages": [{"role": "user", "content": "go"}]}, event_handler=handler
        ) as stream:
            await stream.until_done()
        assert handler.events[0] == "thread.created"
        assert handler.text == "Thread and run, streamed."
