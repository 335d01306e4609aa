"""Dataset runs and run items (api-semantics 7.3).

A run is created or fetched by (dataset, run name). A new run's id is derived from (project, dataset, run
name) the way Langfuse derives experiment ids (first 16 hex characters of a SHA-256), which is also the id the
current SDKs compute client-side for ``run_experiment`` and use as ``datasetRunId`` of run-level scores; so a
run created here and the experiment an SDK reports are the same run. Run item ids are always server-made.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from sqlalchemy import Connection, Engine

from lightfuse.services.common.clock import now_ms
from lightfuse.services.common.resources import (
    bad,
    iso,
    json_object,
    not_found,
    optional_str,
    parse_iso,
    required_str,
)
from lightfuse.store.sql import datasets as store
from lightfuse.store.sql.transactions import write_transaction

RUN_NOT_FOUND = "Dataset run not found"
_RUN_ITEM_KEYS = {
    "runName",
    "runDescription",
    "metadata",
    "datasetItemId",
    "observationId",
    "traceId",
    "datasetVersion",
    "createdAt",
}


def experiment_run_id(project_id: str, dataset_id: str, run_name: str) -> str:
    payload = json.dumps(
        ["langfuse-experiment-v1", project_id, dataset_id, run_name],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# Run items get ids derived from (project, run, dataset item, trace): the 4.x SDK both posts run items and
# tags its OTLP spans with the experiment, and both routes must land on one run item, not two.
_RUN_ITEM_NAMESPACE = uuid.UUID("5d0c3c8e-57c4-4b53-a2c9-5f3f0e1c7a41")


def run_item_id(project_id: str, run_id: str, dataset_item_id: str, trace_id: str) -> str:
    return str(uuid.uuid5(_RUN_ITEM_NAMESPACE, f"{project_id}\n{run_id}\n{dataset_item_id}\n{trace_id}"))


def run_to_api(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row.get("description"),
        "metadata": row.get("metadata"),
        "datasetId": row["dataset_id"],
        "datasetName": row["dataset_name"],
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
    }


def run_item_to_api(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "datasetRunId": row["dataset_run_id"],
        "datasetRunName": row["dataset_run_name"],
        "datasetItemId": row["dataset_item_id"],
        "traceId": row["trace_id"],
        "observationId": row.get("observation_id"),
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
    }


def ensure_run(
    conn: Connection,
    project_id: str,
    dataset_id: str,
    name: str,
    now: int,
    *,
    preferred_id: str | None = None,
) -> dict[str, Any]:
    """The dataset's run of that name, created when missing. Call inside a write transaction."""
    run = store.get_run_by_name(conn, project_id, dataset_id, name)
    if run is not None:
        return run
    run_id = next(
        (
            c
            for c in (preferred_id, experiment_run_id(project_id, dataset_id, name))
            if c and len(c) <= 64 and not store.run_id_taken(conn, c)
        ),
        str(uuid.uuid4()),
    )
    store.create_run_if_absent(
        conn,
        {
            "id": run_id,
            "project_id": project_id,
            "dataset_id": dataset_id,
            "name": name,
            "description": None,
            "metadata": None,
            "created_at": now,
            "updated_at": now,
        },
    )
    run = store.get_run_by_name(conn, project_id, dataset_id, name)
    assert run is not None
    return run


