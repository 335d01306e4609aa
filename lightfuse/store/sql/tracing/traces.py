"""Reads of traces, sessions and the legacy daily metrics on SQLite and Postgres (observations: observations.py).

Every function takes the project id and scopes every table it touches to it. Rows come back as the dicts of
``tracing_writes.row_from_db`` (IO parsed, times in epoch ms); the service layer shapes them for the API.

Trace lists are filtered with the structured filter (``filters.py``). Columns that need aggregates over the
trace's observations (latency, tokens, cost, level, level counts) come from one grouped subquery that is joined
only when such a column is used; score columns compile to correlated EXISTS/AVG subqueries. The per-trace
metrics shown in the list (latency, totalCost, observation and score ids) are computed afterwards for the
returned page only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Connection,
    Float,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    not_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql import FromClause

from lightfuse.store.sql.filters import (
    Condition,
    FilterColumn,
    QueryError,
    columns_used,
    compare,
    compile_filters,
    json_key_sum,
)
from lightfuse.store.sql.tables import observations, scores, trace_sessions, traces
from lightfuse.store.sql.tracing import writes as tw

DAY_MS = 86_400_000
# Observations of a trace may start a little before the trace's own timestamp; Langfuse looks back one hour.
TRACE_TO_OBSERVATIONS_MS = 3_600_000
# Score types the v1 APIs list (CORRECTION scores stay hidden there).
LISTABLE_SCORE_TYPES = ("NUMERIC", "BOOLEAN", "CATEGORICAL", "TEXT")
_CHUNK = 500

TRACE_ORDER_FIELDS = {
    "id": traces.c.id,
    "timestamp": traces.c.timestamp,
    "name": traces.c.name,
    "userId": traces.c.user_id,
    "release": traces.c.release,
    "version": traces.c.version,
    "public": traces.c.public,
    "bookmarked": traces.c.bookmarked,
    "sessionId": traces.c.session_id,
}
_IO_COLUMNS = ("input", "output", "metadata")


@dataclass
class TraceQuery:
    project_id: str
    simple: list[Condition] = field(default_factory=list)
    advanced: list[Condition] = field(default_factory=list)
    order_field: str = "timestamp"
    order_desc: bool = True
    limit: int = 50
    offset: int = 0
    with_io: bool = True


def _chunks(items: Sequence[str]):
    for i in range(0, len(items), _CHUNK):
        yield list(items[i : i + _CHUNK])


# --- filter columns -----------------------------------------------------------------------------------------


def _trace_metrics_subquery(project_id: str, dialect: str):
    """Per-trace aggregates over all of a project's observations (only built into a query when filtered on)."""
    o = observations
    per_obs = (
        select(
            o.c.trace_id,
            o.c.start_time,
            o.c.end_time,
            o.c.level,
            o.c.input_tokens,
            o.c.output_tokens,
            o.c.total_tokens,
            func.coalesce(o.c.total_cost, 0.0).label("total_cost"),
            json_key_sum(o.c.cost_details, "input", dialect).label("input_cost"),
            json_key_sum(o.c.cost_details, "output", dialect).label("output_cost"),
        )
        .where(o.c.project_id == project_id)
        .subquery("obs_costs")
    )
    p = per_obs.c
    hi = case(
        (func.max(p.end_time) > func.max(p.start_time), func.max(p.end_time)), else_=func.max(p.start_time)
    )
    lo = case(
        (func.min(p.end_time) < func.min(p.start_time), func.min(p.end_time)), else_=func.min(p.start_time)
    )

    def level_count(level: str):
        return func.sum(case((p.level == level, 1), else_=0))

    return (
        select(
            p.trace_id,
            ((hi - lo) / 1000.0).label("latency"),
            func.sum(p.input_tokens).label("input_tokens"),
            func.sum(p.output_tokens).label("output_tokens"),
            func.sum(p.total_tokens).label("total_tokens"),
            func.sum(p.input_cost).label("input_cost"),
            func.sum(p.output_cost).label("output_cost"),
            func.sum(p.total_cost).label("total_cost"),
            level_count("ERROR").label("error_count"),
            level_count("WARNING").label("warning_count"),
            level_count("DEFAULT").label("default_count"),
            level_count("DEBUG").label("debug_count"),
        )
        .group_by(p.trace_id)
        .subquery("trace_metrics")
    )


