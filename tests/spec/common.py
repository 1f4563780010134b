"""What both references share: the validator interface, failure messages, path templates."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any, Protocol

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

_MAX_MESSAGE = 1500


class Reference(Protocol):
    """One reference of the wire format (the OpenAPI spec, or the ``openai`` package's types)."""

    name: str  # for messages and the pytest header, e.g. "the OpenAPI spec at ../shared/..."

    def validate(self, component: str, instance: Any) -> None: ...

    def validate_response(self, method: str, path_template: str, status: int, body: Any) -> None: ...

    def validate_event(self, event: str, data: Any, *, wrapped_error: bool | None = None) -> None: ...

    def event_names(self) -> frozenset[str]: ...


def check(validator: Draft202012Validator, instance: Any, what: str, reference: str) -> None:
    """Raise AssertionError naming the JSON path and the rule ``instance`` breaks, if any."""
    if validator.is_valid(instance):
        return
    error = best_match(validator.iter_errors(instance))
    raise AssertionError(describe(error, what, reference)) from None


def describe(error: ValidationError | None, what: str, reference: str) -> str:
    if error is None:  # pragma: no cover - is_valid said invalid
        return f"{reference} violation in {what}: instance is invalid"
    message = error.message
    if error.validator == "const":  # "'x' was expected" does not say what came
        message += f", got {error.instance!r}"
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + "...<truncated>"
    schema_path = "/".join(str(p) for p in error.absolute_schema_path)
    return (
        f"{reference} violation in {what} at {error.json_path}: {message} "
        f"(validator {error.validator!r}, schema path {schema_path})"
    )


def normalise(path: str) -> str:
    path = path.split("?", 1)[0]
    if path.startswith("/v1/"):
        path = path[3:]
    return path.rstrip("/") or "/"


_PARAM = re.compile(r"\{[^}]+\}")


class Templates:
    """Maps a request path to one of a fixed set of path templates (with the methods each has).

    Accepts the exact template (``/threads/{thread_id}``), a template with other parameter names
    (``/vector_stores/{vs}/files``), or a concrete path (``/v1/threads/thread_abc``); a leading
    ``/v1`` and a query are ignored. A concrete path prefers the template with the most literal
    segments that has the method (``POST /threads/runs`` is not ``POST /threads/{thread_id}``).
    """

    def __init__(self, methods: Mapping[str, Collection[str]], where: str) -> None:
        self._methods = methods
        self._where = where
        self._shapes = {_PARAM.sub("{}", t): t for t in methods}
        patterns = []
        for template in methods:
            segments = template.strip("/").split("/")
            regex = "/".join(r"[^/]+" if _PARAM.fullmatch(seg) else re.escape(seg) for seg in segments)
            literal = sum(1 for seg in segments if not seg.startswith("{"))
            patterns.append((literal, re.compile(rf"/{regex}"), template))
        patterns.sort(key=lambda item: -item[0])
        self._patterns = patterns
        self._cache: dict[tuple[str, str], str] = {}

    def resolve(self, method: str, path: str) -> str:
        key = (method, path)
        if key not in self._cache:
            self._cache[key] = self._resolve(method, path)
        return self._cache[key]

    def _resolve(self, method: str, path: str) -> str:
        path = normalise(path)
        if path in self._methods:
            return path
        shape = _PARAM.sub("{}", path)
        if shape in self._shapes:
            return self._shapes[shape]
        candidates = [t for _, rx, t in self._patterns if rx.fullmatch(path)]
        for template in candidates:
            if method in self._methods[template]:
                return template
        if candidates:
            return candidates[0]
        raise AssertionError(f"no path in {self._where} matches {path!r}")
