"""Tracing as the web UI shows it: the trace table, the trace tree and timeline, sessions and users.

Objects are built with the public API's shapes (``trace_object``, ``observation_view``, ``session_object``) and
the API's own read service for single traces and sessions, so a page and its JSON twin say what
``/api/public/...`` says; the table pages add aggregates per row (tokens, level, scores) that the API leaves out.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from sqlalchemy import Engine

from lightfuse.services.common.rows import read_metadata
from lightfuse.services.pricing.model_registry import ModelRegistry
from lightfuse.services.tracing.traces import (
    TRACE_TO_OBSERVATIONS_MS,
    NotFoundError,
    QueryError,
    TracingReads,
    iso_ms,
    trace_object,
)
from lightfuse.store.sql.filters import Condition
from lightfuse.store.sql.tracing import traces as trace_store
from lightfuse.store.sql.tracing import web_reads as store

__all__ = ["NotFoundError", "QueryError", "TraceTableFilters", "WebTracing", "LEVELS", "ORDER_FIELDS"]

LEVELS = ("DEBUG", "DEFAULT", "WARNING", "ERROR")
ORDER_FIELDS = tuple(store.TABLE_ORDER_FIELDS)


@dataclass
class TraceTableFilters:
    """What the trace table's filter form can ask for; every field maps to one API filter condition."""

    from_ms: int | None = None
    to_ms: int | None = None
    name: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    tags: Sequence[str] = ()
    level: str | None = None
    metadata: Sequence[tuple[str, str]] = ()
    search: str | None = None
    order_field: str = "timestamp"
    order_desc: bool = True
    page: int = 1
    limit: int = 50
    extra: list[Condition] = field(default_factory=list)

    def conditions(self) -> list[Condition]:
        out: list[Condition] = []
        if self.from_ms is not None:
            out.append(Condition("timestamp", "datetime", ">=", self.from_ms))
        if self.to_ms is not None:
            out.append(Condition("timestamp", "datetime", "<", self.to_ms))
        for column, value in (("name", self.name), ("userId", self.user_id), ("sessionId", self.session_id)):
            if value:
                out.append(Condition(column, "string", "=", value))
        if self.tags:
            out.append(Condition("tags", "arrayOptions", "all of", list(self.tags)))
        if self.level:
            if self.level not in LEVELS:
                raise QueryError(f"Unknown level '{self.level}'")
            out.append(Condition("level", "string", "=", self.level))
        for key, value in self.metadata:
            out.append(Condition("metadata", "stringObject", "=", value, key))
        return out + list(self.extra)


