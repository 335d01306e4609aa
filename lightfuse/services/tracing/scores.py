"""Scores and score configs: API objects, the v3 cursor, config validation and the store calls behind them.

Rows are the dicts of ``store.sql.tracing.scores`` / ``store.sql.tracing.score_configs`` (times in epoch ms). The three
score read APIs render the same row differently:

* v1 (``/api/public/scores``): trace-level scores of the listable types only; ``traceId`` always set.
* v2 (``/api/public/v2/scores``): every scope and type, discriminated by ``dataType``; NUMERIC has no
  ``stringValue`` and TEXT no ``value`` (their schemas do not carry them).
* v3 (``/api/public/v3/scores``): one polymorphic ``value`` (number, boolean or string by dataType) and
  optional field groups.

Validation errors raise :class:`ScoreRequestError`; its message is meant for the client (HTTP 400).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
import re
import uuid
from typing import Any, TypeGuard

import orjson
from sqlalchemy import Engine

from lightfuse.services.common.clock import now_ms
from lightfuse.services.common.rows import iso_ms, read_metadata

# re-exported: the HTTP layer builds queries from these without importing the store
from lightfuse.store.sql.filters import QueryError, filter_items
from lightfuse.store.sql.tracing import score_configs as config_store
from lightfuse.store.sql.tracing import scores as score_reads
from lightfuse.store.sql.tracing import writes as tracing_writes
from lightfuse.store.sql.tracing.scores import FILTER_COLUMNS, Condition, ScoreQuery

__all__ = [
    "CONFIG_DATA_TYPES",
    "FILTER_COLUMNS",
    "Condition",
    "QueryError",
    "filter_items",
    "ScoreQuery",
    "LISTABLE_TYPES",
    "V3_FIELD_GROUPS",
    "ScoreRequestError",
    "config_to_api",
    "decode_cursor",
    "encode_cursor",
    "score_config_problem",
    "score_v1",
    "score_v2",
    "score_v3",
    "validate_config_create",
    "validate_config_update",
]

# Types the v1 endpoints (and trace detail pages) list; CORRECTION is a newer type old clients cannot parse.
LISTABLE_TYPES = ("NUMERIC", "BOOLEAN", "CATEGORICAL", "TEXT")
CONFIG_DATA_TYPES = ("NUMERIC", "CATEGORICAL", "BOOLEAN", "TEXT")
V3_FIELD_GROUPS = ("details", "subject", "annotation")
BOOLEAN_CATEGORIES = [{"label": "True", "value": 1}, {"label": "False", "value": 0}]
_CONFIG_NAME_RE = re.compile(r"[A-Za-z0-9_ .()\-]{1,35}")
_TEXT_MAX = 500


class ScoreRequestError(ValueError):
    """A client mistake in a score or score-config request; ``message`` is returned with HTTP 400."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _iso(ms: int | None) -> str | None:
    return iso_ms(ms)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --------------------------------------------------------------------------------------------------------------
# Score API objects
# --------------------------------------------------------------------------------------------------------------


def _number(value: float | None) -> float | int | None:
    # Integral floats read back from REAL columns are rendered as ints (1 rather than 1.0), as JSON clients
    # that wrote 1 expect to read 1.
    if value is None:
        return None
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else value


def _trace_data(row: dict[str, Any]) -> dict[str, Any] | None:
    if row.get("trace_row_id") is None:
        return None
    return {
        "userId": row.get("trace_user_id"),
        "tags": row.get("trace_tags") or [],
        "environment": row.get("trace_environment"),
        "sessionId": row.get("trace_session_id"),
    }


def score_v2(row: dict[str, Any], *, with_trace: bool = False) -> dict[str, Any]:
    data_type = row["data_type"]
    out: dict[str, Any] = {
        "id": row["id"],
        "projectId": row["project_id"],
        "environment": row["environment"],
        "name": row["name"],
        "dataType": data_type,
        "source": row["source"],
        "authorUserId": row.get("author_user_id"),
        "comment": row.get("comment"),
        "metadata": read_metadata(row.get("metadata")),
        "configId": row.get("config_id"),
        "queueId": row.get("queue_id"),
        "executionTraceId": row.get("execution_trace_id"),
        "traceId": row.get("trace_id"),
        "observationId": row.get("observation_id"),
        "sessionId": row.get("session_id"),
        "datasetRunId": row.get("dataset_run_id"),
        "timestamp": _iso(row["timestamp"]),
        "createdAt": _iso(row["created_at"]),
        "updatedAt": _iso(row["updated_at"]),
    }
    if data_type != "TEXT":
        out["value"] = _number(row.get("value")) if row.get("value") is not None else 0
    if data_type != "NUMERIC":
        out["stringValue"] = row.get("string_value") or ""
    if with_trace:
        out["trace"] = _trace_data(row)
    return out


