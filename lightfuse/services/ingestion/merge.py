"""Merge rules for ingested events (trace, observation and score rows) — pure functions, no I/O.

Each function folds an entity's events onto its stored row (or an empty row) and returns the row to persist.
Because the pipeline may replay an entity's whole event log, the result depends only on the set of events and
the stored row, never on batch boundaries or arrival order:

* events are ordered by envelope timestamp; on equal timestamps a ``*-create`` event goes first, then input order;
* an absent key never overwrites and an empty object never overwrites; explicit ``null`` overwrites only for the
  fields the rules name;
* "immutable" fields are first-writer-wins: the stored row's value, else the earliest event's.

Values are kept as the JSON values sent (metadata values and input/output are not stringified).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeGuard

from lightfuse.services.common.rows import ObservationRow, ScoreRow, TraceRow
from lightfuse.services.ingestion.events import ValidEvent
from lightfuse.services.ingestion.usage import normalise_cost, normalise_usage

__all__ = ["clamp_end_time", "merge_observation", "merge_score", "merge_trace", "order_events"]

# Nested metadata deeper than this is replaced rather than merged: it keeps the recursion bounded for hostile
# payloads (the JSON parser allows deeper nesting than Python's default recursion limit comfortably handles).
_MAX_MERGE_DEPTH = 64


def order_events(events: Iterable[ValidEvent]) -> list[ValidEvent]:
    """Merge order: envelope timestamp ascending, creates before updates on ties, otherwise input order."""
    events = list(events)
    if len(events) < 2:  # the usual case (one event per entity and commit): nothing to order
        return events
    return sorted(events, key=_merge_order_key)


def _merge_order_key(event: ValidEvent) -> tuple[int, int]:
    return event.timestamp, 0 if event.type.endswith("-create") else 1


def _ordered(events: Iterable[ValidEvent], kind: str) -> list[ValidEvent]:
    ordered = order_events(events)
    for event in ordered:
        if event.kind != kind:
            # A pipeline bug (mixed entity groups) would silently corrupt rows; fail loudly instead.
            raise ValueError(f"cannot merge a {event.kind} event ({event.type}) into a {kind} row")
    return ordered


def _metadata_map(value: Any) -> dict[str, Any]:
    """Metadata is always an object on the row; a scalar or array is wrapped under the key "metadata"."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    return {"metadata": value}


def _deep_merge(base: dict[str, Any], patch: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    # Returns a new dict; neither input is mutated (they may be a stored row or an event body).
    if not base:  # nothing to merge into (a new row): the loop below would copy patch key by key
        return dict(patch)
    out = dict(base)
    for key, value in patch.items():
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict) and depth < _MAX_MERGE_DEPTH:
            out[key] = _deep_merge(old, value, depth + 1)
        else:
            out[key] = value
    return out


def _merge_metadata(row: dict[str, Any], body: dict[str, Any]) -> None:
    patch = _metadata_map(body.get("metadata"))
    if patch:  # {} (or absent / null) leaves the stored metadata untouched
        row["metadata"] = _deep_merge(row.get("metadata") or {}, patch)


def _truthy(value: Any) -> bool:
    """JavaScript truthiness, except that {} counts as empty (empty objects never overwrite)."""
    if type(value) is str:  # the common case, decided at once
        return value != ""
    if value is None or value is False or value == "":
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0:
        return False
    return not (isinstance(value, dict) and not value)


# the IO rule, for callers that track which event supplied the IO
is_truthy_io = _truthy


def _merge_io(row: dict[str, Any], body: dict[str, Any]) -> None:
    # Last truthy value wins: SDKs send "", null or 0 on updates that did not mean to clear the IO.
    for key in ("input", "output"):
        value = body.get(key)
        if _truthy(value):
            row[key] = value


def _copy_if_present(row: dict[str, Any], body: dict[str, Any], mapping: tuple[tuple[str, str], ...]) -> None:
    """Fields where an explicit null overwrites (key present -> copied, whatever the value)."""
    for src, dst in mapping:
        if src in body:
            row[dst] = body[src]


