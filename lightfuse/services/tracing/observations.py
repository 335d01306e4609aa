"""Observation reads as the public API returns them: v1 (page-based ``ObservationsView``) and v2 (cursor).

v2 specifics (api-semantics 5.2): field groups chosen with ``fields`` (default core + basic), IO returned as
the raw stored text, metadata values cut to 200 characters unless listed in ``expandMetadata``, and the four
price keys always present - decimal strings from the matched model's default tier when the ``model`` group
is requested, otherwise null. The cursor is opaque base64 JSON of the last row's sort key.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine

from lightfuse.services.common.rows import read_metadata
from lightfuse.services.pricing.model_registry import ModelRegistry
from lightfuse.services.pricing.price_book import PriceBook
from lightfuse.services.tracing.traces import (
    NotFoundError,
    any_of,
    equals,
    iso_ms,
    link_prompts,
    observation_view,
    time_range,
)
from lightfuse.store.sql.filters import Condition, QueryError, parse_filter, parse_filter_time
from lightfuse.store.sql.tracing import observations as store
from lightfuse.store.sql.tracing.writes import load_io

__all__ = [
    "V2_FIELD_GROUPS",
    "ObservationFilters",
    "ObservationReads",
    "decode_cursor",
    "encode_cursor",
]

V2_FIELD_GROUPS = (
    "core",
    "basic",
    "time",
    "io",
    "metadata",
    "model",
    "usage",
    "prompt",
    "metrics",
    "trace_context",
)
V2_DEFAULT_GROUPS = frozenset({"core", "basic"})
METADATA_VALUE_LIMIT = 200
_IO_COLUMNS = ("input", "output")


@dataclass
class ObservationFilters:
    """The simple query parameters of both observation lists (each maps to one filter condition)."""

    name: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    type: str | None = None
    trace_id: str | None = None
    level: str | None = None
    parent_observation_id: str | None = None
    is_root: bool | None = None
    environments: Sequence[str] = ()
    from_ms: int | None = None
    to_ms: int | None = None
    version: str | None = None
    filter: str | None = None

    def conditions(self, *, empty_parent_means_root: bool) -> list[Condition]:
        out = [
            *equals("name", self.name),
            *equals("userId", self.user_id),
            *equals("sessionId", self.session_id),
            *equals("type", self.type),
            *equals("traceId", self.trace_id),
            *equals("level", self.level),
            *equals("version", self.version),
            *any_of("environment", self.environments),
            *time_range("startTime", self.from_ms, self.to_ms),
        ]
        if self.parent_observation_id == "" and empty_parent_means_root:
            out.append(Condition("parentObservationId", "null", "is null"))
        else:
            out += equals("parentObservationId", self.parent_observation_id)
        if self.is_root is not None:
            out.append(Condition("isRootObservation", "boolean", "=", self.is_root))
        return out


# --- cursor -------------------------------------------------------------------------------------------------


def encode_cursor(start_time: int, trace_id: str, observation_id: str) -> str:
    payload = {"lastStartTimeTo": iso_ms(start_time), "lastTraceId": trace_id, "lastId": observation_id}
    return base64.b64encode(orjson.dumps(payload)).decode()


def decode_cursor(cursor: str | None) -> tuple[int, str, str] | None:
    if cursor is None or cursor == "":
        return None
    try:
        text = cursor.strip().replace("-", "+").replace("_", "/")
        data = orjson.loads(base64.b64decode(text + "=" * (-len(text) % 4), validate=True))
        start = parse_filter_time(data["lastStartTimeTo"])
        trace_id, obs_id = data["lastTraceId"], data["lastId"]
        if not isinstance(trace_id, str) or not isinstance(obs_id, str):
            raise TypeError("cursor ids must be strings")
    except (binascii.Error, ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise QueryError("Invalid cursor format") from None
    return start, trace_id, obs_id


# --- v2 objects ---------------------------------------------------------------------------------------------


def parse_v2_fields(raw: str | None) -> frozenset[str]:
    """Unknown group names are dropped (as for traces); core is always included."""
    if raw is None or not raw.strip():
        return V2_DEFAULT_GROUPS
    wanted = {part.strip() for part in raw.split(",")}
    return frozenset(g for g in V2_FIELD_GROUPS if g in wanted) | {"core"}


def _raw_io(text: str | None) -> str | None:
    """The v2 API returns IO as text: strings as themselves, anything else as its JSON."""
    if text is None:
        return None
    value = load_io(text)
    return value if isinstance(value, str) else text


def _truncate_metadata(metadata: dict[str, Any] | None, expand: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in read_metadata(metadata).items():
        if key in expand:
            out[key] = value
            continue
        text = value if isinstance(value, str) else None
        if text is None and isinstance(value, (dict, list)):
            text = orjson.dumps(value).decode()
        out[key] = (
            text[:METADATA_VALUE_LIMIT] if text is not None and len(text) > METADATA_VALUE_LIMIT else value
        )
    return out


def _decimal_prices(book: PriceBook, model_id: str | None) -> dict[str, str]:
    model = book.get(model_id) if model_id else None
    tier = model.default_tier if model is not None else None
    if tier is None:
        return {}
    return {k: format(v, "f") for k, v in tier.decimal_prices.items()}


def observation_v2(
    row: dict[str, Any], groups: frozenset[str], book: PriceBook | None, expand: frozenset[str]
) -> dict[str, Any]:
    start, end = row["start_time"], row.get("end_time")
    item: dict[str, Any] = {
        "id": row["id"],
        "traceId": row["trace_id"],
        "startTime": iso_ms(start),
        "endTime": iso_ms(end),
        "projectId": row["project_id"],
        "parentObservationId": row.get("parent_observation_id") or None,
        "type": row["type"],
    }
    if "basic" in groups:
        item.update(
            name=row.get("name"),
            level=row.get("level"),
            statusMessage=row.get("status_message"),
            version=row.get("version"),
            environment=row.get("environment"),
            bookmarked=bool(row.get("trace_bookmarked")),
            public=bool(row.get("trace_public")),
            userId=row.get("trace_user_id"),
            sessionId=row.get("trace_session_id"),
            isRootObservation=not row.get("parent_observation_id"),
        )
    if "time" in groups:
        item.update(
            completionStartTime=iso_ms(row.get("completion_start_time")),
            createdAt=iso_ms(row.get("created_at")),
            updatedAt=iso_ms(row.get("updated_at")),
        )
    if "io" in groups:
        item.update(input=_raw_io(row.get("input")), output=_raw_io(row.get("output")))
    if "metadata" in groups:
        item["metadata"] = _truncate_metadata(row.get("metadata"), expand)
    if "model" in groups:
        item.update(
            providedModelName=row.get("provided_model_name"),
            internalModelId=row.get("internal_model_id"),
            modelParameters=row.get("model_parameters"),
        )
    if "usage" in groups:
        item.update(
            usageDetails=row.get("usage_details") or {},
            costDetails=row.get("cost_details") or {},
            totalCost=row.get("total_cost"),
            usagePricingTierName=row.get("usage_pricing_tier_name"),
        )
    if "prompt" in groups:
        item.update(
            promptId=row.get("prompt_id"),
            promptName=row.get("prompt_name"),
            promptVersion=row.get("prompt_version"),
        )
    if "metrics" in groups:
        item["latency"] = None if end is None else (end - start) / 1000.0
        completion = row.get("completion_start_time")
        item["timeToFirstToken"] = None if completion is None else (completion - start) / 1000.0
    if "trace_context" in groups:
        item.update(
            traceName=row.get("trace_name"),
            tags=list(row.get("trace_tags") or []),
            release=row.get("trace_release"),
        )
    prices = _decimal_prices(book, row.get("internal_model_id")) if book is not None else {}
    item["modelId"] = row.get("internal_model_id") if "model" in groups else None
    item["inputPrice"] = prices.get("input")
    item["outputPrice"] = prices.get("output")
    item["totalPrice"] = prices.get("total")
    return item


def _check_io_filters(conditions: Sequence[Condition]) -> None:
    """v2 searches input/output only with an exact or ``matches`` anchor (Langfuse rejects bare substring
    scans of IO, which cannot use an index)."""
    io = [c for c in conditions if c.column in _IO_COLUMNS]
    if io and not any(c.operator in ("=", "matches") for c in io):
        raise QueryError(
            "Filters on input/output need at least one '=' or 'matches' condition on input or output; "
            "standalone 'contains', 'does not contain', 'starts with' and 'ends with' are not supported"
        )


# --- the service --------------------------------------------------------------------------------------------


class ObservationReads:
    def __init__(self, engine: Engine, models: ModelRegistry) -> None:
        self._engine = engine
        self._models = models

    def list_observations(
        self, project_id: str, filters: ObservationFilters, *, page: int = 1, limit: int = 50
    ) -> tuple[list[dict[str, Any]], int]:
        q = store.ObservationQuery(
            project_id,
            simple=filters.conditions(empty_parent_means_root=False),
            advanced=parse_filter(filters.filter),
            limit=limit,
            offset=(page - 1) * limit,
        )
        with self._engine.connect() as conn:
            rows = store.list_observations(conn, q)
            total = store.count_observations(conn, q)
            link_prompts(conn, project_id, rows)
            book = self._models.price_book(conn, project_id) if rows else None
        return [observation_view(r, book) for r in rows] if book is not None else [], total

    def get_observation(self, project_id: str, observation_id: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            row = store.get_observation(conn, project_id, observation_id)
            if row is None:
                raise NotFoundError(f"Observation {observation_id} not found within authorized project")
            link_prompts(conn, project_id, [row])
            book = self._models.price_book(conn, project_id)
        return observation_view(row, book)

    def list_observations_v2(
        self,
        project_id: str,
        filters: ObservationFilters,
        *,
        limit: int = 50,
        cursor: str | None = None,
        fields: str | None = None,
        expand_metadata: str | None = None,
        parse_io_as_json: bool = False,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page and the cursor of the next one (None on the last page)."""
        if parse_io_as_json:
            raise QueryError(
                "parseIoAsJson is no longer supported: input and output are always returned as raw strings. "
                "Remove the parameter or set it to false."
            )
        groups = parse_v2_fields(fields)
        expand = frozenset(k.strip() for k in (expand_metadata or "").split(",") if k.strip())
        after = decode_cursor(cursor)
        advanced = parse_filter(filters.filter)
        _check_io_filters(advanced)
        if limit == 0:
            return [], None
        q = store.ObservationQuery(
            project_id,
            simple=filters.conditions(empty_parent_means_root=True),
            advanced=advanced,
            limit=limit + 1,  # one extra row tells whether another page exists
            with_io="io" in groups,
            with_metadata="metadata" in groups,
        )
        with self._engine.connect() as conn:
            rows = store.list_observations_after(conn, q, after)
            if "prompt" in groups:
                link_prompts(conn, project_id, rows[:limit])
            book = self._models.price_book(conn, project_id) if rows and "model" in groups else None
        more = len(rows) > limit
        rows = rows[:limit]
        items = [observation_v2(r, groups, book, expand) for r in rows]
        next_cursor = None
        if more and rows:
            last = rows[-1]
            next_cursor = encode_cursor(last["start_time"], last["trace_id"], last["id"])
        return items, next_cursor
