"""The experiments read API (api-semantics 7.4): ``GET /api/public/experiments`` and ``/experiment-items``.

An experiment here is a dataset run (the SDKs' ``run_experiment`` on a dataset reports one, through the run-item
API or through ``langfuse.experiment.*`` span attributes, see ``experiments.py``); its items are the run items.
The current JS SDK reads them back with ``api.experiments.list`` / ``listItems``. Experiments on local data (no
dataset) leave no run behind and are not listed.

Both routes page with an opaque, versioned base64url cursor and take field groups; ``fields=scores`` is refused
with a 400 until scores are joined in.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from sqlalchemy import Engine

from lightfuse.services.common.resources import bad, iso, parse_iso
from lightfuse.services.common.rows import read_metadata
from lightfuse.store.sql import experiments as store

__all__ = ["EXPERIMENT_FIELD_GROUPS", "ITEM_FIELD_GROUPS", "ExperimentReadService"]

EXPERIMENT_FIELD_GROUPS = ("core", "metadata", "scores")
ITEM_FIELD_GROUPS = ("core", "dataset", "io", "metadata", "itemMetadata", "experimentMetadata", "scores")
_MAX_LIMIT, _DEFAULT_LIMIT, _MAX_SCORE_LIMIT = 100, 50, 50
_MAX_OFFSET = 2**31 - 1  # a cursor's offset goes into SQL OFFSET: past this it would overflow, not page
# filter JSON: the columns the experiments route filters on, and the ExperimentFilter list each one fills
_FILTER_COLUMNS = {"id": "experiment_ids", "name": "experiment_names", "datasetId": "dataset_ids"}


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _int_param(params: Mapping[str, str], name: str, default: int, maximum: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad(f"{name} must be an integer") from None
    if not 1 <= value <= maximum:
        raise bad(f"{name} must be between 1 and {maximum}")
    return value


def _groups(params: Mapping[str, str], allowed: tuple[str, ...], default: set[str]) -> set[str]:
    groups = set(_csv(params.get("fields"))) or default
    unknown = groups - set(allowed)
    if unknown:
        raise bad(f"Unknown field group(s): {', '.join(sorted(unknown))}; allowed: {', '.join(allowed)}")
    if "scores" in groups:
        raise bad("fields=scores is not supported by this server yet")
    return groups | {"core"}


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"v": 1, "offset": offset})).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, orjson.JSONDecodeError):
        raise bad("Invalid cursor") from None
    offset = payload.get("offset") if isinstance(payload, dict) and payload.get("v") == 1 else None
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= _MAX_OFFSET:
        raise bad("Invalid cursor")
    return offset


def _filter(params: Mapping[str, str]) -> store.ExperimentFilter:
    # NUL cannot go into a Postgres query parameter: refused here for every parameter, as the other routes do
    if any("\x00" in value for value in params.values()):
        raise bad("Query parameters must not contain NUL characters")
    raw_from = params.get("fromStartTime")
    if not raw_from:
        raise bad("fromStartTime is required")
    raw_to = params.get("toStartTime")
    return store.ExperimentFilter(
        from_ms=parse_iso(raw_from, "fromStartTime"),
        to_ms=parse_iso(raw_to, "toStartTime") if raw_to else None,
    )


def _apply_filter_json(f: store.ExperimentFilter, raw: str | None) -> None:
    """``filter``: a JSON array of {column, operator, value} on id / name / datasetId ("=" or "any of")."""
    if not raw:
        return
    try:
        conditions = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad("filter must be a JSON array") from None
    if not isinstance(conditions, list):
        raise bad("filter must be a JSON array")
    for cond in conditions:
        column = cond.get("column") if isinstance(cond, dict) else None
        if column not in _FILTER_COLUMNS:
            raise bad(f"filter column must be one of: {', '.join(_FILTER_COLUMNS)}")
        operator, value = cond.get("operator"), cond.get("value")
        values = [value] if operator == "=" and isinstance(value, str) else value
        if operator not in ("=", "any of") or not isinstance(values, list):
            raise bad(
                f"filter on {column}: use operator '=' with a string or 'any of' with a list of strings"
            )
        if not all(isinstance(v, str) for v in values):
            raise bad(f"filter on {column}: values must be strings")
        getattr(f, _FILTER_COLUMNS[column]).extend(values)


def _page(
    rows: list[dict[str, Any]], limit: int, offset: int, shape: Callable[[dict], dict]
) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if len(rows) > limit:
        meta["cursor"] = encode_cursor(offset + limit)
    return {"data": [shape(r) for r in rows[:limit]], "meta": meta}


class ExperimentReadService:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def list_experiments(self, project_id: str, params: Mapping[str, str]) -> dict[str, Any]:
        groups = _groups(params, EXPERIMENT_FIELD_GROUPS, {"core"})
        limit = _int_param(params, "limit", _DEFAULT_LIMIT, _MAX_LIMIT)
        _int_param(params, "scoreLimit", _MAX_SCORE_LIMIT, _MAX_SCORE_LIMIT)
        f = _filter(params)
        f.experiment_ids += _csv(params.get("id"))
        f.experiment_names += _csv(params.get("name"))
        f.dataset_ids += _csv(params.get("datasetId"))
        _apply_filter_json(f, params.get("filter"))
        offset = decode_cursor(params.get("cursor"))
        with self._engine.connect() as conn:
            rows = store.list_experiments(conn, project_id, f, limit + 1, offset)

        def shape(row: dict[str, Any]) -> dict[str, Any]:
            out = {
                "id": row["id"],
                "name": row["name"],
                "description": row["description"],
                # the earliest item start in range (items before fromStartTime are not counted at all)
                "startTime": iso(max(row["start_time"], f.from_ms)),
                "endTime": iso(row["end_time"]),
                "itemCount": row["item_count"],
                "datasetId": row["dataset_id"],
            }
            if "metadata" in groups:
                out["metadata"] = row["metadata"]
            return out

        return _page(rows, limit, offset, shape)

    def list_items(self, project_id: str, params: Mapping[str, str]) -> dict[str, Any]:
        groups = _groups(params, ITEM_FIELD_GROUPS, {"core", "dataset"})
        limit = _int_param(params, "limit", _DEFAULT_LIMIT, _MAX_LIMIT)
        _int_param(params, "scoreLimit", _MAX_SCORE_LIMIT, _MAX_SCORE_LIMIT)
        f = _filter(params)
        f.experiment_ids += _csv(params.get("experimentId"))
        f.experiment_names += _csv(params.get("experimentName"))
        f.item_ids += _csv(params.get("experimentItemId"))
        offset = decode_cursor(params.get("cursor"))
        with self._engine.connect() as conn:
            rows = store.list_experiment_items(conn, project_id, f, limit + 1, offset, with_io="io" in groups)
        return _page(rows, limit, offset, lambda row: _item(row, groups))


def _item(row: dict[str, Any], groups: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row["observation_id"] or row["id"],
        "traceId": row["trace_id"],
        "startTime": iso(row["start_time"]),
        "endTime": iso(row["end_time"]),
        "level": row["level"] or "DEFAULT",
        "environment": row["environment"] or "default",
        "experimentId": row["experiment_id"],
        "experimentName": row["experiment_name"],
        "experimentItemId": row["dataset_item_id"],
    }
    if "dataset" in groups:
        run_metadata = row["experiment_metadata"] if isinstance(row["experiment_metadata"], dict) else {}
        out["experimentDatasetId"] = row["dataset_id"]
        # a run pinned to a dataset version records it in its metadata (run-item API, datasetVersion)
        out["experimentItemVersion"] = run_metadata.get("dataset_version")
    if "io" in groups:
        out["input"], out["output"] = row["input"], row["output"]
        out["expectedOutput"] = row["expected_output"]
    if "metadata" in groups:
        out["metadata"] = read_metadata(row["metadata"]) if row["metadata"] is not None else None
    if "itemMetadata" in groups:
        out["experimentItemMetadata"] = row["item_metadata"]
    if "experimentMetadata" in groups:
        out["experimentMetadata"] = row["experiment_metadata"]
        out["experimentDescription"] = row["experiment_description"]
    return out
