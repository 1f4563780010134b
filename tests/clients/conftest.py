"""Real client packages against a real ``assistd serve`` (uvicorn), with the scripted fake model.

The clients are installed by ``scripts/clients`` into ``.clients/`` (``scripts/test`` and CI run
it): openai 1.3.5 and 1.14.3 in venvs of their own, and the Node SDKs. Each client flow is a
script under ``scripts/`` run as a subprocess with that client's interpreter, printing JSON the
test asserts on. The server has a database of its own (a SQLite file, or a fresh PostgreSQL
database on the suite's server) and one API key: nothing else in the suite executes its runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from assistd.fakellm import FakeLLM
from tests.api.test_serve import base_env, cli, serving
from tests.conftest import PG_DEFAULT, _backend, _create_pg_database, _drop_pg_database

ROOT = Path(__file__).parents[2]
CLIENTS = ROOT / ".clients"
SCRIPTS = Path(__file__).parent / "scripts"
NODE_MODULES = CLIENTS / "node" / "node_modules"


@dataclass
class Server:
    base: str  # http://127.0.0.1:PORT
    key: str


@pytest.fixture(scope="package")
async def client_database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    if _backend() == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('clients-db') / 'assistd.db'}"
        return
    server = PG_DEFAULT if _backend() == "postgres" else _backend()
    url, name = await _create_pg_database(server)
    try:
        yield url
    finally:
        await _drop_pg_database(server, name)


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory, client_database: str, fake_llm: FakeLLM) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("clients-server")
    env = base_env(tmp, client_database)
    env["ASSISTD_UPSTREAM_BASE_URL"] = fake_llm.base_url
    env["ASSISTD_EMBEDDER"] = "hash"
    env["ASSISTD_SANDBOX_VENV"] = os.environ.get("ASSISTD_SANDBOX_VENV") or str(ROOT / "data/sandbox/venv")
    migrated = cli("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    created = cli("keys", "create", "--project", "clients", env=env)
    assert created.returncode == 0, created.stderr
    with serving(env) as s:
        yield Server(s.base, created.stdout.strip())


def client_python(version: str) -> Path:
    python = CLIENTS / f"openai-{version}" / "bin" / "python"
    assert python.exists(), f"{python} is missing: run scripts/clients (scripts/test does)"
    return python


async def run_script(
    argv: list[str], *, cwd: Path = SCRIPTS, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> Any:
    """Run a client script (the loop keeps serving the fake model meanwhile); its stdout's JSON."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTD_", "OPENAI_"))}
    full_env.update(env or {})
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, env=full_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout=240)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"{argv[:2]} timed out")
    assert proc.returncode == 0, f"{argv[:2]} failed ({proc.returncode}):\n{err.decode()[-6000:]}"
    return json.loads(out.decode().strip().splitlines()[-1])


async def run_node(script: str, *args: str) -> Any:
    assert NODE_MODULES.exists(), f"{NODE_MODULES} is missing: run scripts/clients (scripts/test does)"
    return await run_script(["node", script, *args], env={"NODE_PATH": str(NODE_MODULES)})


async def v1_report(responses: list[dict[str, Any]]) -> dict[str, Any]:
    """Captured responses checked against openai 1.14.3's v1 types (``scripts/check_v1.py``)."""
    return dict(await run_script([str(client_python("1.14.3")), "check_v1.py"], stdin=json.dumps(responses).encode()))


# Fields of the last v1 spec (April 2024) that runs carry and openai 1.14.3 predates.
LATE_V1_RUN_FIELDS = [
    "incomplete_details",
    "max_completion_tokens",
    "max_prompt_tokens",
    "response_format",
    "temperature",
    "tool_choice",
    "top_p",
    "truncation_strategy",
]