@overload
def _ms(iso: str) -> int: ...
@overload
def _ms(iso: None) -> None: ...
def _ms(iso: str | None) -> int | None:
    if iso is None:
        return None
    return int(dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def _tokens(usage: dict[str, Any]) -> int:
    total = usage.get("total")
    if isinstance(total, (int, float)) and not isinstance(total, bool):
        return int(total)
    return int(sum(v for v in usage.values() if isinstance(v, (int, float)) and not isinstance(v, bool)))


def _add_into(acc: dict[str, float], values: dict[str, Any]) -> None:
    for key, value in (values or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            acc[key] = acc.get(key, 0) + value


def _pages(total: int, limit: int) -> int:
    return max(1, math.ceil(total / limit))


class WebTracing:
    def __init__(
        self, engine: Engine, models: ModelRegistry, delete_blobs: Callable[[list[str]], None] | None = None
    ) -> None:
        self._engine = engine
        self._reads = TracingReads(engine, models, delete_blobs)

    # --- trace table ----------------------------------------------------------------------------------------

    def trace_table(self, project_id: str, f: TraceTableFilters) -> dict[str, Any]:
        q = store.TraceTableQuery(
            project_id,
            conditions=f.conditions(),
            search=(f.search or "").strip() or None,
            order_field=f.order_field,
            order_desc=f.order_desc,
            limit=f.limit,
            offset=(f.page - 1) * f.limit,
        )
        with self._engine.connect() as conn:
            rows, total = store.list_trace_table(conn, q)
            ids = [r["id"] for r in rows]
            since = f.from_ms - TRACE_TO_OBSERVATIONS_MS if f.from_ms is not None else None
            # the same latency/cost function the public trace list uses, so both show the same numbers
            metrics = trace_store.trace_page_metrics(conn, project_id, ids, since) if ids else {}
            aggregates = store.trace_aggregates(conn, project_id, ids) if ids else {}
            scores = store.trace_scores_summary(conn, project_id, ids) if ids else {}
        items = []
        for row in rows:
            item = trace_object(row, with_io=False)
            item["metadata"] = read_metadata(row.get("metadata"))
            latency, cost = metrics.get(row["id"], (0.0, 0.0))
            agg = aggregates.get(row["id"], {})
            item.update(
                htmlPath=f"/project/{project_id}/traces/{row['id']}",
                latency=latency,
                totalCost=cost,
                inputTokens=agg.get("inputTokens", 0),
                outputTokens=agg.get("outputTokens", 0),
                totalTokens=agg.get("totalTokens", 0),
                observationCount=agg.get("observations", 0),
                level=agg.get("level") or "DEFAULT",
                errorCount=agg.get("errorCount", 0),
                warningCount=agg.get("warningCount", 0),
                scores=scores.get(row["id"], []),
            )
            items.append(item)
        return {
            "data": items,
            "meta": {
                "page": f.page,
                "limit": f.limit,
                "totalItems": total,
                "totalPages": _pages(total, f.limit),
            },
        }

    def trace_names(self, project_id: str) -> list[str]:
        with self._engine.connect() as conn:
            return store.list_trace_names(conn, project_id)

    # --- one trace ------------------------------------------------------------------------------------------

    def trace_detail(self, project_id: str, trace_id: str) -> dict[str, Any]:
        """The API's trace (with observations and scores) plus the tree, timeline and usage/cost breakdowns."""
        trace = self._reads.get_trace(project_id, trace_id)
        observations = trace["observations"]
        by_id = {o["id"]: o for o in observations}
        children: dict[str | None, list[dict[str, Any]]] = {}
        for obs in observations:  # already ordered by start time
            parent = obs.get("parentObservationId")
            children.setdefault(parent if parent in by_id else None, []).append(obs)

        starts = [_ms(o["startTime"]) for o in observations]
        ends = [_ms(o["endTime"]) or _ms(o["startTime"]) for o in observations]
        trace_ms = _ms(trace["timestamp"])
        t0 = min([trace_ms, *starts]) if starts else trace_ms
        t1 = max([t0, *ends]) if ends else t0
        span = max(t1 - t0, 1)

        scores_by_obs: dict[str | None, list[dict[str, Any]]] = {}
        for score in trace["scores"]:
            scores_by_obs.setdefault(score.get("observationId"), []).append(score)

        nodes: list[dict[str, Any]] = []
        usage_total: dict[str, float] = {}
        cost_total: dict[str, float] = {}
        # iterative depth-first walk: deep agent traces must not hit Python's recursion limit
        stack = [(obs, 1) for obs in reversed(children.get(None, []))]
        seen: set[str] = set()
        while stack:
            obs, depth = stack.pop()
            if obs["id"] in seen:
                continue
            seen.add(obs["id"])
            start = _ms(obs["startTime"])
            end = _ms(obs["endTime"])
            usage = obs.get("usageDetails") or {}
            _add_into(usage_total, usage)
            _add_into(cost_total, obs.get("costDetails") or {})
            nodes.append(
                {
                    "id": obs["id"],
                    "name": obs.get("name"),
                    "type": obs["type"],
                    "level": obs.get("level") or "DEFAULT",
                    "statusMessage": obs.get("statusMessage"),
                    "model": obs.get("model"),
                    "depth": depth,
                    "startTime": obs["startTime"],
                    "endTime": obs["endTime"],
                    "latency": obs.get("latency"),
                    "totalTokens": _tokens(usage),
                    "totalCost": obs.get("calculatedTotalCost") or 0,
                    "offsetPct": round((start - t0) * 100.0 / span, 3),
                    "widthPct": round(max((end or start) - start, 0) * 100.0 / span, 3),
                    "childCount": len(children.get(obs["id"], [])),
                    "scores": scores_by_obs.get(obs["id"], []),
                }
            )
            stack.extend((c, depth + 1) for c in reversed(children.get(obs["id"], [])))
        return {
            **trace,
            "tree": nodes,
            "traceScores": scores_by_obs.get(None, []),
            "totalTokens": int(usage_total.get("total", sum(usage_total.values()))) if usage_total else 0,
            "usageDetails": usage_total,
            "costDetails": cost_total,
            "durationMs": t1 - t0,
            "startTime": iso_ms(t0),
            "levelCounts": {lv: sum(1 for n in nodes if n["level"] == lv) for lv in LEVELS},
        }

    def delete_trace(self, project_id: str, trace_id: str) -> None:
        self._reads.delete_traces(project_id, [trace_id])

    # --- sessions -------------------------------------------------------------------------------------------

    def sessions_table(
        self, project_id: str, *, page: int, limit: int, from_ms: int | None, to_ms: int | None
    ) -> dict[str, Any]:
        items, total = self._reads.list_sessions(
            project_id, page=page, limit=limit, from_ms=from_ms, to_ms=to_ms
        )
        with self._engine.connect() as conn:
            aggregates = store.session_aggregates(conn, project_id, [s["id"] for s in items]) if items else {}
        for item in items:
            agg = aggregates.get(item["id"], {})
            first, last = agg.get("firstTimestamp"), agg.get("lastTimestamp")
            item.update(
                htmlPath=f"/project/{project_id}/sessions/{item['id']}",
                traceCount=agg.get("traces", 0),
                userIds=agg.get("userIds", []),
                durationSeconds=(last - first) / 1000.0 if first is not None and last is not None else None,
                totalTokens=agg.get("totalTokens", 0),
                totalCost=agg.get("totalCost", 0.0),
            )
        return {
            "data": items,
            "meta": {"page": page, "limit": limit, "totalItems": total, "totalPages": _pages(total, limit)},
        }

    def session_detail(self, project_id: str, session_id: str) -> dict[str, Any]:
        session = self._reads.get_session(project_id, session_id)
        ids = [t["id"] for t in session["traces"]]
        with self._engine.connect() as conn:
            metrics = trace_store.trace_page_metrics(conn, project_id, ids) if ids else {}
            aggregates = store.trace_aggregates(conn, project_id, ids) if ids else {}
        for t in session["traces"]:
            latency, cost = metrics.get(t["id"], (0.0, 0.0))
            agg = aggregates.get(t["id"], {})
            t.update(
                htmlPath=f"/project/{project_id}/traces/{t['id']}",
                latency=latency,
                totalCost=cost,
                totalTokens=agg.get("totalTokens", 0),
                level=agg.get("level") or "DEFAULT",
            )
        session["totalCost"] = sum(t["totalCost"] for t in session["traces"])
        session["totalTokens"] = sum(t["totalTokens"] for t in session["traces"])
        session["userIds"] = sorted({t["userId"] for t in session["traces"] if t.get("userId")})
        return session

    # --- users ----------------------------------------------------------------------------------------------

    def users_table(
        self,
        project_id: str,
        *,
        page: int,
        limit: int,
        from_ms: int | None,
        to_ms: int | None,
        search: str | None = None,
    ) -> dict[str, Any]:
        window: dict[str, Any] = {
            "from_ms": from_ms,
            "to_ms": to_ms,
            "search": (search or "").strip() or None,
        }
        with self._engine.connect() as conn:
            rows = store.list_users(conn, project_id, limit=limit, offset=(page - 1) * limit, **window)
            total = store.count_users(conn, project_id, **window)
            aggregates = (
                store.user_aggregates(conn, project_id, [r["userId"] for r in rows], from_ms, to_ms)
                if rows
                else {}
            )
        items = []
        for row in rows:
            agg = aggregates.get(row["userId"], {})
            items.append(
                {
                    "userId": row["userId"],
                    "htmlPath": f"/project/{project_id}/users/{row['userId']}",
                    "traceCount": row["traces"],
                    "firstEvent": iso_ms(row["firstTimestamp"]),
                    "lastEvent": iso_ms(row["lastTimestamp"]),
                    "observationCount": agg.get("observations", 0),
                    "totalTokens": agg.get("totalTokens", 0),
                    "totalCost": agg.get("totalCost", 0.0),
                }
            )
        return {
            "data": items,
            "meta": {"page": page, "limit": limit, "totalItems": total, "totalPages": _pages(total, limit)},
        }

    def user_detail(self, project_id: str, user_id: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            rows = store.list_users(conn, project_id, user_id=user_id, limit=1)
            if not rows:
                raise NotFoundError(f"User {user_id} not found within authorized project")
            agg = store.user_aggregates(conn, project_id, [user_id]).get(user_id, {})
            sessions = store.user_sessions(conn, project_id, user_id)
        row = rows[0]
        return {
            "userId": user_id,
            "traceCount": row["traces"],
            "firstEvent": iso_ms(row["firstTimestamp"]),
            "lastEvent": iso_ms(row["lastTimestamp"]),
            "observationCount": agg.get("observations", 0),
            "totalTokens": agg.get("totalTokens", 0),
            "totalCost": agg.get("totalCost", 0.0),
            "sessions": [
                {
                    "id": s["sessionId"],
                    "htmlPath": f"/project/{project_id}/sessions/{s['sessionId']}",
                    "traceCount": s["traces"],
                    "firstEvent": iso_ms(s["firstTimestamp"]),
                    "lastEvent": iso_ms(s["lastTimestamp"]),
                }
                for s in sessions
            ],
        }

    # --- deep links -----------------------------------------------------------------------------------------

    def find_trace_project(self, project_ids: Sequence[str], trace_id: str) -> str | None:
        with self._engine.connect() as conn:
            return store.find_trace_project(conn, project_ids, trace_id)
