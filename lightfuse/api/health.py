"""Liveness and readiness (no auth)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text

from lightfuse.api.common import JSONResponse

router = APIRouter()


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
    return JSONResponse({"status": "OK", "version": request.app.state.services.version})
