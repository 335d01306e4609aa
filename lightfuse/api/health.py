"""Liveness, readiness and the Prometheus metrics (no auth)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lightfuse.api.common import JSONResponse
from lightfuse.services.storage_health import RETRY_AFTER_SECONDS, StoreFull

router = APIRouter()

_STORE_FULL_MESSAGE = "The store is out of space: nothing of this request was stored, retry later"


@router.get("/api/public/health")
async def health(request: Request, failIfDatabaseUnavailable: bool = False):
    services = request.app.state.services
    if failIfDatabaseUnavailable:
        try:
            with services.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:
            return JSONResponse({"message": "Database not available", "status": "Health check failed",
                                 "version": services.version}, 503)
    return JSONResponse({"status": "OK", "version": services.version})


@router.get("/api/public/ready")
async def ready(request: Request):
    services = request.app.state.services
    # while the last write failed for lack of space this probes (rarely) whether space came back
    if not services.storage.full or await run_in_threadpool(services.storage.writable):
        return JSONResponse({"status": "OK", "version": services.version})
    return JSONResponse({"status": "Not ready", "message": "The store is out of space and refuses writes",
                         "version": services.version}, 503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request):
    """Prometheus text format: whether the store writes, refused writes, the writer's backlog."""
    services = request.app.state.services
    storage = services.storage
    lines = [
        "# HELP lightfuse_store_writable 1 while the store writes, 0 while writes fail for lack of space.",
        "# TYPE lightfuse_store_writable gauge",
        f"lightfuse_store_writable {0 if storage.full else 1}",
        "# HELP lightfuse_store_full_refusals_total Requests answered 503 because the store was out of space.",
        "# TYPE lightfuse_store_full_refusals_total counter",
        f"lightfuse_store_full_refusals_total {storage.refusals}",
        "# HELP lightfuse_ingest_pending_events Ingested events waiting for the writer.",
        "# TYPE lightfuse_ingest_pending_events gauge",
        f"lightfuse_ingest_pending_events {services.pipeline.pending_events}",
    ]
    return Response("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


async def store_full_handler(request: Request, exc: Exception) -> JSONResponse:
    """Any route whose write failed for lack of space: 503 + Retry-After, and the store is marked full."""
    storage = request.app.state.services.storage
    storage.record_full()
    storage.count_refusal()
    return JSONResponse({"message": _STORE_FULL_MESSAGE, "error": "ServiceUnavailableError"}, 503,
                        headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


__all__ = ["StoreFull", "router", "store_full_handler"]