def _score_columns(project_id: str) -> list[FilterColumn]:
    def trace_scores(*where):
        return and_(scores.c.project_id == project_id, scores.c.trace_id == traces.c.id, *where)

    def avg_filter(cond: Condition, _dialect: str):
        avg = (
            select(func.avg(scores.c.value))
            .where(trace_scores(scores.c.name == cond.key, scores.c.data_type == "NUMERIC"))
            .scalar_subquery()
        )
        return compare(cond.operator, avg, cond.value)

    def category_filter(cond: Condition, _dialect: str):
        if not cond.value:
            return true() if cond.operator == "none of" else literal(False)
        hit = exists().where(
            trace_scores(
                scores.c.name == cond.key,
                scores.c.data_type == "CATEGORICAL",
                scores.c.string_value.in_(cond.value),
            )
        )
        return hit if cond.operator == "any of" else not_(hit)

    def boolean_filter(cond: Condition, _dialect: str):
        # "<>" also matches traces without a score of that name
        hit = exists().where(
            trace_scores(
                scores.c.name == cond.key,
                scores.c.data_type == "BOOLEAN",
                scores.c.value == (1.0 if cond.value else 0.0),
            )
        )
        return hit if cond.operator == "=" else not_(hit)

    return [
        FilterColumn("scores_avg", "custom", types=("numberObject",), custom=avg_filter),
        FilterColumn("score_categories", "custom", types=("categoryOptions",), custom=category_filter),
        FilterColumn("score_booleans", "custom", types=("booleanObject",), custom=boolean_filter),
    ]


def trace_filter_columns(project_id: str, dialect: str) -> tuple[dict[str, FilterColumn], Any]:
    """Public column name -> FilterColumn for trace lists, plus the metrics subquery those columns read."""
    t = traces.c
    metrics_sq = _trace_metrics_subquery(project_id, dialect)
    m = metrics_sq.c
    metrics = "metrics"
    level = case(
        (m.error_count > 0, literal("ERROR")),
        (m.warning_count > 0, literal("WARNING")),
        (m.default_count > 0, literal("DEFAULT")),
        (m.debug_count > 0, literal("DEBUG")),
    )
    cols = [
        FilterColumn("id", "string", t.id),
        FilterColumn("name", "string", t.name),
        FilterColumn("timestamp", "datetime", t.timestamp),
        FilterColumn("userId", "string", t.user_id),
        FilterColumn("sessionId", "string", t.session_id),
        FilterColumn("environment", "string", t.environment),
        FilterColumn("version", "string", t.version),
        FilterColumn("release", "string", t.release),
        FilterColumn("tags", "array", t.tags),
        FilterColumn("bookmarked", "boolean", t.bookmarked),
        FilterColumn("public", "boolean", t.public),
        FilterColumn("metadata", "object", t.metadata),
        FilterColumn("latency", "number", func.coalesce(m.latency, 0.0), metrics),
        FilterColumn("inputTokens", "number", func.coalesce(m.input_tokens, 0), metrics),
        FilterColumn("outputTokens", "number", func.coalesce(m.output_tokens, 0), metrics),
        FilterColumn("totalTokens", "number", func.coalesce(m.total_tokens, 0), metrics),
        FilterColumn("inputCost", "number", func.coalesce(m.input_cost, 0.0), metrics),
        FilterColumn("outputCost", "number", func.coalesce(m.output_cost, 0.0), metrics),
        FilterColumn("totalCost", "number", func.coalesce(m.total_cost, 0.0), metrics),
        FilterColumn("level", "string", level, metrics),
        FilterColumn("errorCount", "number", func.coalesce(m.error_count, 0), metrics),
        FilterColumn("warningCount", "number", func.coalesce(m.warning_count, 0), metrics),
        FilterColumn("defaultCount", "number", func.coalesce(m.default_count, 0), metrics),
        FilterColumn("debugCount", "number", func.coalesce(m.debug_count, 0), metrics),
        *_score_columns(project_id),
    ]
    by_name = {c.name: c for c in cols}
    by_name["tokens"] = by_name["totalTokens"]
    by_name["scores"] = by_name["scores_avg"]
    return by_name, metrics_sq


