"""code_interpreter in runs: the model's code runs in the thread's sandboxed kernel; its output,
charts and files come back as step outputs, image_file content and Files (CONTRACT §7 C, §8).

These use the real sandbox (bubblewrap + the kernel venv; see tests/sandbox/conftest.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import openai
import orjson

from assistd.fakellm import FakeLLM
from assistd.setup import setup_command
from tests.runs.test_runs_http import wait_status
from tests.runs.util import RUN_START, TEXT_RUN, names, sse

CSV = b"region,amount\nnorth,10\nsouth,20\neast,30\n"


def code_call(code: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "code_interpreter", "arguments": {"code": code}}]}


async def assistant(client: httpx.AsyncClient, **extra: Any) -> str:
    body = {"model": "fake-model", "tools": [{"type": "code_interpreter"}], **extra}
    return (await client.post("/assistants", json=body)).json()["id"]


async def test_csv_summed_polled(client: httpx.AsyncClient, sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
    f = await sdk.files.create(file=("sales.csv", CSV), purpose="assistants")
    a = await assistant(client, tool_resources={"code_interpreter": {"file_ids": [f.id]}})
    thread = await sdk.beta.threads.create(messages=[{"role": "user", "content": "Total sales?"}])
    llm.set_turns(
        [
            code_call("import pandas as pd\ndf = pd.read_csv('/mnt/data/sales.csv')\nprint(df['amount'].sum())"),
            {"text": "The total is 60."},
        ]
    )
    run = await sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=a, poll_interval_ms=20)
    assert run.status == "completed", run.last_error
    steps = (await sdk.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")).data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    call = steps[0].step_details.tool_calls[0]
    assert call.type == "code_interpreter" and call.id.startswith("call_")
    assert "read_csv('/mnt/data/sales.csv')" in call.code_interpreter.input
    (logs,) = call.code_interpreter.outputs
    assert logs.type == "logs" and logs.logs.strip() == "60"
    # the model read the output back as the tool's result
    sent = llm.chat_requests[-1].body["messages"]
    assert sent[-1]["role"] == "tool" and sent[-1]["content"].strip() == "60"
    assert orjson.loads(sent[-2]["tool_calls"][0]["function"]["arguments"])["code"] == call.code_interpreter.input


async def test_state_is_kept_across_runs_on_a_thread(client: httpx.AsyncClient, llm: FakeLLM) -> None:
    a = await assistant(client)
    t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "x?"}]})).json()["id"]
    llm.set_turns([code_call("x = 41"), {"text": "set"}, code_call("print(x + 1)"), {"text": "42"}])
    for _ in range(2):
        run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
        done = await wait_status(client, t, run["id"], "completed", "failed")
        assert done["status"] == "completed", done["last_error"]
    step = (await client.get(f"/threads/{t}/runs/{run['id']}/steps", params={"order": "asc"})).json()["data"][0]
    assert step["step_details"]["tool_calls"][0]["code_interpreter"]["outputs"][0]["logs"].strip() == "42"
    # another thread has its own kernel
    t2 = (await client.post("/threads", json={"messages": [{"role": "user", "content": "x?"}]})).json()["id"]
    llm.set_turns([code_call("print(x)"), {"text": "no x here"}])
    run = (await client.post(f"/threads/{t2}/runs", json={"assistant_id": a})).json()
    await wait_status(client, t2, run["id"], "completed")
    step = (await client.get(f"/threads/{t2}/runs/{run['id']}/steps", params={"order": "asc"})).json()["data"][0]
    assert "NameError" in step["step_details"]["tool_calls"][0]["code_interpreter"]["outputs"][0]["logs"]


async def test_chart_and_csv_streamed(client: httpx.AsyncClient, sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
    a = await assistant(client)
    t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "chart"}]})).json()["id"]
    code = (
        "import matplotlib.pyplot as plt\nimport pandas as pd\n"
        "pd.DataFrame({'a': [1, 2, 3]}).to_csv('/mnt/data/out.csv', index=False)\n"
        "plt.plot([1, 2, 3], [4, 1, 9])\nplt.show()\nprint('done')"
    )
    answer = "Here is the chart and [the data](sandbox:/mnt/data/out.csv)."
    llm.set_turns([code_call(code), {"text": answer, "chunk_size": 3, "chunk_unit": "chars"}])
    events = await sse(client, f"/threads/{t}/runs", {"assistant_id": a})
    assert names(events) == [
        *RUN_START,
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.run.step.delta*",
        "thread.run.step.completed",
        *TEXT_RUN,
    ]
    deltas = [d["delta"]["step_details"]["tool_calls"][0] for n, d in events if n == "thread.run.step.delta"]
    assert deltas[0]["type"] == "code_interpreter" and deltas[0]["code_interpreter"] == {"input": "", "outputs": []}
    assert deltas[0]["id"].startswith("call_") and all("id" not in d for d in deltas[1:])
    streamed_input = "".join(d["code_interpreter"].get("input", "") for d in deltas)
    assert streamed_input == code  # the code was streamed as the model wrote it, exactly once
    outputs = [o for d in deltas for o in d["code_interpreter"].get("outputs", [])]
    assert [o["type"] for o in outputs] == ["logs", "image"] and [o["index"] for o in outputs] == [0, 1]
    image_id = outputs[1]["image"]["file_id"]
    step_done = next(d for n, d in events if n == "thread.run.step.completed")
    assert step_done["step_details"]["tool_calls"][0]["code_interpreter"]["outputs"][1]["image"]["file_id"] == image_id

    message = next(d for n, d in events if n == "thread.message.completed")
    text, image = message["content"]
    assert image == {"type": "image_file", "image_file": {"file_id": image_id}}
    (ann,) = text["text"]["annotations"]
    assert ann["type"] == "file_path" and ann["text"] == "sandbox:/mnt/data/out.csv"
    assert text["text"]["value"][ann["start_index"] : ann["end_index"]] == ann["text"]
    # both are downloadable Files of this project
    png = await sdk.files.content(image_id)
    assert png.content.startswith(b"\x89PNG")
    csv_file = await sdk.files.retrieve(ann["file_path"]["file_id"])
    assert csv_file.purpose == "assistants_output" and csv_file.filename == "out.csv"
    assert (await sdk.files.content(csv_file.id)).content == b"a\n1\n2\n3\n"
    # the image part was announced by a message delta at index 1
    parts = [d["delta"]["content"][0] for n, d in events if n == "thread.message.delta"]
    assert {"index": 1, "type": "image_file", "image_file": {"file_id": image_id}} in parts


async def test_traceback_goes_back_to_the_model(client: httpx.AsyncClient, llm: FakeLLM) -> None:
    a = await assistant(client)
    t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "go"}]})).json()["id"]
    llm.set_turns([code_call("1/0"), code_call("print(1/1)"), {"text": "fixed"}])
    run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
    done = await wait_status(client, t, run["id"], "completed", "failed")
    assert done["status"] == "completed"
    tool_msgs = [m for m in llm.chat_requests[-1].body["messages"] if m["role"] == "tool"]
    assert "ZeroDivisionError" in tool_msgs[0]["content"] and tool_msgs[1]["content"].strip() == "1.0"
    steps = (await client.get(f"/threads/{t}/runs/{run['id']}/steps", params={"order": "asc"})).json()["data"]
    assert [s["type"] for s in steps] == ["tool_calls", "tool_calls", "message_creation"]


async def test_without_a_sandbox_the_run_fails_clearly(
    client: httpx.AsyncClient, llm: FakeLLM, state, tmp_path
) -> None:
    from assistd.sandbox import SandboxManager

    missing = SandboxManager.from_settings(state.settings.model_copy(update={"sandbox_venv": tmp_path / "none"}))
    await missing.start(background=False)
    real, state.sandbox = state.sandbox, missing
    try:
        a = await assistant(client)
        t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "go"}]})).json()["id"]
        llm.set_turns([code_call("print(1)")])
        run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
        done = await wait_status(client, t, run["id"], "completed", "failed")
    finally:
        state.sandbox = real
        await missing.close()
    assert done["status"] == "failed" and done["last_error"]["code"] == "server_error"
    message = done["last_error"]["message"]
    assert message.startswith(f"code_interpreter is unavailable: the kernel environment {tmp_path / 'none'}")
    assert message.endswith(f"run `{setup_command(state.settings.data_dir)}`")
    assert not llm.chat_requests  # the model was never asked


async def test_deleting_the_thread_stops_its_kernel(client: httpx.AsyncClient, llm: FakeLLM, state) -> None:
    a = await assistant(client)
    t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "go"}]})).json()["id"]
    llm.set_turns([code_call("y = 1"), {"text": "ok"}])
    run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
    await wait_status(client, t, run["id"], "completed")
    sessions = state.sandbox.sessions
    assert (await client.delete(f"/threads/{t}")).json()["deleted"] is True
    for _ in range(200):
        if state.sandbox.sessions == sessions - 1:
            break
        await asyncio.sleep(0.01)
    assert state.sandbox.sessions == sessions - 1


async def test_chart_and_csv_through_the_sdk_stream_and_state_through_polling(
    sdk: openai.AsyncOpenAI, llm: FakeLLM
) -> None:
    asst = await sdk.beta.assistants.create(model="fake-model", tools=[{"type": "code_interpreter"}])
    thread = await sdk.beta.threads.create(messages=[{"role": "user", "content": "Plot it."}])
    code = (
        "import matplotlib.pyplot as plt\nimport pandas as pd\nsales = pd.DataFrame({'q': [1, 2], 'v': [5, 7]})\n"
        "sales.to_csv('/mnt/data/sales_out.csv', index=False)\nplt.bar(sales.q, sales.v)\nplt.show()"
    )
    llm.set_turns([code_call(code), {"text": "Chart above; [CSV](sandbox:/mnt/data/sales_out.csv)."}])
    inputs: list[str] = []

    class Handler(openai.AsyncAssistantEventHandler):
        async def on_tool_call_delta(self, delta: Any, snapshot: Any) -> None:
            if delta.type == "code_interpreter" and delta.code_interpreter.input:
                inputs.append(delta.code_interpreter.input)

    async with sdk.beta.threads.runs.stream(thread_id=thread.id, assistant_id=asst.id, event_handler=Handler()) as s:
        await s.until_done()
        run = await s.get_final_run()
        messages = await s.get_final_messages()
    assert run.status == "completed" and "".join(inputs) == code
    (msg,) = messages
    text, image = msg.content
    assert image.type == "image_file" and (await sdk.files.content(image.image_file.file_id)).content[:4] == b"\x89PNG"
    (ann,) = text.text.annotations
    assert ann.type == "file_path" and ann.text == "sandbox:/mnt/data/sales_out.csv"
    assert (await sdk.files.content(ann.file_path.file_id)).content == b"q,v\n1,5\n2,7\n"

    # the kernel kept `sales`: a second run on the thread, polled, reads it
    llm.set_turns([code_call("print(sales.v.sum())"), {"text": "12"}])
    run = await sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=asst.id, poll_interval_ms=20)
    assert run.status == "completed", run.last_error
    steps = (await sdk.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")).data
    assert steps[0].step_details.tool_calls[0].code_interpreter.outputs[0].logs.strip() == "12"


async def test_an_answer_that_is_only_a_chart_streams_through_the_sdk(sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
    asst = await sdk.beta.assistants.create(model="fake-model", tools=[{"type": "code_interpreter"}])
    thread = await sdk.beta.threads.create(messages=[{"role": "user", "content": "Just the chart."}])
    llm.set_turns([code_call("import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()"), {"text": ""}])
    async with sdk.beta.threads.runs.stream(thread_id=thread.id, assistant_id=asst.id) as s:
        await s.until_done()  # the SDK's accumulator raised IndexError on an image at index 1 alone
        run = await s.get_final_run()
        (msg,) = await s.get_final_messages()
    assert run.status == "completed"
    assert [p.type for p in msg.content] == ["image_file"]
    stored = await sdk.beta.threads.messages.retrieve(message_id=msg.id, thread_id=thread.id)
    assert stored.content == msg.content
    assert (await sdk.files.content(msg.content[0].image_file.file_id)).content[:4] == b"\x89PNG"


async def test_cancel_while_code_runs_keeps_the_call_in_the_cancelled_step(
    client: httpx.AsyncClient, llm: FakeLLM
) -> None:
    a = await assistant(client)
    t = (await client.post("/threads", json={"messages": [{"role": "user", "content": "wait"}]})).json()["id"]
    code = "import time\ntime.sleep(30)"
    llm.set_turns([code_call(code)])
    run = (await client.post(f"/threads/{t}/runs", json={"assistant_id": a})).json()
    for _ in range(1000):  # the model has written the call: the code is running
        if llm.chat_requests and not llm.active_responses:
            steps = (await client.get(f"/threads/{t}/runs/{run['id']}/steps")).json()["data"]
            if steps:
                break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    assert (await client.post(f"/threads/{t}/runs/{run['id']}/cancel")).json()["status"] == "cancelling"
    done = await wait_status(client, t, run["id"], "cancelled")
    assert done["usage"] is not None
    (step,) = (await client.get(f"/threads/{t}/runs/{run['id']}/steps")).json()["data"]
    assert step["status"] == "cancelled" and step["usage"] is not None
    (call,) = step["step_details"]["tool_calls"]
    assert call["type"] == "code_interpreter" and call["code_interpreter"]["input"] == code
