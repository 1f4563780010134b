"""Compare the SDK reference with the spec (where the spec is present, as in CI).

The SDK reference (tests/spec/sdk.py) requires every field the ``openai`` types declare except
those in its ``OPTIONAL`` table. :func:`optional_fields` walks each mapped SDK type beside the
spec's component and collects the fields the spec does not require (or does not have), so a test
can assert the table is exactly that: neither weaker nor stricter than the spec, and kept so when
either is upgraded. :func:`spec_only_fields` lists fields the spec has and the SDK type lacks
(the strict reference would reject them).
"""

from __future__ import annotations

import types
import typing
from collections import defaultdict
from typing import Any

import pydantic

from tests.spec import sdk

Node = dict[str, Any]


class _Walk:
    def __init__(self, schemas: dict[str, Node]) -> None:
        self.schemas = schemas
        self.optional: dict[str, set[str]] = defaultdict(set)
        self.spec_only: set[tuple[str, str]] = set()
        self.unmatched: list[str] = []
        self._seen: set[tuple[type, int]] = set()

    def resolve(self, node: Node) -> Node:
        """Follow ``$ref``; merge an ``allOf`` into one object (or its one union member)."""
        while "$ref" in node or "$recursiveRef" in node:
            # The spec's one $recursiveRef is CompoundFilter's (its filters may nest).
            name = node["$ref"].rsplit("/", 1)[-1] if "$ref" in node else "CompoundFilter"
            node = self.schemas[name]
        if "allOf" not in node:
            return node
        merged: Node = {k: v for k, v in node.items() if k != "allOf"}
        properties = dict(merged.get("properties", {}))
        required = list(merged.get("required", []))
        unions = []
        for member in node["allOf"]:
            member = self.resolve(member)
            if "properties" in member:
                properties.update(member["properties"])
                required += member.get("required", [])
            elif "anyOf" in member or "oneOf" in member:
                unions.append(member)
        if properties:
            return {**merged, "properties": properties, "required": required}
        return unions[0] if unions else merged

    def variants(self, node: Node) -> list[Node]:
        node = self.resolve(node)
        members = node.get("anyOf", node.get("oneOf"))
        if members is None:
            return [node]
        return [v for member in members for v in self.variants(member)]

    def walk(self, tp: Any, node: Node, where: str) -> None:
        for option in _options(tp):
            candidates = self.variants(node)
            if typing.get_origin(option) is list:
                for candidate in candidates:
                    if candidate.get("type") == "array":
                        self.walk(typing.get_args(option)[0], candidate["items"], where + "[]")
                continue
            if isinstance(option, type) and issubclass(option, pydantic.BaseModel):
                self.model(option, [c for c in candidates if "properties" in c], where)

    def model(self, cls: type[pydantic.BaseModel], objects: list[Node], where: str) -> None:
        objects = [o for o in objects if _discriminated(cls, o) is not False]
        if len(objects) != 1:
            self.unmatched.append(f"{where}: {sdk.qualified(cls)} matches {len(objects)} spec schemas")
            return
        (obj,) = objects
        if (cls, id(obj)) in self._seen:
            return
        self._seen.add((cls, id(obj)))
        properties: dict[str, Node] = obj["properties"]
        required = set(obj.get("required", ()))
        names = set()
        for name, field in cls.model_fields.items():
            wire = field.alias or name
            names.add(wire)
            if wire not in required and cls not in sdk.SPARSE:
                self.optional[sdk.qualified(cls)].add(wire)
            if wire in properties:
                self.walk(field.annotation, properties[wire], f"{where}.{wire}")
        self.spec_only |= {(sdk.qualified(cls), p) for p in properties if p not in names}


def _options(tp: Any) -> list[Any]:
    """The non-null alternatives of ``tp`` (``Annotated`` and unions unwrapped)."""
    if typing.get_origin(tp) is typing.Annotated:
        return _options(typing.get_args(tp)[0])
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [o for arg in typing.get_args(tp) if arg is not type(None) for o in _options(arg)]
    return [tp]


def _discriminated(cls: type[pydantic.BaseModel], obj: Node) -> bool | None:
    """Whether the spec object ``obj`` has the same ``type`` (or ``object``) literal as ``cls``;
    None if either does not say."""
    for key in ("type", "object"):
        field = cls.model_fields.get(key)
        prop = obj["properties"].get(key, {})
        values = set(prop.get("enum", ())) | ({prop["const"]} if "const" in prop else set())
        if field is not None and typing.get_origin(field.annotation) is typing.Literal and values:
            return bool(values & set(typing.get_args(field.annotation)))
    return None


def _walked(raw_spec: Node) -> _Walk:
    schemas = raw_spec["components"]["schemas"]
    walk = _Walk(schemas)
    for component, tp in sdk.COMPONENTS.items():
        walk.walk(tp, schemas[component], component)
    return walk


def optional_fields(raw_spec: Node) -> dict[str, frozenset[str]]:
    """SDK class -> the fields it declares that the spec does not require, outside deltas."""
    walk = _walked(raw_spec)
    if walk.unmatched:
        raise AssertionError("SDK types without a spec schema: " + "; ".join(walk.unmatched))
    return {cls: frozenset(fields) for cls, fields in walk.optional.items()}


def spec_only_fields(raw_spec: Node) -> set[tuple[str, str]]:
    """(SDK class, field) for every field the spec has and the SDK type does not declare."""
    return _walked(raw_spec).spec_only
