"""Browser tests of the Playground: a real `assistd serve` (uvicorn, in a subprocess) on its own
fresh database (SQLite file, or a new PostgreSQL database under ASSISTD_TEST_DATABASE=postgres),
the scripted fake model as its upstream, and Playwright driving Debian's chromium
(/usr/bin/chromium; `apt-get install chromium`, which .ci/run and scripts/test do. Playwright's
own browser download is never used).

Every page a test opens is watched: console errors, uncaught exceptions, native dialogs (an
injected script would show one) and every request's URL (all must go to the server's own
origin) are checked when the test ends. Screenshots go to artifacts/playground/.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import openai
import pytest
from playwright.async_api import Browser, Page, Route, async_playwright

from assistd.fakellm import FakeLLM
from tests.api.test_serve import free_port
from tests.conftest import PG_DEFAULT, _create_pg_database, _drop_pg_database

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "playground"
CHROMIUM = os.environ.get("ASSISTD_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.playground)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "playground: browser tests (Debian chromium at /usr/bin/chromium)")


@dataclass
class Server:
    base: str
    env: dict[str, str]
    log_path: Path
    keys: dict[str, str] = field(default_factory=dict)  # project name -> API key

    def sdk(self, key: str = "local") -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.base}/v1", api_key=key, max_retries=0)

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "assistd", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


async def _fresh_database(tmp: Path) -> tuple[str, str | None, str | None]:
    """(url, pg server, pg database name) of a database no other test uses."""
    backend = os.environ.get("ASSISTD_TEST_DATABASE", "sqlite")
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp / 'assistd.db'}", None, None
    server = PG_DEFAULT if backend == "postgres" else backend
    url, name = await _create_pg_database(server)
    return url, server, name


def _spawn_server(port: int, env: dict[str, str], log: IO[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "assistd", "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def _chromium_missing() -> bool:
    return not Path(CHROMIUM).exists()


async def start_server(tmp: Path, upstream: str, *, keys: tuple[str, ...] = ()) -> AsyncIterator[Server]:
    url, pg_server, pg_name = await _fresh_database(tmp)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTD_")}
    venv = os.environ.get("ASSISTD_SANDBOX_VENV") or str(ROOT / "data" / "sandbox" / "venv")
    env.update(
        ASSISTD_DATA_DIR=str(tmp / "data"),
        ASSISTD_DATABASE_URL=url,
        ASSISTD_UPSTREAM_BASE_URL=upstream,
        ASSISTD_EMBEDDER="hash",
        ASSISTD_SANDBOX_VENV=venv,
        ASSISTD_SANDBOX_TIMEOUT_SECONDS="30",
        # few PostgreSQL connections (at most 8): the machine's 100 are shared with the suite's own
        ASSISTD_DB_MAX_CONNECTIONS="8",
        ASSISTD_FAST_READS="false",
    )
    port = free_port()
    log_path = tmp / f"serve-{port}.log"
    server = Server(f"http://127.0.0.1:{port}", env, log_path)
    if keys:
        server.cli("migrate")
    for project in keys:
        server.keys[project] = server.cli("keys", "create", "--project", project, "--name", "playground-test")
    log = log_path.open("w")
    proc = _spawn_server(port, env, log)
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(600):
                try:
                    if (await http.get(f"{server.base}/health", timeout=1)).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None:
                    break
                await asyncio.sleep(0.05)
            else:
                proc.kill()
        if proc.poll() is not None:
            pytest.fail(f"assistd serve did not start:\n{log_path.read_text()}")
        yield server
    finally:
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        if pg_server and pg_name:
            await _drop_pg_database(pg_server, pg_name)


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> AsyncIterator[Server]:
    """A local-mode server (no key exists), shared by a module's tests."""
    async for s in start_server(tmp_path_factory.mktemp("playground"), fake_llm.base_url):
        yield s


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if _chromium_missing():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install chromium`; scripts/test does it)"
        )
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@dataclass
class UI:
    """A page on the Playground, watched for errors, dialogs and requests to other origins."""

    page: Page
    base: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    allowed_errors: list[re.Pattern[str]] = field(default_factory=list)
    failed_responses: list[str] = field(default_factory=list)  # "STATUS METHOD URL body", for messages
    intercepted_foreign: list[str] = field(default_factory=list)  # requests to other origins (refused)

    async def goto(self, hash_route: str = "") -> None:
        await self.page.goto(f"{self.base}/playground/{hash_route}")
        await self.page.locator("#account .acct").wait_for()

    async def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.evaluate("document.getElementById('toasts').hidden = true")
        await self.page.screenshot(path=str(path))
        await self.page.evaluate("document.getElementById('toasts').hidden = false")
        return path

    def check(self) -> None:
        errors = [e for e in self.console_errors if not any(p.search(e) for p in self.allowed_errors)]
        assert not errors, f"console errors: {errors}; failed responses: {self.failed_responses}"
        assert not self.page_errors, f"uncaught errors: {self.page_errors}"
        assert not self.dialogs, f"dialogs were opened: {self.dialogs}"
        foreign = [
            u for _, u, _ in self.requests if not (u.startswith(self.base + "/") or u.startswith(f"blob:{self.base}/"))
        ]
        assert not foreign, f"requests to another origin: {foreign}"
        assert not self.intercepted_foreign, f"requests to another origin: {self.intercepted_foreign}"
        assert any(u.startswith(f"{self.base}/v1/") for _, u, _ in self.requests), "the page never called the API"


async def open_ui(browser: Browser, base: str, *, width: int = 1280, height: int = 800) -> tuple[Any, UI]:
    context = await browser.new_context(viewport={"width": width, "height": height})
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page = await context.new_page()
    page.set_default_timeout(30_000)
    ui = UI(page, base)
    page.on("console", lambda m: ui.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: ui.page_errors.append(str(e)))

    async def on_dialog(d: Any) -> None:
        ui.dialogs.append(f"{d.type}: {d.message}")
        await d.dismiss()

    page.on("dialog", on_dialog)
    page.on("request", lambda r: ui.requests.append((r.method, r.url, r.headers)))

    async def same_origin_only(route: Route) -> None:
        # every request passes here: this origin's go on, anything else is recorded and refused
        if route.request.url.startswith(base + "/"):
            await route.continue_()
        else:
            ui.intercepted_foreign.append(route.request.url)
            await route.abort()

    await context.route("**/*", same_origin_only)

    async def on_response(r: Any) -> None:
        if r.status >= 400:
            try:
                body = await r.text()
            except Exception as exc:  # the page may be gone
                body = repr(exc)
            ui.failed_responses.append(f"{r.status} {r.request.method} {r.url} {body}")

    page.on("response", on_response)
    return context, ui


@pytest.fixture
async def ui(browser: Browser, server: Server) -> AsyncIterator[UI]:
    context, u = await open_ui(browser, server.base)
    try:
        yield u
        u.check()
    finally:
        await context.close()


@pytest.fixture
async def sdk(server: Server) -> AsyncIterator[openai.AsyncOpenAI]:
    client = server.sdk()
    try:
        yield client
    finally:
        await client.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"