def _trace_from_where(conn: Connection, q: TraceQuery):
    dialect = conn.dialect.name
    columns, metrics_sq = trace_filter_columns(q.project_id, dialect)
    resolved = columns_used(q.simple, q.advanced, columns)
    source: FromClause = traces
    if any(spec.group == "metrics" for spec, _ in resolved):
        source = traces.outerjoin(metrics_sq, metrics_sq.c.trace_id == traces.c.id)
    where = [traces.c.project_id == q.project_id, *compile_filters(resolved, dialect)]
    return source, where


def _order(column, desc: bool):
    # Same NULL placement on both engines (and as in ClickHouse): NULLs last either way.
    return (column.desc() if desc else column.asc()).nulls_last()


# --- traces -------------------------------------------------------------------------------------------------


def list_traces(conn: Connection, q: TraceQuery) -> list[dict[str, Any]]:
    order_col = TRACE_ORDER_FIELDS.get(q.order_field)
    if order_col is None:
        raise QueryError(
            f"Invalid orderBy field '{q.order_field}'. Allowed fields: {', '.join(TRACE_ORDER_FIELDS)}"
        )
    source, where = _trace_from_where(conn, q)
    cols = [c for c in traces.c if q.with_io or c.name not in _IO_COLUMNS]
    stmt = (
        select(*cols)
        .select_from(source)
        .where(*where)
        .order_by(_order(order_col, q.order_desc), _order(traces.c.id, q.order_desc))
        .limit(q.limit)
        .offset(q.offset)
    )
    return [tw.row_from_db("trace", m) for m in conn.execute(stmt).mappings()]


def count_traces(conn: Connection, q: TraceQuery) -> int:
    source, where = _trace_from_where(conn, q)
    return int(conn.execute(select(func.count()).select_from(source).where(*where)).scalar_one())


def trace_page_metrics(
    conn: Connection, project_id: str, trace_ids: Sequence[str], min_start_time: int | None = None
) -> dict[str, tuple[float, float]]:
    """trace id -> (latency in s over all observation start/end times, summed total cost)."""
    o = observations.c
    out: dict[str, tuple[float, float]] = {}
    for chunk in _chunks(trace_ids):
        stmt = select(
            o.trace_id,
            func.min(o.start_time),
            func.max(o.start_time),
            func.min(o.end_time),
            func.max(o.end_time),
            func.sum(o.total_cost),
        ).where(o.project_id == project_id, o.trace_id.in_(chunk))
        if min_start_time is not None:
            stmt = stmt.where(o.start_time >= min_start_time)
        for trace_id, min_s, max_s, min_e, max_e, cost in conn.execute(stmt.group_by(o.trace_id)):
            lo = min(min_s, min_e) if min_e is not None else min_s
            hi = max(max_s, max_e) if max_e is not None else max_s
            out[trace_id] = ((hi - lo) / 1000.0, float(cost or 0.0))
    return out


def trace_observation_ids(
    conn: Connection, project_id: str, trace_ids: Sequence[str]
) -> dict[str, list[str]]:
    o = observations.c
    out: dict[str, list[str]] = {}
    for chunk in _chunks(trace_ids):
        stmt = (
            select(o.trace_id, o.id)
            .where(o.project_id == project_id, o.trace_id.in_(chunk))
            .order_by(o.start_time, o.id)
        )
        for trace_id, obs_id in conn.execute(stmt):
            out.setdefault(trace_id, []).append(obs_id)
    return out