def score_v1(row: dict[str, Any], *, with_trace: bool = False) -> dict[str, Any]:
    """The v1 object: trace-scoped by construction, so session and dataset-run keys are not part of it."""
    out = score_v2(row, with_trace=with_trace)
    out.pop("sessionId", None)
    out.pop("datasetRunId", None)
    return out


def _subject(row: dict[str, Any]) -> dict[str, Any] | None:
    if row.get("observation_id"):
        return {"kind": "observation", "id": row["observation_id"], "traceId": row.get("trace_id")}
    if row.get("trace_id"):
        return {"kind": "trace", "id": row["trace_id"]}
    if row.get("session_id"):
        return {"kind": "session", "id": row["session_id"]}
    if row.get("dataset_run_id"):
        return {"kind": "experiment", "id": row["dataset_run_id"]}
    return None


def _v3_value(row: dict[str, Any]) -> Any:
    data_type = row["data_type"]
    if data_type == "NUMERIC":
        return _number(row.get("value")) if row.get("value") is not None else 0
    if data_type == "BOOLEAN":
        return row.get("value") == 1
    return row.get("string_value") or ""


def score_v3(row: dict[str, Any], groups: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row["id"],
        "projectId": row["project_id"],
        "name": row["name"],
        "value": _v3_value(row),
        "dataType": row["data_type"],
        "source": row["source"],
        "timestamp": _iso(row["timestamp"]),
        "environment": row["environment"],
        "createdAt": _iso(row["created_at"]),
        "updatedAt": _iso(row["updated_at"]),
    }
    if "details" in groups:
        out["comment"] = row.get("comment")
        out["configId"] = row.get("config_id")
        out["metadata"] = read_metadata(row.get("metadata"))
    if "subject" in groups:
        out["subject"] = _subject(row)
    if "annotation" in groups:
        out["authorUserId"] = row.get("author_user_id")
        out["queueId"] = row.get("queue_id")
    return out


# --------------------------------------------------------------------------------------------------------------
# v3 cursor: base64url(JSON {v:1, lastTimestamp, lastId}) of the last row of the previous page
# --------------------------------------------------------------------------------------------------------------


