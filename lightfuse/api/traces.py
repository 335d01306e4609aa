"""GET/DELETE /api/public/traces[/{traceId}] (api-semantics 5.1) and the plumbing the other read routers share.

Route functions are plain ``def``: FastAPI runs them in its thread pool, so the blocking queries never hold
the event loop. Only the bulk delete reads a body and is ``async``; its database work goes to the pool too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from lightfuse.api.common import (
    JSONResponse,
    Paging,
    ProjectAuth,
    bad_request,
    not_found,
    paginated,
    parse_time_param,
    read_json,
)
from lightfuse.services.tracing.traces import NotFoundError, QueryError, TracingReads

router = APIRouter()

# Annotated dependencies keep FastAPI calls out of argument defaults.
ListParam = Annotated[list[str] | None, Query()]

MAX_DELETE_IDS = 1000


@contextlib.contextmanager
def read_errors() -> Iterator[None]:
    """Service errors -> Langfuse's typed 400/404 answers."""
    try:
        yield
    except QueryError as exc:
        raise bad_request(str(exc)) from None
    except NotFoundError as exc:
        raise not_found(exc.message) from None


def multi(values: list[str] | None) -> list[str]:
    """A list parameter given repeated (``?tag=a&tag=b``), comma-separated (``?tag=a,b``) or both."""
    out: list[str] = []
    for value in values or ():
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return list(dict.fromkeys(out))


def tracing_reads(request: Request) -> TracingReads:
    services = request.app.state.services
    return TracingReads(services.engine, services.models, services.media.delete_blobs)


@router.get("/api/public/traces")
def list_traces(
    request: Request,
    auth: ProjectAuth,
    pg: Paging,
    userId: str | None = None,
    name: str | None = None,
    sessionId: str | None = None,
    version: str | None = None,
    release: str | None = None,
    tags: ListParam = None,
    environment: ListParam = None,
    fromTimestamp: str | None = None,
    toTimestamp: str | None = None,
    orderBy: str | None = None,
    fields: str | None = None,
    filter: str | None = None,
):
    p, lim = pg.page, pg.limit
    with read_errors():
        items, total = tracing_reads(request).list_traces(
            auth.project_id,
            page=p,
            limit=lim,
            user_id=userId,
            name=name,
            session_id=sessionId,
            version=version,
            release=release,
            tags=multi(tags),
            environments=multi(environment),
            from_ms=parse_time_param(fromTimestamp, "fromTimestamp"),
            to_ms=parse_time_param(toTimestamp, "toTimestamp"),
            order_by=orderBy,
            fields=fields,
            filter=filter,
        )
    return JSONResponse(paginated(items, p, lim, total))


@router.get("/api/public/traces/{traceId}")
def get_trace(traceId: str, request: Request, auth: ProjectAuth, fields: str | None = None):
    with read_errors():
        return JSONResponse(tracing_reads(request).get_trace(auth.project_id, traceId, fields))


@router.delete("/api/public/traces/{traceId}")
def delete_trace(traceId: str, request: Request, auth: ProjectAuth):
    tracing_reads(request).delete_traces(auth.project_id, [traceId])
    return JSONResponse({"message": "Trace deleted successfully"})


@router.delete("/api/public/traces")
async def delete_traces(request: Request, auth: ProjectAuth):
    body = await read_json(request)
    if not isinstance(body, dict) or set(body) != {"traceIds"}:
        raise bad_request("Request body must be an object with exactly one key, 'traceIds'")
    ids = body["traceIds"]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise bad_request("traceIds must be an array of strings")
    if not 1 <= len(ids) <= MAX_DELETE_IDS:
        raise bad_request(f"traceIds must contain between 1 and {MAX_DELETE_IDS} ids")
    await run_in_threadpool(tracing_reads(request).delete_traces, auth.project_id, ids)
    return JSONResponse({"message": "Traces deleted successfully"})
