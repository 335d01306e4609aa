"""Aggregates for the project home dashboard: totals, per UTC day, per model, latency percentiles.

Traces count by their timestamp, observations (tokens, cost) by their start time, both in [from, to). Latency
percentiles are continuous (linear interpolation, like ``percentile_cont``).

Shaped for the embedded SQLite store at ~1M observations (bench/web_bench.py), where a week is ~230k rows and
every row SQLite visits or hands to Python costs. What was measured to matter, and what these queries do:

- Covering indexes (migration 0005): the scans read index entries only, never the wide observation rows.
- Each observation in the window is read once: per UTC day one query for the rows that name a model (counts,
  sums and durations grouped by model) and one for the rows that do not; the days, the models and the totals
  are all sums of those rows, added up in Python.
- No GROUP BY that needs a sort. SQLite groups by sorting the rows first (a temporary B-tree); over a week of
  observations that sort cost more than the scan itself (grouping by model name: ~3x the scan). Days are
  separate range queries instead of a group; the model names come from a loose index scan (one seek per
  distinct name) and the rows are read with ``provided_model_name IN (those names)`` off the (project, model,
  start_time, ...) index, one range per model in model order, which is the GROUP BY's order already.
- Percentiles need every value, sorted. Postgres' ``percentile_cont`` does it in SQL. On SQLite, sorting in
  SQL (ORDER BY, or ROW_NUMBER/COUNT OVER window functions returning only the quantile rows) went through a
  temporary B-tree and measured 2-3x slower than what is done here: ``group_concat`` returns the millisecond
  values as one text per group, orjson parses them, and the values at the quantile positions are found by
  counting (``_order_statistics``); only those are converted and interpolated. One row per value cost twice
  as much as the text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, case, func, literal, select

from lightfuse.store.sql.tables import observations, traces

__all__ = ["WindowUsage", "trace_latency_percentiles", "window_usage"]

DAY_MS = 86_400_000
# Above this many days between the window's first and last observation, one GROUP BY (day, model) statement
# (a sort, but one statement) replaces the two statements per day: a sparse history of years would otherwise
# cost thousands of statements. A week or a month stays well under it.
MAX_DAY_QUERIES = 100


def _window(column, from_ms: int | None, to_ms: int | None) -> list:
    out = []
    if from_ms is not None:
        out.append(column >= from_ms)
    if to_ms is not None:
        out.append(column < to_ms)
    return out


def _obs_where(project_id: str, from_ms: int | None, to_ms: int | None) -> list:
    return [observations.c.project_id == project_id, *_window(observations.c.start_time, from_ms, to_ms)]


# --- percentiles --------------------------------------------------------------------------------------------


def _order_statistics(values: Sequence[int], positions: Sequence[int]) -> dict[int, int]:
    """position -> the value at that position (0-based) of ``values`` sorted, for the given positions.

    Counts each distinct value and walks the distinct values in order instead of sorting all values: durations
    are whole milliseconds, so a large window repeats values a lot (117k model durations had ~3k distinct:
    ~3.5 ms against ~11 ms for ``list.sort``); with all values distinct it is ~1.5x a sort.
    """
    counts = Counter(values)
    wanted = sorted(set(positions))
    out: dict[int, int] = {}
    seen = 0
    i = 0
    for value in sorted(counts):
        seen += counts[value]
        while i < len(wanted) and wanted[i] < seen:
            out[wanted[i]] = value
            i += 1
        if i == len(wanted):
            break
    return out


def _seconds_percentiles(values_ms: Sequence[int], quantiles: Sequence[float]) -> dict[float, float | None]:
    """Continuous percentiles (``percentile_cont``'s linear interpolation) in seconds of unsorted millisecond
    values: only the two neighbours of each position are found and divided by 1000 (dividing all first gives
    the same floats)."""
    if not values_ms:
        return dict.fromkeys(quantiles)
    n = len(values_ms)
    spots = {q: (q * (n - 1), int(q * (n - 1))) for q in quantiles}
    at = _order_statistics(values_ms, [p for _, lo in spots.values() for p in (lo, min(lo + 1, n - 1))])
    out: dict[float, float | None] = {}
    for q, (pos, lo) in spots.items():
        a, b = at[lo] / 1000.0, at[min(lo + 1, n - 1)] / 1000.0
        out[q] = a + (b - a) * (pos - lo)
    return out


def _parse_values(parts: Sequence[str | None]) -> list[int]:
    """``group_concat`` texts of integers (comma separated, NULLs already skipped) -> one list."""
    text = ",".join(p for p in parts if p)
    return orjson.loads(f"[{text}]") if text else []


def _pg_percentiles(values_ms, quantiles: Sequence[float]) -> list:
    return [func.percentile_cont(q).within_group(values_ms / 1000.0) for q in quantiles]


def _floats(values: Sequence[Any]) -> list[float | None]:
    return [float(v) if v is not None else None for v in values]


# --- usage per day and model --------------------------------------------------------------------------------


@dataclass
class WindowUsage:
    """``days``: one entry per UTC day with data, oldest first (``day`` = days since the epoch, ``traces``,
    ``observations``, ``inputTokens``, ``outputTokens``, ``totalTokens``, ``totalCost``); they partition the
    window, so ``totals`` are their sums. ``models``: per model name as sent (observations naming one), most
    expensive first. ``model_latency``: per model, duration percentiles in seconds of its finished observations
    (absent: none finished)."""

    days: list[dict[str, Any]]
    totals: dict[str, Any]
    models: list[dict[str, Any]]
    model_latency: dict[str, dict[float, float | None]] = field(default_factory=dict)


_USAGE_KEYS = ("observations", "inputTokens", "outputTokens", "totalTokens", "totalCost")


def _usage_columns() -> list:
    o = observations.c
    return [
        func.count(),
        func.coalesce(func.sum(o.input_tokens), 0),
        func.coalesce(func.sum(o.output_tokens), 0),
        func.coalesce(func.sum(o.total_tokens), 0),
        func.coalesce(func.sum(o.total_cost), 0.0),
    ]


def _empty_usage() -> dict[str, Any]:
    return {"observations": 0, "inputTokens": 0, "outputTokens": 0, "totalTokens": 0, "totalCost": 0.0}


def _add_usage(into: dict[str, Any], usage: Sequence[Any]) -> None:
    n, inp, out, tot, cost = usage
    into["observations"] += int(n)
    into["inputTokens"] += int(inp)
    into["outputTokens"] += int(out)
    into["totalTokens"] += int(tot)
    into["totalCost"] += float(cost)


def _project_models(project_id: str):
    """The project's distinct model names (all time), as a SELECT of one column ``name``: a loose index scan
    (recursive CTE, each step one seek for the next larger name on the model index), so it costs the number of
    distinct names, not of observations. Standard SQL: SQLite and Postgres."""
    o = observations.c
    first = select(func.min(o.provided_model_name).label("name")).where(
        o.project_id == project_id, o.provided_model_name.is_not(None)
    )
    names = first.cte("model_names", recursive=True)
    following = (
        select(func.min(o.provided_model_name))
        .where(o.project_id == project_id, o.provided_model_name > names.c.name)
        .scalar_subquery()
    )
    names = names.union_all(select(following).where(names.c.name.is_not(None)))
    return select(names.c.name).where(names.c.name.is_not(None))


def _usage_rows(
    conn: Connection, project_id: str, from_ms: int | None, to_ms: int | None, durations: bool
) -> Iterator[tuple]:
    """Rows ``(day, model or None, count, input, output, total tokens, cost[, durations text])`` covering every
    observation in the window exactly once."""
    o = observations.c
    extra = [func.group_concat(o.end_time - o.start_time, literal(","))] if durations else []
    where = _obs_where(project_id, from_ms, to_ms)
    # the days between the first and the last observation in the window: two index seeks, each in a subquery of
    # its own so both get the min/max optimisation
    first, last = conn.execute(
        select(
            select(func.min(o.start_time)).where(*where).scalar_subquery(),
            select(func.max(o.start_time)).where(*where).scalar_subquery(),
        )
    ).one()
    if first is None:
        return
    first_day, last_day = first // DAY_MS, last // DAY_MS
    if last_day - first_day + 1 > MAX_DAY_QUERIES:
        day = o.start_time // DAY_MS
        stmt = select(day, o.provided_model_name, *_usage_columns(), *extra).where(*where)
        yield from conn.execute(stmt.group_by(day, o.provided_model_name))
        return
    # built once, run per day with new bounds (statement construction showed in profiles at ~0.3 ms each)
    day_where = [o.project_id == project_id, o.start_time >= bindparam("lo"), o.start_time < bindparam("hi")]
    # the rows without a model: one range of the model index (its NULL entries), no table reads
    unnamed = select(*_usage_columns()).where(*day_where, o.provided_model_name.is_(None))
    named = (
        select(o.provided_model_name, *_usage_columns(), *extra)
        .where(*day_where, o.provided_model_name.in_(_project_models(project_id)))
        .group_by(o.provided_model_name)
    )
    for d in range(first_day, last_day + 1):
        bounds = {
            "lo": d * DAY_MS if from_ms is None else max(from_ms, d * DAY_MS),
            "hi": (d + 1) * DAY_MS if to_ms is None else min(to_ms, (d + 1) * DAY_MS),
        }
        none = conn.execute(unnamed, bounds).one()
        if none[0]:
            yield (d, None, *none, *([None] if durations else []))
        for row in conn.execute(named, bounds):
            yield (d, *row)


def _trace_days(conn: Connection, project_id: str, from_ms: int | None, to_ms: int | None) -> Sequence[Any]:
    # traces are ten times fewer than observations and the (project, timestamp) index covers this query: a
    # GROUP BY costs a few ms here, not worth a statement per day
    t = traces.c
    day = t.timestamp // DAY_MS
    stmt = select(day, func.count()).where(t.project_id == project_id, *_window(t.timestamp, from_ms, to_ms))
    return conn.execute(stmt.group_by(day)).all()


def window_usage(
    conn: Connection, project_id: str, from_ms: int | None, to_ms: int | None, quantiles: Sequence[float]
) -> WindowUsage:
    """Counts, tokens and cost per day and per model, their totals, and per-model duration percentiles."""
    sqlite = conn.dialect.name == "sqlite"
    days: dict[int, dict[str, Any]] = {}
    models: dict[str, dict[str, Any]] = {}
    durations: dict[str, list[str]] = {}

    def day_entry(day: Any) -> dict[str, Any]:
        return days.setdefault(int(day), {"day": int(day), "traces": 0, **_empty_usage()})

    for day, n in _trace_days(conn, project_id, from_ms, to_ms):
        day_entry(day)["traces"] = int(n)
    for day, model, *rest in _usage_rows(conn, project_id, from_ms, to_ms, durations=sqlite):
        usage = rest[:5]
        _add_usage(day_entry(day), usage)
        if model is not None:
            _add_usage(models.setdefault(model, {"model": model, **_empty_usage()}), usage)
            if sqlite:
                durations.setdefault(model, []).append(rest[5])

    ordered_days = [days[d] for d in sorted(days)]
    totals = {"traces": sum(d["traces"] for d in ordered_days)}
    for key in _USAGE_KEYS:
        totals[key] = sum(d[key] for d in ordered_days)
    totals["totalCost"] = float(totals["totalCost"])
    by_model = sorted(models.values(), key=lambda m: (-m["totalCost"], m["model"]))

    if sqlite:
        latency = {m: _seconds_percentiles(_parse_values(parts), quantiles) for m, parts in durations.items()}
        latency = {m: v for m, v in latency.items() if any(x is not None for x in v.values())}
    else:
        o = observations.c
        stmt = (
            select(o.provided_model_name, *_pg_percentiles(o.end_time - o.start_time, quantiles))
            .where(
                *_obs_where(project_id, from_ms, to_ms),
                o.provided_model_name.is_not(None),
                o.end_time.is_not(None),
            )
            .group_by(o.provided_model_name)
        )
        latency = {row[0]: dict(zip(quantiles, _floats(row[1:]), strict=True)) for row in conn.execute(stmt)}
    return WindowUsage(days=ordered_days, totals=totals, models=by_model, model_latency=latency)


# --- trace latency ------------------------------------------------------------------------------------------


def _trace_span_ms():
    """Correlated to ``traces``: the trace's latency in ms, from the earliest start (or end, if an end lies
    before it) of its observations to the latest end (or start); NULL for a trace without observations."""
    o, t = observations.c, traces.c
    lo = func.min(case((o.end_time < o.start_time, o.end_time), else_=o.start_time))
    hi = func.max(case((o.end_time > o.start_time, o.end_time), else_=o.start_time))
    # evaluated per trace of the window (read off the traces' time index): index-only reads of just that
    # trace's observations on the (project, trace, start, end) index. A join let SQLite walk every observation
    # of the project; ``trace_id IN (window) GROUP BY trace_id`` did the same reads ~15% slower (a group change
    # is detected by comparing trace ids row by row).
    return (
        select(hi - lo)
        .where(o.project_id == t.project_id, o.trace_id == t.id)
        .correlate(traces)
        .scalar_subquery()
    )


def trace_latency_percentiles(
    conn: Connection, project_id: str, from_ms: int | None, to_ms: int | None, quantiles: Sequence[float]
) -> dict[float, float | None]:
    """Percentiles of trace latency (seconds from the first observation start to the last end) over the traces
    in the window that have observations."""
    t = traces.c
    span = _trace_span_ms()
    in_window = [t.project_id == project_id, *_window(t.timestamp, from_ms, to_ms)]
    if conn.dialect.name == "postgresql":
        # percentile_cont skips NULLs: traces without observations do not count, as on SQLite
        row = conn.execute(select(*_pg_percentiles(span, quantiles)).where(*in_window)).one()
        return dict(zip(quantiles, _floats(row), strict=True))
    # group_concat skips NULLs too
    text = conn.execute(select(func.group_concat(span, literal(","))).where(*in_window)).scalar_one()
    return _seconds_percentiles(_parse_values([text] if text else []), quantiles)
