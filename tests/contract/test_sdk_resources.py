"""The official `openai` SDK (3.x) driving assistants, threads and messages end to end."""

from __future__ import annotations

import openai
import pytest


class TestAssistantsThroughSDK:
    async def test_crud_and_auto_pagination(self, sdk: openai.AsyncOpenAI) -> None:
        created = []
        for i in range(25):
            created.append(
                await sdk.beta.assistants.create(
                    model="llama3.1",
                    name=f"a{i}",
                    instructions="You are terse.",
                    tools=[
                        {"type": "code_interpreter"},
                        {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
                    ],
                    metadata={"i": str(i)},
                )
            )
        a = created[0]
        assert a.id.startswith("asst_") and a.tools[1].function.name == "f"
        assert a._request_id and a._request_id.startswith("req_")
        seen = [x.id async for x in sdk.beta.assistants.list(limit=10)]
        assert seen == [x.id for x in reversed(created)]
        updated = await sdk.beta.assistants.update(a.id, name="renamed", temperature=0.3)
        assert (updated.name, updated.temperature, updated.instructions) == ("renamed", 0.3, "You are terse.")
        got = await sdk.beta.assistants.retrieve(a.id)
        assert got.name == "renamed"
        deleted = await sdk.beta.assistants.delete(a.id)
        assert deleted.deleted and deleted.object == "assistant.deleted"
        with pytest.raises(openai.NotFoundError) as exc:
            await sdk.beta.assistants.retrieve(a.id)
        assert exc.value.status_code == 404 and exc.value.request_id

    async def test_errors_surface_as_sdk_exceptions(self, sdk: openai.AsyncOpenAI) -> None:
        with pytest.raises(openai.BadRequestError) as exc:
            await sdk.beta.assistants.create(model="m", extra_body={"colour": "red"})
        assert exc.value.code == "unknown_parameter" and exc.value.param == "colour"
        with pytest.raises(openai.BadRequestError) as exc:
            await sdk.beta.assistants.create(model="m", temperature=3)
        assert exc.value.param == "temperature"


class TestThreadsAndMessagesThroughSDK:
    async def test_conversation_flow(self, sdk: openai.AsyncOpenAI) -> None:
        thread = await sdk.beta.threads.create(
            messages=[{"role": "user", "content": "first"}, {"role": "assistant", "content": "ack"}],
            metadata={"user": "u-42"},
        )
        assert thread.metadata == {"user": "u-42"}
        msg = await sdk.beta.threads.messages.create(
            thread.id, role="user", content=[{"type": "text", "text": "second"}]
        )
        assert msg.content[0].text.value == "second" and msg.thread_id == thread.id
        page = await sdk.beta.threads.messages.list(thread.id)
        # The newest message first: how most code reads "the reply".
        assert [m.content[0].text.value for m in page.data] == ["second", "ack", "first"]
        asc = [m.id async for m in sdk.beta.threads.messages.list(thread.id, order="asc", limit=1)]
        assert asc == [m.id for m in reversed(page.data)]
        upd = await sdk.beta.threads.messages.update(msg.id, thread_id=thread.id, metadata={"k": "v"})
        assert upd.metadata == {"k": "v"}
        got = await sdk.beta.threads.messages.retrieve(msg.id, thread_id=thread.id)
        assert got.metadata == {"k": "v"}
        d = await sdk.beta.threads.messages.delete(msg.id, thread_id=thread.id)
        assert d.deleted and d.object == "thread.message.deleted"
        t2 = await sdk.beta.threads.update(thread.id, metadata={"user": "u-43"})
        assert t2.metadata == {"user": "u-43"}
        assert (await sdk.beta.threads.retrieve(thread.id)).metadata == {"user": "u-43"}
        dt = await sdk.beta.threads.delete(thread.id)
        assert dt.deleted and dt.object == "thread.deleted"
        with pytest.raises(openai.NotFoundError):
            await sdk.beta.threads.retrieve(thread.id)

    async def test_empty_thread_create(self, sdk: openai.AsyncOpenAI) -> None:
        t = await sdk.beta.threads.create()
        assert t.id.startswith("thread_") and t.metadata == {}

    async def test_bad_message_role(self, sdk: openai.AsyncOpenAI) -> None:
        t = await sdk.beta.threads.create()
        with pytest.raises(openai.BadRequestError) as exc:
            await sdk.beta.threads.messages.create(t.id, role="system", content="x")  # type: ignore[arg-type]
        assert exc.value.param == "role"

    async def test_list_threads_with_raw_get(self, sdk: openai.AsyncOpenAI) -> None:
        # GET /v1/threads is an assistd addition; the SDK's generic `get` reaches it.
        for u in ("a", "b", "a"):
            await sdk.beta.threads.create(metadata={"user": u})
        data = await sdk.get(
            "/threads",
            cast_to=object,
            options={"params": {"metadata[user]": "a"}, "headers": {"OpenAI-Beta": "assistants=v2"}},
        )
        assert len(data["data"]) == 2  # type: ignore[index]
