"""The experiments read API (api-semantics 7.4): experiments are dataset runs, experiment items their run items.

``GET /api/public/experiments`` and ``/api/public/experiment-items`` take a required ``fromStartTime``, an
optional ``toStartTime`` (half-open range), comma lists that narrow by id/name/dataset, a structured ``filter``
(JSON array of ``{type, column, operator, value}``) and ``fields`` groups; they page by a versioned base64url
cursor (keyset on time and id), newest first. The ``scores`` field group is refused with a 400 for now (see
the README's partial list): scores of experiments are read through ``/api/public/v3/scores``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from sqlalchemy import Engine

from lightfuse.services.common.resources import bad, iso, parse_iso
from lightfuse.services.common.rows import read_metadata
from lightfuse.store.sql import experiments as store

MAX_LIMIT = 100
DEFAULT_LIMIT = 50
MAX_SCORE_LIMIT = 50
CURSOR_VERSION = 1
EXPERIMENT_FIELDS = ("core", "metadata", "scores")
ITEM_FIELDS = ("core", "dataset", "io", "metadata", "itemMetadata", "experimentMetadata", "scores")
STRING_OPERATORS = ("=", "contains", "does not contain", "starts with", "ends with")
LIST_OPERATORS = ("any of", "none of")
# the public column names of each list -> the store's column names
EXPERIMENT_COLUMNS = {"id": "experimentId", "name": "experimentName", "datasetId": "datasetId"}
ITEM_COLUMNS = {c: c for c in ("experimentId", "experimentName", "experimentItemId", "datasetId")}


def _int(value: str | None, name: str, default: int, maximum: int) -> int:
    if value is None or value == "":
        return default
    if len(value) > 12 or not value.strip().lstrip("-").isdigit():
        raise bad(f"{name} must be an integer")
    number = int(value)
    if not 1 <= number <= maximum:
        raise bad(f"{name} must be between 1 and {maximum}")
    return number


def _fields(value: str | None, allowed: tuple[str, ...], default: tuple[str, ...]) -> frozenset[str]:
    if value is None or not value.strip():
        return frozenset(default)
    groups = {g.strip() for g in value.split(",") if g.strip()}
    unknown = sorted(groups - set(allowed))
    if unknown:
        raise bad(f"Unknown fields group(s): {', '.join(unknown)}. Allowed: {', '.join(allowed)}")
    if "scores" in groups:
        raise bad(
            "The 'scores' fields group is not supported yet; read experiment scores from /api/public/v3/scores"
        )
    return frozenset(groups | {"core"})


def encode_cursor(time_ms: int, row_id: str) -> str:
    raw = orjson.dumps({"v": CURSOR_VERSION, "t": time_ms, "id": row_id})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[int, str] | None:
    if cursor is None or cursor == "":
        return None
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise bad("Invalid cursor") from None
    if (
        not isinstance(data, dict)
        or data.get("v") != CURSOR_VERSION
        or not isinstance(data.get("t"), int)
        or isinstance(data.get("t"), bool)
        or not isinstance(data.get("id"), str)
    ):
        raise bad("Invalid cursor")
    return data["t"], data["id"]


def _list_param(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _filter(raw: str | None, columns: dict[str, str]) -> list[store.Condition]:
    if raw is None or raw.strip() == "":
        return []
    try:
        conditions = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad("Invalid JSON in filter parameter") from None
    if not isinstance(conditions, list):
        raise bad("filter must be a JSON array of conditions")
    out = []
    for cond in conditions:
        if not isinstance(cond, dict):
            raise bad("each filter condition must be an object")
        column, operator, value = cond.get("column"), cond.get("operator"), cond.get("value")
        if column not in columns:
            raise bad(f"filter column must be one of {', '.join(columns)}")
        if operator in STRING_OPERATORS:
            if not isinstance(value, str):
                raise bad(f"filter operator '{operator}' needs a string value")
        elif operator in LIST_OPERATORS:
            if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
                raise bad(f"filter operator '{operator}' needs a non-empty list of strings")
        else:
            raise bad(f"filter operator must be one of {', '.join(STRING_OPERATORS + LIST_OPERATORS)}")
        out.append(store.Condition(columns[column], operator, value))
    return out


class ExperimentReads:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _query(
        self, project_id: str, params: dict[str, str], columns: dict[str, str]
    ) -> store.ExperimentQuery:
        if not params.get("fromStartTime"):
            raise bad("fromStartTime is required")
        from_ms = parse_iso(params["fromStartTime"], "fromStartTime")
        to_ms = parse_iso(params["toStartTime"], "toStartTime") if params.get("toStartTime") else None
        _int(params.get("scoreLimit"), "scoreLimit", MAX_SCORE_LIMIT, MAX_SCORE_LIMIT)
        conditions = _filter(params.get("filter"), columns)
        filtered = {c.column for c in conditions}
        # a simple parameter on a column the structured filter also names is dropped (the filter wins)
        for param, column in columns.items():
            values = _list_param(params.get(param))
            if values and column not in filtered:
                conditions.append(store.Condition(column, "any of", values))
        return store.ExperimentQuery(
            project_id=project_id,
            from_ms=from_ms,
            to_ms=to_ms,
            limit=_int(params.get("limit"), "limit", DEFAULT_LIMIT, MAX_LIMIT),
            conditions=tuple(conditions),
            after=decode_cursor(params.get("cursor")),
        )

    def list_experiments(self, project_id: str, params: dict[str, str]) -> dict[str, Any]:
        fields = _fields(params.get("fields"), EXPERIMENT_FIELDS, ("core",))
        q = self._query(project_id, params, EXPERIMENT_COLUMNS)
        with self._engine.connect() as conn:
            rows = store.list_experiments(conn, q)
        data = []
        for r in rows:
            item: dict[str, Any] = {
                "id": r["id"],
                "name": r["name"],
                "description": r.get("description"),
                "startTime": iso(max(r["start_ms"], q.from_ms)),
                "endTime": iso(r["end_ms"]),
                "itemCount": r["item_count"],
                "datasetId": r["dataset_id"],
            }
            if "metadata" in fields:
                item["metadata"] = r.get("metadata")
            data.append(item)
        meta: dict[str, Any] = {}
        if len(rows) == q.limit:
            meta["cursor"] = encode_cursor(rows[-1]["activity_ms"], rows[-1]["id"])
        return {"data": data, "meta": meta}

    def list_items(self, project_id: str, params: dict[str, str]) -> dict[str, Any]:
        fields = _fields(params.get("fields"), ITEM_FIELDS, ("core", "dataset"))
        q = self._query(project_id, params, ITEM_COLUMNS)
        with self._engine.connect() as conn:
            rows = store.list_experiment_items(conn, q)
        data = [self._item(r, fields) for r in rows]
        meta: dict[str, Any] = {}
        if len(rows) == q.limit:
            meta["cursor"] = encode_cursor(rows[-1]["start_ms"], rows[-1]["id"])
        return {"data": data, "meta": meta}

    @staticmethod
    def _item(r: dict[str, Any], fields: frozenset[str]) -> dict[str, Any]:
        version = r.get("dataset_item") or {}
        item: dict[str, Any] = {
            "id": r["id"],
            "traceId": r["trace_id"],
            "startTime": iso(r["start_ms"]),
            "endTime": iso(r.get("end_ms")),
            "level": r.get("level") or "DEFAULT",
            "environment": r.get("environment") or "default",
            "experimentId": r["run_id"],
            "experimentName": r["run_name"],
            "experimentItemId": r["dataset_item_id"],
        }
        if "dataset" in fields:
            item["experimentDatasetId"] = r["dataset_id"]
            item["experimentItemVersion"] = iso(version.get("valid_from"))
        if "io" in fields:
            item["input"] = r.get("input")
            item["output"] = r.get("output")
            item["expectedOutput"] = version.get("expected_output")
        if "metadata" in fields:
            meta = r.get("observation_metadata")
            item["metadata"] = read_metadata(meta if meta is not None else r.get("trace_metadata"))
        if "itemMetadata" in fields:
            item["experimentItemMetadata"] = version.get("metadata")
        if "experimentMetadata" in fields:
            item["experimentMetadata"] = r.get("run_metadata")
            item["experimentDescription"] = r.get("run_description")
        return item