def encode_cursor(row: dict[str, Any]) -> str:
    payload = {"v": 1, "lastTimestamp": _iso(row["timestamp"]), "lastId": row["id"]}
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """-> (timestamp ms, id). The timestamp travels as ISO text, which loses nothing: rows store whole ms."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = orjson.loads(raw)
        if not isinstance(payload, dict) or payload.get("v") != 1:
            raise ValueError("unknown cursor version")
        last_id = payload["lastId"]
        when = dt.datetime.fromisoformat(str(payload["lastTimestamp"]).replace("Z", "+00:00"))
        if not isinstance(last_id, str) or when.tzinfo is None:
            raise ValueError("malformed cursor")
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise ScoreRequestError("Invalid cursor") from None
    return round(when.timestamp() * 1000), last_id


# --------------------------------------------------------------------------------------------------------------
# Score configs
# --------------------------------------------------------------------------------------------------------------


def config_to_api(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "createdAt": _iso(row["created_at"]),
        "updatedAt": _iso(row["updated_at"]),
        "projectId": row["project_id"],
        "dataType": row["data_type"],
        "isArchived": bool(row["is_archived"]),
        "minValue": _number(row.get("min_value")),
        "maxValue": _number(row.get("max_value")),
        "categories": row.get("categories"),
        "description": row.get("description"),
    }


def _config_name(value: Any) -> str:
    if not isinstance(value, str) or not _CONFIG_NAME_RE.fullmatch(value):
        raise ScoreRequestError(
            "name must be 1 to 35 characters of letters, numbers, underscores, spaces, periods, parentheses "
            "and hyphens"
        )
    return value


def _categories(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise ScoreRequestError(
            "categories must be a non-empty array of {label, value} for CATEGORICAL configs"
        )
    out: list[dict[str, Any]] = []
    for item in value:
        if not isinstance(item, dict):
            raise ScoreRequestError("each category must be an object with label and value")
        label, number = item.get("label"), item.get("value")
        if not isinstance(label, str) or not label:
            raise ScoreRequestError("category label must be a non-empty string")
        if not _is_number(number):
            raise ScoreRequestError(f"category '{label}': value must be a number")
        out.append({"label": label, "value": number})
    if len({c["label"] for c in out}) != len(out):
        raise ScoreRequestError("category labels must be unique")
    if len({float(c["value"]) for c in out}) != len(out):
        raise ScoreRequestError("category values must be unique")
    return out


def _bound(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is not None and not _is_number(value):
        raise ScoreRequestError(f"{key} must be a number or null")
    return value


def _description(body: dict[str, Any]) -> str | None:
    value = body.get("description")
    if value is not None and not isinstance(value, str):
        raise ScoreRequestError("description must be a string or null")
    return value


def _check_shape(data_type: str, categories: Any, low: float | None, high: float | None) -> Any:
    """Type-dependent rules shared by create and update; returns the categories to store."""
    if data_type == "BOOLEAN":
        return BOOLEAN_CATEGORIES
    if data_type == "CATEGORICAL":
        categories = _categories(categories)
    elif categories is not None:
        raise ScoreRequestError(f"categories are only allowed for CATEGORICAL configs, not {data_type}")
    if data_type != "NUMERIC" and (low is not None or high is not None):
        raise ScoreRequestError(
            f"minValue and maxValue are only allowed for NUMERIC configs, not {data_type}"
        )
    if low is not None and high is not None and low > high:
        raise ScoreRequestError("minValue must be less than or equal to maxValue")
    return categories


def validate_config_create(body: Any) -> dict[str, Any]:
    """CreateScoreConfigRequest -> the column values to insert (without id, project and times)."""
    if not isinstance(body, dict):
        raise ScoreRequestError("Request body must be a JSON object")
    name = _config_name(body.get("name"))
    data_type = body.get("dataType")
    if data_type not in CONFIG_DATA_TYPES:
        raise ScoreRequestError(f"dataType must be one of {', '.join(CONFIG_DATA_TYPES)}")
    if data_type == "BOOLEAN" and body.get("categories") is not None:
        raise ScoreRequestError("categories are generated for BOOLEAN configs and cannot be passed")
    low, high = _bound(body, "minValue"), _bound(body, "maxValue")
    categories = _check_shape(data_type, body.get("categories"), low, high)
    return {
        "name": name,
        "data_type": data_type,
        "is_archived": False,
        "min_value": low,
        "max_value": high,
        "categories": categories,
        "description": _description(body),
    }


_UPDATABLE = ("isArchived", "name", "categories", "minValue", "maxValue", "description")


def validate_config_update(row: dict[str, Any], body: Any) -> dict[str, Any]:
    """UpdateScoreConfigRequest against the stored config -> the column values to change.

    ``null`` clears minValue/maxValue/description; for isArchived, name and categories (which cannot be
    empty) it means "unchanged". The result is re-validated as a whole against the config's dataType.
    """
    if not isinstance(body, dict):
        raise ScoreRequestError("Request body must be a JSON object")
    if not any(k in body for k in _UPDATABLE):
        raise ScoreRequestError(f"Provide at least one of: {', '.join(_UPDATABLE)}")
    data_type = row["data_type"]
    changes: dict[str, Any] = {}
    if body.get("isArchived") is not None:
        if not isinstance(body["isArchived"], bool):
            raise ScoreRequestError("isArchived must be a boolean")
        changes["is_archived"] = body["isArchived"]
    if body.get("name") is not None:
        changes["name"] = _config_name(body["name"])
    if "description" in body:
        changes["description"] = _description(body)
    for key, column in (("minValue", "min_value"), ("maxValue", "max_value")):
        if key in body:
            changes[column] = _bound(body, key)
    if body.get("categories") is not None:
        if data_type == "BOOLEAN":
            raise ScoreRequestError("categories are generated for BOOLEAN configs and cannot be passed")
        changes["categories"] = body["categories"]
    merged = {**row, **changes}
    categories = _check_shape(
        data_type, merged.get("categories"), merged.get("min_value"), merged.get("max_value")
    )
    if "categories" in changes:
        changes["categories"] = categories
    return changes


def score_config_problem(body: dict[str, Any], config: dict[str, Any] | None) -> str | None:
    """Why a score body does not fit its config (None when it does). ``body`` is a validated ScoreBody."""
    config_id = body.get("configId")
    if config is None:
        return f"Score config with id {config_id} not found in project"
    if config.get("is_archived"):
        return f"Score config {config_id} is archived; archived configs cannot receive new scores"
    config_type = config["data_type"]
    if body.get("dataType") is not None and body["dataType"] != config_type:
        return f"dataType {body['dataType']} does not match the config's dataType {config_type}"
    value = body.get("value")
    if config_type == "NUMERIC":
        if not _is_number(value):
            return "value must be a number for a NUMERIC config"
        low, high = config.get("min_value"), config.get("max_value")
        if low is not None and value < low:
            return f"value {value} is below the config's minValue {_number(low)}"
        if high is not None and value > high:
            return f"value {value} is above the config's maxValue {_number(high)}"
    elif config_type == "CATEGORICAL":
        labels = [c.get("label") for c in config.get("categories") or () if isinstance(c, dict)]
        if not isinstance(value, str) or value not in labels:
            return f"value must be one of the config's category labels: {', '.join(map(str, labels))}"
    elif config_type == "BOOLEAN":
        if not _is_number(value) or value not in (0, 1):
            return "value must be 0 or 1 for a BOOLEAN config"
    elif config_type == "TEXT" and (not isinstance(value, str) or not 1 <= len(value) <= _TEXT_MAX):
        return f"value must be a string of 1 to {_TEXT_MAX} characters for a TEXT config"
    return None


# --------------------------------------------------------------------------------------------------------------
# Store calls (blocking: call from a worker thread)
# --------------------------------------------------------------------------------------------------------------


def get_configs(engine: Engine, project_id: str, config_ids: set[str]) -> dict[str, dict[str, Any] | None]:
    with engine.connect() as conn:
        return {cid: config_store.get_score_config(conn, project_id, cid) for cid in config_ids}


def create_config(engine: Engine, project_id: str, body: Any) -> dict[str, Any]:
    values = validate_config_create(body)
    now = now_ms()
    values.update(id=str(uuid.uuid4()), project_id=project_id, created_at=now, updated_at=now)
    with engine.begin() as conn:
        config_store.create_score_config(conn, values)
    return config_to_api(values)


def get_config(engine: Engine, project_id: str, config_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = config_store.get_score_config(conn, project_id, config_id)
    return config_to_api(row) if row else None


def update_config(engine: Engine, project_id: str, config_id: str, body: Any) -> dict[str, Any] | None:
    # Read and write in separate transactions: on SQLite (WAL) a read transaction cannot be upgraded to a
    # write once the ingestion writer has committed in between. Concurrent PATCHes of one config are last-wins.
    with engine.connect() as conn:
        row = config_store.get_score_config(conn, project_id, config_id)
    if row is None:
        return None
    changes = validate_config_update(row, body)
    changes["updated_at"] = now_ms()
    with engine.begin() as conn:
        config_store.update_score_config(conn, project_id, config_id, changes)
    return config_to_api({**row, **changes})


def list_configs(
    engine: Engine, project_id: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    with engine.connect() as conn:
        rows, total = config_store.list_score_configs(conn, project_id, limit, offset)
    return [config_to_api(r) for r in rows], total


def get_score(engine: Engine, project_id: str, score_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        return score_reads.get_score(conn, project_id, score_id)


def list_scores_page(
    engine: Engine, project_id: str, query: ScoreQuery, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    try:
        with engine.connect() as conn:
            return score_reads.list_scores_page(conn, project_id, query, limit, offset)
    except ValueError as exc:  # a filter the store cannot express (e.g. an odd metadata key)
        raise ScoreRequestError(str(exc)) from None


def list_scores_v3(
    engine: Engine, project_id: str, query: ScoreQuery, limit: int, cursor: str | None, groups: set[str]
) -> dict[str, Any]:
    after = decode_cursor(cursor) if cursor else None
    with engine.connect() as conn:
        rows = score_reads.list_scores_after(conn, project_id, query, limit + 1, after)
    meta: dict[str, Any] = {"limit": limit}
    if len(rows) > limit:
        rows = rows[:limit]
        meta["cursor"] = encode_cursor(rows[-1])
    return {"data": [score_v3(r, groups) for r in rows], "meta": meta}


def delete_score(engine: Engine, project_id: str, score_id: str) -> None:
    with engine.begin() as conn:
        tracing_writes.delete_scores(conn, project_id, [score_id])
