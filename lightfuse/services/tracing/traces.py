"""Read side of tracing: traces, sessions and the legacy daily metrics as the public API returns them.

Store rows (epoch ms, parsed JSON) become the Langfuse API objects here (api-semantics 5.1, 5.3, 5.7): field
names, ISO times with milliseconds and ``Z``, and the sentinels for field groups a caller left out
(latency/totalCost ``-1``, ``[]`` for observations/scores, ``null`` IO and ``{}`` metadata) - Langfuse clients
rely on those keys being present. The v1 observation object (``ObservationsView``) is built here too because
the trace detail embeds it; observation lists live in ``observations``.

Errors: ``QueryError`` (a ValueError) for a request the client got wrong, ``NotFoundError`` for a missing
entity; the API layer turns them into 400 / 404.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Engine

from lightfuse.services.common.rows import iso_ms, read_metadata
from lightfuse.services.pricing.model_registry import ModelRegistry
from lightfuse.services.pricing.price_book import PriceBook, default_tier_prices
from lightfuse.store.sql import media as media_store
from lightfuse.store.sql import prompts as prompt_store
from lightfuse.store.sql.filters import Condition, QueryError, parse_filter
from lightfuse.store.sql.tracing import traces as store
from lightfuse.store.sql.tracing import writes as tracing_writes

__all__ = [
    "TRACE_FIELD_GROUPS",
    "NotFoundError",
    "QueryError",
    "TracingReads",
    "iso_ms",
    "link_prompts",
    "observation_view",
    "parse_trace_fields",
    "score_v1",
    "trace_object",
]

TRACE_FIELD_GROUPS = ("core", "io", "scores", "observations", "metrics")
TRACE_TO_OBSERVATIONS_MS = store.TRACE_TO_OBSERVATIONS_MS


class NotFoundError(LookupError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- small helpers ------------------------------------------------------------------------------------------


def parse_trace_fields(raw: str | None) -> frozenset[str]:
    """``fields`` -> the groups to include; absent/empty means all, unknown names are dropped, core is implied."""
    if raw is None or not raw.strip():
        return frozenset(TRACE_FIELD_GROUPS)
    wanted = {part.strip() for part in raw.split(",")}
    return frozenset(g for g in TRACE_FIELD_GROUPS if g in wanted) | {"core"}


def parse_order_by(raw: str | None) -> tuple[str, bool]:
    """``"<field>.<asc|desc>"`` -> (field, descending). Default: newest first."""
    if raw is None or not raw.strip():
        return "timestamp", True
    field, _, direction = raw.strip().rpartition(".")
    if not field or direction.lower() not in ("asc", "desc"):
        raise QueryError(f"Invalid orderBy '{raw}': expected '<field>.<asc|desc>', e.g. timestamp.desc")
    if field not in store.TRACE_ORDER_FIELDS:
        raise QueryError(
            f"Invalid orderBy field '{field}'. Allowed fields: {', '.join(store.TRACE_ORDER_FIELDS)}"
        )
    return field, direction.lower() == "desc"


def equals(column: str, value: str | None) -> list[Condition]:
    return [] if value is None or value == "" else [Condition(column, "string", "=", value)]


def any_of(column: str, values: Sequence[str]) -> list[Condition]:
    return [Condition(column, "stringOptions", "any of", list(values))] if values else []


def time_range(column: str, from_ms: int | None, to_ms: int | None) -> list[Condition]:
    out = []
    if from_ms is not None:
        out.append(Condition(column, "datetime", ">=", from_ms))
    if to_ms is not None:
        out.append(Condition(column, "datetime", "<", to_ms))
    return out


def _sum_matching(values: dict[str, Any] | None, part: str) -> tuple[float, bool]:
    total: float = 0
    found = False
    for key, value in (values or {}).items():
        if part in key and isinstance(value, (int, float)) and not isinstance(value, bool):
            total += value
            found = True
    return total, found


def _seconds(later: int | None, earlier: int | None) -> float | None:
    return None if later is None or earlier is None else (later - earlier) / 1000.0


# --- API objects --------------------------------------------------------------------------------------------


def link_prompts(conn: Connection, project_id: str, rows: Sequence[dict[str, Any]]) -> None:
    """Fill ``prompt_id`` of observation rows from their (prompt_name, prompt_version), in place.

    The link is resolved when it is read, not when the observation is written: one query per page of rows
    keeps the ingestion hot path free of prompt lookups, and a prompt created (or deleted) after the
    generation that names it is linked (or unlinked) from then on, as the spec's "unknown prompt -> null link"
    would give for the state of the prompts at read time. Rows that already carry an id keep it.
    """
    pairs = {
        (r["prompt_name"], int(r["prompt_version"]))
        for r in rows
        if r.get("prompt_id") is None and r.get("prompt_name") and _is_int(r.get("prompt_version"))
    }
    if not pairs:
        return
    ids = prompt_store.prompt_ids(conn, project_id, pairs)
    for r in rows:
        if r.get("prompt_id") is None and r.get("prompt_name") and _is_int(r.get("prompt_version")):
            r["prompt_id"] = ids.get((r["prompt_name"], int(r["prompt_version"])))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def trace_object(row: dict[str, Any], *, with_io: bool = True) -> dict[str, Any]:
    """The ``Trace`` object (plus the extra keys Langfuse also emits)."""
    return {
        "id": row["id"],
        "projectId": row["project_id"],
        "timestamp": iso_ms(row["timestamp"]),
        "name": row.get("name"),
        "input": row.get("input") if with_io else None,
        "output": row.get("output") if with_io else None,
        "sessionId": row.get("session_id"),
        "release": row.get("release"),
        "version": row.get("version"),
        "userId": row.get("user_id"),
        "metadata": read_metadata(row.get("metadata")) if with_io else {},
        "tags": list(row.get("tags") or []),
        "public": bool(row.get("public")),
        "bookmarked": bool(row.get("bookmarked")),
        "environment": row.get("environment"),
        "createdAt": iso_ms(row.get("created_at")),
        "updatedAt": iso_ms(row.get("updated_at")),
        "externalId": None,
    }


def _prices(book: PriceBook, model_id: str | None) -> dict[str, float]:
    model = book.get(model_id) if model_id else None
    return default_tier_prices(model) if model is not None else {}


def observation_view(row: dict[str, Any], book: PriceBook, *, zero_prices: bool = False) -> dict[str, Any]:
    """The v1 ``ObservationsView`` object: stored fields plus derived costs, legacy usage, latency, prices."""
    usage = row.get("usage_details") or {}
    cost = row.get("cost_details") or {}
    prices = _prices(book, row.get("internal_model_id"))
    missing_price = 0 if zero_prices else None
    input_units, _ = _sum_matching(usage, "input")
    output_units, _ = _sum_matching(usage, "output")
    total_units = usage.get("total") if isinstance(usage.get("total"), (int, float)) else 0
    input_cost, has_input_cost = _sum_matching(cost, "input")
    output_cost, has_output_cost = _sum_matching(cost, "output")
    start = row["start_time"]
    return {
        "id": row["id"],
        "projectId": row["project_id"],
        "traceId": row["trace_id"],
        "parentObservationId": row.get("parent_observation_id"),
        "type": row["type"],
        "name": row.get("name"),
        "environment": row.get("environment"),
        "startTime": iso_ms(start),
        "endTime": iso_ms(row.get("end_time")),
        "completionStartTime": iso_ms(row.get("completion_start_time")),
        "createdAt": iso_ms(row.get("created_at")),
        "updatedAt": iso_ms(row.get("updated_at")),
        "version": row.get("version"),
        "input": row.get("input"),
        "output": row.get("output"),
        "metadata": read_metadata(row.get("metadata")),
        "level": row.get("level"),
        "statusMessage": row.get("status_message"),
        "model": row.get("provided_model_name"),
        "modelParameters": row.get("model_parameters"),
        "promptId": row.get("prompt_id"),
        "promptName": row.get("prompt_name"),
        "promptVersion": row.get("prompt_version"),
        "usageDetails": usage,
        "costDetails": cost,
        "usagePricingTierId": row.get("usage_pricing_tier_id"),
        "usagePricingTierName": row.get("usage_pricing_tier_name"),
        "modelId": row.get("internal_model_id"),
        "inputPrice": prices.get("input", missing_price),
        "outputPrice": prices.get("output", missing_price),
        "totalPrice": prices.get("total", missing_price),
        "calculatedInputCost": input_cost if has_input_cost else None,
        "calculatedOutputCost": output_cost if has_output_cost else None,
        "calculatedTotalCost": cost.get("total", 0),
        "latency": _seconds(row.get("end_time"), start),
        "timeToFirstToken": _seconds(row.get("completion_start_time"), start),
        # the legacy usage object carries its costs too (nullable keys Langfuse sends)
        "usage": {
            "unit": "TOKENS",
            "input": input_units,
            "output": output_units,
            "total": total_units,
            "inputCost": input_cost if has_input_cost else None,
            "outputCost": output_cost if has_output_cost else None,
            "totalCost": cost.get("total"),
        },
        "unit": "TOKENS",
        "promptTokens": input_units,
        "completionTokens": output_units,
        "totalTokens": total_units,
    }


def score_v1(row: dict[str, Any]) -> dict[str, Any]:
    """The ``ScoreV1`` object (trace-scoped scores of the listable types)."""
    data_type = row["data_type"]
    item: dict[str, Any] = {
        "id": row["id"],
        "projectId": row["project_id"],
        "traceId": row.get("trace_id"),
        "observationId": row.get("observation_id"),
        "name": row["name"],
        "source": row["source"],
        "dataType": data_type,
        "timestamp": iso_ms(row["timestamp"]),
        "createdAt": iso_ms(row.get("created_at")),
        "updatedAt": iso_ms(row.get("updated_at")),
        "authorUserId": row.get("author_user_id"),
        "comment": row.get("comment"),
        "metadata": read_metadata(row.get("metadata")),
        "configId": row.get("config_id"),
        "queueId": row.get("queue_id"),
        "environment": row.get("environment"),
    }
    if data_type != "TEXT":
        item["value"] = row.get("value") if row.get("value") is not None else 0
    # Langfuse sends the key on numeric scores too, as null (clients index into it)
    item["stringValue"] = row.get("string_value") if data_type != "NUMERIC" else None
    return item


def _detail_latency(rows: Sequence[dict[str, Any]]) -> float:
    """Trace detail latency: last end - first start; without end times, last start - first start."""
    if not rows:
        return 0.0
    first_start = min(r["start_time"] for r in rows)
    ends = [r["end_time"] for r in rows if r.get("end_time") is not None]
    if ends:
        return (max(ends) - first_start) / 1000.0
    if len(rows) >= 2:
        return (max(r["start_time"] for r in rows) - first_start) / 1000.0
    return 0.0


# --- the service --------------------------------------------------------------------------------------------


class TracingReads:
    """Stateless facade over the read queries; cheap to construct (it holds the engine and the registry)."""

    def __init__(
        self, engine: Engine, models: ModelRegistry, delete_blobs: Callable[[list[str]], None] | None = None
    ) -> None:
        self._engine = engine
        self._models = models
        self._delete_blobs = delete_blobs  # media blobs that deleted traces leave unreferenced

    # traces ---------------------------------------------------------------------------------------------------

    def list_traces(
        self,
        project_id: str,
        *,
        page: int = 1,
        limit: int = 50,
        user_id: str | None = None,
        name: str | None = None,
        session_id: str | None = None,
        version: str | None = None,
        release: str | None = None,
        tags: Sequence[str] = (),
        environments: Sequence[str] = (),
        from_ms: int | None = None,
        to_ms: int | None = None,
        order_by: str | None = None,
        fields: str | None = None,
        filter: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        groups = parse_trace_fields(fields)
        order_field, order_desc = parse_order_by(order_by)
        simple = [
            *equals("userId", user_id),
            *equals("name", name),
            *equals("sessionId", session_id),
            *equals("version", version),
            *equals("release", release),
            *any_of("environment", environments),
            *time_range("timestamp", from_ms, to_ms),
        ]
        if tags:
            simple.append(Condition("tags", "arrayOptions", "all of", list(tags)))
        q = store.TraceQuery(
            project_id,
            simple=simple,
            advanced=parse_filter(filter),
            order_field=order_field,
            order_desc=order_desc,
            limit=limit,
            offset=(page - 1) * limit,
            with_io="io" in groups,
        )
        with self._engine.connect() as conn:
            rows = store.list_traces(conn, q)
            total = store.count_traces(conn, q)
            ids = [r["id"] for r in rows]
            metrics = obs_ids = score_ids = None
            if ids and "metrics" in groups:
                since = from_ms - TRACE_TO_OBSERVATIONS_MS if from_ms is not None else None
                metrics = store.trace_page_metrics(conn, project_id, ids, since)
            if ids and "observations" in groups:
                obs_ids = store.trace_observation_ids(conn, project_id, ids)
            if ids and "scores" in groups:
                score_ids = store.trace_score_ids(conn, project_id, ids)
        items = []
        for row in rows:
            item = trace_object(row, with_io="io" in groups)
            item["htmlPath"] = f"/project/{project_id}/traces/{row['id']}"
            if metrics is not None:
                latency, cost = metrics.get(row["id"], (0.0, 0.0))  # no observations: 0 and 0
            else:
                latency, cost = -1, -1
            item["latency"] = latency
            item["totalCost"] = cost
            item["observations"] = (obs_ids or {}).get(row["id"], []) if "observations" in groups else []
            item["scores"] = (score_ids or {}).get(row["id"], []) if "scores" in groups else []
            items.append(item)
        return items, total

    def get_trace(self, project_id: str, trace_id: str, fields: str | None = None) -> dict[str, Any]:
        groups = parse_trace_fields(fields)
        with self._engine.connect() as conn:
            row = store.get_trace(conn, project_id, trace_id, with_io="io" in groups)
            if row is None:
                raise NotFoundError(f"Trace {trace_id} not found within authorized project")
            need_obs = "observations" in groups or "metrics" in groups
            obs_rows = store.list_trace_observations(conn, project_id, trace_id) if need_obs else []
            link_prompts(conn, project_id, obs_rows)
            score_rows = store.list_trace_scores(conn, project_id, trace_id) if "scores" in groups else []
            book = self._models.price_book(conn, project_id) if obs_rows else None
        views = [observation_view(r, book, zero_prices=True) for r in obs_rows] if book is not None else []
        item = trace_object(row, with_io="io" in groups)
        item["htmlPath"] = f"/project/{project_id}/traces/{trace_id}"
        if "metrics" in groups:
            item["latency"] = _detail_latency(obs_rows)
            item["totalCost"] = sum(v["calculatedTotalCost"] or 0 for v in views)
        else:
            item["latency"] = -1
            item["totalCost"] = -1
        item["observations"] = views if "observations" in groups else []
        item["scores"] = [score_v1(s) for s in score_rows]
        return item

    def delete_traces(self, project_id: str, trace_ids: Iterable[str]) -> None:
        """Delete at once (Langfuse queues the deletion); traces of other projects are never touched."""
        ids = list(dict.fromkeys(trace_ids))
        with self._engine.begin() as conn:
            tracing_writes.delete_traces(conn, project_id, ids)
            orphaned_blobs = media_store.unlink_traces(conn, project_id, ids)
        # blobs go only after the records did: a failed commit must not leave records without their bytes
        if orphaned_blobs and self._delete_blobs is not None:
            self._delete_blobs(orphaned_blobs)

    # sessions -------------------------------------------------------------------------------------------------

    def list_sessions(
        self,
        project_id: str,
        *,
        page: int = 1,
        limit: int = 50,
        from_ms: int | None = None,
        to_ms: int | None = None,
        environments: Sequence[str] = (),
    ) -> tuple[list[dict[str, Any]], int]:
        window: dict[str, Any] = {"from_ms": from_ms, "to_ms": to_ms, "environments": environments}
        with self._engine.connect() as conn:
            rows = store.list_sessions(conn, project_id, limit=limit, offset=(page - 1) * limit, **window)
            total = store.count_sessions(conn, project_id, **window)
        return [session_object(r) for r in rows], total

    def get_session(self, project_id: str, session_id: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            row = store.get_session(conn, project_id, session_id)
            if row is None:
                raise NotFoundError("Session not found within authorized project")
            trace_rows = store.list_session_traces(conn, project_id, session_id)
        item = session_object(row)
        item["traces"] = [trace_object(t) for t in trace_rows]
        return item

    # daily metrics --------------------------------------------------------------------------------------------

    def daily_metrics(
        self,
        project_id: str,
        *,
        page: int = 1,
        limit: int = 50,
        trace_name: str | None = None,
        user_id: str | None = None,
        tags: Sequence[str] = (),
        environments: Sequence[str] = (),
        from_ms: int | None = None,
        to_ms: int | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        simple = [
            *equals("name", trace_name),
            *equals("userId", user_id),
            *any_of("environment", environments),
            *time_range("timestamp", from_ms, to_ms),
        ]
        if tags:
            simple.append(Condition("tags", "arrayOptions", "all of", list(tags)))
        with self._engine.connect() as conn:
            days = store.daily_metrics(conn, project_id, simple)
        offset = (page - 1) * limit
        return days[offset : offset + limit], len(days)


def session_object(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "createdAt": iso_ms(row["created_at"]),
        "projectId": row["project_id"],
        "environment": row["environment"],
    }
