"""Reads that only the web UI needs: the trace table (search, sort on metrics), per-page aggregates for
traces and sessions, and the users table. Same engines, same project scoping as ``tracing_reads``.

The trace table compiles its filters with the public API's column map (``trace_filter_columns``), so a filter
means the same thing in the UI and in ``GET /api/public/traces``. What is added here: a case-insensitive search
over id and name, and ordering by the per-trace aggregates (latency, cost, tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, func, or_, select

from lightfuse.store.sql.filters import Condition, QueryError, columns_used, compile_filters
from lightfuse.store.sql.tables import observations, scores, traces
from lightfuse.store.sql.tracing import writes as tw
from lightfuse.store.sql.tracing.traces import LISTABLE_SCORE_TYPES, trace_filter_columns

__all__ = [
    "TABLE_ORDER_FIELDS",
    "TraceTableQuery",
    "count_users",
    "find_trace_project",
    "list_trace_names",
    "list_trace_table",
    "list_users",
    "session_aggregates",
    "trace_aggregates",
    "trace_scores_summary",
    "user_aggregates",
    "user_sessions",
]

_CHUNK = 500
_LEVELS = ("ERROR", "WARNING", "DEFAULT", "DEBUG")
# UI sort keys -> trace column, or the name of a column of the metrics subquery
TABLE_ORDER_FIELDS = {
    "timestamp": ("trace", "timestamp"),
    "name": ("trace", "name"),
    "userId": ("trace", "user_id"),
    "sessionId": ("trace", "session_id"),
    "latency": ("metric", "latency"),
    "totalCost": ("metric", "totalCost"),
    "totalTokens": ("metric", "totalTokens"),
}


@dataclass
class TraceTableQuery:
    project_id: str
    conditions: list[Condition] = field(default_factory=list)
    search: str | None = None
    order_field: str = "timestamp"
    order_desc: bool = True
    limit: int = 50
    offset: int = 0


def _chunks(items: Sequence[str]):
    for i in range(0, len(items), _CHUNK):
        yield list(items[i : i + _CHUNK])


def _contains_ci(column, text: str):
    # lower() on both sides: ILIKE is Postgres-only, and SQLite's LIKE folds only ASCII
    return func.lower(column).contains(text.lower(), autoescape=True)


def _table_source(conn: Connection, q: TraceTableQuery):
    dialect = conn.dialect.name
    columns, metrics_sq = trace_filter_columns(q.project_id, dialect)
    resolved = columns_used(q.conditions, [], columns)
    order = TABLE_ORDER_FIELDS.get(q.order_field)
    if order is None:
        raise QueryError(f"Cannot sort by '{q.order_field}'. Allowed: {', '.join(TABLE_ORDER_FIELDS)}")
    kind, name = order
    order_col = columns[name].expr if kind == "metric" else traces.c[name]
    needs_metrics = kind == "metric" or any(spec.group == "metrics" for spec, _ in resolved)
    source = traces.outerjoin(metrics_sq, metrics_sq.c.trace_id == traces.c.id) if needs_metrics else traces
    where = [traces.c.project_id == q.project_id, *compile_filters(resolved, dialect)]
    if q.search:
        where.append(or_(_contains_ci(traces.c.id, q.search), _contains_ci(traces.c.name, q.search)))
    return source, where, order_col


def _order(column, desc: bool):
    return (column.desc() if desc else column.asc()).nulls_last()


def list_trace_table(conn: Connection, q: TraceTableQuery) -> tuple[list[dict[str, Any]], int]:
    """One page of traces (without input/output) and the number of matching traces."""
    source, where, order_col = _table_source(conn, q)
    cols = [c for c in traces.c if c.name not in ("input", "output")]
    stmt = (
        select(*cols)
        .select_from(source)
        .where(*where)
        .order_by(_order(order_col, q.order_desc), _order(traces.c.id, q.order_desc))
        .limit(q.limit)
        .offset(q.offset)
    )
    rows = [
        tw.row_from_db("trace", {**m, "input": None, "output": None}) for m in conn.execute(stmt).mappings()
    ]
    total = int(conn.execute(select(func.count()).select_from(source).where(*where)).scalar_one())
    return rows, total


def list_trace_names(conn: Connection, project_id: str, limit: int = 200) -> list[str]:
    """Distinct trace names for the filter's suggestions (bounded: it is a hint, not a report)."""
    stmt = (
        select(traces.c.name)
        .where(traces.c.project_id == project_id, traces.c.name.is_not(None))
        .group_by(traces.c.name)
        .order_by(traces.c.name)
        .limit(limit)
    )
    return [r[0] for r in conn.execute(stmt)]


