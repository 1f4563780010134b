"""``python -m assistd.fakellm`` (what ``assistd fake-llm`` runs) as a real process."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import openai

from assistd.fakellm import Options, create_fake_llm_app, load_script
from tests.fakellm.helpers import USER


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def fake_llm_process(*args: str) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """Start the CLI, wait for its "serving" line, yield ``(base_url, process)``, then SIGTERM it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "assistd.fakellm", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        seen = b""
        while True:
            line = await asyncio.wait_for(proc.stderr.readline(), 20)  # type: ignore[union-attr]
            seen += line
            assert line, f"the fake LLM exited before serving:\n{seen.decode()}"
            if m := re.search(rb"serving (http://\S+/v1)", line):
                break
        yield m.group(1).decode(), proc
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.communicate()


async def test_cli_serves_a_script_file(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(
        json.dumps(
            {
                "models": ["fake-model"],
                "turns": ["Hello from the CLI.", {"tool_calls": [{"name": "f", "arguments": {"a": 1}}]}],
            }
        )
    )
    port = free_port()
    async with fake_llm_process("--script", str(script), "--port", str(port), "--model", "extra") as (base_url, proc):
        assert base_url == f"http://127.0.0.1:{port}/v1"
        async with openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0) as client:
            completion = await client.chat.completions.create(model="fake-model", messages=USER)
            assert completion.choices[0].message.content == "Hello from the CLI."
            stream = await client.chat.completions.create(model="fake-model", messages=USER, stream=True)
            names = [d.function.name async for c in stream for d in c.choices[0].delta.tool_calls or [] if d.function]
            assert "f" in names
            assert [m.id async for m in client.models.list()] == ["fake-model", "extra"]
        async with httpx.AsyncClient(base_url=base_url[: -len("/v1")]) as c:
            log = (await c.get("/_fakellm/requests")).json()["data"]
        assert [e["turn"] for e in log if e["path"] == "/v1/chat/completions"] == ["turns[0]", "turns[1]"]
        proc.terminate()
        assert await proc.wait() in (0, -signal.SIGTERM)


async def test_cli_yaml_script_and_port_zero(tmp_path: Path) -> None:
    script = tmp_path / "script.yaml"
    script.write_text("turns:\n  - text: from yaml\n")
    async with fake_llm_process("--script", str(script), "--port", "0") as (base_url, _proc):
        async with httpx.AsyncClient(base_url=base_url) as c:
            r = await c.post("/chat/completions", json={"model": "m", "messages": USER})
        assert r.json()["choices"][0]["message"]["content"] == "from yaml"


async def test_cli_rejects_a_bad_script(tmp_path: Path) -> None:
    script = tmp_path / "bad.json"
    script.write_text(json.dumps({"turns": [{"fault": {"type": "explode"}}]}))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "assistd.fakellm",
        "--script",
        str(script),
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2
    assert "turns[0].fault.type: expected one of" in err.decode()


def test_the_cli_parser_is_cheap_to_import() -> None:
    """`assistd` builds its parser with fake-llm's arguments without importing the server."""
    code = (
        "import sys, argparse\n"
        "from assistd.fakellm.cli import configure_parser\n"
        "configure_parser(argparse.ArgumentParser())\n"
        "heavy = {'uvicorn', 'starlette', 'assistd.fakellm.server'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


README = Path(__file__).resolve().parents[2] / "README.md"


async def test_readme_section_example_script_does_what_it_says(tmp_path: Path) -> None:
    readme = README.read_text()
    section = readme.split("## Test offline with the scripted fake model", 1)[1]
    yaml_block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    script = tmp_path / "script.yaml"
    script.write_text(yaml_block)
    loaded = load_script(script)
    assert loaded.options.tokens_per_second == 50
    assert loaded.turns[2].options == {"ttft_ms": 300}
    # the same script without its timing, to keep this test fast
    fast = dataclasses.replace(
        loaded, options=Options(), turns=tuple(dataclasses.replace(t, options={}) for t in loaded.turns)
    )
    app = create_fake_llm_app(fast)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake/v1") as c:

        async def ask(messages: list[dict[str, object]]) -> dict[str, object]:
            r = await c.post("/chat/completions", json={"model": "fake-model", "messages": messages})
            return r.json()["choices"][0]["message"]

        weather = [{"role": "user", "content": "What's the weather?"}]
        message = await ask(weather)
        calls = message["tool_calls"]
        assert [c["function"]["arguments"] for c in calls] == ['{"city":"Paris"}', '{"city":"Oslo"}']
        results = [{"role": "tool", "tool_call_id": c["id"], "content": "..."} for c in calls]
        message = await ask([*weather, message, *results])
        assert message["content"] == "Paris is sunny and Oslo is rainy."
        assert (await ask(USER))["content"] == "Hello! How can I help?"
        r = await c.post("/chat/completions", json={"model": "fake-model", "messages": USER})
        assert (r.status_code, r.headers["retry-after"]) == (429, "1")
        assert (await ask(USER))["content"] == "This one came after a rate limit."
        assert (await ask(USER))["content"] == "Sorry, the script has nothing for that."
