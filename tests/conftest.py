"""Shared fixtures.

The suite runs against a real database chosen by ``ASSISTD_TEST_DATABASE``:

- ``sqlite`` (default): a fresh SQLite file in a temporary directory;
- ``postgres``: a fresh database ``assistd_test_<random>`` on 127.0.0.1:5432 (user postgres),
  created for the run and dropped after it; any other value is taken as a PostgreSQL URL of
  the server to create it on (``postgresql+asyncpg://user@host:port/postgres``).

The database is migrated once with the real Alembic migrations. Tests are isolated by project:
every test gets its own API key bound to a new project, so no test sees another's objects.

Every JSON response that passes through ``client`` or the SDK fixtures is validated by a response
hook against the OpenAPI spec, or without it against the ``openai`` package's types, strictly
(tests/spec), so no endpoint can answer off-spec unnoticed.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from assistd.app import create_app
from assistd.auth import create_key
from assistd.config import Settings
from assistd.db.migrate import upgrade
from assistd.fakellm import FakeLLM
from assistd.models import Run
from assistd.state import AppState
from tests import spec
from tests.spec import validate, validate_response

PG_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
BETA = {"OpenAI-Beta": "assistants=v2"}


def _backend() -> str:
    return os.environ.get("ASSISTD_TEST_DATABASE", "sqlite")


def pytest_report_header() -> list[str]:
    return [f"assistd test database: {_backend()}", f"responses validated against {spec.REFERENCE.name}"]


async def _admin(server_url: str):  # -> asyncpg.Connection
    import asyncpg

    url = make_url(server_url)
    return await asyncpg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        database=url.database or "postgres",
    )


async def _create_pg_database(server_url: str) -> tuple[str, str]:
    """A fresh database on the server: ``(its SQLAlchemy URL, its name)``."""
    name = f"assistd_test_{uuid.uuid4().hex[:10]}"
    conn = await _admin(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False), name


async def _drop_pg_database(server_url: str, name: str) -> None:
    conn = await _admin(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    backend = _backend()
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("db") / "assistd.db"
        url = f"sqlite+aiosqlite:///{path}"
        upgrade(url)
        yield url
        return
    server = PG_DEFAULT if backend == "postgres" else backend
    url, name = await _create_pg_database(server)
    upgrade(url)
    try:
        yield url
    finally:
        await _drop_pg_database(server, name)


def make_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    return Settings(data_dir=data_dir, database_url=database_url, **overrides)


@pytest.fixture(scope="session")
async def fake_llm() -> AsyncIterator[FakeLLM]:
    """The scripted upstream every run in the suite talks to (a real HTTP server)."""
    async with FakeLLM() as llm:
        yield llm


# Models named fast-* reach the same fake with quick retries and a short stall timeout, so
# fault tests finish in well under a second.
FAST_ROUTES = (
    '[{"pattern": "fast-*", "backoff_base_seconds": 0.01, "backoff_max_seconds": 0.05, '
    '"read_timeout_seconds": 0.5, "max_retries": 2}, '
    '{"pattern": "unreachable-*", "base_url": "http://127.0.0.1:9/v1", "backoff_base_seconds": 0.01, '
    '"backoff_max_seconds": 0.05, "connect_timeout_seconds": 1, "max_retries": 2}]'
)


@pytest.fixture(scope="session")
async def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory, fake_llm: FakeLLM) -> Settings:
    return make_settings(
        tmp_path_factory.mktemp("data"),
        database_url,
        max_upload_bytes=2 * 1024 * 1024,
        upstream_base_url=fake_llm.base_url,
        upstream_routes=FAST_ROUTES,
        run_lease_seconds=5,
        embedder="hash",  # deterministic and fast; the local model is exercised by tests/retrieval
        vector_index=os.environ.get("ASSISTD_TEST_VECTOR_INDEX", "auto"),  # numpy: the PG suite without pgvector
        # the kernel venv `assistd setup` made (scripts/test does it; see tests/sandbox/conftest.py)
        sandbox_venv=Path(os.environ.get("ASSISTD_SANDBOX_VENV") or Path(__file__).parents[1] / "data/sandbox/venv"),
        sandbox_timeout_seconds=20,
    )


@pytest.fixture
def llm(fake_llm: FakeLLM) -> FakeLLM:
    """The fake upstream with an empty script (echo by default) and an empty request log."""
    fake_llm.reset()
    fake_llm.clear_requests()
    return fake_llm


@pytest.fixture(scope="session")
async def state(settings: Settings) -> AsyncIterator[AppState]:
    st = await AppState.start(settings, background=False)
    # One key exists from the start: the suite runs in keyed (multi-project) mode.
    async with st.db.session(write=True) as s:
        await create_key(s, "suite-bootstrap")
    try:
        yield st
    finally:
        await st.stop()


@pytest.fixture(scope="session")
def app(settings: Settings, state: AppState) -> Any:
    return create_app(settings, state)


async def new_project_key(state: AppState) -> tuple[str, str]:
    """A fresh project and a key for it: ``(api_key, project_id)``."""
    async with state.db.session(write=True) as s:
        key, _row, project = await create_key(s, f"test-{uuid.uuid4().hex[:12]}")
        return key, project.id


# --- spec validation of every response --------------------------------------------------------


def check_against_spec(method: str, path: str, status: int, content_type: str, body: bytes) -> None:
    if not content_type.startswith("application/json"):
        return
    import orjson

    data = orjson.loads(body)
    path = path.split("?", 1)[0]
    if path.startswith("/v1"):
        path = path[3:]
    if path in ("/health", ""):
        return
    if status >= 400:
        validate("ErrorResponse", data)
        return
    if method == "GET" and (path == "/models" or path.startswith("/models/")):
        # Not in the Assistants spec: OpenAI's Models endpoints, checked with the SDK's own type.
        from openai.types import Model

        for item in data["data"] if path == "/models" else [data]:
            assert set(item) == {"id", "object", "created", "owned_by"}, item
            Model.model_validate(item, strict=True)
        return
    if method == "GET" and path == "/threads":
        # Not an OpenAI endpoint (assistd's addition): a list envelope of ThreadObject.
        assert data["object"] == "list" and isinstance(data["has_more"], bool)
        for item in data["data"]:
            validate("ThreadObject", item)
        return
    validate_response(method, path, status, data)


async def _hook_httpx(response: httpx.Response) -> None:
    await response.aread()
    req = response.request
    check_against_spec(
        req.method, req.url.path, response.status_code, response.headers.get("content-type", ""), response.content
    )


async def _hook_httpx2(response: httpx2.Response) -> None:
    await response.aread()
    req = response.request
    check_against_spec(
        req.method, req.url.path, response.status_code, response.headers.get("content-type", ""), response.content
    )


def asgi_client(app: Any, key: str | None, *, beta: bool = True, validate_spec: bool = True) -> httpx.AsyncClient:
    headers: dict[str, str] = dict(BETA) if beta else {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test/v1",
        headers=headers,
        event_hooks={"response": [_hook_httpx]} if validate_spec else {},
        timeout=30,
    )


def sdk_client(app: Any, key: str) -> openai.AsyncOpenAI:
    http = httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app),
        base_url="http://test/v1",
        event_hooks={"response": [_hook_httpx2]},
        timeout=30,
    )
    return openai.AsyncOpenAI(api_key=key, base_url="http://test/v1", http_client=http, max_retries=0)


ACTIVE = ("queued", "in_progress", "cancelling")


@pytest.fixture(autouse=True)
async def _no_run_left_active(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    """A test must not leave a run that will still call the model: every test shares one fake
    upstream, and a run the reaper requeues seconds later would take a later test's turns."""
    yield
    if "state" not in request.fixturenames:
        return
    state: AppState = request.getfixturevalue("state")
    for _ in range(300):  # a run that just finished may still be writing its last rows
        async with state.db.session() as s:
            active = (await s.execute(select(Run.id, Run.status).where(Run.status.in_(ACTIVE)))).all()
        if not active:
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"the test left runs active: {[tuple(r) for r in active]}")


@pytest.fixture
async def project(state: AppState) -> tuple[str, str]:
    return await new_project_key(state)


@pytest.fixture
async def client(app: Any, project: tuple[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app, project[0]) as c:
        yield c


@pytest.fixture
async def other_client(app: Any, state: AppState) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a second, unrelated project."""
    key, _ = await new_project_key(state)
    async with asgi_client(app, key) as c:
        yield c


@pytest.fixture
async def sdk(app: Any, project: tuple[str, str]) -> AsyncIterator[openai.AsyncOpenAI]:
    c = sdk_client(app, project[0])
    try:
        yield c
    finally:
        await c.close()


def assert_error(
    resp: httpx.Response,
    status: int,
    *,
    param: str | None = None,
    code: str | None = None,
    message: str | None = None,
    contains: str | None = None,
) -> dict[str, Any]:
    """The OpenAI error envelope, with the expected status, param and code."""
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    assert err["param"] == param, err
    if code is not None:
        assert err["code"] == code, err
    if message is not None:
        assert err["message"] == message, err
    if contains is not None:
        assert contains in err["message"], err
    assert resp.headers.get("x-request-id", "").startswith("req_")
    return err