def trace_score_ids(conn: Connection, project_id: str, trace_ids: Sequence[str]) -> dict[str, list[str]]:
    s = scores.c
    out: dict[str, list[str]] = {}
    for chunk in _chunks(trace_ids):
        stmt = (
            select(s.trace_id, s.id)
            .where(s.project_id == project_id, s.trace_id.in_(chunk), s.data_type.in_(LISTABLE_SCORE_TYPES))
            .order_by(s.timestamp, s.id)
        )
        for trace_id, score_id in conn.execute(stmt):
            out.setdefault(trace_id, []).append(score_id)
    return out


def get_trace(
    conn: Connection, project_id: str, trace_id: str, with_io: bool = True
) -> dict[str, Any] | None:
    cols = [c for c in traces.c if with_io or c.name not in _IO_COLUMNS]
    stmt = select(*cols).where(traces.c.project_id == project_id, traces.c.id == trace_id)
    row = conn.execute(stmt).mappings().first()
    return tw.row_from_db("trace", row) if row is not None else None


def list_trace_observations(conn: Connection, project_id: str, trace_id: str) -> list[dict[str, Any]]:
    stmt = (
        select(observations)
        .where(observations.c.project_id == project_id, observations.c.trace_id == trace_id)
        .order_by(observations.c.start_time, observations.c.id)
    )
    return [tw.row_from_db("observation", m) for m in conn.execute(stmt).mappings()]


def list_trace_scores(conn: Connection, project_id: str, trace_id: str) -> list[dict[str, Any]]:
    stmt = (
        select(scores)
        .where(
            scores.c.project_id == project_id,
            scores.c.trace_id == trace_id,
            scores.c.data_type.in_(LISTABLE_SCORE_TYPES),
        )
        .order_by(scores.c.timestamp, scores.c.id)
    )
    return [dict(m) for m in conn.execute(stmt).mappings()]


