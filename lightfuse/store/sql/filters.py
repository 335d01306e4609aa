"""The structured ``filter`` query parameter (api-semantics 0.4) compiled to SQLAlchemy conditions.

The caller owns the column map: each public column name points at a SQL expression and a kind, so this module
knows nothing about traces or observations. Parsing validates the shape and the value types once; compiling
checks that the filter type suits the column and emits dialect-specific SQL for SQLite and Postgres.

Semantics worth knowing (they follow Langfuse's ClickHouse filters):

* string operators are case-sensitive substring tests, except ``matches`` (v2 only), which is a
  case-insensitive literal search on input/output and a case-sensitive one on metadata;
* a metadata key that is absent reads as ``""`` (like a ClickHouse Map), so ``does not contain`` and
  ``none of`` match rows without the key, while ``numberObject`` comparisons never do;
* NULL columns follow SQL: no comparison matches them, only ``is null``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    ARRAY,
    Float,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

__all__ = [
    "Condition",
    "FilterColumn",
    "QueryError",
    "columns_used",
    "compare",
    "compile_filters",
    "json_key_sum",
    "json_number",
    "json_text",
    "parse_filter",
    "parse_filter_time",
]

STRING_OPS = ("=", "contains", "does not contain", "starts with", "ends with", "matches")
NUMBER_OPS = ("=", ">", "<", ">=", "<=")
OPERATORS: dict[str, tuple[str, ...]] = {
    "datetime": (">", "<", ">=", "<="),
    "string": STRING_OPS,
    "number": NUMBER_OPS,
    "stringOptions": ("any of", "none of"),
    "categoryOptions": ("any of", "none of"),
    "arrayOptions": ("any of", "none of", "all of"),
    "stringObject": STRING_OPS,
    "numberObject": NUMBER_OPS,
    "booleanObject": ("=", "<>"),
    "boolean": ("=", "<>"),
    "null": ("is null", "is not null"),
}
# Filter types a column of each kind accepts; "custom" columns list theirs explicitly.
KIND_TYPES: dict[str, tuple[str, ...]] = {
    "string": ("string", "stringOptions", "null"),
    "datetime": ("datetime", "null"),
    "number": ("number", "null"),
    "boolean": ("boolean", "null"),
    "array": ("arrayOptions",),
    "object": ("stringObject", "numberObject", "booleanObject", "categoryOptions", "null"),
}
_KEYED_TYPES = ("stringObject", "numberObject", "booleanObject", "categoryOptions")
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": lambda a, b: a == b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
}
# A JSON string that Postgres can cast to float8 without raising (the cast is guarded by this test).
_PG_NUMERIC_TEXT = r"^\s*[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"


class QueryError(ValueError):
    """A read request the client got wrong; the API answers 400 with this message."""


@dataclass(frozen=True)
class Condition:
    column: str
    type: str
    operator: str
    value: Any = None
    key: str | None = None


@dataclass(frozen=True)
class FilterColumn:
    """One filterable column. ``expr`` is the SQL expression; ``custom`` compiles conditions itself.

    ``group`` is an opaque tag the caller uses to learn which joins the used columns need.
    """

    name: str
    kind: str
    expr: Any = None
    group: str | None = None
    types: tuple[str, ...] | None = None
    custom: Callable[[Condition, str], ColumnElement] | None = None
    # "matches" is a v2-only operator; where allowed, False means the search is case-sensitive.
    matches: bool = False
    matches_case_insensitive: bool = True

    @property
    def accepted_types(self) -> tuple[str, ...]:
        return self.types if self.types is not None else KIND_TYPES.get(self.kind, ())


# --- parsing ------------------------------------------------------------------------------------------------


def parse_filter_time(value: Any, what: str = "datetime filter value") -> int:
    """ISO-8601 with a timezone (or epoch ms) -> epoch ms. Naive times are refused, as everywhere else."""
    if isinstance(value, bool):
        raise QueryError(f"Invalid {what}: {value!r}")
    if isinstance(value, (int, float)) and math.isfinite(value):
        return int(value)
    if not isinstance(value, str) or not value.strip():
        raise QueryError(f"Invalid {what}: {value!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python wants at most 6 fractional digits; any precision is accepted on the wire.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(f"Invalid {what}: {value!r} is not an ISO-8601 timestamp") from None
    if parsed.tzinfo is None:
        raise QueryError(f"Invalid {what}: {value!r} must include a timezone (e.g. Z or +00:00)")
    return int(parsed.timestamp() * 1000)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise QueryError(f"{where}: value must be a number")
    if isinstance(value, (int, float)) and math.isfinite(value):
        return value
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(parsed):
                return parsed
    raise QueryError(f"{where}: value must be a number")


def _string_list(value: Any, where: str, allow_empty: bool) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise QueryError(f"{where}: value must be an array of strings")
    if not value and not allow_empty:
        raise QueryError(f"{where}: value must not be empty")
    return list(value)


def _check_value(cond: Condition) -> Condition:
    """Validate and normalise the value for the condition's type (datetimes become epoch ms)."""
    where = f"Invalid filter on column '{cond.column}' ({cond.type} {cond.operator})"
    t, value = cond.type, cond.value
    if t in _KEYED_TYPES and (not isinstance(cond.key, str) or cond.key == ""):
        raise QueryError(f"{where}: 'key' is required")
    if t == "datetime":
        value = parse_filter_time(value, f"datetime value for column '{cond.column}'")
    elif t in ("string", "stringObject"):
        if not isinstance(value, str):
            raise QueryError(f"{where}: value must be a string")
    elif t in ("number", "numberObject"):
        value = _number(value, where)
    elif t == "stringOptions":
        value = _string_list(value, where, allow_empty=False)
    elif t == "categoryOptions":
        value = _string_list(value, where, allow_empty=True)
    elif t == "arrayOptions":
        value = _string_list(value, where, allow_empty=cond.operator in ("all of", "none of"))
    elif t in ("boolean", "booleanObject"):
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise QueryError(f"{where}: value must be a boolean")
    elif t == "null":
        value = None
    return Condition(cond.column, t, cond.operator, value, cond.key)


