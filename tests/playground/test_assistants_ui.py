"""Assistants in the Playground: seed 004's lesson (create "AGIClass Demo" in the UI, then use its
id from code), every field of the editor, schema validation before saving, clone, delete, search."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from pathlib import Path

import openai
from playwright.async_api import expect

from assistd.fakellm import FakeLLM
from tests.playground.conftest import ROOT, UI, Server

LOOKUP = {
    "name": "lookup_course",
    "description": "Find a course by title",
    "parameters": {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]},
}


async def test_create_assistant_in_the_editor_and_use_it_from_code(
    ui: UI, server: Server, sdk: openai.AsyncOpenAI, llm: FakeLLM, tmp_path: Path
) -> None:
    page = ui.page
    await ui.goto()  # "/" -> /playground/, a new assistant's editor on the left
    editor = page.locator("form.editor")
    await editor.get_by_label("Name").fill("AGIClass Demo")
    await editor.get_by_label("Description").fill("Teaching assistant of the AGI class")
    await editor.get_by_label("Instructions", exact=True).fill("You are the AGIClass teaching assistant.")
    # the model field offers GET /v1/models' ids and takes typed text
    await expect(editor.locator("datalist option[value='fake-model']")).to_have_count(1)
    await editor.get_by_label("Model").fill("fake-model")
    await editor.get_by_label("Temperature", exact=True).fill("0.4")
    await editor.get_by_label("Top P", exact=True).fill("0.9")
    await editor.get_by_label("Response format").select_option("json_object")

    # A function whose schema is wrong is refused before anything is saved.
    await editor.get_by_role("button", name="+ Add function").click()
    fn = editor.get_by_label("Function definition (JSON)")
    await fn.fill(json.dumps({"name": "bad name!", "parameters": {"type": "object", "required": ["x"]}}))
    errors = editor.locator("details.fn .errors")
    await expect(errors).to_contain_text("name: required")
    await expect(errors).to_contain_text('"x" is not in properties')
    await expect(fn).to_have_attribute("aria-invalid", "true")
    await editor.get_by_role("button", name="Create assistant").click()
    await expect(editor.locator(".form-error")).to_contain_text("Function 1 is not valid")
    assert (await sdk.beta.assistants.list()).data == []
    await fn.fill("{not json")
    await expect(errors).to_contain_text("Not valid JSON")
    await fn.fill(json.dumps(LOOKUP))
    await expect(errors).to_be_empty()

    await editor.get_by_role("button", name="+ Add pair").click()
    await editor.get_by_label("Metadata key").fill("course")
    await editor.get_by_label("Metadata value").fill("agi-101")
    await ui.shot("assistant-editor")
    await editor.get_by_role("button", name="Create assistant").click()
    await expect(editor.locator(".obj-id")).to_contain_text("asst_")
    asst_id = (await editor.locator(".obj-id").inner_text()).strip()

    # Copy the id in one click, then use it from code, as seed 004 does.
    await editor.get_by_role("button", name="Copy assistant ID").click()
    assert await page.evaluate("navigator.clipboard.readText()") == asst_id
    a = await sdk.beta.assistants.retrieve(asst_id)
    assert (a.name, a.description, a.model) == ("AGIClass Demo", "Teaching assistant of the AGI class", "fake-model")
    assert a.instructions == "You are the AGIClass teaching assistant."
    assert (a.temperature, a.top_p) == (0.4, 0.9)
    assert a.response_format.type == "json_object"
    assert [t.type for t in a.tools] == ["function"] and a.tools[0].function.name == "lookup_course"
    assert a.tools[0].function.parameters == LOOKUP["parameters"]
    assert a.metadata == {"course": "agi-101"}

    # Edit: the code interpreter with a file, and a json_schema response format; saved in place.
    await editor.get_by_label("Code interpreter").check()
    grades = tmp_path / "grades.csv"
    grades.write_text("student,grade\nada,A\n")
    await editor.locator(".tool", has_text="Code interpreter").locator("input[type=file]").set_input_files(str(grades))
    await expect(editor.locator(".tool", has_text="Code interpreter").locator(".chip")).to_contain_text("grades.csv")
    await editor.get_by_label("Response format").select_option("json_schema")
    await editor.get_by_label("JSON schema").fill(json.dumps({"name": "answer", "schema": {"type": "objekt"}}))
    await editor.get_by_role("button", name="Save").click()
    await expect(editor.locator(".form-error")).to_contain_text("JSON schema is not valid")
    await editor.get_by_label("JSON schema").fill(
        json.dumps({"name": "answer", "schema": {"type": "object", "properties": {"text": {"type": "string"}}}})
    )
    await editor.get_by_role("button", name="Save").click()
    await expect(page.locator(".toast").last).to_have_text("Saved")
    a = await sdk.beta.assistants.retrieve(asst_id)
    assert [t.type for t in a.tools] == ["code_interpreter", "function"]
    (ci_file,) = a.tool_resources.code_interpreter.file_ids
    assert (await sdk.files.retrieve(ci_file)).filename == "grades.csv"
    assert a.response_format.type == "json_schema" and a.response_format.json_schema.name == "answer"

    # file_search over a document: uploaded from the editor into a new vector store, saved at once.
    await editor.get_by_label("File search").check()
    doc = tmp_path / "syllabus.md"
    doc.write_text("# AGI class syllabus\n\nWeek 1: transformers. Week 2: retrieval. The exam is on June 3rd.\n")
    await editor.locator(".tool", has_text="File search").locator("input[type=file]").set_input_files(str(doc))
    for _ in range(100):  # saved by the page once the upload is in the store
        a = await sdk.beta.assistants.retrieve(asst_id)
        if a.tool_resources.file_search and a.tool_resources.file_search.vector_store_ids:
            break
        await asyncio.sleep(0.1)
    assert [t.type for t in a.tools] == ["file_search", "code_interpreter", "function"]
    (vs_id,) = a.tool_resources.file_search.vector_store_ids
    vs_files = (await sdk.vector_stores.files.list(vs_id)).data
    assert [(await sdk.files.retrieve(f.id)).filename for f in vs_files] == ["syllabus.md"]
    await expect(editor.get_by_label("Vector store")).to_have_value(vs_id)

    # Clone, find it on the Assistants page by searching, delete it there.
    await editor.get_by_role("button", name="Clone").click()
    await expect(editor.get_by_label("Name")).to_have_value("AGIClass Demo (copy)")
    clone_id = (await editor.locator(".obj-id").inner_text()).strip()
    assert clone_id != asst_id and (await sdk.beta.assistants.retrieve(clone_id)).model == "fake-model"
    await page.get_by_role("link", name="Assistants").click()
    items = page.locator("ul[aria-label=Assistants] li")
    await expect(items).to_have_count(2)
    await page.get_by_label("Search assistants").fill("copy")
    await expect(items).to_have_count(1)
    await expect(items).to_contain_text(clone_id)
    await ui.shot("assistants")
    await items.get_by_role("link").click()
    await page.locator(".detail").get_by_role("button", name="Delete").click()
    await page.locator(".detail").get_by_role("button", name="Confirm delete").click()
    await expect(page.locator(".detail h2")).to_have_text("New assistant")
    assert [x.id for x in (await sdk.beta.assistants.list()).data] == [asst_id]
    await expect(page.locator(".toast").last).to_contain_text(f"Deleted {clone_id}")

    # Chat with it in the Playground (the lesson's next step).
    llm.set_turns([{"text": "Welcome to the AGI class!"}])
    await page.get_by_role("link", name="Playground").click()
    await page.get_by_label("Assistant", exact=True).select_option(asst_id)
    await expect(editor.get_by_label("Name")).to_have_value("AGIClass Demo")
    await page.get_by_label("Message", exact=True).fill("Hello!")
    await page.get_by_role("button", name="Add and run").click()
    await expect(page.locator("article.role-assistant").last).to_contain_text("Welcome to the AGI class!")
    assert llm.chat_requests[-1].body["messages"][0]["content"] == "You are the AGIClass teaching assistant."

    # The README's last step: the copied id pasted into its code, run as is (against this server).
    readme = (ROOT / "README.md").read_text().split("## Playground", 1)[1]
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    assert 'ASSISTANT_ID = "asst_…"' in code and "http://127.0.0.1:8000/v1" in code
    code = code.replace("asst_…", asst_id).replace("http://127.0.0.1:8000/v1", f"{server.base}/v1")
    llm.set_turns([{"text": "The exam is on June 3rd."}])
    out = io.StringIO()

    def run_readme() -> None:
        with contextlib.redirect_stdout(out):
            exec(code, {})

    await asyncio.to_thread(run_readme)
    assert out.getvalue() == "The exam is on June 3rd.\n"
