"""The README's "Scripting file_search and code_interpreter" example, as written: its YAML script
drives the fake model and its Python (with this suite's client) gets a cited answer and a chart."""

from __future__ import annotations

import re
from pathlib import Path

import openai
import yaml

from assistd.fakellm import FakeLLM

README = Path(__file__).resolve().parents[2] / "README.md"


def section() -> str:
    return README.read_text().split("### Scripting file_search and code_interpreter", 1)[1].split("\n### ", 1)[0]


def awaited(code: str) -> str:
    """The README's synchronous ``client.x.y(...)`` calls as ``(await client.x.y(...))``, for this
    suite's async client (the calls' arguments hold no parentheses inside strings)."""
    out, i = [], 0
    for m in re.finditer(r"(?<![\w.])client\.[\w.]+\(", code):
        if m.start() < i:
            continue
        depth, j = 0, m.end() - 1
        while True:
            depth += {"(": 1, ")": -1}.get(code[j], 0)
            j += 1
            if depth == 0:
                break
        out += [code[i : m.start()], "(await ", code[m.start() : j], ")"]
        i = j
    return "".join(out) + code[i:]


async def test_readme_tools_script(sdk: openai.AsyncOpenAI, llm: FakeLLM, state) -> None:
    text = section()
    script = yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, re.S).group(1))
    script["options"] = {}  # the same turns without their pacing, to keep the test fast
    llm.load(script)
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    code = awaited(code)
    code = code.replace("print(", "show(")
    lines = code.splitlines()
    body = "\n".join("    " + line for line in lines)
    namespace: dict[str, object] = {}
    exec(f"async def example(client, show):\n{body}\n    return doc", namespace)
    out: list[tuple[object, ...]] = []
    doc = await namespace["example"](sdk, lambda *args: out.append(args))  # type: ignore[operator]
    (answer, citations), (parts,) = out
    assert answer == "You get 25 vacation days a year【0:0†handbook.txt】."
    assert citations == [doc.id]
    assert parts == ["text", "image_file"]
