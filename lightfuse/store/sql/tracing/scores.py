"""Score reads: single score, page-based lists (v1/v2) and keyset lists (v3), on SQLite and Postgres.

Callers describe what they want with a :class:`ScoreQuery`; this module turns it into one SQL statement. All
queries are scoped to a project. Ordering is ``timestamp DESC, id DESC`` everywhere so that page-based and
cursor-based listings agree and ties are deterministic.

The only dialect-specific parts are the trace-tag array tests (JSON array membership differs between SQLite's
``json_each`` and Postgres' JSONB operators); everything else is portable SQLAlchemy Core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB, array

from lightfuse.store.sql.database import is_sqlite
from lightfuse.store.sql.tables import scores, traces

__all__ = [
    "FILTER_COLUMNS",
    "Condition",
    "ScoreQuery",
    "get_score",
    "list_scores_page",
    "list_scores_after",
]

# Logical filter column -> (table column, kind). "kind" decides which operators make sense; the service layer
# validates operators against it before a Condition reaches us.
FILTER_COLUMNS: dict[str, tuple[Any, str]] = {
    "id": (scores.c.id, "string"),
    "name": (scores.c.name, "string"),
    "value": (scores.c.value, "number"),
    "stringValue": (scores.c.string_value, "string"),
    "source": (scores.c.source, "string"),
    "dataType": (scores.c.data_type, "string"),
    "environment": (scores.c.environment, "string"),
    "comment": (scores.c.comment, "string"),
    "timestamp": (scores.c.timestamp, "datetime"),
    "traceId": (scores.c.trace_id, "string"),
    "observationId": (scores.c.observation_id, "string"),
    "sessionId": (scores.c.session_id, "string"),
    "datasetRunId": (scores.c.dataset_run_id, "string"),
    "configId": (scores.c.config_id, "string"),
    "queueId": (scores.c.queue_id, "string"),
    "authorUserId": (scores.c.author_user_id, "string"),
    "metadata": (scores.c.metadata, "object"),
    # trace columns: only usable when the query joins traces (ScoreQuery.join_trace)
    "userId": (traces.c.user_id, "string"),
    "traceName": (traces.c.name, "string"),
    "tags": (traces.c.tags, "array"),
}
TRACE_COLUMNS = frozenset(("userId", "traceName", "tags"))


@dataclass(frozen=True)
class Condition:
    """One structured filter condition, already validated: ``value`` is a str, a number, epoch ms for
    datetimes, or a list of str for the options operators."""

    column: str
    operator: str
    value: Any = None
    key: str | None = None  # metadata key for object columns


@dataclass
class ScoreQuery:
    """Filters for list queries. Lists mean "any of"; None/empty means "no restriction"."""

    ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    data_types: list[str] = field(default_factory=list)
    environments: list[str] = field(default_factory=list)
    config_ids: list[str] = field(default_factory=list)
    queue_ids: list[str] = field(default_factory=list)
    author_user_ids: list[str] = field(default_factory=list)
    trace_ids: list[str] = field(default_factory=list)
    observation_ids: list[str] = field(default_factory=list)
    session_ids: list[str] = field(default_factory=list)
    dataset_run_ids: list[str] = field(default_factory=list)
    from_ts: int | None = None  # inclusive
    to_ts: int | None = None  # exclusive
    value_op: tuple[str, float] | None = None  # v2 operator/value pair
    value_min: float | None = None
    value_max: float | None = None
    numeric_values: list[float] = field(default_factory=list)  # exact value matches (NUMERIC/BOOLEAN)
    string_values: list[str] = field(default_factory=list)  # exact string_value matches (CATEGORICAL)
    user_id: str | None = None  # trace user id
    trace_tags: list[str] = field(default_factory=list)  # trace must carry all of them
    # v1 endpoints: only trace-level scores of these types
    trace_scoped_only: bool = False
    allowed_types: list[str] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    join_trace: bool = False  # add trace_user_id/trace_tags/... columns (LEFT JOIN traces)


_VALUE_OPS = {
    "=": lambda c, v: c == v,
    "!=": lambda c, v: c != v,
    "<>": lambda c, v: c != v,
    ">": lambda c, v: c > v,
    "<": lambda c, v: c < v,
    ">=": lambda c, v: c >= v,
    "<=": lambda c, v: c <= v,
}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like(col: ColumnElement, pattern: str) -> ColumnElement:
    # lower() on both sides: SQLite's LIKE ignores ASCII case and Postgres' does not; this makes them agree.
    return func.lower(col).like(func.lower(literal(pattern)), escape="\\")


def _string_condition(col: ColumnElement, op: str, value: str) -> ColumnElement:
    if op == "=":
        return col == value
    if op == "contains":
        return _like(col, f"%{_escape_like(value)}%")
    if op == "does not contain":
        return or_(col.is_(None), not_(_like(col, f"%{_escape_like(value)}%")))
    if op == "starts with":
        return _like(col, f"{_escape_like(value)}%")
    if op == "ends with":
        return _like(col, f"%{_escape_like(value)}")
    raise ValueError(f"unsupported string operator {op!r}")


def _tags_condition(conn: Connection, col: ColumnElement, op: str, tags: list[str]) -> ColumnElement:
    """Trace tag array tests; the one place where the SQL differs per dialect."""
    if not tags:
        # "all of []" holds for every row, "any of []" for none, "none of []" for every row
        return false() if op == "any of" else true()
    if is_sqlite(conn):
        each = func.json_each(col).table_valued("value")

        def has(tag: str) -> ColumnElement:
            return exists(select(literal(1)).select_from(each).where(each.c.value == tag))

        if op == "all of":
            return and_(*(has(t) for t in tags))
        any_of = or_(*(has(t) for t in tags))
        return any_of if op == "any of" else not_(any_of)
    # a score without a trace row has NULL tags, which must count as "no tags" rather than "unknown"
    jsonb = type_coerce(col, JSONB)
    if op == "all of":
        return jsonb.contains(list(tags))
    any_of = jsonb.has_any(array(list(tags)))
    return any_of if op == "any of" else or_(col.is_(None), not_(any_of))


def _metadata_key(conn: Connection, key: str | None) -> str:
    if not key:
        raise ValueError("metadata filters need a key")
    # SQLAlchemy renders SQLite JSON paths as '$."<key>"' without escaping; a quote would break the path.
    if is_sqlite(conn) and ('"' in key or "\\" in key):
        raise ValueError("metadata filter keys may not contain quotes or backslashes")
    return key


def _condition(conn: Connection, cond: Condition) -> ColumnElement:
    col, kind = FILTER_COLUMNS[cond.column]
    op, value = cond.operator, cond.value
    if op == "is null":
        return col.is_(None)
    if op == "is not null":
        return col.is_not(None)
    if kind == "object":
        text = col[_metadata_key(conn, cond.key)].as_string()
        return _string_condition(text, op, value)
    if kind == "array":
        return _tags_condition(conn, col, op, list(value))
    if op in ("any of", "none of"):
        matched = col.in_(list(value)) if value else false()
        return matched if op == "any of" else or_(col.is_(None), not_(matched))
    if kind == "string":
        return _string_condition(col, op, value)
    if op in _VALUE_OPS:  # number and datetime (epoch ms)
        return _VALUE_OPS[op](col, value)
    raise ValueError(f"unsupported operator {op!r} for {cond.column}")


def _where(conn: Connection, project_id: str, q: ScoreQuery) -> list[ColumnElement]:
    c = scores.c
    clauses: list[ColumnElement] = [c.project_id == project_id]
    for values, col in (
        (q.ids, c.id),
        (q.names, c.name),
        (q.sources, c.source),
        (q.data_types, c.data_type),
        (q.environments, c.environment),
        (q.config_ids, c.config_id),
        (q.queue_ids, c.queue_id),
        (q.author_user_ids, c.author_user_id),
        (q.trace_ids, c.trace_id),
        (q.observation_ids, c.observation_id),
        (q.session_ids, c.session_id),
        (q.dataset_run_ids, c.dataset_run_id),
        (q.allowed_types, c.data_type),
    ):
        if values:
            clauses.append(col.in_(list(values)))
    if q.trace_scoped_only:
        clauses.append(c.trace_id.is_not(None))
    if q.from_ts is not None:
        clauses.append(c.timestamp >= q.from_ts)
    if q.to_ts is not None:
        clauses.append(c.timestamp < q.to_ts)
    if q.value_op is not None:
        op, value = q.value_op
        clauses.append(_VALUE_OPS[op](c.value, value))
    if q.value_min is not None:
        clauses.append(c.value >= q.value_min)
    if q.value_max is not None:
        clauses.append(c.value <= q.value_max)
    if q.numeric_values:
        clauses.append(c.value.in_(list(q.numeric_values)))
    if q.string_values:
        clauses.append(c.string_value.in_(list(q.string_values)))
    if q.user_id is not None:
        clauses.append(traces.c.user_id == q.user_id)
    if q.trace_tags:
        clauses.append(_tags_condition(conn, traces.c.tags, "all of", q.trace_tags))
    clauses.extend(_condition(conn, cond) for cond in q.conditions)
    return clauses


def _needs_trace(q: ScoreQuery) -> bool:
    return (
        q.join_trace
        or q.user_id is not None
        or bool(q.trace_tags)
        or any(cond.column in TRACE_COLUMNS for cond in q.conditions)
    )


def _from(q: ScoreQuery) -> Any:
    if not _needs_trace(q):
        return scores
    return scores.outerjoin(
        traces, and_(traces.c.project_id == scores.c.project_id, traces.c.id == scores.c.trace_id)
    )


def _columns(q: ScoreQuery) -> list[Any]:
    cols: list[Any] = list(scores.c)
    if q.join_trace:
        cols += [
            # a NULL trace id tells "no trace row" apart from a trace whose fields are all empty
            traces.c.id.label("trace_row_id"),
            traces.c.user_id.label("trace_user_id"),
            traces.c.tags.label("trace_tags"),
            traces.c.environment.label("trace_environment"),
            traces.c.session_id.label("trace_session_id"),
        ]
    return cols


def _ordered(stmt: Select) -> Select:
    return stmt.order_by(scores.c.timestamp.desc(), scores.c.id.desc())


def get_score(conn: Connection, project_id: str, score_id: str) -> dict[str, Any] | None:
    row = (
        conn.execute(select(scores).where(scores.c.project_id == project_id, scores.c.id == score_id))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def list_scores_page(
    conn: Connection, project_id: str, q: ScoreQuery, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """One page (newest first) and the total number of matching scores."""
    where = _where(conn, project_id, q)
    source = _from(q)
    total = conn.execute(select(func.count()).select_from(source).where(*where)).scalar_one()
    stmt = _ordered(select(*_columns(q)).select_from(source).where(*where)).limit(limit).offset(offset)
    return [dict(r) for r in conn.execute(stmt).mappings()], total


def list_scores_after(
    conn: Connection, project_id: str, q: ScoreQuery, limit: int, after: tuple[int, str] | None
) -> list[dict[str, Any]]:
    """Up to ``limit`` scores strictly after the keyset position ``(timestamp, id)`` in listing order."""
    where = _where(conn, project_id, q)
    if after is not None:
        ts, last_id = after
        where.append(or_(scores.c.timestamp < ts, and_(scores.c.timestamp == ts, scores.c.id < last_id)))
    stmt = _ordered(select(*_columns(q)).select_from(_from(q)).where(*where)).limit(limit)
    return [dict(r) for r in conn.execute(stmt).mappings()]
