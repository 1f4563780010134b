"""Threads and chat in the Playground: streamed answers, function calls answered by hand, the
thread list, file_search citations, code_interpreter charts, and text that must stay text."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
from playwright.async_api import Locator, Page, expect

from assistd.fakellm import FakeLLM
from tests.playground.conftest import UI, Server

WORDS = " ".join(f"w{i:02d}" for i in range(1, 41))  # 40 words, one chunk each


async def make_assistant(sdk: openai.AsyncOpenAI, **extra: object) -> str:
    a = await sdk.beta.assistants.create(model="fake-model", name="Helper", **extra)  # type: ignore[arg-type]
    return a.id


async def send(page: Page, text: str, *, run: bool = True) -> None:
    await page.get_by_label("Message", exact=True).fill(text)
    await page.get_by_role("button", name="Add and run" if run else "Add", exact=True).click()


def last_answer(page: Page) -> Locator:
    return page.locator("article.role-assistant").last


async def test_chat_streams_and_thread_is_listed(ui: UI, sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
    page = ui.page
    asst = await make_assistant(sdk)
    llm.set_turns([{"text": WORDS, "tokens_per_second": 12}])  # ~3 s of streaming
    await ui.goto(f"#/playground?assistant={asst}")
    await send(page, "Count to forty, please.")

    # Part of the answer is on screen while the run still streams: the text grows as deltas arrive.
    await page.wait_for_function(
        """() => {
            const m = [...document.querySelectorAll('article.role-assistant')].pop();
            return m && m.textContent.includes('w05') && !m.textContent.includes('w40');
        }"""
    )
    partial = await last_answer(page).locator(".msg-body").inner_text()
    await ui.shot("chat-streaming")
    await expect(last_answer(page)).to_contain_text("w40", timeout=30_000)
    final = await last_answer(page).locator(".msg-body").inner_text()
    assert final.strip() == WORDS and WORDS.startswith(partial.strip()) and len(partial.strip()) < len(WORDS)
    await expect(page.locator(".run-status")).to_contain_text("completed")

    # The run inspector shows the run with its usage and its message step.
    inspector = page.locator(".inspector")
    await expect(inspector.locator(".run-head .badge")).to_have_text("completed")
    await expect(inspector).to_contain_text("Message creation")
    await expect(inspector).to_contain_text("tokens")
    await ui.shot("playground")

    # The thread is listed (GET /v1/threads, newest first) and opens again from the list.
    thread_id = page.url.split("thread=")[1]
    assert thread_id.startswith("thread_")
    await page.get_by_role("link", name="Threads").click()
    first_row = page.locator("table[aria-label=Threads] tbody tr").first
    await expect(first_row).to_contain_text(thread_id)
    await ui.shot("threads")
    # the metadata filter: only the threads whose metadata match
    tagged = await sdk.beta.threads.create(metadata={"user": "alice"})
    await sdk.beta.threads.create(metadata={"user": "bob"})
    await page.get_by_label("Metadata filter").fill("user=alice")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("table[aria-label=Threads] tbody tr")).to_have_count(1)
    await expect(first_row).to_contain_text(tagged.id)
    await expect(first_row).to_contain_text("user=alice")
    await page.get_by_label("Metadata filter").fill("")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("table[aria-label=Threads] tbody tr")).to_have_count(3)  # newest first
    await expect(page.locator("table[aria-label=Threads] tbody tr").nth(2)).to_contain_text(thread_id)
    await page.locator("table[aria-label=Threads] tbody tr").nth(2).get_by_role("link").click()
    await expect(page.locator("article.role-user")).to_contain_text("Count to forty, please.")
    await expect(last_answer(page)).to_contain_text("w40")

    # The API log lists the streamed run request; its body shows the events.
    await page.get_by_role("link", name="API log").click()
    rows = page.locator("table[aria-label=Requests] tbody tr")
    row = rows.filter(has_text="POST").filter(has_text=f"/v1/threads/{thread_id}/runs?include").first
    await expect(row).to_contain_text("200")
    await row.get_by_role("button").click()
    await expect(page.locator(".log-detail")).to_contain_text("thread.message.delta")
    await expect(page.locator(".log-detail")).to_contain_text('"assistant_id"')
    await ui.shot("api-log")


async def test_function_call_answered_through_the_form(ui: UI, sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
    page = ui.page
    weather = {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    asst = await make_assistant(sdk, tools=[{"type": "function", "function": weather}])
    llm.set_turns(
        [
            {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
            {
                "match": {"has_tool_results": True},
                "text": "It is 21 degrees and sunny in Paris.",
                "tokens_per_second": 40,
            },
        ]
    )
    await ui.goto(f"#/playground?assistant={asst}")
    await send(page, "What's the weather in Paris?")

    form = page.locator(".tool-form")
    await expect(form).to_be_visible()
    await expect(form).to_contain_text("get_weather")
    await expect(form.locator("pre")).to_have_text('{\n  "city": "Paris"\n}')  # arguments pretty-printed
    await expect(page.locator(".run-status")).to_contain_text("requires_action")
    await ui.shot("function-call")
    await form.get_by_label("Output of get_weather").fill('{"celsius": 21, "sky": "sunny"}')
    await form.get_by_role("button", name="Submit outputs").click()

    await expect(last_answer(page)).to_contain_text("It is 21 degrees and sunny in Paris.")
    await expect(page.locator(".run-status")).to_contain_text("completed")
    await expect(form).to_be_hidden()
    # The output reached the model, and the run's step records it.
    assert llm.chat_requests[-1].body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": llm.chat_requests[-1].body["messages"][-2]["tool_calls"][0]["id"],
        "content": '{"celsius": 21, "sky": "sunny"}',
    }
    thread_id = page.url.split("thread=")[1]
    run = (await sdk.beta.threads.runs.list(thread_id)).data[0]
    assert run.status == "completed"
    steps = (await sdk.beta.threads.runs.steps.list(run.id, thread_id=thread_id, order="asc")).data
    assert steps[0].step_details.tool_calls[0].function.output == '{"celsius": 21, "sky": "sunny"}'
    # ... and the inspector shows the call with its arguments and output.
    inspector = page.locator(".inspector")
    await expect(inspector).to_contain_text("function get_weather")
    await expect(inspector).to_contain_text('"sky": "sunny"')


async def test_message_text_is_never_html(ui: UI, sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
    page = ui.page
    asst = await make_assistant(sdk)
    llm.reset()  # the fake echoes the last user message: the model "answers" with the same text
    attack = (
        "<img src=x onerror=alert(1)> <script>alert(2)</script> [click me](javascript:alert(3)) "
        '![pic](http://example.com/x.png) <a href="javascript:alert(4)">a</a> **bold**'
    )
    await ui.goto(f"#/playground?assistant={asst}")
    await send(page, attack)
    await expect(page.locator(".run-status")).to_contain_text("completed")
    for msg in (page.locator("article.role-user"), last_answer(page)):
        await expect(msg).to_contain_text("<img src=x onerror=alert(1)>")
        await expect(msg).to_contain_text("<script>alert(2)</script>")
        await expect(msg.locator("strong")).to_have_text("bold")  # Markdown still renders
    counts = await page.evaluate(
        """() => ({
            imgs: document.querySelectorAll('.messages img').length,
            scripts: document.querySelectorAll('.messages script').length,
            badLinks: [...document.querySelectorAll('.messages a')].filter(a => !/^https?:/.test(a.href)).length,
            links: [...document.querySelectorAll('.messages a')].map(a => a.href),
        })"""
    )
    assert counts["imgs"] == 0 and counts["scripts"] == 0 and counts["badLinks"] == 0, counts
    await page.wait_for_timeout(300)  # an onerror handler would have fired by now
    assert ui.dialogs == []


async def test_file_search_answer_cites_the_file(ui: UI, sdk: openai.AsyncOpenAI, llm: FakeLLM, tmp_path: Path) -> None:
    page = ui.page
    doc = tmp_path / "festival.txt"
    doc.write_text(
        "The Zorblax festival is held every spring in the town of Quillhaven. "
        "Visitors bring lanterns shaped like herons, and the festival ends with a boat parade.\n" * 3000
    )  # ~500 KB: the upload takes long enough to show its progress bar

    # Storage: create a vector store and upload the document into it.
    await ui.goto("#/storage/vector_stores")
    await page.get_by_label("New vector store name").fill("Festival docs")
    await page.get_by_role("button", name="Create", exact=True).click()
    await expect(page.locator(".detail h2")).to_have_text("Festival docs")
    await page.evaluate(
        """() => {
            window.__bars = [];
            new MutationObserver(ms => ms.forEach(m => m.addedNodes.forEach(n => {
                if (n.querySelector && n.querySelector('progress')) window.__bars.push(n.querySelector('progress'));
            }))).observe(document.body, {subtree: true, childList: true});
        }"""
    )
    await page.get_by_label("Upload files to this vector store").set_input_files(str(doc))
    row = page.locator("table[aria-label='Vector store files'] tbody tr", has_text="festival.txt")
    await expect(row.locator(".badge")).to_have_text("completed", timeout=60_000)
    assert await page.evaluate("window.__bars.map(b => b.value)") == [1]  # the bar was shown and filled

    # The search box calls vector_stores/{id}/search and shows scores and text.
    await page.get_by_label("Search query").fill("Zorblax festival town")
    await page.get_by_role("button", name="Search", exact=True).click()
    result = page.locator(".search-results .result").first
    await expect(result).to_contain_text("festival.txt")
    await expect(result).to_contain_text("score 0.")
    await expect(result.locator(".chunk")).to_contain_text("Quillhaven")
    await ui.shot("storage-vector-store")
    vs_id = page.url.rsplit("/", 1)[1]

    # Playground: an assistant with file_search over that store, made in the editor.
    await page.get_by_role("link", name="Playground").click()
    editor = page.locator("form.editor")
    await editor.get_by_label("Name").fill("Festival guide")
    await editor.get_by_label("Model").fill("fake-model")
    await editor.get_by_label("File search").check()
    await editor.get_by_label("Vector store").select_option(vs_id)
    await editor.get_by_role("button", name="Create assistant").click()
    await expect(editor.locator(".obj-id")).to_contain_text("asst_")
    asst = await sdk.beta.assistants.retrieve((await editor.locator(".obj-id").inner_text()).strip())
    assert asst.tool_resources.file_search.vector_store_ids == [vs_id]

    llm.set_turns(
        [
            {"tool_calls": [{"name": "file_search", "arguments": {"queries": ["Zorblax festival town"]}}]},
            {"text": "The Zorblax festival is held in Quillhaven【0:0†festival.txt】, with heron lanterns."},
        ]
    )
    await send(page, "Where is the Zorblax festival?")
    answer = last_answer(page)
    await expect(answer.locator("sup.cite")).to_have_text("[1]")
    await expect(answer.locator(".footnotes li")).to_have_text("[1] festival.txt")
    assert "【" not in await answer.locator(".msg-body").inner_text()  # the marker became the footnote
    # the inspector shows the search: file, score and the chunk's text (include[])
    inspector = page.locator(".inspector")
    await expect(inspector.locator(".result").first).to_contain_text("festival.txt")
    await expect(inspector.locator(".result .chunk").first).to_contain_text("Quillhaven")
    await ui.shot("file-search-citation")


async def test_code_interpreter_chart_is_shown(ui: UI, sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
    page = ui.page
    asst = await make_assistant(sdk, tools=[{"type": "code_interpreter"}])
    code = (
        "import matplotlib.pyplot as plt\nimport pandas as pd\n"
        "pd.DataFrame({'q': [1, 2, 3], 'v': [4, 1, 9]}).to_csv('/mnt/data/sales_out.csv', index=False)\n"
        "plt.plot([1, 2, 3], [4, 1, 9])\nplt.title('sales')\nplt.show()"
    )
    llm.set_turns(
        [
            {"tool_calls": [{"name": "code_interpreter", "arguments": {"code": code}}]},
            {"text": "Here is the chart. [Download the data](sandbox:/mnt/data/sales_out.csv)"},
        ]
    )
    await ui.goto(f"#/playground?assistant={asst}")
    await send(page, "Plot my sales")
    await expect(last_answer(page)).to_contain_text("Here is the chart.", timeout=60_000)
    image = page.locator("article.role-assistant img.chat-image").first
    await expect(image).to_be_visible()
    await page.wait_for_function(
        "() => { const i = document.querySelector('article.role-assistant img.chat-image'); "
        "return i && i.complete && i.naturalWidth > 100; }"
    )
    # the sandbox link (a file_path annotation) downloads the file the code wrote
    link = last_answer(page).get_by_role("button", name="Download the data")
    async with page.expect_download() as info:
        await link.click()
    download = await info.value
    assert download.suggested_filename == "sales_out.csv"
    saved = Path(await download.path())
    assert await asyncio.to_thread(saved.read_text) == "q,v\n1,4\n2,1\n3,9\n"
    # the inspector shows the code and the image output
    inspector = page.locator(".inspector")
    await expect(inspector).to_contain_text("plt.plot([1, 2, 3], [4, 1, 9])")
    await expect(inspector.locator("img.chat-image")).to_be_visible()
    await ui.shot("code-interpreter-chart")


async def test_cancel_a_streaming_run(ui: UI, sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
    page = ui.page
    asst = await make_assistant(sdk)
    llm.set_turns([{"text": WORDS * 3, "tokens_per_second": 5}])
    await ui.goto(f"#/playground?assistant={asst}")
    await send(page, "Talk slowly")
    await expect(last_answer(page)).to_contain_text("w02")
    await page.get_by_role("button", name="Cancel run").click()
    await expect(page.locator(".run-status")).to_contain_text("cancelled")
    thread_id = page.url.split("thread=")[1]
    assert (await sdk.beta.threads.runs.list(thread_id)).data[0].status == "cancelled"


async def test_run_overrides_and_attachments(
    ui: UI, server: Server, sdk: openai.AsyncOpenAI, llm: FakeLLM, tmp_path: Path
) -> None:
    page = ui.page
    asst = await make_assistant(sdk, instructions="Be brief.")
    data = tmp_path / "sales.csv"
    data.write_text("q,v\n1,10\n2,20\n")
    llm.set_turns([{"text": "Noted."}])
    await ui.goto(f"#/playground?assistant={asst}")
    await page.locator(".composer input[type=file]").set_input_files(str(data))
    chip = page.locator(".composer .chip", has_text="sales.csv")
    await expect(chip.get_by_label("code_interpreter")).to_be_checked()
    await page.get_by_text("Run settings").click()
    overrides = page.locator("details.overrides")
    await overrides.get_by_label("Additional instructions").fill("Answer in French.")
    await overrides.get_by_label("Temperature").fill("0.3")
    await overrides.get_by_label("Max completion tokens").fill("300")
    await send(page, "Here is my data")
    await expect(last_answer(page)).to_contain_text("Noted.")
    await expect(page.locator("article.role-user .attachments")).to_contain_text("sales.csv")

    thread_id = page.url.split("thread=")[1]
    run = (await sdk.beta.threads.runs.list(thread_id)).data[0]
    assert run.temperature == 0.3 and run.max_completion_tokens == 300
    assert run.instructions.endswith("Answer in French.") and run.instructions.startswith("Be brief.")
    msg = (await sdk.beta.threads.messages.list(thread_id, order="asc")).data[0]
    assert [t.type for t in msg.attachments[0].tools] == ["code_interpreter"]
    sent = llm.chat_requests[-1].body
    assert sent["temperature"] == 0.3


async def test_failed_run_shows_its_last_error(ui: UI, sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
    page = ui.page
    asst = await make_assistant(sdk)
    llm.set_turns([{"fault": {"type": "http_error", "status": 500}, "times": 3}])
    await ui.goto(f"#/playground?assistant={asst}")
    await send(page, "This will fail")
    await expect(page.locator(".run-status")).to_contain_text("failed", timeout=30_000)
    error = page.locator(".inspector .run-error").first
    await expect(error).to_contain_text("server_error")
    thread_id = page.url.split("thread=")[1]
    run = (await sdk.beta.threads.runs.list(thread_id)).data[0]
    assert run.last_error is not None and run.last_error.message in await error.inner_text()


async def test_add_without_running(ui: UI, sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
    page = ui.page
    asst = await make_assistant(sdk)
    await ui.goto(f"#/playground?assistant={asst}")
    await page.get_by_label("Role").select_option("assistant")
    await send(page, "An answer I wrote myself", run=False)
    await page.get_by_label("Role").select_option("user")
    await send(page, "And a question", run=False)
    await expect(page.locator("article.msg")).to_have_count(2)
    thread_id = page.url.split("thread=")[1]
    msgs = (await sdk.beta.threads.messages.list(thread_id, order="asc")).data
    assert [(m.role, m.content[0].text.value) for m in msgs] == [
        ("assistant", "An answer I wrote myself"),
        ("user", "And a question"),
    ]
    assert (await sdk.beta.threads.runs.list(thread_id)).data == []
    assert llm.chat_requests == []


async def test_a_run_started_from_code_is_followed(ui: UI, sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
    page = ui.page
    asst = await make_assistant(sdk)
    llm.set_turns([{"text": "Started by a program.", "ttft_ms": 2500}])
    thread = await sdk.beta.threads.create(messages=[{"role": "user", "content": "From code"}])
    await sdk.beta.threads.runs.create(thread_id=thread.id, assistant_id=asst)
    await ui.goto(f"#/playground?assistant={asst}&thread={thread.id}")
    await expect(page.locator(".run-status")).to_contain_text("in_progress")
    await expect(last_answer(page)).to_contain_text("Started by a program.", timeout=30_000)
    await expect(page.locator(".run-status")).to_contain_text("completed")