def filter_items(raw: str | None) -> list[dict[str, Any]]:
    """The ``filter`` query parameter's JSON -> its condition objects, each with the field types checked.

    Every filter parser (this module's and the score routes') starts here, so a condition whose ``column``,
    ``type`` or ``operator`` is not a string, or whose ``key`` is neither a string nor null, is a QueryError
    (400) before any lookup: a list as ``type`` used to reach a dict membership test and raise (a 500).
    Text holding a NUL character is refused too: Postgres cannot bind it, SQLite would compare it silently.
    """
    if raw is None or not raw.strip():
        return []
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise QueryError("Invalid JSON in filter parameter") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise QueryError("Invalid filter parameter: expected a JSON array of filter conditions")
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise QueryError(f"Invalid filter condition at index {i}: expected an object")
        for name in ("column", "type", "operator"):
            if not isinstance(item.get(name), str) or not item[name]:
                raise QueryError(
                    f"Invalid filter condition at index {i}: '{name}' must be a non-empty string"
                )
        if item.get("key") is not None and not isinstance(item["key"], str):
            raise QueryError(f"Invalid filter condition at index {i}: 'key' must be a string")
        for name in ("column", "key", "value"):
            if _has_nul(item.get(name)):
                raise QueryError(
                    f"Invalid filter condition at index {i}: '{name}' must not contain NUL characters"
                )
    return data


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    return isinstance(value, list) and any(isinstance(v, str) and "\x00" in v for v in value)


def parse_filter(raw: str | None) -> list[Condition]:
    """The ``filter`` query parameter -> validated conditions. Empty/absent means no conditions."""
    out: list[Condition] = []
    for item in filter_items(raw):
        column, ftype, operator = item["column"], item["type"], item["operator"]
        if ftype not in OPERATORS:
            raise QueryError(
                f"Invalid filter type {ftype!r} for column '{column}'. Allowed types: {', '.join(OPERATORS)}"
            )
        if operator not in OPERATORS[ftype]:
            raise QueryError(
                f"Invalid operator {operator!r} for {ftype} filter on column '{column}'. "
                f"Allowed operators: {', '.join(OPERATORS[ftype])}"
            )
        if ftype != "null" and "value" not in item:
            raise QueryError(f"Invalid filter condition on column '{column}': 'value' is required")
        out.append(_check_value(Condition(column, ftype, operator, item.get("value"), item.get("key"))))
    return out


# --- column resolution --------------------------------------------------------------------------------------


