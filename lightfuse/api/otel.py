"""OTLP/HTTP receiver: Langfuse's /api/public/otel/v1/* paths and the plain OTLP /v1/* paths."""

from __future__ import annotations

from fastapi import APIRouter, Request
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lightfuse.api.common import ApiError, JSONResponse, project_auth, read_body
from lightfuse.api.ingestion import count_refusal
from lightfuse.services.ingestion.otlp_intake import OtlpDecodeError, OtlpRejected
from lightfuse.services.ingestion.pipeline import IntakeFull

router = APIRouter()

# Langfuse reads OTLP bodies without a parser limit; a bound still keeps one request from exhausting memory.
OTLP_BODY_LIMIT = 64 * 1024 * 1024
_EMPTY_PROTOBUF_RESPONSE = ExportTraceServiceResponse().SerializeToString()


def unsupported_ingestion_version(value: str | None) -> str | None:
    """The refusal for an ``x-langfuse-ingestion-version`` header (HTTP) or metadata entry (gRPC), if any."""
    if value is None:
        return None
    try:
        version = int(value)
    except ValueError:
        version = None
    if version is None or version > 4:
        return f"Unsupported x-langfuse-ingestion-version {value!r}"
    return None


def _ok(content_type: str) -> Response:
    # protobuf exporters expect an ExportTraceServiceResponse; JSON ones accept an empty object
    if "protobuf" in content_type:
        return Response(_EMPTY_PROTOBUF_RESPONSE, media_type="application/x-protobuf")
    return JSONResponse({})


@router.post("/api/public/otel/v1/traces")
@router.post("/v1/traces")
async def otlp_traces(request: Request):
    auth = project_auth(request)
    problem = unsupported_ingestion_version(request.headers.get("x-langfuse-ingestion-version"))
    if problem is not None:  # same {"error"} shape as every other refusal of this route
        return JSONResponse({"error": problem}, 400)
    body = await read_body(request, OTLP_BODY_LIMIT)
    content_type = request.headers.get("content-type", "")
    ingestor = request.app.state.services.otlp
    try:
        # decoding a large export takes a while: keep the event loop free for other requests meanwhile
        events = await run_in_threadpool(
            ingestor.to_events, auth.project_id, body, content_type, request.headers.get("content-encoding")
        )
    except (OtlpDecodeError, OtlpRejected) as exc:
        return JSONResponse({"error": str(exc)}, 400)
    if not events:
        return _ok(content_type)
    try:
        failures = await ingestor.ingest(auth.project_id, events)
    except IntakeFull as exc:
        count_refusal(request.app.state.services.metrics, exc.reason, events)
        raise ApiError(503, "Ingestion is busy, retry shortly", headers={"Retry-After": "1"}) from None
    if failures:
        raise ApiError(500, "Internal Server Error", "spans could not be stored")
    return _ok(content_type)


@router.post("/api/public/otel/v1/metrics")
@router.post("/v1/metrics")
async def otlp_metrics(request: Request):
    # accepted and discarded, as Langfuse does: SDKs that export metrics must not see errors
    project_auth(request)
    await read_body(request, OTLP_BODY_LIMIT)
    if "protobuf" in request.headers.get("content-type", ""):
        return Response(b"", media_type="application/x-protobuf")
    return JSONResponse({"message": "OK"})
