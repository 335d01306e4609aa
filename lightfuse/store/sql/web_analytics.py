"""Aggregates for the project home dashboard: totals, per UTC day, per model, latency percentiles.

Traces count by their timestamp, observations (tokens, cost) by their start time, both in [from, to). Latency
percentiles are continuous (linear interpolation, like ``percentile_cont``): Postgres computes them itself;
SQLite has no percentile function, so the sorted latencies are read and interpolated here - the embedded
store is in-process, so reading one float column is cheap at the sizes it is meant for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, case, func, select

from lightfuse.store.sql.tables import observations, traces

__all__ = [
    "by_day",
    "by_model",
    "model_latency_percentiles",
    "overview",
    "trace_latency_percentiles",
]

DAY_MS = 86_400_000


def _window(column, from_ms: int | None, to_ms: int | None) -> list:
    out = []
    if from_ms is not None:
        out.append(column >= from_ms)
    if to_ms is not None:
        out.append(column < to_ms)
    return out


def _obs_where(project_id: str, from_ms: int | None, to_ms: int | None) -> list:
    return [observations.c.project_id == project_id, *_window(observations.c.start_time, from_ms, to_ms)]


def overview(conn: Connection, project_id: str, from_ms: int | None, to_ms: int | None) -> dict[str, Any]:
    t, o = traces.c, observations.c
    n_traces = conn.execute(
        select(func.count()).where(t.project_id == project_id, *_window(t.timestamp, from_ms, to_ms))
    ).scalar_one()
    n_obs, inp, out, tot, cost = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(o.input_tokens), 0),
            func.coalesce(func.sum(o.output_tokens), 0),
            func.coalesce(func.sum(o.total_tokens), 0),
            func.coalesce(func.sum(o.total_cost), 0.0),
        ).where(*_obs_where(project_id, from_ms, to_ms))
    ).one()
    return {
        "traces": int(n_traces),
        "observations": int(n_obs),
        "inputTokens": int(inp),
        "outputTokens": int(out),
        "totalTokens": int(tot),
        "totalCost": float(cost),
    }


def by_day(conn: Connection, project_id: str, from_ms: int | None, to_ms: int | None) -> list[dict[str, Any]]:
    """One entry per UTC day that has data, oldest first; ``day`` is the day number since the epoch."""
    t, o = traces.c, observations.c
    days: dict[int, dict[str, Any]] = {}

    def entry(day: Any) -> dict[str, Any]:
        return days.setdefault(
            int(day), {"day": int(day), "traces": 0, "observations": 0, "totalTokens": 0, "totalCost": 0.0}
        )

    trace_day = t.timestamp // DAY_MS
    stmt = (
        select(trace_day, func.count())
        .where(t.project_id == project_id, *_window(t.timestamp, from_ms, to_ms))
        .group_by(trace_day)
    )
    for day, n in conn.execute(stmt):
        entry(day)["traces"] = int(n)
    obs_day = o.start_time // DAY_MS
    stmt = (
        select(obs_day, func.count(), func.sum(o.total_tokens), func.sum(func.coalesce(o.total_cost, 0.0)))
        .where(*_obs_where(project_id, from_ms, to_ms))
        .group_by(obs_day)
    )
    for day, n, tokens, cost in conn.execute(stmt):
        e = entry(day)
        e.update(observations=int(n), totalTokens=int(tokens or 0), totalCost=float(cost or 0.0))
    return [days[d] for d in sorted(days)]


def by_model(conn: Connection, project_id: str, from_ms: int | None, to_ms: int | None) -> list[dict[str, Any]]:
    """Observations that name a model, grouped by the model name as sent; most expensive first."""
    o = observations.c
    cost = func.coalesce(func.sum(o.total_cost), 0.0)
    stmt = (
        select(
            o.provided_model_name,
            func.count(),
            func.coalesce(func.sum(o.input_tokens), 0),
            func.coalesce(func.sum(o.output_tokens), 0),
            func.coalesce(func.sum(o.total_tokens), 0),
            cost,
        )
        .where(*_obs_where(project_id, from_ms, to_ms), o.provided_model_name.is_not(None))
        .group_by(o.provided_model_name)
        .order_by(cost.desc(), o.provided_model_name)
    )
    return [
        {
            "model": model,
            "observations": int(n),
            "inputTokens": int(inp),
            "outputTokens": int(out),
            "totalTokens": int(tot),
            "totalCost": float(c),
        }
        for model, n, inp, out, tot, c in conn.execute(stmt)
    ]


def interpolate(sorted_values: Sequence[float], q: float) -> float | None:
    """Continuous percentile of already sorted values (the definition Postgres' percentile_cont uses)."""
    if not sorted_values:
        return None
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def _percentiles_grouped(
    conn: Connection, sub, quantiles: Sequence[float]
) -> dict[Any, dict[float, float | None]]:
    """``sub`` has columns ``g`` (group) and ``v`` (value): group -> {quantile: value}."""
    if conn.dialect.name == "postgresql":
        cols = [func.percentile_cont(q).within_group(sub.c.v) for q in quantiles]
        stmt = select(sub.c.g, func.count(), *cols).group_by(sub.c.g)
        return {
            row[0]: {q: (float(v) if v is not None else None) for q, v in zip(quantiles, row[2:], strict=True)}
            for row in conn.execute(stmt)
        }
    # sorted here: SQLite's ORDER BY goes through a temporary B-tree, several times slower than list.sort
    groups: dict[Any, list[float]] = {}
    for g, v in conn.execute(select(sub.c.g, sub.c.v)):
        groups.setdefault(g, []).append(float(v))
    for vals in groups.values():
        vals.sort()
    return {g: {q: interpolate(vals, q) for q in quantiles} for g, vals in groups.items()}


def trace_latency_percentiles(
    conn: Connection, project_id: str, from_ms: int | None, to_ms: int | None, quantiles: Sequence[float]
) -> dict[float, float | None]:
    """Percentiles of trace latency (seconds from the first observation start to the last end) over the traces
    in the window that have observations."""
    o, t = observations.c, traces.c
    lo = func.min(case((o.end_time < o.start_time, o.end_time), else_=o.start_time))
    hi = func.max(case((o.end_time > o.start_time, o.end_time), else_=o.start_time))
    # the window's traces first (an IN subquery on the time index), then their observations by trace: a join
    # let SQLite walk every observation of the project and look each trace up
    in_window = select(t.id).where(t.project_id == project_id, *_window(t.timestamp, from_ms, to_ms))
    per_trace = (
        select(func.min(o.project_id).label("g"), ((hi - lo) / 1000.0).label("v"))
        .where(o.project_id == project_id, o.trace_id.in_(in_window))
        .group_by(o.trace_id)
        .subquery()
    )
    result = _percentiles_grouped(conn, per_trace, quantiles)
    return result.get(project_id, dict.fromkeys(quantiles))


def model_latency_percentiles(
    conn: Connection, project_id: str, from_ms: int | None, to_ms: int | None, quantiles: Sequence[float]
) -> dict[str, dict[float, float | None]]:
    """Per model name: percentiles of the duration of finished observations that name the model."""
    o = observations.c
    sub = (
        select(o.provided_model_name.label("g"), ((o.end_time - o.start_time) / 1000.0).label("v"))
        .where(*_obs_where(project_id, from_ms, to_ms), o.provided_model_name.is_not(None), o.end_time.is_not(None))
        .subquery()
    )
    return _percentiles_grouped(conn, sub, quantiles)
