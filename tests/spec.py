"""Validate JSON bodies against the OpenAPI spec in ``shared/openapi/assistants-v2.yaml``.

The YAML is loaded and preprocessed once per process. Preprocessing works on a
deep copy and fixes the quirks listed in CONTRACT.md §12 and §9:

1. OpenAPI-3.0 ``nullable: true`` (which a 2020-12 validator ignores) becomes
   ``{"anyOf": [<node without nullable>, {"type": "null"}]}``. The spec's
   ``allOf: [{$ref: X}, {nullable: true}]`` idiom (``Upload.file``,
   ``RunObject.truncation_strategy`` / ``tool_choice``, ...) makes the *parent*
   node nullable, because an ``allOf`` member alone cannot admit ``null``.
2. ``CompoundFilter``'s ``$recursiveAnchor`` is dropped and ``$recursiveRef: "#"``
   becomes ``$ref: "#/components/schemas/CompoundFilter"``.
3. In every ``List*Response`` (any component schema with ``first_id`` and
   ``last_id`` properties), ``first_id`` / ``last_id`` also allow ``null``
   (CONTRACT §9: they are null on an empty page).
4. ``format`` (``unixtime`` etc.) is not checked: no format checker is used.
5. Schemas with ``properties`` but no ``type`` (``OpenAIFile`` and four
   ``List*Response`` schemas) get ``type: object``; otherwise a string or a
   list would pass them (``Upload.file: "file-abc"`` was accepted).

Public API::

    validate(component, instance)                          # -> None or AssertionError
    validate_response(method, path_template, status, body) # -> None or AssertionError
    validate_event(event, data)                             # -> None or AssertionError

Compiled validators are cached, so calling these thousands of times is cheap.
"""

from __future__ import annotations

import copy
import functools
import os
import re
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = [
    "SPEC_PATH",
    "event_names",
    "spec",
    "validate",
    "validate_event",
    "validate_response",
]

_REPO = Path(__file__).resolve().parent.parent
SPEC_PATH = Path(os.environ.get("ASSISTD_SPEC", _REPO / ".." / "shared" / "openapi" / "assistants-v2.yaml"))

# The whole preprocessed document is registered under this URI; every
# validator is a one-line ``{"$ref": "<URI>#<pointer>"}`` into it, so the
# spec's own ``#/components/schemas/...`` refs resolve inside the document.
_BASE_URI = "urn:assistd:openapi:assistants-v2"

_COMPOUND_FILTER_REF = "#/components/schemas/CompoundFilter"

# Keys whose values are data, not schemas. Never rewrite inside them.
_DATA_KEYS = frozenset({"example", "examples", "default", "enum", "const", "x-oaiMeta"})

# Paths whose 200 body is not JSON (the spec says "string"; really raw bytes).
_RAW_BODY_PATHS = frozenset({"/files/{file_id}/content"})

_MAX_MESSAGE = 1500


# --------------------------------------------------------------------------- #
# Loading and preprocessing
# --------------------------------------------------------------------------- #


@functools.cache
def _raw_spec() -> dict[str, Any]:
    with SPEC_PATH.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _null_wrap(node: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [node, {"type": "null"}]}


def _fix_schema_tree(node: Any) -> Any:
    """Return a rewritten copy of ``node`` (quirks 1, 2 and 5), recursively."""
    if isinstance(node, list):
        return [_fix_schema_tree(item) for item in node]
    if not isinstance(node, dict):
        return node

    node = dict(node)
    nullable = bool(node.pop("nullable", False))

    # allOf: [{$ref: X}, {nullable: true}] -> the parent is nullable.
    if isinstance(node.get("allOf"), list):
        members = []
        for member in node["allOf"]:
            if isinstance(member, dict) and "nullable" in member:
                nullable = nullable or bool(member.get("nullable"))
                member = {k: v for k, v in member.items() if k != "nullable"}
                # Drop members left with nothing but annotations.
                if not set(member) - {
                    "description",
                    "title",
                    "default",
                    "example",
                    "deprecated",
                }:
                    continue
            members.append(member)
        if members:
            node["allOf"] = members
        else:
            del node["allOf"]

    # `properties` without `type` (OpenAIFile, List{Messages,RunSteps,
    # VectorStores,VectorStoreFiles}Response) would accept any non-object.
    if isinstance(node.get("properties"), dict) and "type" not in node:
        node["type"] = "object"

    # draft 2019-09 recursion -> plain self-reference.
    node.pop("$recursiveAnchor", None)
    if node.get("$recursiveRef") == "#":
        del node["$recursiveRef"]
        node["$ref"] = _COMPOUND_FILTER_REF

    out: dict[str, Any] = {}
    for key, value in node.items():
        out[key] = value if key in _DATA_KEYS else _fix_schema_tree(value)
    return _null_wrap(out) if nullable else out


