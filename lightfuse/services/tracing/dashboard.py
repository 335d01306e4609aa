"""The project home dashboard: counts, tokens, cost and latency percentiles over a time window.

Days are UTC. The per-day series is dense (days without data are present with zeros) when it spans at most
``MAX_DENSE_DAYS``, so charts show quiet days as zero instead of joining distant points.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine

from lightfuse.services.common.clock import now_ms
from lightfuse.services.tracing.traces import iso_ms
from lightfuse.store.sql.tracing import dashboard as store

QUANTILES = (0.5, 0.95, 0.99)
MAX_DENSE_DAYS = 400
DAY_MS = store.DAY_MS
_DAY_KEYS = ("day", "traces", "observations", "totalTokens", "totalCost")  # what the per-day series shows


def _day_string(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def _named(values: dict[float, float | None]) -> dict[str, float | None]:
    return {f"p{round(q * 100)}": values.get(q) for q in QUANTILES}


def _dense(days: list[dict[str, Any]], from_ms: int | None, to_ms: int | None) -> list[dict[str, Any]]:
    """Fill days without data with zeros, from the window's start (or the first day with data) to its end
    (or today), unless that span is too long to be worth it."""
    first = from_ms // DAY_MS if from_ms is not None else (days[0]["day"] if days else None)
    last = (to_ms - 1) // DAY_MS if to_ms is not None else now_ms() // DAY_MS
    if first is None or last < first or last - first > MAX_DENSE_DAYS:
        return days
    have = {d["day"]: d for d in days}
    return [
        have.get(d, {"day": d, "traces": 0, "observations": 0, "totalTokens": 0, "totalCost": 0.0})
        for d in range(first, last + 1)
    ]


class Dashboard:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def summary(self, project_id: str, from_ms: int | None, to_ms: int | None) -> dict[str, Any]:
        # one connection, so both reads see the same snapshot
        with self._engine.connect() as conn:
            usage = store.window_usage(conn, project_id, from_ms, to_ms, QUANTILES)
            trace_latency = store.trace_latency_percentiles(conn, project_id, from_ms, to_ms, QUANTILES)
        days = _dense([{key: d[key] for key in _DAY_KEYS} for d in usage.days], from_ms, to_ms)
        for d in days:
            d["date"] = _day_string(d["day"])
        models = usage.models
        for m in models:
            m["latency"] = _named(usage.model_latency.get(m["model"], {}))
        return {
            "fromTimestamp": iso_ms(from_ms),
            "toTimestamp": iso_ms(to_ms),
            "totals": usage.totals,
            "traceLatency": _named(trace_latency),
            "byDay": days,
            "byModel": models,
        }
