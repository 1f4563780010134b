"""The flows of the late-2023 notebooks (seeds 001 and 002) on openai 1.x with Assistants v1.

Run with an old SDK's python: ``python v1_flows.py BASE_URL API_KEY WORKDIR``. Prints one JSON
object: what each flow saw, plus v1_types' report on every JSON response the server sent.
Written as those notebooks were: ``wait_on_run`` polling, ``file_ids``, the ``retrieval`` tool.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import v1_types
from openai import OpenAI

BASE, KEY, WORK = sys.argv[1], sys.argv[2], Path(sys.argv[3])
NEW = hasattr(openai.types.beta, "AssistantStreamEvent")  # 1.14: streaming helpers


def hook(response: httpx.Response) -> None:
    response.read()
    if response.headers.get("content-type", "").startswith("application/json"):
        v1_types.check(response.json(), f"{response.request.method} {response.request.url.path}")


# The README's constructor (these SDKs send ``OpenAI-Beta: assistants=v1`` themselves), plus a
# response hook that checks every JSON body against the SDK's types.
client = OpenAI(
    base_url=BASE, api_key=KEY, max_retries=0, http_client=httpx.Client(event_hooks={"response": [hook]}, timeout=60)
)
out: dict[str, Any] = {"version": openai.VERSION}


def wait_on_run(run: Any, thread: Any) -> Any:
    while run.status == "queued" or run.status == "in_progress":
        run = client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id)
        time.sleep(0.2)
    return run


def texts(thread_id: str, **kw: Any) -> list[str]:
    page = client.beta.threads.messages.list(thread_id=thread_id, **kw)
    return [m.content[0].text.value for m in page.data if m.content and m.content[0].type == "text"]


# --- Math Tutor with code_interpreter (seed 001) ---------------------------------------------
assistant = client.beta.assistants.create(
    name="Math Tutor",
    instructions="You are a personal math tutor. Write and run code to answer math questions.",
    tools=[{"type": "code_interpreter"}],
    model="gpt-4-1106-preview",
)
thread = client.beta.threads.create()
message = client.beta.threads.messages.create(
    thread_id=thread.id, role="user", content="I need to solve the equation `3x + 11 = 14`. Can you help me?"
)
run = client.beta.threads.runs.create(
    thread_id=thread.id,
    assistant_id=assistant.id,
    instructions="Please address the user as Jane Doe. The user has a premium account.",
)
run = wait_on_run(run, thread)
steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")
code_calls = [
    c
    for s in steps.data
    if s.step_details.type == "tool_calls"
    for c in s.step_details.tool_calls
    if c.type == "code_interpreter"
]
out["math"] = {
    "status": run.status,
    "run_tools": [t.type for t in run.tools],
    "answer": texts(thread.id, order="asc", after=message.id),
    "code": [c.code_interpreter.input for c in code_calls],
    "logs": [o.logs for c in code_calls for o in c.code_interpreter.outputs if o.type == "logs"],
}

# --- retrieval over file_ids (seed 002) -------------------------------------------------------
doc = client.files.create(file=(WORK / "handbook.txt").open("rb"), purpose="assistants")
extra = client.files.create(file=(WORK / "extra.txt").read_bytes(), purpose="assistants")
assistant = client.beta.assistants.update(
    assistant.id, tools=[{"type": "code_interpreter"}, {"type": "retrieval"}], file_ids=[doc.id]
)
out["retrieval_assistant"] = {"tools": [t.type for t in assistant.tools], "file_ids": assistant.file_ids}
added = client.beta.assistants.files.create(assistant_id=assistant.id, file_id=extra.id)
listed = client.beta.assistants.files.list(assistant_id=assistant.id)
got = client.beta.assistants.files.retrieve(assistant_id=assistant.id, file_id=extra.id)
deleted = client.beta.assistants.files.delete(assistant_id=assistant.id, file_id=extra.id)
out["assistant_files"] = {
    "added": [added.object, added.assistant_id],
    "listed": sorted(f.id for f in listed.data),
    "retrieved": got.id,
    "deleted": [deleted.object, deleted.deleted],
    "after": client.beta.assistants.retrieve(assistant.id).file_ids,
}
thread = client.beta.threads.create(
    messages=[{"role": "user", "content": "How many vacation days do I get?", "file_ids": [extra.id]}]
)
first = client.beta.threads.messages.list(thread_id=thread.id).data[0]
mfiles = client.beta.threads.messages.files.list(thread_id=thread.id, message_id=first.id)
mfile = client.beta.threads.messages.files.retrieve(thread_id=thread.id, message_id=first.id, file_id=extra.id)
run = wait_on_run(client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id), thread)
answer = client.beta.threads.messages.list(thread_id=thread.id).data[0]
steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id)
out["retrieval"] = {
    "status": run.status,
    "run_file_ids": run.file_ids,
    "message_file_ids": first.file_ids,
    "message_files": [f.id for f in mfiles.data],
    "message_file": [mfile.object, mfile.message_id],
    "answer": answer.content[0].text.value,
    "citations": [
        {"text": a.text, "file_id": a.file_citation.file_id, "quote": a.file_citation.quote}
        for a in answer.content[0].text.annotations
        if a.type == "file_citation"
    ],
    "tool_calls": [
        [c.type, c.model_dump().get("retrieval")]
        for s in steps.data
        if s.step_details.type == "tool_calls"
        for c in s.step_details.tool_calls
    ],
}

# --- parallel function calls ------------------------------------------------------------------
weather = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
assistant = client.beta.assistants.create(
    model="gpt-4-1106-preview", tools=[{"type": "function", "function": weather}], name="Weather"
)
thread = client.beta.threads.create(messages=[{"role": "user", "content": "What's the weather in Paris and Oslo?"}])
run = wait_on_run(client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id), thread)
calls = run.required_action.submit_tool_outputs.tool_calls if run.required_action else []
requires = run.status
run = client.beta.threads.runs.submit_tool_outputs(
    thread_id=thread.id,
    run_id=run.id,
    tool_outputs=[{"tool_call_id": c.id, "output": json.dumps({"sky": "sunny"})} for c in calls],
)
run = wait_on_run(run, thread)
out["functions"] = {
    "requires": requires,
    "calls": [[c.function.name, json.loads(c.function.arguments)] for c in calls],
    "distinct_ids": len({c.id for c in calls}),
    "status": run.status,
    "answer": texts(thread.id)[0],
}

# --- a v2-only field under v1 is the real API's 400 -------------------------------------------
try:
    client.beta.assistants.create(model="m", extra_body={"tool_resources": {}})
    out["v2_field"] = "accepted"
except openai.BadRequestError as exc:
    out["v2_field"] = exc.response.json()["error"]

# --- streaming (openai 1.14's create_and_stream) ----------------------------------------------
if NEW:
    from openai import AssistantEventHandler

    class Handler(AssistantEventHandler):
        def __init__(self) -> None:
            super().__init__()
            self.deltas: list[str] = []
            self.events: list[str] = []

        def on_event(self, event: Any) -> None:
            self.events.append(event.event)
            v1_types.check_event(event.event, event.data.model_dump(mode="json", exclude_unset=True))

        def on_text_delta(self, delta: Any, snapshot: Any) -> None:
            self.deltas.append(delta.value or "")

    tutor = client.beta.assistants.create(model="gpt-4-1106-preview", name="Streamer", tools=[{"type": "retrieval"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Stream me a short greeting."}])
    handler = Handler()
    with client.beta.threads.runs.create_and_stream(
        thread_id=thread.id, assistant_id=tutor.id, event_handler=handler
    ) as stream:
        stream.until_done()
        final = stream.get_final_run()
    out["stream"] = {
        "deltas": handler.deltas,
        "events": handler.events,
        "final_status": final.status,
        "final_tools": [t.type for t in final.tools],
    }

out["types"] = v1_types.report()
print(json.dumps(out))  # noqa: T201 (the test reads it)
