"""The Playground as served: headers (CSP), package data, keys and projects, the Markdown renderer's
safety, the phone-sized layout, keyboard use."""

from __future__ import annotations

import asyncio
import fnmatch
import re
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import openai
import pytest
from playwright.async_api import Browser, Route, expect

from assistd.fakellm import FakeLLM
from assistd.playground.router import STATIC_DIR
from tests.playground.conftest import ROOT, UI, Server, open_ui, start_server


async def test_served_with_a_csp_that_allows_only_this_origin(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base) as http:
        root = await http.get("/")
        assert root.status_code == 307 and root.headers["location"] == "/playground/"
        page = await http.get("/playground/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["default-src"] == "'self'"
        assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
        assert directives["connect-src"] == "'self'" and directives["img-src"] == "'self' blob:"
        assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        # no inline script or style anywhere in the page, and only this origin's files
        html = page.text
        assert not re.search(r"<script(?![^>]*\bsrc=)", html) and "<style" not in html and " style=" not in html
        assert all(u.startswith("/playground/") for u in re.findall(r'(?:src|href)="([^"#]+)"', html))
        js = await http.get("/playground/js/main.js")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]
        assert js.headers["content-security-policy"] == csp
        css = await http.get("/playground/app.css")
        assert css.headers["content-type"].startswith("text/css")
        missing = await http.get("/playground/js/nope.js")
        assert missing.status_code == 404 and missing.json()["error"]["message"]
        outside = await http.get("/playground/../pyproject.toml")
        assert outside.status_code == 404


