"""The product as a user runs it: `assistd keys …` and `assistd serve` as real processes (uvicorn)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai
import pytest

from assistd.fakellm import FakeLLM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistd", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


class Server:
    def __init__(self, base: str) -> None:
        self.base = base
        self.output = ""


@contextmanager
def serving(env: dict[str, str]) -> Iterator[Server]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistd", "serve", "--port", str(port), "--log-level", "info"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    server = Server(base)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                out, _ = proc.communicate()
                pytest.fail(f"server did not start:\n{out}")
            time.sleep(0.05)
        yield server
    finally:
        proc.terminate()
        try:
            server.output, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            server.output, _ = proc.communicate()


def base_env(tmp_path: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTD_")}
    env["ASSISTD_DATA_DIR"] = str(tmp_path / "data")
    if database_url:
        env["ASSISTD_DATABASE_URL"] = database_url
    return env


class TestServe:
    def test_embedded_default_local_mode(self, tmp_path: Path) -> None:
        env = base_env(tmp_path, None)
        env["ASSISTD_EMBEDDER"] = "hash"  # the local model is tested in tests/retrieval
        with serving(env) as server:
            base = server.base
            client = openai.OpenAI(api_key="anything", base_url=f"{base}/v1", max_retries=0)
            a = client.beta.assistants.create(model="llama3.1", name="Helper")
            t = client.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
            assert client.beta.threads.messages.list(t.id).data[0].content[0].text.value == "hi"
            assert client.beta.assistants.retrieve(a.id).name == "Helper"
            f = client.files.create(file=("notes.txt", b"hello file"), purpose="assistants")
            assert client.files.content(f.id).read() == b"hello file"
            # vector stores on the embedded default (no database URL configured)
            vs = client.vector_stores.create(name="docs")
            vf = client.vector_stores.files.upload_and_poll(
                vector_store_id=vs.id, file=("herons.txt", b"Lanterns shaped like herons."), poll_interval_ms=50
            )
            assert vf.status == "completed", vf.last_error
            hits = client.vector_stores.search(vector_store_id=vs.id, query="heron lanterns").data
            assert hits and hits[0].filename == "herons.txt"
            client.close()
        assert "local single-user mode" in server.output
        # The embedded default: a SQLite file under the data directory, and uploaded blobs beside it.
        assert (tmp_path / "data" / "assistd.db").exists()
        assert (tmp_path / "data" / "files" / f.id).read_bytes() == b"hello file"

    def test_keys_cli_and_keyed_server(self, tmp_path: Path, database_url: str) -> None:
        env = base_env(tmp_path, database_url)
        created = cli("keys", "create", "--project", "team-a", "--name", "ci", env=env)
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip()
        assert key.startswith("sk-") and len(key) == 51
        listed = cli("keys", "list", env=env)
        assert "team-a" in listed.stdout and key not in listed.stdout and key[:6] in listed.stdout
        key_id = next(line.split()[0] for line in listed.stdout.splitlines() if "team-a" in line and " ci " in line)
        other = cli("keys", "create", "--project", "team-b", env=env).stdout.strip()
        with serving(env) as server:
            base = server.base
            a_client = openai.OpenAI(api_key=key, base_url=f"{base}/v1", max_retries=0)
            b_client = openai.OpenAI(api_key=other, base_url=f"{base}/v1", max_retries=0)
            asst = a_client.beta.assistants.create(model="m")
            with pytest.raises(openai.NotFoundError):
                b_client.beta.assistants.retrieve(asst.id)
            with (
                openai.OpenAI(api_key="sk-wrong", base_url=f"{base}/v1", max_retries=0) as wrong,
                pytest.raises(openai.AuthenticationError) as exc,
            ):
                wrong.beta.assistants.list()
            assert exc.value.code == "invalid_api_key"
            a_client.close()
            b_client.close()
            r = httpx.get(f"{base}/v1/assistants", headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_beta"
            assert r.headers["x-request-id"].startswith("req_")
        revoked = cli("keys", "revoke", key_id, env=env)
        assert revoked.returncode == 0 and "revoked" in revoked.stdout
        assert "revoked" in cli("keys", "list", env=env).stdout
        assert cli("keys", "revoke", key_id, env=env).returncode == 1

    def test_startup_names_each_upstream_and_whether_it_answers(self, tmp_path: Path) -> None:
        env = base_env(tmp_path, None)
        env["ASSISTD_EMBEDDER"] = "hash"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"  # nothing listens once the socket is closed
        with FakeLLM({"models": ["llama3.1:8b", "qwen2.5:7b"]}) as fake:
            fake_url = fake.base_url
            env["ASSISTD_UPSTREAM_BASE_URL"] = dead
            env["ASSISTD_UPSTREAM_ROUTES"] = f'[{{"pattern": "llama*", "base_url": "{fake.base_url}"}}]'
            with serving(env) as server:
                models = httpx.get(f"{server.base}/v1/models", headers={"Authorization": "Bearer x"}).json()
                assert [m["id"] for m in models["data"]] == ["llama3.1:8b"]  # qwen would go to the dead default
        assert f"upstream {fake_url} (routes llama*) answers GET /models: 2 model(s): llama3.1:8b, qwen2.5:7b" in (
            server.output
        )
        assert (
            f"WARNING assistd.llm upstream {dead} (the default upstream) does not answer GET /models "
            "(connection refused): runs on its models will fail until it does. Start the model server "
            "(Ollama: `ollama serve`, then `ollama pull llama3.1`) or set ASSISTD_UPSTREAM_BASE_URL to one; "
            "to try assistd offline, run `assistd fake-llm`."
        ) in server.output

    def test_keys_refuses_to_create_a_database_silently(self, tmp_path: Path) -> None:
        env = base_env(tmp_path, None)
        db = (tmp_path / "data" / "assistd.db").resolve()
        refused = cli("keys", "create", "--project", "p", env=env)
        assert refused.returncode == 1 and refused.stdout == ""
        assert f"assistd: SQLite database {db}, files in" in refused.stderr
        assert "there is no assistd database here" in refused.stderr and "add --init" in refused.stderr
        assert not db.exists()
        made = cli("keys", "create", "--project", "p", "--init", env=env)
        assert made.returncode == 0, made.stderr
        assert made.stdout.startswith("sk-") and db.exists()
        listed = cli("keys", "list", env=env)  # the database exists now: no --init needed
        assert listed.returncode == 0 and " p " in listed.stdout
        assert f"assistd: SQLite database {db}" in listed.stderr

    def test_every_command_names_its_database(self, tmp_path: Path, database_url: str) -> None:
        env = base_env(tmp_path, database_url)
        migrated = cli("migrate", env=env)
        assert migrated.returncode == 0, migrated.stderr
        if database_url.startswith("sqlite"):
            expected = f"SQLite database {database_url.split(':///', 1)[1]}"
        else:
            expected = f"PostgreSQL database '{database_url.rsplit('/', 1)[1]}' on 127.0.0.1:5432 (user postgres)"
        assert f"assistd: {expected}, files in {(tmp_path / 'data' / 'files').resolve()}" in migrated.stderr
        with serving(env) as server:
            pass
        assert f"using the {expected}" in server.output

    def test_backup(self, tmp_path: Path, database_url: str) -> None:
        env = base_env(tmp_path, database_url)
        env["ASSISTD_EMBEDDER"] = "hash"
        with serving(env) as server:
            client = openai.OpenAI(
                api_key=cli("keys", "create", "--project", "bk", env=env).stdout.strip(),
                base_url=f"{server.base}/v1",
                max_retries=0,
            )
            f = client.files.create(file=("notes.txt", b"back me up"), purpose="assistants")
            a = client.beta.assistants.create(model="m", name="kept")
            client.close()
            dest = tmp_path / "backup"
            done = cli("backup", str(dest), env=env)  # while the server runs
        assert done.returncode == 0, done.stderr
        assert (dest / "files" / f.id).read_bytes() == b"back me up"
        if database_url.startswith("sqlite"):
            import sqlite3

            with sqlite3.connect(dest / "assistd.db") as conn:
                assert conn.execute("select name from assistants where id = ?", (a.id,)).fetchone() == ("kept",)
        else:
            dump = dest / "assistd.pgdump"
            listing = subprocess.run(["pg_restore", "--list", str(dump)], capture_output=True, text=True, check=True)
            assert "TABLE DATA public assistants" in listing.stdout
        again = cli("backup", str(dest), env=env)
        assert again.returncode == 1 and "is not empty" in again.stderr

    def test_api_key_from_the_environment(self, tmp_path: Path) -> None:
        """ASSISTD_API_KEY (a container's bootstrap key): keyed from the first request."""
        env = base_env(tmp_path, None)
        env["ASSISTD_API_KEY"] = key = "sk-bootstrap-0123456789abcdefghij"
        for _ in range(2):  # a restart finds the key and adds no second one
            with serving(env) as server:
                url = f"{server.base}/v1/models"
                assert httpx.get(url).status_code == 401
                assert httpx.get(url, headers={"Authorization": "Bearer sk-wrong"}).status_code == 401
                assert httpx.get(url, headers={"Authorization": f"Bearer {key}"}).status_code == 200
                assert httpx.get(url, headers={"api-key": "x"}).status_code == 401
            assert "local single-user mode" not in server.output
        listed = cli("keys", "list", env=env).stdout
        assert listed.count("ASSISTD_API_KEY") == 1 and " default " in listed

        env["ASSISTD_API_KEY"] = "short"
        bad = cli("migrate", env=env)
        assert bad.returncode == 2 and "Traceback" not in bad.stderr
        assert bad.stderr.startswith(
            "assistd: invalid ASSISTD_API_KEY: Value error, ASSISTD_API_KEY must be at least 20"
        )

    def test_migrate_command(self, tmp_path: Path) -> None:
        env = base_env(tmp_path, None)
        r = cli("migrate", env=env)
        assert r.returncode == 0, r.stderr
        assert (tmp_path / "data" / "assistd.db").exists()
