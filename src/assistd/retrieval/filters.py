"""Attribute filters (ComparisonFilter / CompoundFilter) compiled to SQL on the files' ``attributes``.

Both dialects compare typed JSON values: a string only equals or orders against a string, a
number against a number, a boolean against a boolean (``eq``/``ne`` only). A file without the key
matches nothing but ``ne`` and ``nin`` (its value is not equal to / not in the given ones).

SQLite: ``json_type`` / ``json_extract`` with the key as a bound JSON path. PostgreSQL (JSONB):
``jsonb_typeof`` and ``->>`` with a ``CASE`` guarding the numeric cast (PostgreSQL does not
promise to evaluate ``AND`` left to right, so an unguarded cast could fail on a string).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ColumnElement, Numeric, String, and_, case, cast, false, func, literal, not_, or_, true
from sqlalchemy.dialects.postgresql import JSONB

from assistd.errors import InvalidRequestError

_ORDER_OPS = {"gt", "gte", "lt", "lte"}


def check_filter(f: Any, param: str = "filters") -> None:
    """400 for value types an operator cannot take (raised before any SQL is built)."""
    if f.type in ("and", "or"):
        for i, sub in enumerate(f.filters):
            check_filter(sub, f"{param}.filters[{i}]")
        return
    if f.type in ("in", "nin"):
        if not isinstance(f.value, list):
            raise InvalidRequestError(
                f"Invalid '{param}.value': expected an array for the '{f.type}' operator.",
                param=f"{param}.value",
                code="invalid_type",
            )
        return
    if isinstance(f.value, list):
        raise InvalidRequestError(
            f"Invalid '{param}.value': an array is only allowed with the 'in' and 'nin' operators.",
            param=f"{param}.value",
            code="invalid_type",
        )
    if f.type in _ORDER_OPS and isinstance(f.value, bool):
        raise InvalidRequestError(
            f"Invalid '{param}.value': the '{f.type}' operator compares numbers or strings, not booleans.",
            param=f"{param}.value",
            code="invalid_type",
        )


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"


def _cmp(left: Any, op: str, right: Any) -> ColumnElement[bool]:
    if op == "eq":
        return left == right  # type: ignore[no-any-return]
    if op == "gt":
        return left > right  # type: ignore[no-any-return]
    if op == "gte":
        return left >= right  # type: ignore[no-any-return]
    if op == "lt":
        return left < right  # type: ignore[no-any-return]
    return left <= right  # type: ignore[no-any-return]


class _SQLite:
    def __init__(self, col: Any) -> None:
        self.col = col

    def compare(self, key: str, op: str, value: Any) -> ColumnElement[bool]:
        path = literal('$."' + key + '"', String)
        jtype = func.json_type(self.col, path)
        extracted = func.json_extract(self.col, path)
        kind = _kind(value)
        if kind == "boolean":
            return jtype == ("true" if value else "false")
        if kind == "number":
            if isinstance(value, int) and not -(2**63) <= value < 2**63:
                value = float(value)  # SQLite binds 64-bit integers; JSON numbers beyond compare as reals
            return and_(jtype.in_(["integer", "real"]), _cmp(extracted, op, literal(value)))
        return and_(jtype == "text", _cmp(extracted, op, literal(value, String)))


class _Postgres:
    def __init__(self, col: Any) -> None:
        self.col = col

    def compare(self, key: str, op: str, value: Any) -> ColumnElement[bool]:
        node = self.col.op("->")(literal(key, String))
        jtype = func.jsonb_typeof(node)
        text = self.col.op("->>")(literal(key, String))
        kind = _kind(value)
        if kind == "boolean":
            return node == cast(literal("true" if value else "false"), JSONB)  # type: ignore[no-any-return]
        if kind == "number":
            num = case((jtype == "number", cast(text, Numeric)), else_=None)
            return _cmp(num, op, literal(value, Numeric))
        return and_(jtype == "string", _cmp(text, op, literal(value, String)))


def compile_filter(f: Any, col: Any, dialect: str) -> ColumnElement[bool]:
    """The filter as a SQL condition on the JSON column ``col``."""
    d: _SQLite | _Postgres = _SQLite(col) if dialect == "sqlite" else _Postgres(col)
    return _compile(f, d)


def _compile(f: Any, d: _SQLite | _Postgres) -> ColumnElement[bool]:
    if f.type in ("and", "or"):
        parts = [_compile(sub, d) for sub in f.filters]
        if not parts:
            return true() if f.type == "and" else false()
        return and_(*parts) if f.type == "and" else or_(*parts)
    if f.type == "eq":
        return d.compare(f.key, "eq", f.value)
    if f.type == "ne":
        return not_(func.coalesce(d.compare(f.key, "eq", f.value), False, type_=Boolean))
    if f.type in _ORDER_OPS:
        return d.compare(f.key, f.type, f.value)
    anyof = or_(*[d.compare(f.key, "eq", v) for v in f.value]) if f.value else false()
    if f.type == "in":
        return anyof
    return not_(func.coalesce(anyof, False, type_=Boolean))