def existing_trace_ids(conn: Connection, project_id: str, trace_ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(trace_ids):
        stmt = select(traces.c.id).where(traces.c.project_id == project_id, traces.c.id.in_(chunk))
        found.update(r[0] for r in conn.execute(stmt))
    return found


# --- sessions -----------------------------------------------------------------------------------------------


def _session_where(project_id: str, from_ms: int | None, to_ms: int | None, environments: Sequence[str]):
    s = trace_sessions.c
    where = [s.project_id == project_id]
    if from_ms is not None:
        where.append(s.created_at >= from_ms)
    if to_ms is not None:
        where.append(s.created_at < to_ms)
    if environments:
        where.append(s.environment.in_(list(environments)))
    return where


def list_sessions(
    conn: Connection,
    project_id: str,
    *,
    from_ms: int | None = None,
    to_ms: int | None = None,
    environments: Sequence[str] = (),
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    s = trace_sessions.c
    stmt = (
        select(trace_sessions)
        .where(*_session_where(project_id, from_ms, to_ms, environments))
        .order_by(s.created_at.desc(), s.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [dict(m) for m in conn.execute(stmt).mappings()]


def count_sessions(
    conn: Connection,
    project_id: str,
    *,
    from_ms: int | None = None,
    to_ms: int | None = None,
    environments: Sequence[str] = (),
) -> int:
    stmt = (
        select(func.count())
        .select_from(trace_sessions)
        .where(*_session_where(project_id, from_ms, to_ms, environments))
    )
    return int(conn.execute(stmt).scalar_one())


def get_session(conn: Connection, project_id: str, session_id: str) -> dict[str, Any] | None:
    stmt = select(trace_sessions).where(
        trace_sessions.c.project_id == project_id, trace_sessions.c.id == session_id
    )
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row is not None else None


def list_session_traces(conn: Connection, project_id: str, session_id: str) -> list[dict[str, Any]]:
    stmt = (
        select(traces)
        .where(traces.c.project_id == project_id, traces.c.session_id == session_id)
        .order_by(traces.c.timestamp, traces.c.id)
    )
    return [tw.row_from_db("trace", m) for m in conn.execute(stmt).mappings()]


# --- legacy daily metrics -----------------------------------------------------------------------------------


def _usage_value(column, key: str, dialect: str):
    """usage_details[key] as a number, 0 when absent (the exact key, as the legacy endpoint sums it)."""
    if dialect == "postgresql":
        return func.coalesce(cast(type_coerce(column, JSONB)[key].astext, Float), 0.0)
    return func.coalesce(func.json_extract(column, f'$."{key}"'), 0)


def _day(epoch_ms_column):
    # Integer division buckets by UTC day on both engines (BIGINT / BIGINT truncates in SQLite and Postgres).
    return epoch_ms_column / DAY_MS


def day_string(day_number: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=int(day_number))).isoformat()


def daily_metrics(conn: Connection, project_id: str, simple: list[Condition]) -> list[dict[str, Any]]:
    """Per UTC day, newest first: trace count (by trace day) and observation usage per model (by start day).

    Days are few, so the whole list is returned and paginated by the caller.
    """
    dialect = conn.dialect.name
    columns, _ = trace_filter_columns(project_id, dialect)
    resolved = columns_used(simple, [], columns)
    if any(spec.group for spec, _ in resolved):  # pragma: no cover - callers only pass trace columns
        raise QueryError("daily metrics only filter on trace columns")
    trace_where = [traces.c.project_id == project_id, *compile_filters(resolved, dialect)]

    trace_day = _day(traces.c.timestamp)
    trace_counts = conn.execute(select(trace_day, func.count()).where(*trace_where).group_by(trace_day)).all()

    o = observations.c
    obs_day = _day(o.start_time)
    obs_stmt = (
        select(
            obs_day,
            o.provided_model_name,
            func.count(o.id),
            func.count(func.distinct(o.trace_id)),
            func.sum(_usage_value(o.usage_details, "input", dialect)),
            func.sum(_usage_value(o.usage_details, "output", dialect)),
            func.sum(_usage_value(o.usage_details, "total", dialect)),
            func.sum(func.coalesce(o.total_cost, 0.0)),
        )
        .select_from(
            observations.join(traces, and_(traces.c.project_id == o.project_id, traces.c.id == o.trace_id))
        )
        .where(o.project_id == project_id, *trace_where)
        .group_by(obs_day, o.provided_model_name)
    )
    lower = [c.value for c in simple if c.column == "timestamp" and c.operator in (">=", ">")]
    if lower:
        obs_stmt = obs_stmt.where(o.start_time >= max(lower) - TRACE_TO_OBSERVATIONS_MS)

    days: dict[int, dict[str, Any]] = {}

    def day_entry(day: int) -> dict[str, Any]:
        return days.setdefault(
            int(day),
            {
                "date": day_string(day),
                "countTraces": 0,
                "countObservations": 0,
                "totalCost": 0.0,
                "usage": [],
            },
        )

    for day, count in trace_counts:
        day_entry(day)["countTraces"] = int(count)
    for day, model, n_obs, n_traces, inp, out, total, cost in conn.execute(obs_stmt):
        entry = day_entry(day)
        entry["countObservations"] += int(n_obs)
        entry["totalCost"] += float(cost or 0.0)
        entry["usage"].append(
            {
                "model": model,
                "inputUsage": _int(inp),
                "outputUsage": _int(out),
                "totalUsage": _int(total),
                "countObservations": int(n_obs),
                "countTraces": int(n_traces),
                "totalCost": float(cost or 0.0),
            }
        )
    for entry in days.values():
        entry["usage"].sort(key=lambda u: (u["model"] is None, u["model"] or ""))
    return [days[d] for d in sorted(days, reverse=True)]


def _int(value: Any) -> int | float:
    if value is None:
        return 0
    as_float = float(value)
    return int(as_float) if as_float.is_integer() else as_float


__all__ = [
    "TRACE_ORDER_FIELDS",
    "TraceQuery",
    "count_sessions",
    "count_traces",
    "daily_metrics",
    "existing_trace_ids",
    "get_session",
    "get_trace",
    "list_session_traces",
    "list_sessions",
    "list_trace_observations",
    "list_trace_scores",
    "list_traces",
    "trace_filter_columns",
    "trace_observation_ids",
    "trace_page_metrics",
    "trace_score_ids",
]
