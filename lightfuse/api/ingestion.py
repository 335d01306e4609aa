"""POST /api/public/ingestion and the legacy single-object write endpoints built on it."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Request

from lightfuse.api.common import ApiError, JSONResponse, read_body, read_json
from lightfuse.services.auth.api_keys import AuthError
from lightfuse.services.ingestion.events import (
    EVENT_TYPES,
    EventError,
    ValidEvent,
    validate_event,
    without_nul,
)
from lightfuse.services.ingestion.pipeline import IntakeFull

router = APIRouter()

# Next.js's "4.5mb" body limit, which Langfuse clients are sized against.
INGESTION_BODY_LIMIT = int(4.5 * 1024 * 1024)


def _typed_error(status: int, message: str, error: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status, headers=headers)


def validate_batch(
    batch: list, access_level: str, invalid_types: dict[str, int] | None = None
) -> tuple[list[ValidEvent], list[dict], list[str]]:
    """Validate every element; returns (valid events, per-event error dicts, ids reported as successes).
    ``invalid_types`` (when given) counts the refused events by type (``unknown`` outside ``EVENT_TYPES``)."""
    valid: list[ValidEvent] = []
    errors: list[dict] = []
    for raw in batch:
        result = validate_event(raw, access_level)
        if result is None:  # sdk-log: neither a success nor an error
            continue
        if isinstance(result, EventError):
            if invalid_types is not None:
                raw_type = raw.get("type") if isinstance(raw, dict) else None
                label = raw_type if isinstance(raw_type, str) and raw_type in EVENT_TYPES else "unknown"
                invalid_types[label] = invalid_types.get(label, 0) + 1
            errors.append(
                {"id": result.id, "status": result.status, "message": result.message, "error": result.error}
            )
        else:
            valid.append(result)
    return valid, errors, [e.id for e in valid]


async def ingest_events(request: Request, project_id: str, valid: list[ValidEvent]) -> dict[str, str]:
    """Hand events to the writer; returns event id -> failure message for events that were not stored.
    A refusal (``IntakeFull``) is counted in the metrics and raised on."""
    services = request.app.state.services
    try:
        return await services.pipeline.submit(project_id, valid)
    except IntakeFull as exc:
        count_refusal(services.metrics, exc.reason, valid)
        raise


def count_refusal(metrics, reason: str, events: list[ValidEvent]) -> None:
    metrics.intake_refusals.labels(reason).inc()
    refused: dict[str, int] = {}
    for ev in events:
        refused[ev.type] = refused.get(ev.type, 0) + 1
    metrics.count_events(refused, "refused")


@router.post("/api/public/ingestion")
async def ingestion(request: Request):
    try:
        auth = request.app.state.services.keys.authenticate(request.headers.get("authorization"))
    except AuthError as exc:
        return _typed_error(exc.status, exc.message, "UnauthorizedError")
    try:
        body = await read_body(request, INGESTION_BODY_LIMIT)
    except ApiError as exc:
        return _typed_error(exc.status, exc.message, exc.error)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return JSONResponse({"message": "Invalid request data", "errors": [f"Invalid JSON: {exc}"]}, 400)
    if b"\\u0000" in body:  # JSON can only carry a NUL escaped; the scan costs next to nothing
        payload = without_nul(payload)
    if not isinstance(payload, dict) or not isinstance(payload.get("batch"), list):
        return JSONResponse(
            {"message": "Invalid request data", "errors": ["body must be an object with an array 'batch'"]},
            400,
        )
    invalid_types: dict[str, int] = {}
    valid, errors, success_ids = validate_batch(payload["batch"], auth.access_level, invalid_types)
    if invalid_types:
        request.app.state.services.metrics.count_events(invalid_types, "invalid")
    try:
        failures = await ingest_events(request, auth.project_id, valid)
    except IntakeFull as exc:
        return _typed_error(
            503,
            f"Ingestion is busy, retry shortly ({exc})",
            "ServiceUnavailableError",
            headers={"Retry-After": "1"},
        )
    successes = [{"id": i, "status": 201} for i in success_ids if i not in failures]
    for event_id in failures:
        errors.append({"id": event_id, "status": 500, "error": "Internal Server Error"})
    return JSONResponse({"successes": successes, "errors": errors}, 207)


# --- legacy single-object endpoints (thin wrappers over the batch pipeline) ---------------------------------


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _single(request: Request, event_type: str, rename: dict[str, str] | None = None) -> JSONResponse:
    auth = request.app.state.services.keys.authenticate(request.headers.get("authorization"))
    if auth.access_level != "project":
        raise AuthError(403, "Access denied - insufficient permissions for this endpoint")
    body: Any = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object", "InvalidRequestError")
    body = without_nul(body)  # as in the batch route (one object: no need to test first)
    for old, new in (rename or {}).items():
        if old in body:
            body[new] = body.pop(old)
    if not body.get("id"):
        if event_type.endswith("-update"):
            raise ApiError(400, "id is required to update an object", "InvalidRequestError")
        body["id"] = str(uuid.uuid4())
    event = {"id": str(uuid.uuid4()), "type": event_type, "timestamp": _now_iso(), "body": body}
    result = validate_event(event, "project")
    if isinstance(result, EventError):
        raise ApiError(result.status, f"{result.message}: {result.error}", "InvalidRequestError")
    if result is None:
        return JSONResponse({"id": body["id"]})
    try:
        failures = await ingest_events(request, auth.project_id, [result])
    except IntakeFull:
        raise ApiError(503, "Ingestion is busy, retry shortly", headers={"Retry-After": "1"}) from None
    if failures:
        raise ApiError(500, "Internal Server Error", "An unknown error occurred")
    return JSONResponse({"id": body["id"]})


@router.post("/api/public/traces")
async def create_trace(request: Request):
    return await _single(request, "trace-create")


@router.post("/api/public/generations")
async def create_generation(request: Request):
    return await _single(request, "generation-create", {"prompt": "input", "completion": "output"})


@router.patch("/api/public/generations")
async def update_generation(request: Request):
    return await _single(
        request, "generation-update", {"generationId": "id", "prompt": "input", "completion": "output"}
    )


@router.post("/api/public/spans")
async def create_span(request: Request):
    return await _single(request, "span-create")


@router.patch("/api/public/spans")
async def update_span(request: Request):
    return await _single(request, "span-update", {"spanId": "id"})


@router.post("/api/public/events")
async def create_event(request: Request):
    return await _single(request, "event-create")
