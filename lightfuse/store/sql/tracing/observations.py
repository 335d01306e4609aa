"""Reads of observations: the v1 page-based list, single get, and the v2 keyset (cursor) list.

All queries are scoped to the project. Columns of the parent trace (userId, sessionId, traceName, tags, ...)
come from a LEFT JOIN on traces that the v1 list adds only when a filter needs it; the v2 list always joins,
because its default field groups include trace attributes.

Ordering: v1 ``start_time DESC, id DESC``; v2 ``start_time DESC, trace_id DESC, id DESC`` - a total order, so
the cursor (the last row's three values) resumes exactly after the last row returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, func, not_, select, tuple_

from lightfuse.store.sql.filters import (
    Condition,
    FilterColumn,
    columns_used,
    compile_filters,
    json_key_sum,
)
from lightfuse.store.sql.tables import observations, traces
from lightfuse.store.sql.tracing import writes as tw

__all__ = [
    "ObservationQuery",
    "count_observations",
    "get_observation",
    "list_observations",
    "list_observations_after",
    "observation_filter_columns",
]

# Trace attributes the v2 list returns with every observation (basic and trace_context groups).
_TRACE_CONTEXT = (
    traces.c.name.label("trace_name"),
    traces.c.user_id.label("trace_user_id"),
    traces.c.session_id.label("trace_session_id"),
    traces.c.tags.label("trace_tags"),
    traces.c.release.label("trace_release"),
    traces.c.bookmarked.label("trace_bookmarked"),
    traces.c.public.label("trace_public"),
)
_HEAVY = ("input", "output", "metadata")


@dataclass
class ObservationQuery:
    project_id: str
    simple: list[Condition] = field(default_factory=list)
    advanced: list[Condition] = field(default_factory=list)
    limit: int = 50
    offset: int = 0
    # v2: which heavy columns to load at all
    with_io: bool = True
    with_metadata: bool = True


def _trace_join():
    return observations.outerjoin(
        traces, and_(traces.c.project_id == observations.c.project_id, traces.c.id == observations.c.trace_id)
    )


def observation_filter_columns(dialect: str, v2: bool = False) -> dict[str, FilterColumn]:
    o = observations.c
    duration_ms = o.end_time - o.start_time
    latency = duration_ms / 1000.0
    ttft = (o.completion_start_time - o.start_time) / 1000.0
    # NULLIF keeps zero-length observations from dividing by zero (they have no meaningful rate)
    tokens_per_second = o.output_tokens * 1000.0 / func.nullif(duration_ms, 0)
    trace = "trace"
    is_root_expr = o.parent_observation_id.is_(None)

    def is_root(cond: Condition, _dialect: str):
        wanted = cond.value if cond.operator == "=" else not cond.value
        return is_root_expr if wanted else not_(is_root_expr)

    cols = [
        FilterColumn("id", "string", o.id),
        FilterColumn("type", "string", o.type),
        FilterColumn("name", "string", o.name),
        FilterColumn("traceId", "string", o.trace_id),
        FilterColumn("parentObservationId", "string", o.parent_observation_id),
        FilterColumn("startTime", "datetime", o.start_time),
        FilterColumn("endTime", "datetime", o.end_time),
        FilterColumn("completionStartTime", "datetime", o.completion_start_time),
        FilterColumn("environment", "string", o.environment),
        FilterColumn("level", "string", o.level),
        FilterColumn("statusMessage", "string", o.status_message),
        FilterColumn("version", "string", o.version),
        FilterColumn("latency", "number", latency),
        FilterColumn("timeToFirstToken", "number", ttft),
        FilterColumn("tokensPerSecond", "number", tokens_per_second),
        FilterColumn("inputTokens", "number", o.input_tokens),
        FilterColumn("outputTokens", "number", o.output_tokens),
        FilterColumn("totalTokens", "number", o.total_tokens),
        FilterColumn("inputCost", "number", json_key_sum(o.cost_details, "input", dialect)),
        FilterColumn("outputCost", "number", json_key_sum(o.cost_details, "output", dialect)),
        FilterColumn("totalCost", "number", func.coalesce(o.total_cost, 0.0)),
        FilterColumn("model", "string", o.provided_model_name),
        FilterColumn("promptName", "string", o.prompt_name),
        FilterColumn("promptVersion", "number", o.prompt_version),
        FilterColumn("usagePricingTierName", "string", o.usage_pricing_tier_name),
        FilterColumn("metadata", "object", o.metadata, matches=v2, matches_case_insensitive=False),
        FilterColumn("isRootObservation", "custom", types=("boolean",), custom=is_root),
        FilterColumn("userId", "string", traces.c.user_id, trace),
        FilterColumn("sessionId", "string", traces.c.session_id, trace),
        FilterColumn("traceName", "string", traces.c.name, trace),
        FilterColumn("traceEnvironment", "string", traces.c.environment, trace),
        FilterColumn("traceTags", "array", traces.c.tags, trace),
    ]
    if v2:
        cols += [
            FilterColumn("input", "string", o.input, matches=True),
            FilterColumn("output", "string", o.output, matches=True),
        ]
    by_name = {c.name: c for c in cols}
    by_name["tokens"] = by_name["totalTokens"]
    by_name["providedModelName"] = by_name["model"]
    by_name["tags"] = by_name["traceTags"]
    return by_name


def _from_where(conn: Connection, q: ObservationQuery, v2: bool, force_join: bool):
    dialect = conn.dialect.name
    resolved = columns_used(q.simple, q.advanced, observation_filter_columns(dialect, v2))
    joined = force_join or any(spec.group == "trace" for spec, _ in resolved)
    source = _trace_join() if joined else observations
    where = [observations.c.project_id == q.project_id, *compile_filters(resolved, dialect)]
    return source, where


def _observation_row(mapping: Any) -> dict[str, Any]:
    return tw.row_from_db("observation", mapping)


def list_observations(conn: Connection, q: ObservationQuery) -> list[dict[str, Any]]:
    source, where = _from_where(conn, q, v2=False, force_join=False)
    o = observations.c
    stmt = (
        select(observations)
        .select_from(source)
        .where(*where)
        .order_by(o.start_time.desc(), o.id.desc())
        .limit(q.limit)
        .offset(q.offset)
    )
    return [_observation_row(m) for m in conn.execute(stmt).mappings()]


def count_observations(conn: Connection, q: ObservationQuery) -> int:
    source, where = _from_where(conn, q, v2=False, force_join=False)
    return int(conn.execute(select(func.count()).select_from(source).where(*where)).scalar_one())


def get_observation(conn: Connection, project_id: str, observation_id: str) -> dict[str, Any] | None:
    stmt = select(observations).where(
        observations.c.project_id == project_id, observations.c.id == observation_id
    )
    row = conn.execute(stmt).mappings().first()
    return _observation_row(row) if row is not None else None


def list_observations_after(
    conn: Connection, q: ObservationQuery, after: tuple[int, str, str] | None
) -> list[dict[str, Any]]:
    """v2: up to ``q.limit`` observations ordered (start_time, trace_id, id) DESC, strictly after ``after``.

    IO comes back as the stored JSON text (the v2 API returns it raw); heavy columns that were not asked for
    are not read at all.
    """
    source, where = _from_where(conn, q, v2=True, force_join=True)
    o = observations.c
    cols = [c for c in observations.c if c.name not in _HEAVY]
    if q.with_io:
        cols += [o.input, o.output]
    if q.with_metadata:
        cols.append(o.metadata)
    stmt = select(*cols, *_TRACE_CONTEXT).select_from(source).where(*where)
    if after is not None:
        stmt = stmt.where(tuple_(o.start_time, o.trace_id, o.id) < tuple_(*after))
    stmt = stmt.order_by(o.start_time.desc(), o.trace_id.desc(), o.id.desc()).limit(q.limit)
    out = []
    for m in conn.execute(stmt).mappings():
        row = dict(m)
        for col in ("input_tokens", "output_tokens", "total_tokens"):
            row.pop(col, None)
        out.append(row)
    return out
