"""Datasets and their versioned items (api-semantics 7.1, 7.2).

* Datasets are upserted by name; fields absent from the body keep their stored values.
* Items are upserted by id. Fields absent from the body *or null* keep their current values: SDKs send every
  optional argument, unset ones as null, so null cannot mean "clear" without wiping data on every update.
* Every item write closes the current version and inserts a new one (``store.sql.datasets.close_item``), so
  ``GET /dataset-items?version=<instant>`` returns the items as they were then. Deletes write a tombstone.
* Listings return ACTIVE items only; a single item is returned whatever its status.
* When a dataset has an input / expected-output JSON Schema, item values are validated against it, and setting
  a schema validates the dataset's existing items.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from lightfuse.services.common.clock import now_ms
from lightfuse.services.common.resources import (
    RequestError,
    bad,
    iso,
    json_object,
    not_found,
    optional_str,
    required_str,
    sanitize,
)
from lightfuse.services.datasets.json_schema import schema_problem, validate
from lightfuse.services.media.media import MediaService
from lightfuse.store.sql import datasets as store
from lightfuse.store.sql.transactions import write_transaction

ITEM_STATUSES = ("ACTIVE", "ARCHIVED")
DATASET_NOT_FOUND = "Dataset not found"
ITEM_NOT_FOUND = "Dataset item not found"
_SCHEMA_FIELDS = (("inputSchema", "input_schema"), ("expectedOutputSchema", "expected_output_schema"))
_MEDIA_REF = re.compile(r"@@@langfuseMedia:(.*?)@@@")
_ITEM_FIELDS = (("input", "input"), ("expectedOutput", "expected_output"), ("metadata", "metadata"))


def dataset_to_api(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row.get("description"),
        "metadata": row.get("metadata"),
        "inputSchema": row.get("input_schema"),
        "expectedOutputSchema": row.get("expected_output_schema"),
        "projectId": row["project_id"],
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
    }


def _item_to_api(row: dict[str, Any], dataset_name: str, refs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "status": row["status"],
        "input": row.get("input"),
        "expectedOutput": row.get("expected_output"),
        "metadata": row.get("metadata"),
        "sourceTraceId": row.get("source_trace_id"),
        "sourceObservationId": row.get("source_observation_id"),
        "datasetId": row["dataset_id"],
        "datasetName": dataset_name,
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
        "mediaReferences": refs,
    }


# --- media references in item values ------------------------------------------------------------------------


def _json_path(parts: list[str | int]) -> str:
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += "['" + part.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return out


def _references(value: Any, parts: list[str | int]) -> Iterator[tuple[str, str, str]]:
    """(jsonPath, reference string, media id) for every media reference string inside ``value``."""
    if isinstance(value, str):
        for match in _MEDIA_REF.finditer(value):
            fields = dict(p.split("=", 1) for p in match.group(1).split("|") if "=" in p)
            if fields.get("id"):
                yield _json_path(parts), match.group(0), fields["id"]
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _references(item, [*parts, i])
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _references(item, [*parts, str(key)])


class DatasetService:
    def __init__(self, engine: Engine, media: MediaService) -> None:
        self._engine = engine
        self._media = media

    # --- datasets -------------------------------------------------------------------------------------------

    def upsert_dataset(self, project_id: str, body: Any) -> dict[str, Any]:
        body = json_object(body)
        name = required_str(body, "name", max_len=1000)
        description = optional_str(body, "description")
        for key, _column in _SCHEMA_FIELDS:
            problem = schema_problem(body[key]) if body.get(key) is not None else None
            if problem:
                raise bad(f"{key} is not a valid JSON Schema: {problem}")
        now = now_ms()
        values = {
            "id": str(uuid.uuid4()),
            "project_id": project_id,
            "name": name,
            "description": description,
            "metadata": body.get("metadata"),
            "input_schema": body.get("inputSchema"),
            "expected_output_schema": body.get("expectedOutputSchema"),
            "created_at": now,
            "updated_at": now,
        }
        changed = [
            col
            for key, col in (("description", "description"), ("metadata", "metadata"), *_SCHEMA_FIELDS)
            if key in body
        ]
        with write_transaction(self._engine) as conn:
            existing = store.get_dataset_by_name(conn, project_id, name)
            if existing is not None and any(body.get(key) is not None for key, _ in _SCHEMA_FIELDS):
                merged = {**existing, **{c: values[c] for c in changed}}
                for item in store.list_live_items(conn, existing["id"]):
                    self._check_item(merged, item)
            row = store.upsert_dataset(conn, values, changed)
        return dataset_to_api(row)

    def list_datasets(self, project_id: str, limit: int, offset: int) -> tuple[list[dict], int]:
        with self._engine.connect() as conn:
            rows, total = store.list_datasets(conn, project_id, limit, offset)
        return [dataset_to_api(r) for r in rows], total

    def _dataset(self, conn, project_id: str, name: str) -> dict[str, Any]:
        row = store.get_dataset_by_name(conn, project_id, name)
        if row is None:
            raise not_found(DATASET_NOT_FOUND)
        return row

    def get_dataset(self, project_id: str, name: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            return dataset_to_api(self._dataset(conn, project_id, name))

    def get_dataset_row(self, project_id: str, name: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            return self._dataset(conn, project_id, name)

    def legacy_list(self, project_id: str, limit: int, offset: int) -> tuple[list[dict], int]:
        """The pre-v2 list: each dataset with the ids of its active items and the names of its runs."""
        with self._engine.connect() as conn:
            rows, total = store.list_datasets(conn, project_id, limit, offset)
            ids = [r["id"] for r in rows]
            items, runs = store.list_active_item_ids(conn, ids), store.list_run_names(conn, ids)
        return [{**dataset_to_api(r), "items": items[r["id"]], "runs": runs[r["id"]]} for r in rows], total

    def legacy_get(self, project_id: str, name: str, base_url: str) -> dict[str, Any]:
        """The pre-v2 single dataset: with its active items (full objects) and run names."""
        with self._engine.connect() as conn:
            row = self._dataset(conn, project_id, name)
            items, _total = store.list_items(
                conn,
                project_id,
                dataset_id=row["id"],
                source_trace_id=None,
                source_observation_id=None,
                version_ms=None,
                limit=None,
                offset=0,
            )
            runs = store.list_run_names(conn, [row["id"]])[row["id"]]
        return {**dataset_to_api(row), "items": self._items_to_api(project_id, items, base_url), "runs": runs}

    # --- items ----------------------------------------------------------------------------------------------

    @staticmethod
    def _check_item(dataset: dict[str, Any], item: dict[str, Any]) -> None:
        problems: list[str] = []
        for (_key, column), field_name in zip(_SCHEMA_FIELDS, ("input", "expected_output"), strict=True):
            schema = dataset.get(column)
            if schema is not None and item.get(field_name) is not None:
                label = "input" if field_name == "input" else "expectedOutput"
                problems += [f"{label} {p}" for p in validate(schema, item[field_name])]
        if problems:
            raise bad(f"Dataset item validation failed: item {item['id']}: {'; '.join(problems)}")

    def upsert_item(self, project_id: str, body: Any, base_url: str) -> dict[str, Any]:
        body = json_object(body)
        dataset_name = required_str(body, "datasetName")
        item_id = optional_str(body, "id", max_len=255)
        if item_id == "":
            raise bad("id must be 1 to 255 characters")
        status = body.get("status")
        if status is not None and status not in ITEM_STATUSES:
            raise bad(f"status must be one of {', '.join(ITEM_STATUSES)}")
        for key in ("sourceTraceId", "sourceObservationId"):
            optional_str(body, key)
        dataset = self.get_dataset_row(project_id, dataset_name)
        item_id = item_id or str(uuid.uuid4())
        for attempt in range(3):
            try:
                row = self._write_item(project_id, dataset, item_id, body, status)
                break
            except IntegrityError:
                # another request created the same item id at the same time; redo on top of its version
                if attempt == 2:
                    raise RequestError(409, "Concurrent updates of this dataset item, retry") from None
        return self._items_to_api(project_id, [{**row, "dataset_name": dataset["name"]}], base_url)[0]

    def _write_item(
        self, project_id: str, dataset: dict[str, Any], item_id: str, body: dict[str, Any], status: str | None
    ) -> dict[str, Any]:
        now = now_ms()
        with write_transaction(self._engine) as conn:
            previous = store.close_item(conn, project_id, item_id, now)
            current = previous if previous is not None and not previous["is_deleted"] else None
            if current is not None and current["dataset_id"] != dataset["id"]:
                raise RequestError(409, f"Dataset item {item_id} already exists in another dataset")
            row: dict[str, Any] = {
                "project_id": project_id,
                "id": item_id,
                "dataset_id": dataset["id"],
                "valid_from": previous["valid_to"] if previous is not None else now,
                "valid_to": None,
                "is_deleted": False,
                "status": status or (current["status"] if current else "ACTIVE"),
                "created_at": current["created_at"] if current else now,
                "updated_at": now,
            }
            for key, column in (
                *_ITEM_FIELDS,
                ("sourceTraceId", "source_trace_id"),
                ("sourceObservationId", "source_observation_id"),
            ):
                value = body.get(key)
                row[column] = sanitize(value) if value is not None else (current or {}).get(column)
            self._check_item(dataset, row)
            store.insert_item_version(conn, row)
        return row

    def _items_to_api(
        self, project_id: str, rows: list[dict[str, Any]], base_url: str
    ) -> list[dict[str, Any]]:
        found = {
            row["id"]: [
                (field_name, path, ref, media_id)
                for field_name, column in _ITEM_FIELDS
                for path, ref, media_id in _references(row.get(column), [])
            ]
            for row in rows
        }
        wanted = [m for refs in found.values() for *_rest, m in refs]
        media = self._media.uploaded_media(project_id, wanted) if wanted else {}
        out = []
        for row in rows:
            refs = [
                {
                    "field": field_name,
                    "referenceString": ref,
                    "jsonPath": path,
                    "media": self._media.download_info(base_url, project_id, media[media_id]),
                }
                for field_name, path, ref, media_id in found[row["id"]]
                if media_id in media
            ]
            out.append(_item_to_api(row, row["dataset_name"], refs))
        return out

    def list_items(
        self,
        project_id: str,
        *,
        dataset_name: str | None,
        source_trace_id: str | None,
        source_observation_id: str | None,
        version_ms: int | None,
        limit: int,
        offset: int,
        base_url: str,
    ) -> tuple[list[dict], int]:
        if version_ms is not None and not dataset_name:
            raise bad("version requires datasetName")
        with self._engine.connect() as conn:
            dataset_id = self._dataset(conn, project_id, dataset_name)["id"] if dataset_name else None
            rows, total = store.list_items(
                conn,
                project_id,
                dataset_id=dataset_id,
                source_trace_id=source_trace_id,
                source_observation_id=source_observation_id,
                version_ms=version_ms,
                limit=limit,
                offset=offset,
            )
        return self._items_to_api(project_id, rows, base_url), total

    def get_item(self, project_id: str, item_id: str, base_url: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            row = store.get_item(conn, project_id, item_id)
        if row is None:
            raise not_found(ITEM_NOT_FOUND)
        return self._items_to_api(project_id, [row], base_url)[0]

    def delete_item(self, project_id: str, item_id: str) -> dict[str, str]:
        """Tombstone the item (its history stays readable by version) and drop its run items."""
        now = now_ms()
        with write_transaction(self._engine) as conn:
            previous = store.close_item(conn, project_id, item_id, now)
            if previous is None or previous["is_deleted"]:
                raise not_found(ITEM_NOT_FOUND)
            store.insert_item_version(
                conn,
                {
                    **previous,
                    "valid_from": previous["valid_to"],
                    "valid_to": None,
                    "is_deleted": True,
                    "updated_at": now,
                },
            )
            store.delete_run_items_of_item(conn, project_id, item_id)
        return {"message": "Dataset item successfully deleted"}