def test_every_static_file_ships_as_package_data() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["assistd"]
    package = STATIC_DIR.parents[1]
    files = [p.relative_to(package).as_posix() for p in STATIC_DIR.rglob("*") if p.is_file()]
    assert "playground/static/index.html" in files and "playground/static/js/main.js" in files
    unshipped = [f for f in files if not any(fnmatch.fnmatchcase(f, pat) for pat in patterns)]
    assert unshipped == []
    # the page references only files that exist
    html = (STATIC_DIR / "index.html").read_text()
    for ref in re.findall(r'(?:src|href)="/playground/([^"]+)"', html):
        assert (STATIC_DIR / ref).is_file(), ref
    for js in STATIC_DIR.glob("js/*.js"):
        for ref in re.findall(r'from "\./([^"]+)"', js.read_text()):
            assert (STATIC_DIR / "js" / ref).is_file(), (js.name, ref)
        assert not re.search(
            r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|eval\(", js.read_text()
        ), js.name


async def test_markdown_renderer_builds_safe_dom(ui: UI) -> None:
    await ui.goto()
    result = await ui.page.evaluate(
        """async () => {
            const { renderMarkdown, safeHref } = await import('/playground/js/markdown.js');
            const { withPlaceholders } = await import('/playground/js/messages.js');
            const box = document.createElement('div');
            box.append(renderMarkdown([
                '# Title', '', 'Some **bold**, *em*, `code <b>x</b>` and [ok](https://example.com/a?b=1).',
                '[js](javascript:alert(1)) [js2](JAVASCRIPT:alert(1)) [data](data:text/html,<script>alert(1)</script>)',
                '[vb]( jav&#x09;ascript:alert(1)) <img src=x onerror=alert(1)> ![pic](https://example.com/p.png)',
                '', '- one', '- two', '  - nested', '', '1. first', '2. second', '',
                '```html', '<script>alert(1)</script>', '```', '', '| a | b |', '|---|---|', '| <i>1</i> | 2 |',
            ].join('\\n')));
            const emoji = withPlaceholders('😀 see 【0:0†a.txt】 end', [
                { type: 'file_citation', text: '【0:0†a.txt】', start_index: 6, end_index: 17, file_citation: { file_id: 'f' } },
            ]);
            return {
                tags: [...new Set([...box.querySelectorAll('*')].map(e => e.tagName.toLowerCase()))].sort(),
                hrefs: [...box.querySelectorAll('a')].map(a => a.getAttribute('href')),
                text: box.textContent,
                handlers: [...box.querySelectorAll('*')].flatMap(e => [...e.attributes].map(a => a.name)).filter(n => n.startsWith('on')),
                safe: [safeHref('javascript:alert(1)'), safeHref(' https://x.org/'), safeHref('mailto:a@b.c'), safeHref('/v1/files')],
                emoji: emoji.text, refs: emoji.refs.length,
            };
        }"""
    )
    assert "img" not in result["tags"] and "script" not in result["tags"] and "b" not in result["tags"]
    assert {"h3", "strong", "em", "code", "pre", "ul", "ol", "li", "table", "td", "a"} <= set(result["tags"])
    assert result["hrefs"] == ["https://example.com/a?b=1", "https://example.com/p.png"]
    assert result["handlers"] == []
    assert "<img src=x onerror=alert(1)>" in result["text"] and "<script>alert(1)</script>" in result["text"]
    assert "[image: pic]" in result["text"]
    assert result["safe"] == [None, "https://x.org/", "mailto:a@b.c", None]
    # annotation indices are code points: an emoji before the marker does not shift it
    assert result["emoji"] == "😀 see \ue0000\ue001 end" and result["refs"] == 1


async def test_phone_width_is_usable(browser: Browser, server: Server, sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
    asst = (await sdk.beta.assistants.create(model="fake-model", name="Pocket")).id
    context, ui = await open_ui(browser, server.base, width=390, height=844)
    try:
        page = ui.page
        await ui.goto(f"#/playground?assistant={asst}")
        llm.set_turns([{"text": "Hi from a small screen."}])
        await page.get_by_label("Message", exact=True).fill("Hello")
        await page.get_by_role("button", name="Add and run").click()
        await expect(page.locator("article.role-assistant").last).to_contain_text("Hi from a small screen.")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        await ui.shot("phone-chat")
        # one pane at a time: the tabs switch to the assistant's settings and to the runs
        await expect(page.locator("form.editor")).to_be_hidden()
        await page.get_by_role("tab", name="Assistant").click()
        await expect(page.locator("form.editor").get_by_label("Name")).to_have_value("Pocket")
        await page.get_by_role("tab", name="Runs").click()
        await expect(page.locator(".inspector .run-head .badge")).to_have_text("completed")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        for section in ("Assistants", "Threads", "Storage", "API log"):
            await page.get_by_role("link", name=re.compile(f"^{section}")).click()
            await expect(page.locator("main h1")).to_be_visible()
            assert await page.evaluate("document.documentElement.scrollWidth") <= 390, section
        ui.check()
    finally:
        await context.close()


async def test_keyboard_only_chat(ui: UI, sdk: openai.AsyncOpenAI, llm: FakeLLM) -> None:
    asst = (await sdk.beta.assistants.create(model="fake-model", name="Keys")).id
    page = ui.page
    await ui.goto(f"#/playground?assistant={asst}")
    llm.set_turns([{"text": "Typed, not clicked."}])
    await page.get_by_label("Message", exact=True).focus()
    await page.keyboard.type("No mouse here")
    await page.keyboard.press("Control+Enter")  # Add and run
    await expect(page.locator("article.role-assistant").last).to_contain_text("Typed, not clicked.")
    # Tab reaches the navigation links from the start of the page, and Enter follows them.
    await page.reload()
    await page.locator("#account .acct").wait_for()
    for _ in range(3):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.textContent") == "Assistants":
            break
    assert await page.evaluate("document.activeElement.textContent") == "Assistants"
    await page.keyboard.press("Enter")
    await expect(page.locator("main h1")).to_have_text("Assistants")


async def test_leaving_while_the_playground_loads_stays_left(ui: UI, sdk: openai.AsyncOpenAI) -> None:
    """A user who goes to another page while the Playground still loads stays there: its late
    loads must not rewrite the address back to the Playground (and a route would follow it)."""
    asst = (await sdk.beta.assistants.create(model="fake-model", name="Late")).id
    page = ui.page
    held: list[Route] = []
    release = asyncio.Event()

    async def hold_the_first_list(route: Route) -> None:
        if not held:  # the Playground's assistant picker
            held.append(route)
            await release.wait()
        await route.continue_()

    await page.route(re.compile(r"/v1/assistants\?"), hold_the_first_list)
    await ui.goto(f"#/playground?assistant={asst}")
    await page.get_by_role("link", name=re.compile("^Assistants")).click()
    await expect(page.locator("main h1")).to_have_text("Assistants")
    assert held, "the Playground's list was not held"
    # the picker's list answers now; the Playground then selects its assistant (GET /assistants/{id})
    async with page.expect_response(lambda r: r.url.endswith(f"/v1/assistants/{asst}")):
        release.set()
    await expect(page.locator("main h1")).to_have_text("Assistants")
    assert page.url.endswith("#/assistants"), page.url
    ui.check()


@pytest.fixture
async def keyed_server(tmp_path: Path, fake_llm: FakeLLM) -> AsyncIterator[Server]:
    async for s in start_server(tmp_path, fake_llm.base_url, keys=("team-a",)):
        yield s


async def test_keyed_server_asks_for_a_key_and_shows_the_project(browser: Browser, keyed_server: Server) -> None:
    key = keyed_server.keys["team-a"]
    context, ui = await open_ui(browser, keyed_server.base)
    # the first look without a key is refused: that 401 is how the page learns keys are needed
    ui.allowed_errors.append(re.compile(r"status of 401"))
    try:
        page = ui.page
        await page.goto(f"{keyed_server.base}/")
        dialog = page.get_by_role("dialog")
        await expect(dialog).to_be_visible()
        await dialog.get_by_label("API key").fill("sk-wrong")
        await dialog.get_by_role("button", name="Use this key").click()
        await expect(dialog.locator("#key-error")).to_contain_text("refused")
        await dialog.get_by_label("API key").fill(key)
        await ui.shot("key-dialog")
        await dialog.get_by_role("button", name="Use this key").click()
        await expect(dialog).to_be_hidden()
        await expect(page.locator("#account")).to_contain_text("Project team-a")
        # the key is kept: a reload goes straight in, and every API request carries it
        await page.reload()
        await expect(page.locator("#account .project-name")).to_have_text("team-a")
        await expect(page.get_by_role("dialog")).to_be_hidden()
        editor = page.locator("form.editor")
        await editor.get_by_label("Name").fill("Team assistant")
        await editor.get_by_label("Model").fill("fake-model")
        await editor.get_by_role("button", name="Create assistant").click()
        await expect(editor.locator(".obj-id")).to_contain_text("asst_")
        api_requests = [h for _, u, h in ui.requests if "/v1/" in u]
        unkeyed = [u for _, u, h in ui.requests if "/v1/" in u and h.get("authorization") != f"Bearer {key}"]
        assert len(api_requests) > 3 and len(unkeyed) == 2  # the two refused looks: none, then sk-wrong
        client = keyed_server.sdk(key)
        assert [a.name for a in (await client.beta.assistants.list()).data] == ["Team assistant"]
        assert (await client.get("/project", cast_to=object))["name"] == "team-a"  # type: ignore[index]
        await client.close()
        ui.check()
    finally:
        await context.close()


async def test_project_endpoint(keyed_server: Server, server: Server) -> None:
    key = keyed_server.keys["team-a"]
    async with httpx.AsyncClient(base_url=keyed_server.base) as http:
        assert (await http.get("/v1/project")).status_code == 401
        p = (await http.get("/v1/project", headers={"Authorization": f"Bearer {key}"})).json()
        assert p["object"] == "organization.project" and p["name"] == "team-a" and p["id"].startswith("proj_")
        assert p["status"] == "active" and isinstance(p["created_at"], int)
    async with httpx.AsyncClient(base_url=server.base) as http:
        local = (await http.get("/v1/project")).json()
        assert (local["id"], local["name"]) == ("proj_default", "default")


async def test_the_browser_refuses_other_origins(browser: Browser, server: Server) -> None:
    """The CSP at work: script on the page cannot reach another origin, nor load its images."""
    context, ui = await open_ui(browser, server.base)
    try:
        await ui.goto()
        outcome = await ui.page.evaluate(
            """async () => {
                const fetched = await fetch('http://127.0.0.2:9/steal').then(() => 'sent', e => 'refused');
                const loaded = await new Promise(done => {
                    const img = new Image();
                    img.onload = () => done('loaded');
                    img.onerror = () => done('refused');
                    img.src = 'http://127.0.0.2:9/pixel.png';
                });
                return { fetched, loaded };
            }"""
        )
        assert outcome == {"fetched": "refused", "loaded": "refused"}
        csp = " ".join(e for e in ui.console_errors if "Content Security Policy" in e)
        assert "connect-src 'self'" in csp and "img-src 'self' blob:" in csp, ui.console_errors
        assert ui.intercepted_foreign == []  # refused inside the browser: nothing left it
        ui.console_errors.clear()  # the expected refusals
        # chromium reports the image request it then refused; nothing else went elsewhere
        ui.requests[:] = [r for r in ui.requests if r[1] != "http://127.0.0.2:9/pixel.png"]
        ui.check()
    finally:
        await context.close()