def _nullable_list_ids(schemas: dict[str, Any]) -> None:
    for schema in schemas.values():
        props = schema.get("properties") if isinstance(schema, dict) else None
        if not isinstance(props, dict) or "first_id" not in props or "last_id" not in props:
            continue
        for key in ("first_id", "last_id"):
            prop = props[key]
            already = prop.get("type") == "null" or any(
                isinstance(m, dict) and m.get("type") == "null" for m in prop.get("anyOf", ())
            )
            if not already:
                props[key] = _null_wrap(prop)


@functools.cache
def spec() -> dict[str, Any]:
    """The preprocessed spec document (do not mutate)."""
    doc = copy.deepcopy(_raw_spec())
    components = doc.get("components", {})
    for section in ("schemas", "responses"):
        if section in components:
            components[section] = _fix_schema_tree(components[section])
    # Inline response/request schemas under paths (e.g. the `type: string`
    # of /files/{file_id}/content) go through the same rewrite.
    doc["paths"] = _fix_schema_tree(doc.get("paths", {}))
    _nullable_list_ids(components.get("schemas", {}))
    return doc


@functools.cache
def _registry() -> Registry:
    resource = Resource.from_contents(spec(), default_specification=DRAFT202012)
    return Registry().with_resource(_BASE_URI, resource).crawl()


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


@functools.cache
def _validator_for_pointer(pointer: str) -> Draft202012Validator:
    # No format_checker: `format: unixtime` etc. are annotations only.
    return Draft202012Validator({"$ref": f"{_BASE_URI}#{pointer}"}, registry=_registry())


def _check(validator: Draft202012Validator, instance: Any, what: str) -> None:
    if validator.is_valid(instance):
        return
    error = best_match(validator.iter_errors(instance))
    raise AssertionError(_describe(error, what)) from None


def _describe(error: ValidationError | None, what: str) -> str:
    if error is None:  # pragma: no cover - is_valid said invalid
        return f"{what}: instance is invalid"
    message = error.message
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE] + "...<truncated>"
    schema_path = "/".join(str(p) for p in error.absolute_schema_path)
    return (
        f"spec violation in {what} at {error.json_path}: {message} "
        f"(validator {error.validator!r}, schema path {schema_path})"
    )


# --------------------------------------------------------------------------- #
# Components
# --------------------------------------------------------------------------- #


def _component_pointer(component: str) -> str:
    schemas = spec()["components"]["schemas"]
    if component not in schemas:
        raise AssertionError(f"unknown component schema {component!r} in {SPEC_PATH}")
    return f"/components/schemas/{_escape(component)}"


def validate(component: str, instance: Any) -> None:
    """Validate ``instance`` against ``#/components/schemas/<component>``."""
    _check(_validator_for_pointer(_component_pointer(component)), instance, component)


# --------------------------------------------------------------------------- #
# Responses
# --------------------------------------------------------------------------- #


def _normalise(path: str) -> str:
    path = path.split("?", 1)[0]
    if path.startswith("/v1/"):
        path = path[3:]
    return path.rstrip("/") or "/"


@functools.cache
def _template_patterns() -> list[tuple[int, re.Pattern[str], str]]:
    """(literal-segment count, regex, template) for every spec path, most literal first."""
    patterns = []
    for template in spec()["paths"]:
        segments = template.strip("/").split("/")
        regex = "/".join(r"[^/]+" if re.fullmatch(r"\{[^}]+\}", seg) else re.escape(seg) for seg in segments)
        literal = sum(1 for seg in segments if not seg.startswith("{"))
        patterns.append((literal, re.compile(rf"/{regex}"), template))
    patterns.sort(key=lambda item: -item[0])
    return patterns


@functools.lru_cache(maxsize=8192)
def _resolve_template(method: str, path: str) -> str:
    """Map ``path`` to a spec path template.

    Accepts the exact template (``/threads/{thread_id}``), a template with
    other parameter names (``/vector_stores/{vs}/files``), or a concrete path
    (``/v1/threads/thread_abc``); a leading ``/v1`` and a query are ignored.
    """
    paths = spec()["paths"]
    path = _normalise(path)
    if path in paths:
        return path
    shape = re.sub(r"\{[^}]+\}", "{}", path)
    for template in paths:
        if re.sub(r"\{[^}]+\}", "{}", template) == shape:
            return template
    candidates = [t for _, rx, t in _template_patterns() if rx.fullmatch(path)]
    # Prefer a template that has the method (POST /threads/runs vs GET /threads/{id}).
    for template in candidates:
        if method in paths[template]:
            return template
    if candidates:
        return candidates[0]
    raise AssertionError(f"no path in the spec matches {path!r}")


