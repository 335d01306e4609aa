"""GET /api/public/sessions[/{sessionId}] (api-semantics 5.3)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from lightfuse.api.common import JSONResponse, Paging, paginated, parse_time_param
from lightfuse.api.traces import ListParam, ProjectAuth, multi, read_errors, tracing_reads

router = APIRouter()


@router.get("/api/public/sessions")
def list_sessions(
    request: Request,
    auth: ProjectAuth,
    pg: Paging,
    fromTimestamp: str | None = None,
    toTimestamp: str | None = None,
    environment: ListParam = None,
):
    p, lim = pg.page, pg.limit
    with read_errors():
        items, total = tracing_reads(request).list_sessions(
            auth.project_id,
            page=p,
            limit=lim,
            from_ms=parse_time_param(fromTimestamp, "fromTimestamp"),
            to_ms=parse_time_param(toTimestamp, "toTimestamp"),
            environments=multi(environment),
        )
    return JSONResponse(paginated(items, p, lim, total))


@router.get("/api/public/sessions/{sessionId}")
def get_session(sessionId: str, request: Request, auth: ProjectAuth):
    with read_errors():
        return JSONResponse(tracing_reads(request).get_session(auth.project_id, sessionId))
