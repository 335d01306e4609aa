"""LLM connections: GET (paginated) and PUT (upsert by provider name) /api/public/llm-connections, DELETE
/api/public/llm-connections/{id}. Secrets are write-only: answers carry ``displaySecretKey`` and
``extraHeaderKeys`` only."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from lightfuse.api.common import (
    ApiError,
    JSONResponse,
    Paging,
    ProjectAuth,
    not_found,
    paginated,
    read_json,
)
from lightfuse.services.common.resources import RequestError

router = APIRouter()


@router.get("/api/public/llm-connections")
def list_llm_connections(request: Request, auth: ProjectAuth, pg: Paging):
    data, total = request.app.state.services.llm_connections.page(
        auth.project_id, pg.limit, (pg.page - 1) * pg.limit
    )
    return JSONResponse(paginated(data, pg.page, pg.limit, total))


@router.put("/api/public/llm-connections")
async def upsert_llm_connection(request: Request, auth: ProjectAuth):
    body = await read_json(request)
    try:
        connection, created = await run_in_threadpool(
            request.app.state.services.llm_connections.upsert, auth.project_id, body
        )
    except RequestError as exc:
        raise ApiError(exc.status, exc.message) from None
    return JSONResponse(connection, 201 if created else 200)


@router.delete("/api/public/llm-connections/{connection_id}")
def delete_llm_connection(connection_id: str, request: Request, auth: ProjectAuth):
    if not request.app.state.services.llm_connections.delete(auth.project_id, connection_id):
        raise not_found("LLM connection not found within authorized project")
    return JSONResponse({"message": "LLM connection successfully deleted"})
