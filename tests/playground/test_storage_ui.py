"""Storage in the Playground: Files (upload with progress, list, download, delete) and vector
stores (expiry, adding an uploaded file, a file's failure and its last_error)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
from playwright.async_api import expect

from tests.playground.conftest import UI

WATCH_BARS = """() => {
    window.__bars = [];
    new MutationObserver(ms => ms.forEach(m => m.addedNodes.forEach(n => {
        if (n.querySelector && n.querySelector('progress')) window.__bars.push(n.querySelector('progress'));
    }))).observe(document.body, {subtree: true, childList: true});
}"""


async def test_files_upload_list_download_delete(ui: UI, sdk: openai.AsyncOpenAI, tmp_path: Path) -> None:
    page = ui.page
    report = tmp_path / "report.txt"
    body = "quarterly numbers\n" * 60_000  # ~1 MB
    report.write_text(body)
    await ui.goto("#/storage/files")
    await page.evaluate(WATCH_BARS)
    await page.get_by_label("Files to upload").set_input_files(str(report))
    await page.get_by_label("Purpose").select_option("assistants")
    await page.get_by_role("button", name="Upload", exact=True).click()
    row = page.locator("table[aria-label=Files] tbody tr", has_text="report.txt")
    await expect(row).to_contain_text("assistants")
    await expect(row).to_contain_text("1.0 MB")
    assert await page.evaluate("window.__bars.map(b => b.value)") == [1]
    file_id = (await row.locator("code").inner_text()).strip()
    assert (await sdk.files.retrieve(file_id)).bytes == len(body)
    await ui.shot("storage-files")

    async with page.expect_download() as info:
        await row.get_by_role("button", name="Download report.txt").click()
    download = await info.value
    assert download.suggested_filename == "report.txt"
    saved = Path(await download.path())
    assert await asyncio.to_thread(saved.read_text) == body

    await row.get_by_role("button", name="Delete").click()
    await row.get_by_role("button", name="Confirm").click()
    await expect(row).to_have_count(0)
    assert file_id not in [f.id for f in (await sdk.files.list()).data]


async def test_vector_store_expiry_and_a_failed_file(ui: UI, sdk: openai.AsyncOpenAI) -> None:
    page = ui.page
    good = await sdk.files.create(file=("notes.md", b"# Notes\n\nThe launch is on Tuesday."), purpose="assistants")
    bad = await sdk.files.create(file=("blob.bin", b"\x00\x01\x02binary"), purpose="assistants")
    await ui.goto("#/storage/vector_stores")
    await page.get_by_label("New vector store name").fill("Expiring notes")
    await page.get_by_label("Expires after days").fill("7")
    await page.get_by_role("button", name="Create", exact=True).click()
    detail = page.locator(".detail")
    await expect(detail.locator("h2")).to_have_text("Expiring notes")
    await expect(detail).to_contain_text("7 days after last activity")
    vs_id = page.url.rsplit("/", 1)[1]
    assert (await sdk.vector_stores.retrieve(vs_id)).expires_after.days == 7

    for f in (good, bad):
        await detail.get_by_label("Existing file").select_option(f.id)
        await detail.get_by_role("button", name="Add", exact=True).click()
    files = detail.locator("table[aria-label='Vector store files'] tbody tr")
    await expect(files.filter(has_text="notes.md").locator(".badge")).to_have_text("completed")
    failed = files.filter(has_text="blob.bin")
    await expect(failed.locator(".badge")).to_have_text("failed")
    await expect(failed).to_contain_text("unsupported_file")
    api_files = {f.id: f for f in (await sdk.vector_stores.files.list(vs_id)).data}
    assert api_files[bad.id].last_error.message in await failed.inner_text()
    # the list on the left follows the store's file counts
    await expect(page.locator("ul[aria-label='Vector stores']")).to_contain_text("2 files")
