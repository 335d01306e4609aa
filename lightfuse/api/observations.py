"""GET /api/public/observations[/{observationId}] (v1) and GET /api/public/v2/observations (api-semantics 5.2)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from lightfuse.api.common import (
    JSONResponse,
    Paging,
    bad_request,
    paginated,
    parse_time_param,
)
from lightfuse.api.traces import ListParam, ProjectAuth, multi, read_errors
from lightfuse.services.tracing.observations import ObservationFilters, ObservationReads

router = APIRouter()

V2_MAX_LIMIT = 1000


def observation_reads(request: Request) -> ObservationReads:
    services = request.app.state.services
    return ObservationReads(services.engine, services.models)


def _bool_param(value: str | None, name: str) -> bool | None:
    if value is None or value == "":
        return None
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise bad_request(f"{name} must be true or false")


@router.get("/api/public/observations")
def list_observations(
    request: Request,
    auth: ProjectAuth,
    pg: Paging,
    name: str | None = None,
    userId: str | None = None,
    type: str | None = None,
    traceId: str | None = None,
    level: str | None = None,
    parentObservationId: str | None = None,
    environment: ListParam = None,
    fromStartTime: str | None = None,
    toStartTime: str | None = None,
    version: str | None = None,
    filter: str | None = None,
):
    p, lim = pg.page, pg.limit
    filters = ObservationFilters(
        name=name,
        user_id=userId,
        type=type,
        trace_id=traceId,
        level=level,
        parent_observation_id=parentObservationId or None,
        environments=multi(environment),
        from_ms=parse_time_param(fromStartTime, "fromStartTime"),
        to_ms=parse_time_param(toStartTime, "toStartTime"),
        version=version,
        filter=filter,
    )
    with read_errors():
        items, total = observation_reads(request).list_observations(
            auth.project_id, filters, page=p, limit=lim
        )
    return JSONResponse(paginated(items, p, lim, total))


@router.get("/api/public/observations/{observationId}")
def get_observation(observationId: str, request: Request, auth: ProjectAuth):
    with read_errors():
        return JSONResponse(observation_reads(request).get_observation(auth.project_id, observationId))


@router.get("/api/public/v2/observations")
def list_observations_v2(
    request: Request,
    auth: ProjectAuth,
    fields: str | None = None,
    expandMetadata: str | None = None,
    limit: str | None = None,
    cursor: str | None = None,
    parseIoAsJson: str | None = None,
    name: str | None = None,
    userId: str | None = None,
    sessionId: str | None = None,
    type: str | None = None,
    traceId: str | None = None,
    level: str | None = None,
    parentObservationId: str | None = None,
    isRootObservation: str | None = None,
    environment: ListParam = None,
    fromStartTime: str | None = None,
    toStartTime: str | None = None,
    version: str | None = None,
    filter: str | None = None,
):
    lim = 50
    if limit is not None and limit != "":
        try:
            lim = int(limit)
        except ValueError:
            raise bad_request("limit must be an integer") from None
        if not 0 <= lim <= V2_MAX_LIMIT:
            raise bad_request(f"limit must be between 0 and {V2_MAX_LIMIT}")
    filters = ObservationFilters(
        name=name,
        user_id=userId,
        session_id=sessionId,
        type=type,
        trace_id=traceId,
        level=level,
        # present but empty means "root observations only"
        parent_observation_id=parentObservationId,
        is_root=_bool_param(isRootObservation, "isRootObservation"),
        environments=multi(environment),
        from_ms=parse_time_param(fromStartTime, "fromStartTime"),
        to_ms=parse_time_param(toStartTime, "toStartTime"),
        version=version,
        filter=filter,
    )
    with read_errors():
        items, next_cursor = observation_reads(request).list_observations_v2(
            auth.project_id,
            filters,
            limit=lim,
            cursor=cursor,
            fields=fields,
            expand_metadata=expandMetadata,
            parse_io_as_json=bool(_bool_param(parseIoAsJson, "parseIoAsJson")),
        )
    meta = {"cursor": next_cursor} if next_cursor else {}
    return JSONResponse({"data": items, "meta": meta})