def _loose(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _resolve(cond: Condition, columns: dict[str, FilterColumn]) -> FilterColumn:
    spec = columns.get(cond.column)
    if spec is None:
        # Langfuse's UI sends display names ("Timestamp", "User ID"); accept any spelling of a known name.
        wanted = _loose(cond.column)
        spec = next((c for n, c in columns.items() if _loose(n) == wanted), None)
    if spec is None:
        raise QueryError(
            f"Invalid filter column '{cond.column}'. Allowed columns: {', '.join(sorted(columns))}"
        )
    if cond.type not in spec.accepted_types:
        raise QueryError(
            f"Filter type '{cond.type}' is not supported on column '{cond.column}'. "
            f"Supported types: {', '.join(spec.accepted_types)}"
        )
    if cond.operator == "matches" and not spec.matches:
        raise QueryError(f"Operator 'matches' is not supported on column '{cond.column}'")
    if cond.type == "null" and spec.kind == "object" and not cond.key:
        raise QueryError(f"Invalid filter on column '{cond.column}' (null): 'key' is required")
    return spec


def columns_used(
    simple: Sequence[Condition], advanced: Sequence[Condition], columns: dict[str, FilterColumn]
) -> list[tuple[FilterColumn, Condition]]:
    """Resolve both lists; a simple parameter is dropped when the advanced filter targets the same column."""
    adv = [(_resolve(c, columns), c) for c in advanced]
    taken = {spec.name for spec, _ in adv}
    simp = [(_resolve(c, columns), c) for c in simple]
    return [x for x in simp if x[0].name not in taken] + adv


def compile_filters(resolved: Iterable[tuple[FilterColumn, Condition]], dialect: str) -> list[ColumnElement]:
    return [_compile(spec, cond, dialect) for spec, cond in resolved]


def compare(op: str, left: Any, right: Any) -> ColumnElement:
    """A number/datetime comparison operator of the filter language applied to two SQL operands."""
    return _COMPARE[op](left, right)


# --- compilation --------------------------------------------------------------------------------------------


def _compile(spec: FilterColumn, cond: Condition, dialect: str) -> ColumnElement:
    if spec.custom is not None:
        return spec.custom(cond, dialect)
    e = spec.expr
    t, op, v = cond.type, cond.operator, cond.value
    if spec.kind == "object":
        return _object_condition(e, cond, dialect, spec.matches_case_insensitive)
    if t == "null":
        if spec.kind == "string":
            # '' and NULL are the same "no value" in Langfuse's string columns
            empty = or_(e.is_(None), e == "")
            return empty if op == "is null" else not_(empty)
        return e.is_(None) if op == "is null" else e.is_not(None)
    if t in ("datetime", "number"):
        return _COMPARE[op](e, v)
    if t == "string":
        return string_condition(e, op, v, dialect, spec.matches_case_insensitive)
    if t == "stringOptions":
        return e.in_(v) if op == "any of" else e.not_in(v)
    if t == "boolean":
        return e == v if op == "=" else e != v
    if t == "arrayOptions":
        return array_condition(e, op, v, dialect)
    raise QueryError(f"Filter type '{t}' is not supported on column '{cond.column}'")  # pragma: no cover


def _position(haystack: Any, needle: Any, dialect: str) -> ColumnElement:
    return func.strpos(haystack, needle) if dialect == "postgresql" else func.instr(haystack, needle)


def string_condition(e: Any, op: str, v: str, dialect: str, matches_ci: bool = True) -> ColumnElement:
    """Case-sensitive string operators; LIKE is avoided because SQLite's LIKE ignores case."""
    if op == "=":
        return e == v
    if op == "contains":
        return _position(e, v, dialect) > 0
    if op == "does not contain":
        return _position(e, v, dialect) == 0
    if op == "starts with":
        return func.substr(e, 1, len(v)) == v
    if op == "ends with":
        if not v:
            return e.is_not(None)
        if dialect == "postgresql":
            return func.right(e, len(v)) == v
        return func.substr(e, -len(v)) == v
    if op == "matches":
        if matches_ci:
            return _position(func.lower(e), v.lower(), dialect) > 0
        return _position(e, v, dialect) > 0
    raise QueryError(f"Unsupported string operator '{op}'")  # pragma: no cover


def array_condition(e: Any, op: str, values: list[str], dialect: str) -> ColumnElement:
    """any of / all of / none of against a JSON array of strings (trace tags)."""
    wanted = sorted(set(values))
    if not wanted:
        # "all of []" and "none of []" hold for every row; "any of []" was refused while parsing
        return true() if op in ("all of", "none of") else false()
    if dialect == "postgresql":
        arr = cast(postgresql.array(wanted), ARRAY(Text))
        doc = type_coerce(e, JSONB)
        if op == "any of":
            return doc.has_any(arr)
        if op == "all of":
            return doc.has_all(arr)
        return not_(doc.has_any(arr))
    items = func.json_each(e).table_valued("value").alias("tag_items")
    if op == "all of":
        found = (
            select(func.count(func.distinct(items.c.value)))
            .select_from(items)
            .where(items.c.value.in_(wanted))
            .scalar_subquery()
        )
        return found == len(wanted)
    hit = select(literal(1)).select_from(items).where(items.c.value.in_(wanted)).exists()
    return hit if op == "any of" else not_(hit)


# --- JSON object (metadata) access ----------------------------------------------------------------------------


def _sqlite_members(e: Any):
    """json_each(e) as a table. Members are looked up by key through it because a JSON path expression
    cannot quote every key safely (SQLite paths have no escape for a double quote)."""
    return func.json_each(e).table_valued("key", "value", "type").alias("meta_item")


def json_text(e: Any, key: str, dialect: str) -> ColumnElement:
    """A top-level JSON member as text: strings raw, true/false, numbers and objects as JSON; NULL if absent."""
    if dialect == "postgresql":
        return type_coerce(e, JSONB)[key].astext
    item = _sqlite_members(e)
    as_text = case(
        (item.c.type == "true", literal("true")),
        (item.c.type == "false", literal("false")),
        (item.c.type == "null", literal(None, Text)),
        else_=cast(item.c.value, Text),
    )
    return select(as_text).select_from(item).where(item.c.key == key).limit(1).scalar_subquery()


def json_number(e: Any, key: str, dialect: str) -> ColumnElement:
    """A top-level JSON member as a float: numbers and numeric strings; NULL for anything else."""
    if dialect == "postgresql":
        doc = type_coerce(e, JSONB)
        text_value = doc[key].astext
        return case(
            (func.jsonb_typeof(doc[key]) == "number", cast(text_value, Float)),
            (
                and_(func.jsonb_typeof(doc[key]) == "string", text_value.regexp_match(_PG_NUMERIC_TEXT)),
                cast(text_value, Float),
            ),
            else_=literal(None, Float),
        )
    item = _sqlite_members(e)
    text_value = cast(item.c.value, Text)
    looks_numeric = and_(
        func.trim(text_value) != "",
        func.trim(text_value, " +-.0123456789eE") == "",
        text_value.op("GLOB")("*[0-9]*"),
    )
    as_number = case(
        (item.c.type.in_(("integer", "real")), cast(item.c.value, Float)),
        (and_(item.c.type == "text", looks_numeric), cast(item.c.value, Float)),
        else_=literal(None, Float),
    )
    return select(as_number).select_from(item).where(item.c.key == key).limit(1).scalar_subquery()


def _object_condition(e: Any, cond: Condition, dialect: str, matches_ci: bool) -> ColumnElement:
    key = cond.key or ""
    t, op, v = cond.type, cond.operator, cond.value
    if t == "null":
        text_value = json_text(e, key, dialect)
        return text_value.is_(None) if op == "is null" else text_value.is_not(None)
    if t == "numberObject":
        return _COMPARE[op](json_number(e, key, dialect), v)
    # Absent keys read as "" (ClickHouse Map semantics), so negative operators match rows without the key.
    text_value = func.coalesce(json_text(e, key, dialect), "")
    if t == "stringObject":
        return string_condition(text_value, op, v, dialect, matches_ci)
    if t == "categoryOptions":
        return text_value.in_(v) if op == "any of" else text_value.not_in(v) if v else true()
    if t == "booleanObject":
        is_value = func.lower(text_value) == ("true" if v else "false")
        return is_value if op == "=" else not_(is_value)
    raise QueryError(f"Filter type '{t}' is not supported on column '{cond.column}'")  # pragma: no cover


def json_key_sum(e: Any, part: str, dialect: str) -> ColumnElement:
    """Sum of the numeric members of a JSON object whose key contains ``part`` (0 when none).

    This is how the read API defines input/output cost: every cost key containing "input" / "output".
    """
    if dialect == "postgresql":
        members = func.jsonb_each_text(type_coerce(e, JSONB)).table_valued("key", "value").alias("cost_items")
        return (
            select(func.coalesce(func.sum(cast(members.c.value, Float)), 0.0))
            .select_from(members)
            .where(func.strpos(members.c.key, part) > 0)
            .scalar_subquery()
        )
    members = func.json_each(e).table_valued("key", "value", "type").alias("cost_items")
    return (
        select(func.total(members.c.value))
        .select_from(members)
        .where(func.instr(members.c.key, part) > 0, members.c.type.in_(("integer", "real")))
        .scalar_subquery()
    )