def _copy_if_not_null(
    row: dict[str, Any], body: dict[str, Any], mapping: tuple[tuple[str, str], ...]
) -> None:
    """Fields where an explicit null means "no change"."""
    for src, dst in mapping:
        value = body.get(src)
        if value is not None:
            row[dst] = value


def _finish(
    row: dict[str, Any], stored: Mapping[str, Any] | None, events: list[ValidEvent], now_ms: int
) -> None:
    """``events`` in merge order, so the last one is the newest."""
    row["created_at"] = stored.get("created_at", now_ms) if stored else now_ms
    row["updated_at"] = now_ms
    last = events[-1].timestamp if events else None
    stored_last = stored.get("last_event_ts") if stored else None
    if stored_last is not None and (last is None or stored_last > last):
        last = stored_last
    if last is not None:
        row["last_event_ts"] = last


def _require_id(row: dict[str, Any], kind: str) -> None:
    if not row.get("id"):
        raise ValueError(f"cannot build a {kind} row without an id (no stored row and no event with body.id)")


# ---------------------------------------------------------------------------------------------------------
# Traces
# ---------------------------------------------------------------------------------------------------------

_TRACE_NULLABLE = (
    ("name", "name"),
    ("userId", "user_id"),
    ("sessionId", "session_id"),
    ("release", "release"),
    ("version", "version"),
)


def _empty_trace() -> dict[str, Any]:
    return {
        "name": None,
        "user_id": None,
        "session_id": None,
        "release": None,
        "version": None,
        "public": False,
        "bookmarked": False,
        "tags": [],
        "metadata": {},
        "input": None,
        "output": None,
    }


def merge_trace(stored: TraceRow | None, events: list[ValidEvent], project_id: str, now_ms: int) -> TraceRow:
    ordered = _ordered(events, "trace")
    row: dict[str, Any] = _empty_trace()
    if stored:
        row.update(stored)
    initialised = stored is not None
    for event in ordered:
        body = event.body
        if not initialised:
            row["id"] = event.entity_id
            row["project_id"] = project_id
            ts = body.get("timestamp")
            row["timestamp"] = ts if ts is not None else event.timestamp
            row["environment"] = body.get("environment") or "default"
            initialised = True
        _copy_if_present(row, body, _TRACE_NULLABLE)
        _merge_metadata(row, body)
        tags = body.get("tags")
        if tags:
            row["tags"] = sorted(set(row.get("tags") or ()) | set(tags))
        _merge_io(row, body)
        # Every trace event restates visibility: a missing `public` makes the trace private again, and any
        # bookmark is cleared. Reproduced on purpose, SDK users observe it.
        row["public"] = bool(body.get("public"))
        row["bookmarked"] = False
    _require_id(row, "trace")
    _finish(row, stored, ordered, now_ms)
    return row  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------------------
# Observations
# ---------------------------------------------------------------------------------------------------------

_OBSERVATION_NULLABLE = (("name", "name"), ("model", "provided_model_name"), ("level", "level"))
_OBSERVATION_NULL_IS_NO_CHANGE = (
    ("endTime", "end_time"),
    ("completionStartTime", "completion_start_time"),
    ("statusMessage", "status_message"),
    ("parentObservationId", "parent_observation_id"),
    ("version", "version"),
)


# A new observation row before its first event. Copied, not rebuilt: evaluating this 24-key literal took ~3x as
# long as copying it, at one row per ingested span. Each row gets fresh maps so that no two rows share one.
_OBSERVATION_DEFAULTS: dict[str, Any] = {
    "type": "SPAN",
    "parent_observation_id": None,
    "end_time": None,
    "completion_start_time": None,
    "name": None,
    "metadata": {},
    "level": "DEFAULT",
    "status_message": None,
    "version": None,
    "input": None,
    "output": None,
    "provided_model_name": None,
    "internal_model_id": None,
    "model_parameters": None,
    "provided_usage_details": {},
    "usage_details": {},
    "provided_cost_details": {},
    "cost_details": {},
    "total_cost": None,
    "prompt_id": None,
    "prompt_name": None,
    "prompt_version": None,
    "usage_pricing_tier_id": None,
    "usage_pricing_tier_name": None,
}
_OBSERVATION_MAP_KEYS = tuple(k for k, v in _OBSERVATION_DEFAULTS.items() if isinstance(v, dict))


