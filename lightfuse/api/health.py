"""Liveness, readiness and the Prometheus metrics (no auth)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from lightfuse.api.common import JSONResponse
from lightfuse.api.observability import BUDGETED_PATHS, PROMETHEUS_CONTENT_TYPE, metrics_token_ok
from lightfuse.services.ingestion.storage_health import RETRY_AFTER_SECONDS, StoreFull
from lightfuse.services.operations.health import RECENT_EVENTS_WINDOW_SECONDS, recent_events

log = logging.getLogger(__name__)
router = APIRouter()

_STORE_FULL_MESSAGE = "The store is out of space: nothing of this request was stored, retry later"


@router.get("/api/public/health")
async def health(
    request: Request, failIfDatabaseUnavailable: bool = False, failIfNoRecentEvents: bool = False
):
    services = request.app.state.services
    try:
        if failIfDatabaseUnavailable and not await run_in_threadpool(_database_answers, services.engine):
            return JSONResponse(
                {
                    "message": "Database not available",
                    "status": "Health check failed",
                    "version": services.version,
                },
                503,
            )
        if failIfNoRecentEvents and not recent_events(services.pipeline.last_commit_monotonic):
            return JSONResponse(
                {
                    "message": f"No events ingested in the last {RECENT_EVENTS_WINDOW_SECONDS // 60} minutes",
                    "status": "Health check failed",
                    "version": services.version,
                },
                503,
            )
    except Exception:
        log.exception("health check failed")
        return JSONResponse({"status": "Health check failed", "version": services.version}, 503)
    return JSONResponse({"status": "OK", "version": services.version})


def _database_answers(engine) -> bool:
    # in the thread pool: a database that hangs must not stall the event loop (and every other request)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


@router.get("/api/public/ready")
async def ready(request: Request):
    services = request.app.state.services
    if services.lifecycle.stopping:  # SIGTERM arrived: take this instance out of the load balancer
        return JSONResponse(
            {"status": "Not ready", "message": "Shutting down", "version": services.version}, 503
        )
    # while the last write failed for lack of space this probes (rarely) whether space came back
    if not services.storage.full or await run_in_threadpool(services.storage.writable):
        return JSONResponse({"status": "OK", "version": services.version})
    return JSONResponse(
        {
            "status": "Not ready",
            "message": "The store is out of space and refuses writes",
            "version": services.version,
        },
        503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request):
    """Prometheus text (services/operations/metrics.py); 404 here when LIGHTFUSE_METRICS_PORT serves it elsewhere."""
    services = request.app.state.services
    settings = services.settings
    if settings.metrics_port:
        return JSONResponse(
            {"message": "Metrics are served on their own port", "error": "NotFoundError"}, 404
        )
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if not metrics_token_ok(token, request.headers.get("authorization")):
        return JSONResponse(
            {"message": "A valid metrics bearer token is required", "error": "UnauthorizedError"},
            401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Response(services.metrics.render(), media_type=PROMETHEUS_CONTENT_TYPE)


async def store_full_handler(request: Request, exc: Exception) -> JSONResponse:
    """Any route whose write failed for lack of space: 503 + Retry-After, and the store is marked full."""
    storage = request.app.state.services.storage
    storage.record_full()
    storage.count_refusal()
    if request.url.path in BUDGETED_PATHS:
        request.app.state.services.metrics.intake_refusals.labels("store_full").inc()
    return JSONResponse(
        {"message": _STORE_FULL_MESSAGE, "error": "ServiceUnavailableError"},
        503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


__all__ = ["StoreFull", "router", "store_full_handler"]