class DatasetRunService:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create_run_item(self, project_id: str, body: Any) -> dict[str, Any]:
        body = json_object(body)
        unknown = sorted(set(body) - _RUN_ITEM_KEYS)
        if unknown:
            # strict body: in particular a client-chosen "id" is refused rather than silently replaced
            raise bad(f"Unrecognized key(s) in object: {', '.join(repr(k) for k in unknown)}")
        run_name = required_str(body, "runName")
        item_id = required_str(body, "datasetItemId")
        description = optional_str(body, "runDescription")
        trace_id, observation_id = optional_str(body, "traceId"), optional_str(body, "observationId")
        if not trace_id and not observation_id:
            raise bad("Either traceId or observationId must be provided")
        version = parse_iso(body["datasetVersion"], "datasetVersion") if body.get("datasetVersion") else None
        created = parse_iso(body["createdAt"], "createdAt") if body.get("createdAt") else None
        now = now_ms()
        with write_transaction(self._engine) as conn:
            if not trace_id:
                trace_id = store.get_observation_trace_id(conn, project_id, observation_id or "")
                if trace_id is None:
                    raise not_found("Observation not found")
            item = store.get_item(conn, project_id, item_id, version)
            if item is None or item["status"] != "ACTIVE":
                raise not_found(f"Dataset item not found or not active: {item_id}")
            run = ensure_run(conn, project_id, item["dataset_id"], run_name, now)
            changes: dict[str, Any] = {}
            if description is not None:
                changes["description"] = description
            metadata = body.get("metadata")
            if metadata is not None or version is not None:
                base = metadata if metadata is not None else run.get("metadata")
                if version is not None and (base is None or isinstance(base, dict)):
                    base = {**(base or {}), "dataset_version": iso(version)}
                changes["metadata"] = base
            if changes:
                changes["updated_at"] = now
                store.update_run(conn, run["id"], changes)
            row = {
                "id": run_item_id(project_id, run["id"], item_id, trace_id),
                "project_id": project_id,
                "dataset_run_id": run["id"],
                "dataset_id": item["dataset_id"],
                "dataset_item_id": item_id,
                "trace_id": trace_id,
                "observation_id": observation_id,
                "created_at": created or now,
                "updated_at": now,
            }
            store.insert_run_items(conn, [row], ignore_existing=True)
        return run_item_to_api({**row, "dataset_run_name": run["name"]})

    def list_run_items(
        self, project_id: str, dataset_id: str, run_name: str, limit: int, offset: int
    ) -> tuple[list[dict], int]:
        with self._engine.connect() as conn:
            run = store.get_run_by_name(conn, project_id, dataset_id, run_name)
            if run is None:
                raise not_found(RUN_NOT_FOUND)
            rows, total = store.list_run_items(conn, run["id"], limit, offset)
        return [run_item_to_api(r) for r in rows], total

    @staticmethod
    def _dataset_id(conn: Connection, project_id: str, dataset_name: str) -> str:
        dataset = store.get_dataset_by_name(conn, project_id, dataset_name)
        if dataset is None:
            raise not_found("Dataset not found")
        return dataset["id"]

    def list_runs(
        self, project_id: str, dataset_name: str, limit: int, offset: int
    ) -> tuple[list[dict], int]:
        with self._engine.connect() as conn:
            rows, total = store.list_runs(
                conn, self._dataset_id(conn, project_id, dataset_name), limit, offset
            )
        return [run_to_api(r) for r in rows], total

    def get_run(self, project_id: str, dataset_name: str, run_name: str) -> dict[str, Any]:
        with self._engine.connect() as conn:
            dataset_id = self._dataset_id(conn, project_id, dataset_name)
            run = store.get_run_by_name(conn, project_id, dataset_id, run_name)
            if run is None:
                raise not_found(RUN_NOT_FOUND)
            items, _total = store.list_run_items(conn, run["id"])
        return {**run_to_api(run), "datasetRunItems": [run_item_to_api(r) for r in items]}

    def delete_run(self, project_id: str, dataset_name: str, run_name: str) -> dict[str, str]:
        with write_transaction(self._engine) as conn:
            dataset_id = self._dataset_id(conn, project_id, dataset_name)
            run = store.get_run_by_name(conn, project_id, dataset_id, run_name)
            if run is None:
                raise not_found(RUN_NOT_FOUND)
            store.delete_run(conn, run["id"])
        return {"message": "Dataset run successfully deleted"}