def _empty_observation() -> dict[str, Any]:
    row = _OBSERVATION_DEFAULTS.copy()
    for key in _OBSERVATION_MAP_KEYS:
        row[key] = {}
    return row


def merge_observation(
    stored: ObservationRow | None,
    events: list[ValidEvent],
    project_id: str,
    now_ms: int,
    new_trace_id: Callable[[], str],
) -> ObservationRow:
    """Fold observation events. Enrichment fields (usage_details, cost_details, total_cost, internal_model_id,
    pricing tier) and prompt_id are left for later steps; only the *provided* usage/cost maps are filled."""
    ordered = _ordered(events, "observation")
    row: dict[str, Any] = _empty_observation()
    if stored:
        row.update(stored)
    initialised = stored is not None
    for event in ordered:
        body = event.body
        if not initialised:
            row["id"] = event.entity_id
            row["project_id"] = project_id
            trace_id = body.get("traceId")
            # An observation whose first event has no traceId is bound to a fresh random trace for good.
            row["trace_id"] = trace_id if trace_id is not None else new_trace_id()
            start = body.get("startTime")
            row["start_time"] = start if start is not None else event.timestamp
            row["environment"] = body.get("environment") or "default"
            initialised = True
        if event.observation_type:  # not immutable: the latest event's type wins
            row["type"] = event.observation_type
        _copy_if_present(row, body, _OBSERVATION_NULLABLE)
        _copy_if_not_null(row, body, _OBSERVATION_NULL_IS_NO_CHANGE)
        params = body.get("modelParameters")
        if params:
            row["model_parameters"] = params
        _merge_metadata(row, body)
        _merge_io(row, body)
        # A non-empty map replaces the previous one wholesale: SDKs send complete usage, never deltas.
        usage = normalise_usage(body.get("usage"), body.get("usageDetails"))
        if usage:
            row["provided_usage_details"] = usage
        cost = normalise_cost(body.get("usage"), body.get("costDetails"))
        if cost:
            row["provided_cost_details"] = cost
        prompt_name, prompt_version = body.get("promptName"), body.get("promptVersion")
        if prompt_name is not None and prompt_version is not None:
            if (prompt_name, prompt_version) != (row.get("prompt_name"), row.get("prompt_version")):
                row["prompt_id"] = None  # the pipeline resolves the new link
            row["prompt_name"] = prompt_name
            row["prompt_version"] = prompt_version
    _require_id(row, "observation")
    if row.get("level") is None:
        row["level"] = "DEFAULT"
    clamp_end_time(row)
    _finish(row, stored, ordered, now_ms)
    return row  # type: ignore[return-value]


def clamp_end_time(row: dict[str, Any]) -> None:
    """An observation never ends before it starts: an earlier end time is moved to the start."""
    end, start = row.get("end_time"), row.get("start_time")
    if end is not None and start is not None and end < start:
        row["end_time"] = start


# ---------------------------------------------------------------------------------------------------------
# Scores
# ---------------------------------------------------------------------------------------------------------

_SCORE_NULLABLE = (
    ("comment", "comment"),
    ("observationId", "observation_id"),
    ("sessionId", "session_id"),
    ("datasetRunId", "dataset_run_id"),
    ("queueId", "queue_id"),
    ("executionTraceId", "execution_trace_id"),
)


def _empty_score() -> dict[str, Any]:
    return {
        "value": None,
        "string_value": None,
        "source": "API",
        "comment": None,
        "metadata": {},
        "author_user_id": None,
        "config_id": None,
        "queue_id": None,
        "execution_trace_id": None,
        "trace_id": None,
        "observation_id": None,
        "session_id": None,
        "dataset_run_id": None,
    }


