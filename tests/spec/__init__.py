"""Validate JSON bodies against a real reference of the OpenAI Assistants v2 wire format.

Two references; one is chosen per process (:data:`REFERENCE`, shown in pytest's header):

* the official OpenAPI spec (tests/spec/openapi.py) whenever its file exists: ``$ASSISTD_SPEC``,
  else ``../shared/openapi/assistants-v2.yaml`` beside the clone, as CI has it;
* otherwise, as in a fresh clone, the response types of the pinned ``openai`` package (the test
  extras), made strict: no unknown keys, every field present, JSON types and literal values
  checked (tests/spec/sdk.py).

``ASSISTD_SPEC=/nonexistent scripts/test`` runs the suite with the second on a machine that has
the spec. Component names are the spec's (``AssistantObject``, ``RunObject``, ...) in both.

Public API::

    validate(component, instance)                          # -> None or AssertionError
    validate_response(method, path_template, status, body) # -> None or AssertionError
    validate_event(event, data)                             # -> None or AssertionError
    event_names()                                          # every SSE event name (25)

``validate_response`` validates ``status >= 400`` bodies as the error envelope and skips the raw
bytes of ``/files/{file_id}/content``. ``validate_event`` takes the raw string ``"[DONE]"`` for
``done``; for ``error`` the spec says the data is a bare ``Error`` while CONTRACT §7 recommends
the wrapped ``{"error": Error}`` form: ``wrapped_error=None`` (default) accepts either, ``False``
requires the bare shape, ``True`` the wrapped one. Compiled validators are cached, so calling
these thousands of times is cheap.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.spec.common import Reference

__all__ = [
    "REFERENCE",
    "SPEC_PATH",
    "event_names",
    "select",
    "validate",
    "validate_event",
    "validate_response",
]

_REPO = Path(__file__).resolve().parents[2]
SPEC_PATH = Path(os.environ.get("ASSISTD_SPEC") or _REPO / ".." / "shared" / "openapi" / "assistants-v2.yaml")


def select(spec_path: Path) -> Reference:
    """The OpenAPI spec at ``spec_path`` if that file exists, else the ``openai`` package's types."""
    if spec_path.is_file():
        from tests.spec.openapi import OpenAPISpec

        return OpenAPISpec(spec_path)
    from tests.spec.sdk import SDKTypes

    return SDKTypes()


REFERENCE = select(SPEC_PATH)


def validate(component: str, instance: Any) -> None:
    """Validate ``instance`` against the component (the spec's name, e.g. ``RunObject``)."""
    REFERENCE.validate(component, instance)


def validate_response(method: str, path_template: str, status: int, body: Any) -> None:
    """Validate a JSON response ``body`` for ``method path_template`` with ``status``."""
    REFERENCE.validate_response(method, path_template, status, body)


def validate_event(event: str, data: Any, *, wrapped_error: bool | None = None) -> None:
    """Validate the parsed ``data`` of SSE event ``event``."""
    REFERENCE.validate_event(event, data, wrapped_error=wrapped_error)


def event_names() -> frozenset[str]:
    return REFERENCE.event_names()
