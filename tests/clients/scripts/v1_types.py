"""Check JSON from the server against the installed openai 1.x SDK's own (v1) types.

Runs inside the old SDKs' venvs (tests/clients), so it imports nothing from assistd or the tests.
``check(data)`` validates an object by its ``object`` field (lists item by item) strictly
(types, required fields, literals) and records every field the SDK's model does not declare.
"""

from __future__ import annotations

import importlib
from typing import Any

import openai
from pydantic import BaseModel, TypeAdapter

_NEW = tuple(int(x) for x in openai.VERSION.split(".")[:2]) >= (1, 14)
OBJECTS = {
    "assistant": "openai.types.beta:Assistant",
    "assistant.deleted": "openai.types.beta:AssistantDeleted",
    "assistant.file": "openai.types.beta.assistants:AssistantFile",
    "assistant.file.deleted": "openai.types.beta.assistants:FileDeleteResponse",
    "thread": "openai.types.beta:Thread",
    "thread.deleted": "openai.types.beta:ThreadDeleted",
    "thread.message": "openai.types.beta.threads:" + ("Message" if _NEW else "ThreadMessage"),
    "thread.message.file": "openai.types.beta.threads.messages:MessageFile",
    "thread.run": "openai.types.beta.threads:Run",
    "thread.run.step": "openai.types.beta.threads.runs:RunStep",
    "file": "openai.types:FileObject",
}

# Where an old SDK's type was stricter than the API it spoke: openai 1.3.5 types Run.expires_at
# as int, but the API sent null once a run had ended (1.14 types it Optional[int]).
ERRATA = {("thread.run", "expires_at")}

problems: list[str] = []
extras: dict[str, set[str]] = {}
checked: dict[str, int] = {}


def _model(kind: str) -> type[BaseModel]:
    module, name = OBJECTS[kind].split(":")
    cls: type[BaseModel] = getattr(importlib.import_module(module), name)
    return cls


def _walk_extras(m: Any, path: str, kind: str) -> None:
    if isinstance(m, BaseModel):
        for k in m.model_extra or {}:
            extras.setdefault(kind, set()).add(f"{path}.{k}" if path else k)
        for name in type(m).model_fields:
            _walk_extras(getattr(m, name), f"{path}.{name}" if path else name, kind)
    elif isinstance(m, list):
        for x in m:
            _walk_extras(x, f"{path}[]", kind)


def check(data: Any, where: str = "") -> None:
    if not isinstance(data, dict):
        problems.append(f"{where}: not an object: {str(data)[:200]}")
        return
    if set(data) == {"error"}:
        err = data["error"]
        if not (isinstance(err, dict) and {"message", "type", "param", "code"} <= set(err)):
            problems.append(f"{where}: bad error envelope {data}")
        return
    kind = data.get("object")
    if kind == "list":
        for item in data.get("data", []):
            check(item, where)
        return
    if kind not in OBJECTS:
        problems.append(f"{where}: unknown object {kind!r}")
        return
    data = {k: 0 if v is None and (kind, k) in ERRATA else v for k, v in data.items()}
    try:
        inst = _model(kind).model_validate(data, strict=True)
    except Exception as exc:  # a pydantic ValidationError: report it, the test fails on it
        problems.append(f"{where}: {kind}: {exc}")
        return
    checked[kind] = checked.get(kind, 0) + 1
    _walk_extras(inst, "", kind)


def check_event(name: str, data: Any) -> None:
    """A stream event (openai >= 1.14 has the AssistantStreamEvent union)."""
    from openai.types.beta import AssistantStreamEvent

    try:
        TypeAdapter(AssistantStreamEvent).validate_python({"event": name, "data": data}, strict=False)
    except Exception as exc:
        problems.append(f"event {name}: {exc}")
        return
    if isinstance(data, dict) and data.get("object") in OBJECTS:
        check(data, f"event {name}")
    checked["event:" + name] = checked.get("event:" + name, 0) + 1


def report() -> dict[str, Any]:
    return {"problems": problems, "extras": {k: sorted(v) for k, v in extras.items()}, "checked": checked}