def _is_num(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_against_config(
    data_type: str | None, value: Any, config: dict[str, Any]
) -> tuple[float, str | None] | None:
    """Value -> (value, string_value) under a score config, or None when the config rejects it."""
    if data_type == "NUMERIC":
        if not _is_num(value):
            return None
        low, high = config.get("min_value"), config.get("max_value")
        if (low is not None and value < low) or (high is not None and value > high):
            return None
        return float(value), None
    if data_type == "CATEGORICAL":
        if not isinstance(value, str):
            return None
        for category in config.get("categories") or ():
            if isinstance(category, dict) and category.get("label") == value:
                mapped = category.get("value")
                return (float(mapped) if _is_num(mapped) else 0.0), value
        return None
    if data_type == "BOOLEAN":
        if not _is_num(value) or value not in (0, 1):
            return None
        return float(value), "True" if value == 1 else "False"
    if data_type == "TEXT":
        if not isinstance(value, str) or not 1 <= len(value) <= 500:
            return None
        return 0.0, value
    return None


def _inflate_score(
    body: dict[str, Any], get_config: Callable[[str], dict[str, Any] | None]
) -> dict[str, Any] | None:
    """Server-side score validation and inflation; None means the event is dropped (client already saw 201)."""
    name, value = body.get("name"), body.get("value")
    data_type = body.get("dataType")
    config_id = body.get("configId")
    source = body.get("source") or "API"
    if data_type == "CORRECTION":
        # Corrections are free text about a trace/observation output, always named "output", never configured.
        if config_id or not body.get("traceId") or not isinstance(value, str):
            return None
        return {
            "name": "output",
            "value": 0.0,
            "string_value": value,
            "data_type": "CORRECTION",
            "source": source,
        }
    if config_id:
        config = get_config(config_id)
        if config is None or config.get("is_archived"):
            return None
        config_type = config.get("data_type")
        if data_type is not None and data_type != config_type:
            return None
        checked = _check_against_config(config_type, value, config)
        if checked is None:
            return None
        number, text = checked
        return {
            "name": config.get("name") or name,  # a configured score always carries the config's name
            "value": number,
            "string_value": text,
            "data_type": config_type,
            "source": source,
        }
    if source == "ANNOTATION":
        return None  # annotations only exist against a config
    inferred = "CATEGORICAL" if isinstance(value, str) else "NUMERIC"
    data_type = data_type or inferred
    if data_type in ("NUMERIC", "BOOLEAN"):
        if not _is_num(value):
            return None
        if data_type == "BOOLEAN":
            if value not in (0, 1):
                return None
            return {
                "name": name,
                "value": float(value),
                "string_value": "True" if value == 1 else "False",
                "data_type": "BOOLEAN",
                "source": source,
            }
        return {
            "name": name,
            "value": float(value),
            "string_value": None,
            "data_type": "NUMERIC",
            "source": source,
        }
    if not isinstance(value, str):
        return None
    if data_type == "TEXT" and not 1 <= len(value) <= 500:
        return None
    # CATEGORICAL without a config has no category value to map to, so the number is 0.
    return {"name": name, "value": 0.0, "string_value": value, "data_type": data_type, "source": source}


def merge_score(
    stored: ScoreRow | None,
    events: list[ValidEvent],
    project_id: str,
    now_ms: int,
    get_config: Callable[[str], dict[str, Any] | None],
) -> ScoreRow | None:
    """Fold score events. Events failing config/type checks are dropped one by one; returns None when none
    survives (nothing to write: the stored row, if any, stays as it is)."""
    ordered = _ordered(events, "score")
    row: dict[str, Any] = _empty_score()
    if stored:
        row.update(stored)
    initialised = stored is not None
    applied = False
    for event in ordered:
        body = event.body
        inflated = _inflate_score(body, get_config)
        if inflated is None:
            continue
        applied = True
        if not initialised:
            row["id"] = event.entity_id
            row["project_id"] = project_id
            row["timestamp"] = event.timestamp  # scores have no body timestamp: the envelope time is it
            row["trace_id"] = body.get("traceId")
            row["environment"] = body.get("environment") or "default"
            initialised = True
        row.update(inflated)
        # configId is copied for CORRECTION too: the validator guarantees it is absent/null there.
        if "configId" in body:
            row["config_id"] = body["configId"]
        _copy_if_present(row, body, _SCORE_NULLABLE)
        _merge_metadata(row, body)
    if not applied:
        return None
    _require_id(row, "score")
    _finish(row, stored, ordered, now_ms)
    return row  # type: ignore[return-value]
