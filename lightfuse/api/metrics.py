"""GET /api/public/metrics/daily: the legacy per-day usage and cost summary (api-semantics 5.7)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from lightfuse.api.common import JSONResponse, Paging, paginated, parse_time_param
from lightfuse.api.traces import ListParam, ProjectAuth, multi, read_errors, tracing_reads

router = APIRouter()


@router.get("/api/public/metrics/daily")
def daily_metrics(
    request: Request,
    auth: ProjectAuth,
    pg: Paging,
    traceName: str | None = None,
    userId: str | None = None,
    tags: ListParam = None,
    environment: ListParam = None,
    fromTimestamp: str | None = None,
    toTimestamp: str | None = None,
):
    p, lim = pg.page, pg.limit
    with read_errors():
        items, total = tracing_reads(request).daily_metrics(
            auth.project_id,
            page=p,
            limit=lim,
            trace_name=traceName,
            user_id=userId,
            tags=multi(tags),
            environments=multi(environment),
            from_ms=parse_time_param(fromTimestamp, "fromTimestamp"),
            to_ms=parse_time_param(toTimestamp, "toTimestamp"),
        )
    return JSONResponse(paginated(items, p, lim, total))