def trace_aggregates(
    conn: Connection, project_id: str, trace_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """trace id -> token sums, observation count and the most severe observation level."""
    o = observations.c
    out: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(trace_ids):
        level_counts = [func.sum(case((o.level == lv, 1), else_=0)).label(lv) for lv in _LEVELS]
        stmt = (
            select(
                o.trace_id,
                func.count().label("observations"),
                func.sum(o.input_tokens).label("input_tokens"),
                func.sum(o.output_tokens).label("output_tokens"),
                func.sum(o.total_tokens).label("total_tokens"),
                *level_counts,
            )
            .where(o.project_id == project_id, o.trace_id.in_(chunk))
            .group_by(o.trace_id)
        )
        for m in conn.execute(stmt).mappings():
            level = next((lv for lv in _LEVELS if (m[lv] or 0) > 0), None)
            out[m["trace_id"]] = {
                "observations": int(m["observations"]),
                "inputTokens": int(m["input_tokens"] or 0),
                "outputTokens": int(m["output_tokens"] or 0),
                "totalTokens": int(m["total_tokens"] or 0),
                "level": level,
                "errorCount": int(m["ERROR"] or 0),
                "warningCount": int(m["WARNING"] or 0),
            }
    return out


def trace_scores_summary(
    conn: Connection, project_id: str, trace_ids: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """trace id -> one entry per score name: the average of numeric/boolean values, or the distinct labels."""
    s = scores.c
    acc: dict[str, dict[str, dict[str, Any]]] = {}
    for chunk in _chunks(trace_ids):
        stmt = (
            select(s.trace_id, s.name, s.data_type, s.value, s.string_value)
            .where(s.project_id == project_id, s.trace_id.in_(chunk), s.data_type.in_(LISTABLE_SCORE_TYPES))
            # per trace in time order; trace_id first lets the (project, trace, timestamp) index serve the IN
            .order_by(s.trace_id, s.timestamp)
        )
        for trace_id, name, data_type, value, string_value in conn.execute(stmt):
            entry = acc.setdefault(trace_id, {}).setdefault(
                name, {"name": name, "dataType": data_type, "values": [], "labels": []}
            )
            if data_type in ("NUMERIC", "BOOLEAN") and value is not None:
                entry["values"].append(float(value))
            elif string_value is not None and string_value not in entry["labels"]:
                entry["labels"].append(string_value)
    out: dict[str, list[dict[str, Any]]] = {}
    for trace_id, by_name in acc.items():
        items = []
        for entry in sorted(by_name.values(), key=lambda e: e["name"]):
            values = entry.pop("values")
            entry["avg"] = sum(values) / len(values) if values else None
            entry["count"] = len(values) or len(entry["labels"])
            items.append(entry)
        out[trace_id] = items
    return out


def _obs_totals_by(conn: Connection, project_id: str, key_col, where) -> dict[str, dict[str, Any]]:
    """Observation totals (tokens, cost, count) grouped by a trace column, for the traces matching ``where``."""
    o = observations.c
    stmt = (
        select(
            key_col.label("k"),
            func.count(o.id),
            func.coalesce(func.sum(o.total_tokens), 0),
            func.coalesce(func.sum(o.total_cost), 0.0),
        )
        .select_from(
            observations.join(traces, and_(traces.c.project_id == o.project_id, traces.c.id == o.trace_id))
        )
        .where(o.project_id == project_id, *where)
        .group_by(key_col)
    )
    return {
        k: {"observations": int(n), "totalTokens": int(tok), "totalCost": float(cost)}
        for k, n, tok, cost in conn.execute(stmt)
    }


def session_aggregates(
    conn: Connection, project_id: str, session_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """session id -> traces, users, first/last trace time, tokens, cost."""
    t = traces.c
    out: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(session_ids):
        where = [t.project_id == project_id, t.session_id.in_(chunk)]
        stmt = (
            select(t.session_id, func.count(), func.min(t.timestamp), func.max(t.timestamp))
            .where(*where)
            .group_by(t.session_id)
        )
        for sid, n, first, last in conn.execute(stmt):
            out[sid] = {
                "traces": int(n),
                "firstTimestamp": first,
                "lastTimestamp": last,
                "userIds": [],
                "totalTokens": 0,
                "totalCost": 0.0,
            }
        users = select(t.session_id, t.user_id).where(*where, t.user_id.is_not(None)).distinct()
        for sid, uid in conn.execute(users.order_by(t.session_id, t.user_id)):
            out.setdefault(sid, {}).setdefault("userIds", []).append(uid)
        for sid, totals in _obs_totals_by(conn, project_id, t.session_id, where[1:]).items():
            out.setdefault(sid, {}).update(totalTokens=totals["totalTokens"], totalCost=totals["totalCost"])
    return out


def _user_where(
    project_id: str, from_ms: int | None, to_ms: int | None, search: str | None, user_id: str | None = None
):
    t = traces.c
    where = [t.project_id == project_id, t.user_id.is_not(None)]
    if user_id is not None:
        where.append(t.user_id == user_id)
    if from_ms is not None:
        where.append(t.timestamp >= from_ms)
    if to_ms is not None:
        where.append(t.timestamp < to_ms)
    if search:
        where.append(_contains_ci(t.user_id, search))
    return where


def list_users(
    conn: Connection,
    project_id: str,
    *,
    from_ms: int | None = None,
    to_ms: int | None = None,
    search: str | None = None,
    user_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Users (trace user ids) with their trace counts, most recently active first."""
    t = traces.c
    last = func.max(t.timestamp)
    stmt = (
        select(
            t.user_id, func.count().label("traces"), func.min(t.timestamp).label("first"), last.label("last")
        )
        .where(*_user_where(project_id, from_ms, to_ms, search, user_id))
        .group_by(t.user_id)
        .order_by(last.desc(), t.user_id)
        .limit(limit)
        .offset(offset)
    )
    return [
        {"userId": uid, "traces": int(n), "firstTimestamp": first, "lastTimestamp": lst}
        for uid, n, first, lst in conn.execute(stmt)
    ]


def count_users(
    conn: Connection,
    project_id: str,
    *,
    from_ms: int | None = None,
    to_ms: int | None = None,
    search: str | None = None,
) -> int:
    inner = (
        select(traces.c.user_id).where(*_user_where(project_id, from_ms, to_ms, search)).distinct().subquery()
    )
    return int(conn.execute(select(func.count()).select_from(inner)).scalar_one())


def user_aggregates(
    conn: Connection,
    project_id: str,
    user_ids: Sequence[str],
    from_ms: int | None = None,
    to_ms: int | None = None,
) -> dict[str, dict[str, Any]]:
    """user id -> observation count, tokens and cost of the user's traces (in the same time window)."""
    out: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(user_ids):
        where: list[ColumnElement[bool]] = [traces.c.user_id.in_(chunk)]
        if from_ms is not None:
            where.append(traces.c.timestamp >= from_ms)
        if to_ms is not None:
            where.append(traces.c.timestamp < to_ms)
        out.update(_obs_totals_by(conn, project_id, traces.c.user_id, where))
    return out


def user_sessions(conn: Connection, project_id: str, user_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The sessions a user's traces belong to, newest first."""
    t = traces.c
    last = func.max(t.timestamp)
    stmt = (
        select(t.session_id, func.count(), func.min(t.timestamp), last)
        .where(t.project_id == project_id, t.user_id == user_id, t.session_id.is_not(None))
        .group_by(t.session_id)
        .order_by(last.desc())
        .limit(limit)
    )
    return [
        {"sessionId": sid, "traces": int(n), "firstTimestamp": first, "lastTimestamp": lst}
        for sid, n, first, lst in conn.execute(stmt)
    ]


def find_trace_project(conn: Connection, project_ids: Sequence[str], trace_id: str) -> str | None:
    """The first of the given projects that holds a trace with this id (for the /trace/{id} deep link)."""
    if not project_ids:
        return None
    stmt = (
        select(traces.c.project_id)
        .where(traces.c.project_id.in_(list(project_ids)), traces.c.id == trace_id)
        .limit(1)
    )
    return conn.execute(stmt).scalar()
