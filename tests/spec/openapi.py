"""The OpenAPI reference: validate JSON bodies against the official spec
(``shared/openapi/assistants-v2.yaml``).

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

Compiled validators are cached per instance, so calling these thousands of times is cheap.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.spec.common import Templates, check

# The whole preprocessed document is registered under this URI; every
# validator is a one-line ``{"$ref": "<URI>#<pointer>"}`` into it, so the
# spec's own ``#/components/schemas/...`` refs resolve inside the document.
_BASE_URI = "urn:assistd:openapi:assistants-v2"

_COMPOUND_FILTER_REF = "#/components/schemas/CompoundFilter"

# Keys whose values are data, not schemas. Never rewrite inside them.
_DATA_KEYS = frozenset({"example", "examples", "default", "enum", "const", "x-oaiMeta"})

# Paths whose 200 body is not JSON (the spec says "string"; really raw bytes).
_RAW_BODY_PATHS = frozenset({"/files/{file_id}/content"})

_REFERENCE = "spec"


# --------------------------------------------------------------------------- #
# Preprocessing
# --------------------------------------------------------------------------- #


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


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def load(path: Path) -> dict[str, Any]:
    """The preprocessed spec document at ``path``."""
    with path.open(encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    components = doc.get("components", {})
    for section in ("schemas", "responses"):
        if section in components:
            components[section] = _fix_schema_tree(components[section])
    # Inline response/request schemas under paths (e.g. the `type: string`
    # of /files/{file_id}/content) go through the same rewrite.
    doc["paths"] = _fix_schema_tree(doc.get("paths", {}))
    _nullable_list_ids(components.get("schemas", {}))
    return doc


# --------------------------------------------------------------------------- #
# The reference
# --------------------------------------------------------------------------- #


class OpenAPISpec:
    """Validates against the spec file at ``path`` (read on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"the OpenAPI spec at {path}"
        self._validators: dict[str, Draft202012Validator] = {}
        self._responses: dict[tuple[str, str, int], tuple[str, str] | None] = {}

    @functools.cached_property
    def spec(self) -> dict[str, Any]:
        """The preprocessed spec document (do not mutate)."""
        return load(self.path)

    @functools.cached_property
    def raw(self) -> dict[str, Any]:
        """The document as written (for tests of the preprocessing)."""
        with self.path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)

    @functools.cached_property
    def _registry(self) -> Registry:
        resource = Resource.from_contents(self.spec, default_specification=DRAFT202012)
        return Registry().with_resource(_BASE_URI, resource).crawl()

    @functools.cached_property
    def _templates(self) -> Templates:
        return Templates(self.spec["paths"], str(self.path))

    def validator(self, pointer: str) -> Draft202012Validator:
        """The compiled validator of the schema at ``pointer`` (compiled once)."""
        if pointer not in self._validators:
            # No format_checker: `format: unixtime` etc. are annotations only.
            self._validators[pointer] = Draft202012Validator(
                {"$ref": f"{_BASE_URI}#{pointer}"}, registry=self._registry
            )
        return self._validators[pointer]

    def _check(self, pointer: str, instance: Any, what: str) -> None:
        check(self.validator(pointer), instance, what, _REFERENCE)

    # -- components --------------------------------------------------------------------------

    def _component_pointer(self, component: str) -> str:
        if component not in self.spec["components"]["schemas"]:
            raise AssertionError(f"unknown component schema {component!r} in {self.path}")
        return f"/components/schemas/{_escape(component)}"

    def validate(self, component: str, instance: Any) -> None:
        """Validate ``instance`` against ``#/components/schemas/<component>``."""
        self._check(self._component_pointer(component), instance, component)

    # -- responses ---------------------------------------------------------------------------

    def _response_pointer(self, method: str, path_template: str, status: int) -> tuple[str, str] | None:
        key = (method, path_template, status)
        if key not in self._responses:
            self._responses[key] = self._find_response(method, path_template, status)
        return self._responses[key]

    def _find_response(self, method: str, path_template: str, status: int) -> tuple[str, str] | None:
        """(JSON pointer of the response schema, label for messages); None means skip."""
        template = self._templates.resolve(method, path_template)
        if template in _RAW_BODY_PATHS and status < 400:
            return None
        label = f"{method.upper()} {template} -> {status}"
        if status >= 400:
            return self._component_pointer("ErrorResponse"), f"{label} (ErrorResponse)"
        operation = self.spec["paths"][template].get(method)
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
            response = self.spec
            for token in ref[2:].split("/"):
                response = response[token.replace("~1", "/").replace("~0", "~")]
        media = response.get("content", {}).get("application/json")
        if not isinstance(media, dict) or "schema" not in media:
            raise AssertionError(f"the spec has no application/json schema for {status} of {method.upper()} {template}")
        schema = media["schema"]
        if isinstance(schema, dict) and str(schema.get("$ref", "")).startswith("#/components/schemas/"):
            label += f" ({schema['$ref'].rsplit('/', 1)[-1]})"
        return f"{pointer}/content/application~1json/schema", label

    def validate_response(self, method: str, path_template: str, status: int, body: Any) -> None:
        """Validate a JSON response ``body`` for ``method path_template`` with ``status``.

        ``status >= 400`` bodies are validated against ``ErrorResponse``.
        ``/files/{file_id}/content`` (raw bytes) is skipped.
        """
        found = self._response_pointer(method.lower(), path_template, int(status))
        if found is None:
            return
        pointer, what = found
        self._check(pointer, body, what)

    # -- stream events -----------------------------------------------------------------------

    @functools.cached_property
    def _event_data_pointers(self) -> dict[str, str]:
        """event name -> pointer of its ``data`` schema, from ``AssistantStreamEvent``."""
        schemas = self.spec["components"]["schemas"]
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

    def event_names(self) -> frozenset[str]:
        """Every SSE event name the spec defines (25)."""
        return frozenset(self._event_data_pointers)

    def validate_event(self, event: str, data: Any, *, wrapped_error: bool | None = None) -> None:
        """Validate the parsed ``data`` of SSE event ``event`` (see tests/spec/__init__.py)."""
        pointers = self._event_data_pointers
        if event not in pointers:
            raise AssertionError(f"unknown stream event {event!r}; the spec defines {sorted(pointers)}")
        what = f"stream event {event!r}"
        if event == "error":
            if wrapped_error is None:
                wrapped_error = isinstance(data, dict) and set(data) == {"error"}
            if wrapped_error:
                self._check(self._component_pointer("ErrorResponse"), data, what + " (wrapped)")
                return
        self._check(pointers[event], data, what)