@functools.lru_cache(maxsize=8192)
def _response_pointer(method: str, path_template: str, status: int) -> tuple[str, str] | None:
    """(JSON pointer of the response schema, label for messages); None means skip."""
    template = _resolve_template(method, path_template)
    if template in _RAW_BODY_PATHS and status < 400:
        return None
    label = f"{method.upper()} {template} -> {status}"
    if status >= 400:
        return _component_pointer("ErrorResponse"), f"{label} (ErrorResponse)"
    operation = spec()["paths"][template].get(method)
    if not isinstance(operation, dict):
        raise AssertionError(f"the spec has no operation {method.upper()} {template}")
    responses = operation.get("responses", {})
    response = responses.get(str(status))
    if response is None:
        raise AssertionError(
            f"the spec documents no {status} response for {method.upper()} {template} (documented: {sorted(responses)})"
        )
    pointer = f"/paths/{_escape(template)}/{method}/responses/{status}"
    seen = set()
    while "$ref" in response:  # e.g. #/components/responses/TooManyRequests
        ref = response["$ref"]
        if ref in seen or not ref.startswith("#/"):
            raise AssertionError(f"unresolvable response $ref {ref!r}")
        seen.add(ref)
        pointer = ref[1:]
        response = spec()
        for token in ref[2:].split("/"):
            response = response[token.replace("~1", "/").replace("~0", "~")]
    media = response.get("content", {}).get("application/json")
    if not isinstance(media, dict) or "schema" not in media:
        raise AssertionError(f"the spec has no application/json schema for {status} of {method.upper()} {template}")
    schema = media["schema"]
    if isinstance(schema, dict) and str(schema.get("$ref", "")).startswith("#/components/schemas/"):
        label += f" ({schema['$ref'].rsplit('/', 1)[-1]})"
    return f"{pointer}/content/application~1json/schema", label


def validate_response(method: str, path_template: str, status: int, body: Any) -> None:
    """Validate a JSON response ``body`` for ``method path_template`` with ``status``.

    ``status >= 400`` bodies are validated against ``ErrorResponse``.
    ``/files/{file_id}/content`` (raw bytes) is skipped.
    """
    found = _response_pointer(method.lower(), path_template, int(status))
    if found is None:
        return
    pointer, what = found
    _check(_validator_for_pointer(pointer), body, what)


# --------------------------------------------------------------------------- #
# Stream events
# --------------------------------------------------------------------------- #


@functools.cache
def _event_data_pointers() -> dict[str, str]:
    """event name -> pointer of its ``data`` schema, from ``AssistantStreamEvent``."""
    schemas = spec()["components"]["schemas"]
    out: dict[str, str] = {}

    def visit(node: dict[str, Any], pointer: str) -> None:
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            visit(schemas[name], f"/components/schemas/{_escape(name)}")
            return
        if "oneOf" in node:
            for i, member in enumerate(node["oneOf"]):
                visit(member, f"{pointer}/oneOf/{i}")
            return
        props = node.get("properties", {})
        for name in props.get("event", {}).get("enum", ()):
            out[name] = f"{pointer}/properties/data"

    visit(schemas["AssistantStreamEvent"], "/components/schemas/AssistantStreamEvent")
    return out


def event_names() -> frozenset[str]:
    """Every SSE event name the spec defines (25)."""
    return frozenset(_event_data_pointers())


def validate_event(event: str, data: Any, *, wrapped_error: bool | None = None) -> None:
    """Validate the parsed ``data`` of SSE event ``event``.

    ``done`` takes the raw string ``"[DONE]"``. For ``error`` the spec says the
    data is a bare ``Error``; CONTRACT §7 recommends the wrapped
    ``{"error": Error}`` form. ``wrapped_error=None`` (default) accepts either,
    ``False`` requires the bare spec shape, ``True`` requires the wrapped one.
    """
    pointers = _event_data_pointers()
    if event not in pointers:
        raise AssertionError(f"unknown stream event {event!r}; the spec defines {sorted(pointers)}")
    what = f"stream event {event!r}"
    if event == "error":
        if wrapped_error is None:
            wrapped_error = isinstance(data, dict) and set(data) == {"error"}
        if wrapped_error:
            _check(
                _validator_for_pointer(_component_pointer("ErrorResponse")),
                data,
                what + " (wrapped)",
            )
            return
    _check(_validator_for_pointer(pointers[event]), data, what)
