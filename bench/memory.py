"""Memory footprint of `assistd serve` on its embedded default, as the README states it.

Starts the scripted fake model and a real `assistd serve` (fresh temporary data directory, the
local MiniLM embedder, the code interpreter with its warm kernel), then prints the resident memory
(RSS) of the server process and of its sandbox kernels: idle after start-up, and after one
file_search run (which loads the embedder) and one code_interpreter run (which binds a kernel to
the thread).

Usage::

    .venv/bin/python bench/memory.py [--assistd .venv/bin/assistd]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import httpx
import openai

from assistd.fakellm import FakeLLM

warnings.filterwarnings("ignore", category=DeprecationWarning)
ROOT = Path(__file__).resolve().parents[1]

SCRIPT = {
    "turns": [
        {
            "match": {"last_user_contains": "lantern", "has_tool_results": False},
            "tool_calls": [{"name": "file_search", "arguments": {"queries": ["lanterns"]}}],
        },
        {"match": {"last_user_contains": "lantern", "has_tool_results": True}, "text": "Herons【0:0†a.txt】."},
        {
            "match": {"last_user_contains": "chart", "has_tool_results": False},
            "tool_calls": [
                {
                    "name": "code_interpreter",
                    "arguments": {"code": "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()"},
                }
            ],
        },
        {"match": {"last_user_contains": "chart", "has_tool_results": True}, "text": "Chart."},
    ]
}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def kernels(pid: int) -> list[float]:
    """RSS (MB) of the ipykernel processes below ``pid``."""
    rows = subprocess.run(["ps", "-eo", "pid=,ppid=,rss=,args="], capture_output=True, text=True, check=True).stdout
    children: dict[int, list[tuple[int, int, str]]] = {}
    for line in rows.splitlines():
        p, pp, r, args = line.split(None, 3)
        children.setdefault(int(pp), []).append((int(p), int(r), args))
    out, stack = [], [pid]
    while stack:
        for child, rss, args in children.get(stack.pop(), []):
            if "ipykernel" in args and not args.split()[0].endswith("bwrap"):
                out.append(rss / 1024)
            stack.append(child)
    return sorted(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assistd", default=str(ROOT / ".venv/bin/assistd"))
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as data, FakeLLM(SCRIPT) as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTD_")}
        env |= {"ASSISTD_UPSTREAM_BASE_URL": fake.base_url, "ASSISTD_DATA_DIR": data}
        venv = ROOT / "data" / "sandbox" / "venv"
        if venv.exists():  # the kernel venv `assistd setup` built for this checkout
            env["ASSISTD_SANDBOX_VENV"] = str(venv.resolve())
        proc = subprocess.Popen(
            [args.assistd, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            time.sleep(8)  # the warm kernel starts in the background
            print(
                f"idle after start-up: serve {rss_mb(proc.pid):.0f} MB, kernels {[round(k) for k in kernels(proc.pid)]} MB"
            )
            client = openai.OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0)
            doc = client.files.create(
                file=("a.txt", b"The harbour lanterns are shaped like herons. " * 50), purpose="assistants"
            )
            asst = client.beta.assistants.create(
                model="fake-model", tools=[{"type": "file_search"}, {"type": "code_interpreter"}]
            )
            thread = client.beta.threads.create(
                messages=[
                    {
                        "role": "user",
                        "content": "What shape are the lanterns?",
                        "attachments": [{"file_id": doc.id, "tools": [{"type": "file_search"}]}],
                    }
                ]
            )
            run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=asst.id)
            client.beta.threads.messages.create(thread.id, role="user", content="Draw a chart.")
            run2 = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=asst.id)
            assert (run.status, run2.status) == ("completed", "completed"), (run.last_error, run2.last_error)
            time.sleep(3)
            print(
                f"after a file_search run and a code_interpreter run: serve {rss_mb(proc.pid):.0f} MB, "
                f"kernels {[round(k) for k in kernels(proc.pid)]} MB (the thread's and a new warm one)"
            )
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
